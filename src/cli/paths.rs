//! Default locations: the vault in `$XDG_DATA_HOME/quire/vault` (else
//! `~/.local/share/quire/vault`), the mount point `~/Notes`.

use std::path::{Path, PathBuf};

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The default vault folder.
pub fn default_vault() -> PathBuf {
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("quire/vault"),
        None => home().join(".local/share/quire/vault"),
    }
}

/// The default mount point.
pub fn default_mountpoint() -> PathBuf {
    home().join("Notes")
}

/// Makes a path absolute without resolving symlinks of the last component.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}
