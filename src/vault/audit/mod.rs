//! The audit log (docs/FORMAT.md §16): an append-only, encrypted,
//! hash-chained record of what happened to the vault — mounts, saves,
//! renames, deletions, restores, expiries, purges, password changes,
//! recovery-key use — never note content.
//!
//! One chain per device, `audit/<device ID hex>` in the shared folder, and
//! each device writes only its own (issue 18.2): a sync tool copies whole
//! chains and never has two writers of one file to reconcile. The single
//! `quire.audit` of older versions is still read (and verified) as the
//! chain from before devices, and never written again. Reading merges the
//! chains by time, naming the device of each record.
//!
//! Every device remembers the head (last `seq` and link) of every chain it
//! has seen, in `audit.heads` in its own folder outside the vault, so that
//! a chain cut short, rewritten or deleted — by a sync tool, a restored
//! backup or anyone with the folder — is noticed here until it is
//! reviewed and accepted (docs/THREAT_MODEL.md says what this proves).

mod chain;
pub use chain::{Acting, Quiet, acting_as};
pub mod heads;
mod read;
#[cfg(test)]
mod tests;

pub use chain::{AuditLog, FLUSH_DELAY};
pub use heads::{Head, Heads};
pub use read::{ChainVerdict, Chained, Verdict, read_all, read_chain, transcode_chain};

use std::io;
use std::path::PathBuf;

use crate::format::devices;
use crate::store::Layout;

/// Which chain a record is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChainId {
    /// `quire.audit`, written by versions before per-device chains.
    Legacy,
    /// `audit/<hex>`, written only by that device.
    Device([u8; 16]),
}

impl ChainId {
    /// How the chain is named in the heads file and in `--json`:
    /// `legacy` or the device ID in hex.
    pub fn key(&self) -> String {
        match self {
            ChainId::Legacy => "legacy".into(),
            ChainId::Device(id) => devices::file_name(id),
        }
    }

    /// The chain a [`ChainId::key`] names.
    pub fn parse(s: &str) -> Option<ChainId> {
        match s {
            "legacy" => Some(ChainId::Legacy),
            _ => devices::parse_file_name(s).map(ChainId::Device),
        }
    }

    /// A phrase naming the chain in a message.
    pub fn describe(&self) -> String {
        match self {
            ChainId::Legacy => "the log of older versions (quire.audit)".into(),
            ChainId::Device(id) => format!("device {}'s chain", devices::short(id)),
        }
    }

    /// Its file in the vault folder.
    pub fn path(&self, layout: &Layout) -> PathBuf {
        match self {
            ChainId::Legacy => layout.audit(),
            ChainId::Device(id) => layout.audit_chain(&devices::file_name(id)),
        }
    }
}

/// The chains in the vault folder (the legacy log first, if present,
/// then the devices' in ID order), and the names of other files in
/// `audit/` (a sync tool's conflict copies, strays), which are reported,
/// never read as chains.
pub fn chains(layout: &Layout) -> io::Result<(Vec<ChainId>, Vec<String>)> {
    let mut found = Vec::new();
    let mut other = Vec::new();
    if std::fs::symlink_metadata(layout.audit()).is_ok() {
        found.push(ChainId::Legacy);
    }
    match std::fs::read_dir(layout.audit_dir()) {
        Ok(rd) => {
            let mut ids = Vec::new();
            for e in rd {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                match devices::parse_file_name(&name) {
                    Some(id) if e.file_type()?.is_file() => ids.push(id),
                    _ => other.push(name),
                }
            }
            ids.sort();
            found.extend(ids.into_iter().map(ChainId::Device));
            other.sort();
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok((found, other))
}
