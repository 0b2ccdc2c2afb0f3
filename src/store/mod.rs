//! Layer 1: the ciphertext folder on disk. Knows the layout, writes small
//! files atomically, holds the vault lock, and wraps the `*at` system calls
//! the vault uses on host (ciphertext) names. Knows no keys and no plaintext.

pub mod atomic;
pub mod backup;
pub mod fault;
pub mod host;
pub mod lock;
pub mod safe;
pub mod watch;

use std::path::{Path, PathBuf};

/// Name of the config file in the vault folder.
pub const CONFIG: &str = "quire.conf";
/// Name of the lock file older versions kept in the vault folder (the
/// lock is now the vault folder's own `flock`, docs/FORMAT.md §9; a
/// leftover is removed by a read-write mount).
pub const LOCK: &str = "quire.lock";
/// Name of the ciphertext tree's root folder.
pub const DATA: &str = "d";
/// Name of the encrypted log file.
pub const LOG: &str = "quire.log";
/// Name of the crash-undo journal.
pub const UNDO: &str = "quire.undo";
/// The audit log of versions before per-device chains (docs/FORMAT.md
/// §16): still read, never written again.
pub const AUDIT: &str = "quire.audit";
/// The shared folder of per-device audit chains (docs/FORMAT.md §16).
pub const AUDIT_DIR: &str = "audit";
/// This device's remembered audit heads, in its own folder (§16).
pub const AUDIT_HEADS: &str = "audit.heads";
/// The search index folder (docs/FORMAT.md §17).
pub const INDEX: &str = "index";

/// The shared folder of device records (docs/FORMAT.md §18).
pub const DEVICES: &str = "devices";
/// The per-device file holding this device's ID (§18).
pub const DEVICE_ID: &str = "device";

/// Paths of one vault: the vault folder, which any sync or backup tool
/// may copy, and this device's own folder outside it, which holds what
/// must never travel (docs/FORMAT.md §1, §18).
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    local: PathBuf,
}

/// The first 16 hex digits of SHA-256 of the folder's canonical path:
/// names what this machine keeps about one vault folder, so that a copy of
/// the vault elsewhere (which has the same vault ID) keeps its own.
pub fn place(root: &Path) -> String {
    use sha2::Digest;
    let canonical = std::fs::canonicalize(root)
        .unwrap_or_else(|_| std::path::absolute(root).unwrap_or_else(|_| root.to_owned()));
    let h = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// This user's state folder for Quire: `$XDG_STATE_HOME/quire` (else
/// `~/.local/state/quire`).
pub fn state_home() -> PathBuf {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"))
            .join(".local/state"),
    };
    base.join("quire")
}

/// This device's folder for the vault `id_hex` in the folder `root`:
/// `<state home>/vaults/<vault ID>-<place>` (docs/FORMAT.md §18).
pub fn device_dir(id_hex: &str, root: &Path) -> PathBuf {
    state_home()
        .join("vaults")
        .join(format!("{id_hex}-{}", place(root)))
}

impl Layout {
    /// Layout of the vault folder at `root` whose per-device files live
    /// in `local`.
    pub fn new(root: impl Into<PathBuf>, local: impl Into<PathBuf>) -> Self {
        Layout {
            root: root.into(),
            local: local.into(),
        }
    }

    /// This device's folder for the vault (outside the vault folder).
    pub fn local(&self) -> &Path {
        &self.local
    }

    /// Creates this device's folder (0700) if it is missing.
    pub fn ensure_local(&self) -> std::io::Result<()> {
        atomic::private_dir(&self.local)
    }

    /// The vault folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `quire.conf`.
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG)
    }

    /// `quire.lock` of older versions (a leftover).
    pub fn old_lock(&self) -> PathBuf {
        self.root.join(LOCK)
    }

    /// `d/`, the root of the ciphertext tree.
    pub fn data(&self) -> PathBuf {
        self.root.join(DATA)
    }

    /// `quire.log`, this device's daemon log.
    pub fn log(&self) -> PathBuf {
        self.local.join(LOG)
    }

    /// `quire.undo`, this device's crash journal.
    pub fn undo(&self) -> PathBuf {
        self.local.join(UNDO)
    }

    /// Where older versions kept a file that is now per device, in the
    /// vault folder (`quire.undo`, `quire.log`, `index`): migrated by a
    /// read-write mount.
    pub fn old_shared(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `devices/`, the shared device records.
    pub fn devices(&self) -> PathBuf {
        self.root.join(DEVICES)
    }

    /// This device's ID file.
    pub fn device_id(&self) -> PathBuf {
        self.local.join(DEVICE_ID)
    }

    /// `device.machine` in this device's folder: which machine made the
    /// device ID (§18).
    pub fn device_machine(&self) -> PathBuf {
        self.local.join("device.machine")
    }

    /// `quire.audit`, the single chain of older versions.
    pub fn audit(&self) -> PathBuf {
        self.root.join(AUDIT)
    }

    /// `audit/`, one chain per device.
    pub fn audit_dir(&self) -> PathBuf {
        self.root.join(AUDIT_DIR)
    }

    /// `audit/<device ID hex>`, the chain only that device writes.
    pub fn audit_chain(&self, device_hex: &str) -> PathBuf {
        self.audit_dir().join(device_hex)
    }

    /// The heads of every chain this device has seen (outside the vault).
    pub fn audit_heads(&self) -> PathBuf {
        self.local.join(AUDIT_HEADS)
    }

    /// `sums/`, the group sums of large files' block MACs this device
    /// keeps (FORMAT §4.2).
    pub fn mac_sums(&self) -> PathBuf {
        self.local.join("sums")
    }

    /// `index/`, this device's sealed search index.
    pub fn index(&self) -> PathBuf {
        self.local.join(INDEX)
    }
}
