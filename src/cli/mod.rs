//! Layer 4: the command line. One file per command; [`exit`] is the only
//! place that turns errors into messages and exit codes (docs/CLI.md).

mod audit;
mod backup;
mod check;
mod conflicts;
mod daemon;
mod devices;
pub mod exit;
mod export;
mod history;
mod import;
mod indexer;
mod init;
mod lifecycle;
mod logger;
mod mount;
mod passwd;
mod password;
mod paths;
mod recoverykey;
mod runtime;
mod search;
mod status;
mod target;
mod trash;
mod unmount;
mod user;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

pub use exit::Code;
pub use password::PasswordArgs;

/// Quire: an encrypted, versioned notebook you mount as an ordinary folder.
///
/// Your notes live encrypted in a vault folder (by default
/// ~/.local/share/quire/vault). `quire mount` shows them, decrypted, in
/// ~/Notes for any program to use; `quire unmount` seals them again.
#[derive(Parser, Debug)]
#[command(
    name = "quire",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new vault (asks for a password twice, prints a recovery key once).
    Init(init::InitArgs),
    /// Unlock a vault and show it as a folder (by default ~/Notes).
    Mount(mount::MountArgs),
    /// Mount a vault over a mount point that holds unencrypted files, and
    /// move them into the vault (the plaintext is overwritten and removed).
    Import(mount::ImportArgs),
    /// Seal a mounted vault: flush everything, wipe the keys, unmount.
    #[command(alias = "umount")]
    Unmount(unmount::UnmountArgs),
    /// Show which vaults are mounted where, and since when.
    Status(status::StatusArgs),
    /// Change the vault password (or set a new one with the recovery key).
    Passwd(passwd::PasswdArgs),
    /// Print the shell completion script for SHELL.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages into DIR.
    #[command(hide = true)]
    Man {
        /// Output folder.
        dir: PathBuf,
    },
    /// Show the daemon's (encrypted) log of a vault.
    Logs(daemon::LogsArgs),
    /// List the saved versions of a note (numbered from 1, oldest first).
    Log(history::LogArgs),
    /// Print a saved version of a note (the latest by default).
    Show(history::ShowArgs),
    /// Show what changed between two versions, or since a version (unified diff).
    Diff(history::DiffArgs),
    /// Make an old version the current content again (as a new version).
    Restore(history::RestoreArgs),
    /// List deleted notes; restore, purge or empty the trash.
    Trash(trash::TrashArgs),
    /// Verify every note, name, version and trash entry of a vault.
    Check(check::CheckArgs),
    /// Set, clear or show when a note expires (goes to the trash).
    Expire(lifecycle::ExpireArgs),
    /// Set or show until when a note must be kept (no deletion before).
    Retain(lifecycle::RetainArgs),
    /// List notes that expire soon.
    Expiring(lifecycle::ExpiringArgs),
    /// Expire due notes and purge the trash now (`--dry-run` shows the plan).
    Purge(lifecycle::PurgeArgs),
    /// Show the audit log of who changed what and when; `--verify` checks it.
    Audit(audit::AuditArgs),
    /// Search the notes' text (ranked, with snippets; `--grep` for pipelines).
    Search(search::SearchArgs),
    /// Rebuild the search index from the notes.
    Reindex(search::ReindexArgs),
    /// List the computers that use this vault; `--rename` names this one.
    Devices(devices::DevicesArgs),
    /// List the copies a sync tool kept of notes changed on two computers.
    Conflicts(conflicts::ConflictsArgs),
    /// Export notes for a referral or a request, encrypted (age) and
    /// recorded; `--dispose ID` removes an export's file when its time is up.
    Export(export::ExportArgs),
    /// Replace the recovery key (`--new`): the old one stops opening the
    /// vault; the new one is shown once.
    RecoveryKey(recoverykey::RecoveryKeyArgs),
    /// A password per person: `add NAME`, `list`, `remove NAME
    /// [--rekey]`, `rekey`. Each person unlocks as themselves and the
    /// audit log names them.
    User(user::UserArgs),
    /// Back up the sealed vault folder into a backup folder (a USB disk, a
    /// NAS), incrementally; `verify`, `list`, `restore` and `drill` work on
    /// backups.
    Backup(backup::BackupArgs),
    /// List every export recorded in the audit log: what, to whom, why,
    /// and whether its file is still here.
    Disclosures(export::DisclosuresArgs),
}

/// Entry point: parses arguments, runs the command, returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Mount(_) | Command::Import(_)) {
        // `quire log x | head -1`: a closed pipe ends the command quietly,
        // as it does `cat` (Rust ignores SIGPIPE, so print! would panic).
        // Not for `mount`: its daemon must outlive a client that hangs up.
        // SAFETY: setting a signal's disposition to the default.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let r = match cli.command {
        Command::Init(a) => init::run(a),
        Command::Mount(a) => mount::run(a),
        Command::Import(a) => mount::run_import(a),
        Command::Unmount(a) => unmount::run(a),
        Command::Status(a) => status::run(a),
        Command::Passwd(a) => passwd::run(a),
        Command::Logs(a) => daemon::logs(a),
        Command::Log(a) => history::log(a),
        Command::Show(a) => history::show(a),
        Command::Diff(a) => history::diff(a),
        Command::Restore(a) => history::restore(a),
        Command::Trash(a) => trash::run(a),
        Command::Check(a) => check::run(a),
        Command::Expire(a) => lifecycle::expire(a),
        Command::Retain(a) => lifecycle::retain(a),
        Command::Expiring(a) => lifecycle::expiring(a),
        Command::Purge(a) => lifecycle::purge(a),
        Command::Audit(a) => audit::run(a),
        Command::Search(a) => search::search(a),
        Command::Reindex(a) => search::reindex(a),
        Command::Devices(a) => devices::run(a),
        Command::Conflicts(a) => conflicts::run(a),
        Command::Export(a) => export::export(a),
        Command::Disclosures(a) => export::list(a),
        Command::Backup(a) => backup::run(a),
        Command::RecoveryKey(a) => recoverykey::run(a),
        Command::User(a) => user::run(a),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "quire", &mut std::io::stdout());
            Ok(())
        }
        Command::Man { dir } => man(&dir),
    };
    match r {
        Ok(()) => 0,
        Err(e) => exit::report(&e),
    }
}

fn man(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::fs::write(dir.join("quire.1"), buf)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("quire-{}", sub.get_name());
        let mut buf = Vec::new();
        clap_mangen::Man::new(
            sub.clone()
                .name(Box::leak(name.clone().into_boxed_str()) as &str),
        )
        .render(&mut buf)?;
        std::fs::write(dir.join(format!("{name}.1")), buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
