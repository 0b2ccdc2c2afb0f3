//! The vault's typed errors (HOUSE.md habit 6): every failure a user can
//! cause or fix is a distinct variant; `cli` alone turns them into
//! messages and exit codes.

use std::io;
use std::path::PathBuf;

use crate::format::FormatError;

/// Everything that can go wrong opening or changing a vault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No vault (and no folder) at the path.
    #[error("there is no vault at {0}")]
    NoVault(PathBuf),
    /// A folder that is not a Quire vault.
    #[error("{0} is not a Quire vault (it has no quire.conf)")]
    NotAVault(PathBuf),
    /// `init` on a folder that is not empty.
    #[error("{0} already exists and is not empty")]
    Exists(PathBuf),
    /// The config was refused.
    #[error("{path}: {source}")]
    Format {
        /// Config path.
        path: PathBuf,
        /// Why.
        source: FormatError,
    },
    /// No password slot opened.
    #[error("wrong password")]
    WrongPassword,
    /// `quire.conf` was changed outside Quire (a slot added, removed or
    /// swapped; flags cleared; the key-derivation cost lowered).
    #[error("quire.conf was modified: {0}")]
    ConfigModified(String),
    /// `--user NAME` names no key slot of the vault.
    #[error("this vault has no password for {0:?}: `quire user list` shows the names")]
    NoSuchPerson(String),
    /// The recovery slot did not open.
    #[error("wrong recovery key")]
    WrongRecoveryKey,
    /// The recovery key text is malformed.
    #[error("that is not a recovery key: {0}")]
    BadRecoveryKey(&'static str),
    /// Another process holds the vault lock.
    #[error("the vault at {0} is in use (already mounted, or another quire command is running)")]
    Busy(PathBuf),
    /// A change to the vault's key slots that its rules forbid (a name
    /// taken, the last password, the slot that unlocked): nothing changed.
    #[error("{0}")]
    Refused(String),
    /// The ciphertext tree is damaged beyond opening.
    #[error("the vault's data folder is damaged: {0}")]
    Damaged(String),
    /// Operating system error.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing (never contains plaintext).
        context: String,
        /// The error.
        source: io::Error,
    },
}
