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
