# Sourced by tools/setup and tools/test: installs missing Debian/Ubuntu
# packages (with sudo when not root). Usage: ensure_packages cmd:pkg ...

# Runs an apt-get command; while another program (an update running in the
# background, a software centre) holds the package lock, waits for it with
# a message instead of failing: up to QUIRE_APT_WAIT seconds (default 300).
apt_retry() {
    local limit=${QUIRE_APT_WAIT:-300} step=${QUIRE_APT_WAIT_STEP:-5}
    local deadline=$((SECONDS + limit)) told="" out
    while :; do
        if out=$("$@" 2>&1); then
            return 0
        fi
        if grep -qiE 'could not get lock|unable to (acquire|lock)|another process' <<<"$out" &&
            [ "$SECONDS" -lt "$deadline" ]; then
            if [ -z "$told" ]; then
                echo "Another program is installing packages right now; waiting for it to finish (up to $((limit / 60)) minutes)..." >&2
                told=1
            fi
            sleep "$step"
            continue
        fi
        printf '%s\n' "$out" >&2
        return 1
    done
}

ensure_packages() {
    local missing=()
    local pair cmd pkg
    for pair in "$@"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "Installing the system packages Quire needs: ${missing[*]}..." >&2
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    if ! apt_retry "${sudo[@]}" apt-get install -y "${missing[@]}"; then
        echo "Updating the package lists and trying again..." >&2
        apt_retry "${sudo[@]}" apt-get update || return 1
        apt_retry "${sudo[@]}" apt-get install -y "${missing[@]}" || return 1
    fi
    echo "Installed: ${missing[*]}" >&2
}

# Checks for a Rust toolchain new enough to build Quire (Cargo.toml's
# rust-version); says plainly how to get one instead of "cargo: command not
# found" or a wall of compile errors (Debian 12's packaged cargo, 1.63, is
# too old).
ensure_rust() {
    local need have
    need=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml)
    if [ -x "$HOME/.cargo/bin/cargo" ] && ! command -v cargo >/dev/null 2>&1; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        cat >&2 <<MSG
Quire is built with Rust $need or newer, and this machine has no Rust
toolchain (cargo). Install one with rustup (it goes to ~/.cargo, no root
needed), then run this command again:

    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
    . "\$HOME/.cargo/env"

MSG
        return 1
    fi
    have=$(cargo --version | sed -n 's/^cargo \([0-9][0-9.]*\).*/\1/p')
    if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
        cat >&2 <<MSG
Quire needs Rust $need or newer; this machine's cargo is $have (Debian's
packaged Rust is too old). Install a current one with rustup, then run this
command again:

    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
    . "\$HOME/.cargo/env"

(If cargo came from apt, \`sudo apt-get remove cargo rustc\` first, or make
sure ~/.cargo/bin comes first on your PATH.)
MSG
        return 1
    fi
}
