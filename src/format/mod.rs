//! Layer 1: byte layouts and their sealing. Every layout here is specified in
//! docs/FORMAT.md; section numbers are cited in each file. Works on bytes
//! only, never on paths.
//!
//! All integers are big-endian; no `usize` is ever encoded.

pub mod audit;
pub mod backup;
pub mod config;
pub mod conflicts;
pub mod content;
pub mod devices;
pub mod dirid;
pub mod history;
pub mod lifecycle;
pub mod names;
pub mod records;
pub mod stream;
pub mod undo;
#[cfg(test)]
mod vectors;

/// Why a vault config was refused. Every variant maps to a message that
/// tells the user what to do (see `cli::error`).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Not a Quire config at all.
    #[error("not a Quire vault config (bad magic)")]
    BadMagic,
    /// Written by a newer Quire.
    #[error("vault format version {found} is newer than this Quire supports (up to {supported})")]
    TooNew {
        /// Version in the file.
        found: u16,
        /// Highest version this build reads.
        supported: u16,
    },
    /// Written by an older, unsupported Quire.
    #[error("vault format version {found} is older than this Quire supports (from {supported})")]
    TooOld {
        /// Version in the file.
        found: u16,
        /// Lowest version this build reads.
        supported: u16,
    },
    /// Feature flags this build does not know.
    #[error("vault uses features this Quire does not know (flags {0:#010x})")]
    UnknownFlags(u32),
    /// Structurally broken (truncated, bad checksum, impossible values).
    #[error("vault config is corrupt: {0}")]
    Corrupt(&'static str),
}
