//! Layer 1: the ciphertext folder on disk. Knows the layout, writes small
//! files atomically, holds the vault lock, and wraps the `*at` system calls
//! the vault uses on host (ciphertext) names. Knows no keys and no plaintext.

pub mod atomic;
pub mod fault;
pub mod host;
pub mod lock;
pub mod safe;

use std::path::{Path, PathBuf};

/// Name of the config file in the vault folder.
pub const CONFIG: &str = "quire.conf";
/// Name of the lock file in the vault folder.
pub const LOCK: &str = "quire.lock";
/// Name of the ciphertext tree's root folder.
pub const DATA: &str = "d";
/// Name of the encrypted log file.
pub const LOG: &str = "quire.log";
/// Name of the crash-undo journal.
pub const UNDO: &str = "quire.undo";
/// The audit log (docs/FORMAT.md §16).
pub const AUDIT: &str = "quire.audit";
/// The search index folder (docs/FORMAT.md §17).
pub const INDEX: &str = "index";

/// Paths inside one vault folder (docs/FORMAT.md §1).
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Layout of the vault folder at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// The vault folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `quire.conf`.
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG)
    }

    /// `quire.lock`.
    pub fn lock(&self) -> PathBuf {
        self.root.join(LOCK)
    }

    /// `d/`, the root of the ciphertext tree.
    pub fn data(&self) -> PathBuf {
        self.root.join(DATA)
    }

    /// `quire.log`.
    pub fn log(&self) -> PathBuf {
        self.root.join(LOG)
    }

    /// `quire.undo`.
    pub fn undo(&self) -> PathBuf {
        self.root.join(UNDO)
    }

    /// `quire.audit`.
    pub fn audit(&self) -> PathBuf {
        self.root.join(AUDIT)
    }

    /// `index/`, the sealed search index.
    pub fn index(&self) -> PathBuf {
        self.root.join(INDEX)
    }
}
