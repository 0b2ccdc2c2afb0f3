//! Exit codes are an ABI (docs/CLI.md): one enum, and the single place that
//! turns errors into a message and a code.

use crate::format::FormatError;
use crate::vault::Error as VaultError;

/// Every exit code Quire uses. Never renumber; only add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Code {
    /// Success.
    Ok = 0,
    /// An error not covered below.
    Other = 1,
    /// Bad command-line usage (clap).
    Usage = 2,
    /// Wrong password or recovery key.
    WrongPassword = 10,
    /// No vault at the path, or the folder is not a vault.
    NoVault = 11,
    /// The vault's format is refused (newer, older, unknown feature, corrupt config).
    Format = 12,
    /// The vault is already mounted or in use.
    Busy = 13,
    /// The mount point cannot be used.
    MountPoint = 14,
    /// FUSE is not available (fusermount3 or /dev/fuse missing).
    NoFuse = 15,
    /// Nothing is mounted there.
    NotMounted = 16,
    /// Unmount refused: files are open in the vault.
    UnmountBusy = 17,
    /// `init` refused: the folder exists.
    Exists = 18,
    /// A system I/O error.
    Io = 19,
    /// No password was given, the two entries differed, or the user said no.
    Cancelled = 20,
    /// `quire check` found problems.
    CheckFailed = 21,
    /// No such note, version or trash entry.
    NotFound = 22,
    /// A retention date or another lifecycle rule refused the change.
    Refused = 23,
    /// `quire audit --verify` found the audit log altered.
    AuditBroken = 24,
    /// `quire check` found no damage, but sync tools' conflict copies of
    /// notes to resolve (`quire conflicts`).
    Conflicts = 25,
}

/// An error the CLI knows how to explain.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// The exit code.
    pub code: Code,
    /// What happened and what to do.
    pub message: String,
}

/// Builds a [`CliError`].
pub fn fail(code: Code, message: impl Into<String>) -> anyhow::Error {
    CliError {
        code,
        message: message.into(),
    }
    .into()
}

fn classify(e: &anyhow::Error) -> (Code, String) {
    if let Some(c) = e.downcast_ref::<CliError>() {
        return (c.code, c.message.clone());
    }
    if let Some(v) = e.downcast_ref::<VaultError>() {
        return match v {
            VaultError::WrongPassword => (
                Code::WrongPassword,
                "wrong password; nothing was changed".into(),
            ),
            VaultError::WrongRecoveryKey => (
                Code::WrongPassword,
                "wrong recovery key; nothing was changed".into(),
            ),
            VaultError::BadRecoveryKey(_) => (Code::WrongPassword, v.to_string()),
            VaultError::NoSuchPerson(_) => (Code::WrongPassword, v.to_string()),
            VaultError::NoVault(p) => (
                Code::NoVault,
                format!(
                    "there is no vault at {}: create one with `quire init`",
                    p.display()
                ),
            ),
            VaultError::NotAVault(_) => (
                Code::NoVault,
                format!("{v}; check the path, or restore quire.conf from a backup"),
            ),
            VaultError::Exists(_) => (Code::Exists, format!("{v}; choose another folder")),
            VaultError::Busy(_) => (Code::Busy, format!("{v}; see `quire status`")),
            VaultError::Format { source, .. } => {
                let hint = match source {
                    FormatError::TooNew { .. } | FormatError::UnknownFlags(_) => {
                        "upgrade Quire to open this vault"
                    }
                    FormatError::TooOld { .. } => {
                        "open it with the older Quire release that created it"
                    }
                    FormatError::BadMagic | FormatError::Corrupt(_) => {
                        "restore quire.conf from a backup of the vault folder"
                    }
                };
                (Code::Format, format!("{v}: {hint}"))
            }
            VaultError::ConfigModified(_) => (
                Code::Format,
                format!(
                    "{v}. It was changed outside Quire; restore quire.conf from a backup of the vault folder"
                ),
            ),
            VaultError::Refused(_) => (Code::Refused, format!("{v}; nothing was changed")),
            VaultError::Damaged(_) => (
                Code::Format,
                format!("{v}; restore the vault folder from a backup"),
            ),
            VaultError::Io { .. } => (Code::Io, v.to_string()),
        };
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return (Code::Io, io.to_string());
    }
    (Code::Other, format!("{e:#}"))
}

/// Prints the error and returns its exit code.
pub fn report(e: &anyhow::Error) -> i32 {
    let (code, msg) = classify(e);
    eprintln!("quire: {msg}");
    code as i32
}
