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

/// Where the audit log's last link of the vault `id` in the folder `vault`
/// is remembered on this machine:
/// `$XDG_STATE_HOME/quire/audit/<id>-<place>.head` (else
/// `~/.local/state/…`), where `<place>` is the first 16 hex digits of
/// SHA-256 of the vault folder's canonical path. Outside the vault folder
/// so that a copy of the vault cannot carry it (docs/THREAT_MODEL.md);
/// keyed by the folder too, so that a copy (rsync, a backup restored
/// elsewhere), which has the same vault ID, keeps its own (issue 10.5).
pub fn audit_head(id: &str, vault: &Path) -> PathBuf {
    use sha2::Digest;
    let canonical = std::fs::canonicalize(vault).unwrap_or_else(|_| absolute(vault));
    let h = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let place: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
    audit_dir().join(format!("{id}-{place}.head"))
}

fn audit_dir() -> PathBuf {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => home().join(".local/state"),
    };
    base.join("quire/audit")
}

/// Tells an unlocked vault where its audit head is remembered.
pub fn remember_audit_head(v: &mut crate::vault::UnlockedVault) {
    let p = audit_head(&v.id_hex(), v.path());
    // A head remembered by an older Quire, keyed by the vault ID alone:
    // taken over only if this log agrees with it (otherwise it was another
    // copy's, and would raise a false alarm here).
    let old = audit_dir().join(format!("{}.head", v.id_hex()));
    if !p.exists()
        && old.exists()
        && v.audit_agrees_with(&old)
        && let Ok(b) = crate::store::safe::read(&old, crate::store::safe::MAX_RECORD)
    {
        if let Some(dir) = p.parent() {
            let _ = crate::store::atomic::private_dir(dir);
        }
        let _ = crate::store::atomic::write(&p, &b);
    }
    v.remember_audit_head(p);
}
