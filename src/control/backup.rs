//! The daemon's side of `quire backup` (issue 19.2): the snapshot is
//! taken here, where the commit gate is, and the last backup and drill
//! are found in the audit log for `quire status`.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::vault::backup::{Report, keep};
use crate::vault::{AuditEvent, Notebook};

/// Takes a snapshot into `dest`, then applies `keep` (a rule such as
/// `7d,4w,12m`) there.
pub fn take(tree: &Notebook, dest: &Path, keep: Option<&str>) -> io::Result<Report> {
    let rule = keep
        .map(keep::parse)
        .transpose()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if tree.read_only() {
        return Err(io::Error::other(
            "the vault is mounted read-only: a backup is recorded in the audit log, so mount it read-write",
        ));
    }
    tree.backup(dest, rule.as_deref(), SystemTime::now(), &|_, _| {})
}

/// The newest backup or drill record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Last {
    /// When, ns since the epoch.
    pub time_ns: i64,
    /// The record's JSON detail.
    pub detail: String,
}

/// The newest backup and drill records of every device's chain.
pub fn last(tree: &Notebook) -> io::Result<(Option<Last>, Option<Last>)> {
    let (records, _) = tree.read_audit()?;
    let newest = |e: AuditEvent| {
        records
            .iter()
            .filter(|c| c.record.event == e)
            .max_by_key(|c| c.record.time_ns)
            .map(|c| Last {
                time_ns: c.record.time_ns,
                detail: c.record.detail.clone(),
            })
    };
    Ok((newest(AuditEvent::Backup), newest(AuditEvent::Drill)))
}
