//! The daemon's side of `quire export` (issue 19.1): the notes an export
//! takes (current content, and with `--with-history` every saved
//! version), and the audit records that account for it once the export
//! file is written (event 12, one per note) or disposed of (event 18).

use serde::{Deserialize, Serialize};

use crate::vault::{AuditEvent, Notebook};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

fn ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// One version of a note in an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportVersion {
    /// 1-based, oldest first (as `quire log` numbers them).
    pub number: usize,
    /// When it was saved, ns since the epoch.
    pub time_ns: i64,
    /// The content, base64.
    pub data: String,
}

/// One note in an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportNote {
    /// Path in the vault.
    pub path: String,
    /// The version the note holds now (its number).
    pub current: usize,
    /// Its versions: the current one only, or every one.
    pub versions: Vec<ExportVersion>,
}

/// One note as the audit records it: path and the version taken.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exported {
    /// Path in the vault.
    pub path: String,
    /// The version exported as the note (its number).
    pub version: usize,
}

/// The notes at or under `paths` (folders taken whole), each with its
/// current version and, with `with_history`, every saved version. An
/// unknown path is an error (ENOENT), never skipped.
pub(super) fn collect(
    tree: &Notebook,
    paths: &[String],
    with_history: bool,
) -> io::Result<Vec<ExportNote>> {
    if tree.read_only() {
        return Err(io::Error::other(
            "an export is recorded in the audit log, which a read-only mount cannot write: mount read-write",
        ));
    }
    let all = tree.notes()?;
    let mut wanted: Vec<String> = Vec::new();
    for p in paths {
        let p = p.trim_matches('/');
        let (dir, name) = tree.resolve(p.as_bytes())?;
        let (_, attr) = tree.lookup(&dir, &name)?;
        if attr.kind == crate::vault::Kind::Dir {
            let prefix = format!("{p}/");
            wanted.extend(
                all.iter()
                    .map(|n| String::from_utf8_lossy(&n.path).into_owned())
                    .filter(|n| p.is_empty() || n.starts_with(&prefix)),
            );
        } else {
            wanted.push(p.to_string());
        }
    }
    wanted.sort();
    wanted.dedup();
    let mut out = Vec::new();
    for path in wanted {
        let (dir, name) = tree.resolve(path.as_bytes())?;
        let versions = tree.versions(&dir, &name)?;
        let current = versions.last().map_or(0, |v| v.number);
        let take: Vec<_> = if with_history {
            versions.iter().collect()
        } else {
            versions.last().into_iter().collect()
        };
        let mut vs = Vec::new();
        for v in take {
            let data = tree.version_content(&dir, &name, v.number)?;
            vs.push(ExportVersion {
                number: v.number,
                time_ns: ns(v.time),
                data: B64.encode(&data[..]),
            });
        }
        if vs.is_empty() {
            // A note without versions (empty, or not versioned): its
            // content as it is.
            let data = tree.read_current(&dir, &name)?;
            let (_, a) = tree.lookup(&dir, &name)?;
            vs.push(ExportVersion {
                number: 0,
                time_ns: ns(a.mtime),
                data: B64.encode(&data[..]),
            });
        }
        out.push(ExportNote {
            path,
            current,
            versions: vs,
        });
    }
    Ok(out)
}

/// Records an export: one audit record (event 12) per note, all with the
/// same `detail` (the export's ID, file, recipient, purpose, hash and
/// disposal date).
pub(super) fn record(tree: &Notebook, notes: &[Exported], detail: &str) -> io::Result<()> {
    if tree.read_only() {
        return Err(io::Error::other(
            "a read-only mount cannot record an export",
        ));
    }
    for n in notes {
        tree.audit(
            AuditEvent::Export,
            n.path.as_bytes(),
            b"",
            n.version as u32,
            detail,
        );
    }
    Ok(())
}

/// Records that an export file was disposed of (event 18).
pub(super) fn disposed(tree: &Notebook, detail: &str) -> io::Result<()> {
    if tree.read_only() {
        return Err(io::Error::other(
            "a read-only mount cannot record a disposal",
        ));
    }
    tree.audit(AuditEvent::Dispose, b"", b"", 0, detail);
    Ok(())
}
