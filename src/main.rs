fn main() {
    std::process::exit(quire::cli::main());
}
