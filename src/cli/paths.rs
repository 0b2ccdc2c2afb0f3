//! Default locations: the vault in `$XDG_DATA_HOME/quire/vault` (else
//! `~/.local/share/quire/vault`), the mount point `~/Notes`.

use std::path::{Path, PathBuf};

pub fn home() -> PathBuf {
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

/// Where the audit log's last link of vault `id` is remembered on this
/// machine: `$XDG_STATE_HOME/quire/audit/<id>.head` (else
/// `~/.local/state/quire/audit/<id>.head`), outside the vault folder so
/// that a copy of the vault cannot carry it (docs/THREAT_MODEL.md).
pub fn audit_head(id: &str) -> PathBuf {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => home().join(".local/state"),
    };
    base.join("quire/audit").join(format!("{id}.head"))
}

/// Tells an unlocked vault where its audit head is remembered.
pub fn remember_audit_head(v: &mut crate::vault::UnlockedVault) {
    let p = audit_head(&v.id_hex());
    v.remember_audit_head(p);
}
