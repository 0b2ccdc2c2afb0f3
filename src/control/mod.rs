//! Layer 3: the local control socket. While a vault is mounted, the CLI's
//! history, trash and check commands talk to the daemon over a Unix socket
//! in the user's runtime folder (mode 0600, the peer's uid checked); on a
//! sealed vault the CLI runs the same [`handle`] on a tree it opens itself.
//!
//! One request per connection: a JSON line in, a JSON line out. Paths are
//! relative to the vault root, `/`-separated.

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::vault::check::Report;
use crate::vault::expiry::{Applied, Plan};
use crate::vault::lifecycle::{self, Dated};
use crate::vault::trash::{self, Entry};
use std::collections::HashMap;

use crate::vault::audit::{ChainId, Chained};
use crate::vault::{AuditEvent, Notebook};

pub mod backup;
pub mod export;

/// A request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// The daemon's log, host paths in it shown as note paths.
    Logs,
    /// The versions of a note.
    Log {
        /// Path in the vault.
        path: String,
    },
    /// The content of one version.
    Show {
        /// Path in the vault.
        path: String,
        /// Version number (1 = oldest).
        version: usize,
        /// What the content is for: what the audit log says.
        #[serde(default)]
        purpose: Purpose,
    },
    /// The current content of a note.
    Read {
        /// Path in the vault.
        path: String,
    },
    /// Makes an old version the current content (a new version).
    Restore {
        /// Path in the vault.
        path: String,
        /// Version number.
        version: usize,
    },
    /// The trash.
    TrashList,
    /// The content of a trash entry.
    TrashShow {
        /// Entry ID.
        id: String,
    },
    /// Puts a trash entry back.
    TrashRestore {
        /// Entry ID.
        id: String,
    },
    /// Purges entries past the window (or all with `all`).
    Purge {
        /// Only report the plan.
        dry_run: bool,
        /// Every entry, whatever its age (emptying the trash).
        all: bool,
    },
    /// Sets the trash window.
    SetTrashDays {
        /// Days.
        days: u32,
    },
    /// Verifies the whole vault.
    Check,
    /// Sync tools' conflict copies of notes (issue 18.4).
    Conflicts,
    /// The notes an export takes (issue 19.1).
    ExportNotes {
        /// Paths in the vault: notes, or folders taken whole.
        paths: Vec<String>,
        /// Every saved version too.
        with_history: bool,
    },
    /// Records an export written: one audit record per note.
    RecordExport {
        /// What it took.
        notes: Vec<export::Exported>,
        /// The record's detail (the export's ID, file, recipient, …).
        detail: String,
    },
    /// Takes a backup snapshot into `dest` (issue 19.2).
    Backup {
        /// The backup folder.
        dest: PathBuf,
        /// A retention rule to apply there (`7d,4w,12m`).
        keep: Option<String>,
    },
    /// The public key that signs this vault's backups.
    BackupKey,
    /// The newest backup and drill records (for `quire status`).
    LastBackup,
    /// Records a restore drill (detail: its report).
    RecordDrill {
        /// The record's detail.
        detail: String,
    },
    /// Records that an export file was disposed of.
    RecordDispose {
        /// The record's detail.
        detail: String,
    },
    /// The vault's devices; with `rename`, this device's new name first.
    Devices {
        /// A new name for this device.
        #[serde(default)]
        rename: Option<String>,
    },
    /// Shows, sets or clears a note's expiry and retention dates.
    Dates {
        /// Path in the vault.
        path: String,
        /// A new expiry (as typed: a date or `+90d`).
        #[serde(default)]
        expires: Option<String>,
        /// A new retention date.
        #[serde(default)]
        retain_until: Option<String>,
        /// Clear the expiry.
        #[serde(default)]
        clear_expires: bool,
        /// Clear the retention date (refused while it lasts).
        #[serde(default)]
        clear_retain: bool,
    },
    /// Notes with dates; with `within_secs`, only those expiring that soon.
    Expiring {
        /// Window in seconds (none: every dated note).
        within_secs: Option<u64>,
    },
    /// Plans expiry and purge at `now_ns` (default: now) and, unless
    /// `dry_run`, applies the plan.
    Lifecycle {
        /// Only show the plan.
        dry_run: bool,
        /// The moment to plan for, ns since the epoch (tests inject it).
        #[serde(default)]
        now_ns: Option<i64>,
    },
    /// The audit log and the verdict on its chain.
    Audit,
    /// Accepts the audit log as it is as this machine's head (audited).
    AuditAccept,
    /// A full-text search.
    Search(SearchRequest),
    /// Rebuilds the search index from the notes.
    Reindex,
    /// How far a rebuild of the index has got.
    ReindexProgress,
}

/// A search, as asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The query text.
    pub query: String,
    /// Most hits.
    pub limit: usize,
    /// Only at or under this vault path.
    pub path: Option<String>,
    /// Modified at or after (ns).
    pub since_ns: Option<i64>,
    /// Modified at or before (ns).
    pub until_ns: Option<i64>,
    /// Old versions too.
    pub history: bool,
    /// Every matching line of each hit (`--grep`); else the first only.
    #[serde(default)]
    pub all_lines: bool,
}

/// One search hit, as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HitOut {
    /// Path in the vault.
    pub path: String,
    /// 0: the note as it is; N: version N matched.
    pub version: u32,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Relevance (BM25).
    pub score: f32,
    /// A line of context.
    pub snippet: String,
    /// Byte ranges of the snippet that matched.
    pub highlights: Vec<(usize, usize)>,
    /// Matching lines (1-based number, text).
    pub lines: Vec<(usize, String)>,
}

/// Answers searches and reindexing for a mounted vault (the daemon's
/// indexer); errors are (errno, message).
pub trait Searcher: Send + Sync {
    /// Runs a search.
    fn search(&self, r: &SearchRequest) -> Result<Vec<HitOut>, (i32, String)>;
    /// Rebuilds the index; returns the number of documents.
    fn reindex(&self) -> Result<u64, (i32, String)>;
    /// (notes done, notes in all) of the rebuild under way, if any.
    fn progress(&self) -> (u64, u64);
}

/// A note's dates, as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatedOut {
    /// Path in the vault.
    pub path: String,
    /// Expiry (canonical text).
    pub expires: Option<String>,
    /// Retention date (canonical text).
    pub retain_until: Option<String>,
    /// Expiry as ns since the epoch.
    pub expires_ns: Option<i64>,
}

/// A sync tool's conflict copy of a note, as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConflictOut {
    /// The vault path it is shown under.
    pub path: String,
    /// The note it is a copy of.
    pub original: String,
    /// The sync tool whose naming it follows.
    pub tool: String,
    /// When the tool made it, as the tool wrote it.
    pub when: Option<String>,
    /// The device or person the tool named.
    pub device: Option<String>,
}

impl ConflictOut {
    /// Lists a conflict copy found in the vault.
    pub fn of(f: &crate::vault::tree::conflicts::Found) -> ConflictOut {
        ConflictOut {
            path: String::from_utf8_lossy(&f.path).into_owned(),
            original: String::from_utf8_lossy(&f.original).into_owned(),
            tool: format!("{:?}", f.copy.conflict.tool),
            when: f.copy.conflict.when.clone(),
            device: f.copy.conflict.device.clone(),
        }
    }
}

/// One audit record, as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditOut {
    /// Sequence number.
    pub seq: u64,
    /// When, ns since the epoch.
    pub time_ns: i64,
    /// What happened.
    pub event: String,
    /// User id.
    pub uid: u32,
    /// Version number (0: none).
    pub version: u32,
    /// Path.
    pub path: String,
    /// Second path (a rename's target).
    pub to: String,
    /// Details.
    pub detail: String,
    /// The device whose chain holds the record: its short ID, or
    /// `older` for the log of versions before per-device chains.
    #[serde(default)]
    pub device: String,
    /// That device's name, if its record can be read.
    #[serde(default)]
    pub device_name: String,
    /// The person whose named key slot unlocked the vault (issue 20.2),
    /// or empty (the shared password, the recovery key).
    #[serde(default)]
    pub person: String,
}

/// One version, as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionOut {
    /// 1-based.
    pub number: usize,
    /// Save time, ns since the epoch.
    pub time_ns: i64,
    /// Bytes.
    pub size: u64,
    /// save, restore, checkpoint.
    pub origin: String,
    /// The device that saved it: its short ID (empty when not recorded).
    #[serde(default)]
    pub device: String,
    /// That device's name, where known.
    #[serde(default)]
    pub device_name: String,
}

/// One trash entry, as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrashOut {
    /// Entry ID.
    pub id: String,
    /// Original path.
    pub path: String,
    /// When it was deleted, ns since the epoch.
    pub deleted_ns: i64,
    /// deleted, expired, history.
    pub reason: String,
    /// Bytes.
    pub size: u64,
    /// Whether the note's content is there (not for history-only entries).
    pub has_content: bool,
}

/// One device of the vault, as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceOut {
    /// The device ID, 32 hex digits.
    pub id: String,
    /// Its name.
    pub name: String,
    /// "mounted" or "sealed" (or "unreadable").
    pub state: String,
    /// Since when, ns since the epoch.
    pub since_ns: i64,
    /// Whether it is the device answering.
    pub this_device: bool,
    /// Why its record cannot be read, if so.
    pub problem: Option<String>,
}

/// A response.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Response {
    /// Done.
    Ok,
    /// The vault's devices.
    Devices {
        /// This device first.
        devices: Vec<DeviceOut>,
    },
    /// Conflict copies, in path order.
    Conflicts {
        /// Each copy.
        conflicts: Vec<ConflictOut>,
    },
    /// Versions.
    Versions {
        /// Oldest first.
        versions: Vec<VersionOut>,
    },
    /// Content, base64.
    Content {
        /// Base64 of the bytes.
        data: String,
    },
    /// Trash entries.
    Trash {
        /// Oldest first.
        entries: Vec<TrashOut>,
    },
    /// Where a trash entry went back to.
    Restored {
        /// Path.
        path: String,
    },
    /// The check report.
    Check {
        /// Report.
        report: Report,
    },
    /// A note's dates.
    Dates {
        /// Expiry.
        expires: Option<String>,
        /// Retention date.
        retain_until: Option<String>,
    },
    /// Notes with dates.
    Dated {
        /// Soonest expiry first.
        notes: Vec<DatedOut>,
    },
    /// A lifecycle plan (and whether it was applied).
    Plan {
        /// Notes that expire (to the trash).
        expire: Vec<DatedOut>,
        /// Expired notes kept by their retention date.
        held: Vec<DatedOut>,
        /// Trash entries purged.
        purge: Vec<TrashOut>,
        /// Trash entries kept by their retention date.
        kept: Vec<TrashOut>,
        /// Whether it was carried out.
        applied: bool,
    },
    /// A snapshot taken.
    Backup {
        /// What it did.
        report: crate::vault::backup::Report,
    },
    /// The backup signing key (hex).
    BackupKey {
        /// 64 hex digits.
        key: String,
        /// The vault's ID, 32 hex digits.
        vault: String,
    },
    /// The newest backup and drill.
    LastBackup {
        /// The newest backup record.
        backup: Option<backup::Last>,
        /// The newest drill record.
        drill: Option<backup::Last>,
    },
    /// The notes an export takes.
    ExportNotes {
        /// Each note with the versions taken.
        notes: Vec<export::ExportNote>,
    },
    /// The audit log.
    Audit {
        /// Records that verified, oldest first.
        records: Vec<AuditOut>,
        /// The verdict.
        verdict: crate::vault::audit::Verdict,
    },
    /// Search hits, best first.
    Hits {
        /// Hits.
        hits: Vec<HitOut>,
    },
    /// The index was rebuilt.
    Reindexed {
        /// Documents in it.
        docs: u64,
    },
    /// How far a rebuild has got.
    Progress {
        /// Notes indexed.
        done: u64,
        /// Notes in all (0: no rebuild under way).
        total: u64,
    },
    /// Lines of the daemon's log.
    Lines {
        /// Oldest first.
        lines: Vec<String>,
    },
    /// A failure: an errno and what happened.
    Error {
        /// OS error number (ENOENT for a missing note, EIO for damage…).
        errno: i32,
        /// Message.
        message: String,
    },
}

fn ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A listed trash entry.
pub fn trash_out(e: &Entry) -> TrashOut {
    TrashOut {
        id: e.id.clone(),
        path: String::from_utf8_lossy(&e.path).into_owned(),
        deleted_ns: ns(e.deleted),
        reason: e.reason.as_str().into(),
        size: e.size,
        has_content: e.has_content,
    }
}

fn err(e: io::Error) -> Response {
    Response::Error {
        errno: e.raw_os_error().unwrap_or(libc::EIO),
        message: e.to_string(),
    }
}

/// Carries out a lifecycle plan (the mount's sweeper while
/// mounted, so the kernel's view follows).
pub type Sweep = dyn Fn(&Notebook, &Plan, SystemTime) -> io::Result<Applied> + Send + Sync;

/// Applies a plan on a vault that is not mounted.
pub fn sweep_sealed(tree: &Notebook, plan: &Plan, now: SystemTime) -> io::Result<Applied> {
    tree.apply_lifecycle(plan, now, &|_| None)
}

/// Runs one request against a tree (not mounted; searches are answered
/// by the CLI itself).
pub fn handle(tree: &Notebook, req: Request, now: SystemTime) -> Response {
    handle_with(tree, req, now, &sweep_sealed, None)
}

/// Runs one request, applying lifecycle plans with `sweep` and searching
/// with `searcher`.
pub fn handle_with(
    tree: &Notebook,
    req: Request,
    now: SystemTime,
    sweep: &Sweep,
    searcher: Option<&dyn Searcher>,
) -> Response {
    let no_index = || Response::Error {
        errno: libc::ENOTSUP,
        message: "this vault has no search index here".into(),
    };
    match req {
        Request::Search(r) => {
            return match searcher.map(|s| s.search(&r)) {
                Some(Ok(hits)) => Response::Hits { hits },
                Some(Err((errno, message))) => Response::Error { errno, message },
                None => no_index(),
            };
        }
        Request::Reindex => {
            return match searcher.map(|s| s.reindex()) {
                Some(Ok(docs)) => Response::Reindexed { docs },
                Some(Err((errno, message))) => Response::Error { errno, message },
                None => no_index(),
            };
        }
        Request::ReindexProgress => {
            return match searcher.map(|s| s.progress()) {
                Some((done, total)) => Response::Progress { done, total },
                None => no_index(),
            };
        }
        // Outside the commit gate: it closes the gate itself.
        Request::Backup { dest, keep } => {
            return match backup::take(tree, &dest, keep.as_deref()) {
                Ok(report) => Response::Backup { report },
                Err(e) => Response::Error {
                    errno: e.raw_os_error().unwrap_or(libc::EIO),
                    message: e.to_string(),
                },
            };
        }
        _ => {}
    }
    let _change = tree.change();
    match run(tree, req, now, sweep) {
        Ok(r) => r,
        Err(Failure::Io(e)) => err(e),
        Err(Failure::Refused(r)) => Response::Error {
            errno: r.errno(),
            message: r.to_string(),
        },
    }
}

enum Failure {
    Io(io::Error),
    Refused(lifecycle::Refusal),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

impl From<lifecycle::Error> for Failure {
    fn from(e: lifecycle::Error) -> Self {
        match e {
            lifecycle::Error::Io(e) => Failure::Io(e),
            lifecycle::Error::Refused(r) => Failure::Refused(r),
        }
    }
}

fn dated_out(d: &Dated) -> DatedOut {
    DatedOut {
        path: String::from_utf8_lossy(&d.path).into_owned(),
        expires: d.dates.expires.clone(),
        retain_until: d.dates.retain_until.clone(),
        expires_ns: d.expires_at().map(ns),
    }
}

/// The names of the vault's devices, by chain.
fn device_names(tree: &Notebook) -> HashMap<ChainId, String> {
    tree.devices()
        .and_then(|d| d.list())
        .map(|l| {
            l.into_iter()
                .filter_map(|d| Some((ChainId::Device(d.id), d.record.ok()?.name)))
                .collect()
        })
        .unwrap_or_default()
}

/// A listed audit record of the chain `c`.
pub fn audit_out(c: &Chained, names: &HashMap<ChainId, String>) -> AuditOut {
    let r = &c.record;
    AuditOut {
        device: match c.chain {
            ChainId::Legacy => "older".into(),
            ChainId::Device(id) => crate::vault::devices::short(&id),
        },
        device_name: names.get(&c.chain).cloned().unwrap_or_default(),
        seq: r.seq,
        time_ns: r.time_ns,
        event: r.event.as_str().into(),
        uid: r.uid,
        version: r.version,
        path: String::from_utf8_lossy(&r.path).into_owned(),
        to: String::from_utf8_lossy(&r.to).into_owned(),
        detail: r.detail.clone(),
        person: r.person.clone(),
    }
}

fn run(tree: &Notebook, req: Request, now: SystemTime, sweep: &Sweep) -> Result<Response, Failure> {
    Ok(match req {
        Request::Log { path } => {
            let (dir, name) = tree.resolve(path.as_bytes())?;
            if tree.lookup(&dir, &name)?.1.kind == crate::vault::Kind::Dir {
                // `quire show clients/` (issue 10.8): say what it is.
                return Ok(Response::Error {
                    errno: libc::EISDIR,
                    message: format!(
                        "{} is a folder, not a note: list it with `ls`, or give a note inside it",
                        path.trim_matches('/')
                    ),
                });
            }
            let names = device_names(tree);
            let versions = tree
                .versions(&dir, &name)?
                .into_iter()
                .map(|v| VersionOut {
                    number: v.number,
                    time_ns: ns(v.time),
                    size: v.size,
                    origin: v.origin.as_str().into(),
                    device: v
                        .device
                        .map(|d| crate::vault::devices::short(&d))
                        .unwrap_or_default(),
                    device_name: v
                        .device
                        .and_then(|d| names.get(&ChainId::Device(d)).cloned())
                        .unwrap_or_default(),
                })
                .collect();
            Response::Versions { versions }
        }
        Request::Show {
            path,
            version,
            purpose,
        } => {
            let (dir, name) = tree.resolve(path.as_bytes())?;
            let c = tree.version_content(&dir, &name, version)?;
            let vpath = path.trim_start_matches('/').as_bytes();
            match purpose {
                // Printed for the user to keep or pass on: an export.
                Purpose::Export => {
                    tree.audit(AuditEvent::Export, vpath, b"", version as u32, "quire show")
                }
                // Compared on screen (`quire diff`), like a read through
                // the mount: not recorded.
                Purpose::Compare => {}
                // Written back through the mount next: that save is the
                // restore, recorded and audited as one (issue 10.7).
                Purpose::Restore => tree.expect_restore(vpath, version),
            }
            Response::Content {
                data: B64.encode(&c[..]),
            }
        }
        Request::Read { path } => {
            let (dir, name) = tree.resolve(path.as_bytes())?;
            Response::Content {
                data: B64.encode(&tree.read_current(&dir, &name)?[..]),
            }
        }
        Request::Restore { path, version } => {
            let (dir, name) = tree.resolve(path.as_bytes())?;
            tree.restore_version(&dir, &name, version)?;
            Response::Ok
        }
        Request::Logs => Response::Lines {
            lines: tree.log_lines()?,
        },
        Request::TrashList => Response::Trash {
            entries: tree.trash_entries()?.iter().map(trash_out).collect(),
        },
        Request::TrashShow { id } => {
            let data = B64.encode(&tree.trash_content(&id)?[..]);
            let path = tree
                .trash_entries()?
                .into_iter()
                .find(|e| e.id == id)
                .map(|e| e.path)
                .unwrap_or_default();
            tree.audit(AuditEvent::Export, &path, b"", 0, "quire trash show");
            Response::Content { data }
        }
        Request::TrashRestore { id } => Response::Restored {
            path: String::from_utf8_lossy(&tree.trash_restore(&id)?).into_owned(),
        },
        Request::Purge { dry_run, all } => {
            let entries = tree.trash_entries()?;
            let plan = if all {
                entries
            } else {
                trash::plan_purge(&entries, tree.trash_policy(), now)
            };
            // Retained entries are never purged (tree.purge skips them too).
            let plan: Vec<Entry> = plan
                .into_iter()
                .filter(|e| e.retain_until.is_none_or(|r| r <= now))
                .collect();
            if !dry_run {
                tree.purge(&plan)?;
            }
            Response::Trash {
                entries: plan.iter().map(trash_out).collect(),
            }
        }
        Request::SetTrashDays { days } => {
            tree.set_trash_days(days)?;
            Response::Ok
        }
        Request::Conflicts => Response::Conflicts {
            conflicts: tree.all_conflicts()?.iter().map(ConflictOut::of).collect(),
        },
        Request::Devices { rename } => {
            let d = tree.devices()?;
            if let Some(n) = rename {
                let n = d.rename(&n)?;
                tree.audit(
                    AuditEvent::Device,
                    b"",
                    b"",
                    0,
                    &format!("this device renamed to {n:?}"),
                );
            }
            Response::Devices {
                devices: d
                    .list()?
                    .into_iter()
                    .map(|x| {
                        let id = crate::vault::devices::id_hex(&x.id);
                        match x.record {
                            Ok(r) => DeviceOut {
                                id,
                                name: r.name,
                                state: match r.state {
                                    crate::vault::devices::State::Mounted => "mounted",
                                    crate::vault::devices::State::Sealed => "sealed",
                                }
                                .into(),
                                since_ns: r.since,
                                this_device: x.me,
                                problem: None,
                            },
                            Err(why) => DeviceOut {
                                id,
                                name: String::new(),
                                state: "unreadable".into(),
                                since_ns: 0,
                                this_device: x.me,
                                problem: Some(why),
                            },
                        }
                    })
                    .collect(),
            }
        }
        Request::Check => Response::Check {
            report: tree.check(&mut |_| {})?,
        },
        Request::Dates {
            path,
            expires,
            retain_until,
            clear_expires,
            clear_retain,
        } => {
            let (dir, name) = tree.resolve(path.as_bytes())?;
            let (node, attr) = tree.lookup(&dir, &name)?;
            if attr.kind != crate::vault::Kind::File {
                return Err(Failure::Refused(lifecycle::Refusal::NotANote));
            }
            let change = lifecycle::Change {
                expires: if clear_expires {
                    Some(None)
                } else {
                    expires.map(Some)
                },
                retain_until: if clear_retain {
                    Some(None)
                } else {
                    retain_until.map(Some)
                },
            };
            let d = if change.expires.is_none() && change.retain_until.is_none() {
                tree.dates(&node)?
            } else {
                tree.change_dates(&node, &change, now)?
            };
            Response::Dates {
                expires: d.expires,
                retain_until: d.retain_until,
            }
        }
        Request::Expiring { within_secs } => {
            let all = tree.scan_dates()?;
            let notes = match within_secs {
                Some(s) => lifecycle::expiring(&all, now, Duration::from_secs(s)),
                None => lifecycle::soonest_first(all),
            };
            Response::Dated {
                notes: notes.iter().map(dated_out).collect(),
            }
        }
        Request::Lifecycle { dry_run, now_ns } => {
            let at = match now_ns {
                Some(n) if n >= 0 => UNIX_EPOCH + Duration::from_nanos(n as u64),
                _ => now,
            };
            let plan = tree.plan_lifecycle(at)?;
            if !dry_run {
                sweep(tree, &plan, at)?;
            }
            Response::Plan {
                expire: plan.expire.iter().map(dated_out).collect(),
                held: plan.held.iter().map(dated_out).collect(),
                purge: plan.purge.iter().map(trash_out).collect(),
                kept: plan.kept.iter().map(trash_out).collect(),
                applied: !dry_run,
            }
        }
        Request::AuditAccept => {
            tree.accept_audit()?;
            let (records, verdict) = tree.read_audit()?;
            let names = device_names(tree);
            Response::Audit {
                records: records.iter().map(|r| audit_out(r, &names)).collect(),
                verdict,
            }
        }
        Request::ExportNotes {
            paths,
            with_history,
        } => Response::ExportNotes {
            notes: export::collect(tree, &paths, with_history)?,
        },
        Request::RecordExport { notes, detail } => {
            export::record(tree, &notes, &detail)?;
            Response::Ok
        }
        Request::RecordDispose { detail } => {
            export::disposed(tree, &detail)?;
            Response::Ok
        }
        Request::Backup { .. } => unreachable!("answered by handle_with"),
        Request::BackupKey => Response::BackupKey {
            key: crate::vault::util::hex(&tree.backup_key()),
            vault: crate::vault::util::hex(&tree.vault_id()),
        },
        Request::LastBackup => {
            let (backup, drill) = backup::last(tree)?;
            Response::LastBackup { backup, drill }
        }
        Request::RecordDrill { detail } => {
            if tree.read_only() {
                return Err(Failure::Io(io::Error::other(
                    "the vault is mounted read-only: the drill cannot be recorded",
                )));
            }
            tree.audit(AuditEvent::Drill, b"", b"", 0, &detail);
            Response::Ok
        }
        Request::Audit => {
            let (records, verdict) = tree.read_audit()?;
            let names = device_names(tree);
            Response::Audit {
                records: records.iter().map(|r| audit_out(r, &names)).collect(),
                verdict,
            }
        }
        Request::Search(_) | Request::Reindex | Request::ReindexProgress => {
            unreachable!("answered by handle_with")
        }
    })
}

/// Serves requests on `path` until the process ends. The socket is
/// created mode 0600; a peer with another uid (other than root) is refused.
pub fn serve(
    path: &Path,
    tree: std::sync::Weak<Notebook>,
    sweep: std::sync::Arc<Sweep>,
    searcher: Option<std::sync::Arc<dyn Searcher>>,
) -> io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new()
        .name("quire-control".into())
        .spawn(move || {
            for s in listener.incoming().flatten() {
                // The tree goes when the filesystem session ends (keys wiped).
                if tree.upgrade().is_none() {
                    return;
                }
                // One thread per request: a long one (a check, a reindex)
                // does not hold up the others.
                let (tree, sweep, searcher) = (tree.clone(), sweep.clone(), searcher.clone());
                let _ = std::thread::Builder::new()
                    .name("quire-request".into())
                    .spawn(move || {
                        let Some(tree) = tree.upgrade() else { return };
                        if let Err(e) = serve_one(s, &tree, &*sweep, searcher.as_deref()) {
                            log::warn!("control request failed: {e}");
                        }
                    });
            }
        })?;
    Ok(())
}

fn peer_uid(s: &UnixStream) -> io::Result<u32> {
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: valid fd and buffer of the given length.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

fn serve_one(
    s: UnixStream,
    tree: &Notebook,
    sweep: &Sweep,
    searcher: Option<&dyn Searcher>,
) -> io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let uid = peer_uid(&s)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mut w = s.try_clone()?;
    if uid != me && uid != 0 {
        log::warn!("control request from uid {uid} refused");
        let r = Response::Error {
            errno: libc::EACCES,
            message: "not the vault owner".into(),
        };
        return writeln!(w, "{}", serde_json::to_string(&r)?);
    }
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    let r = match serde_json::from_str::<Request>(&line) {
        Ok(req) => handle_with(tree, req, SystemTime::now(), sweep, searcher),
        Err(e) => Response::Error {
            errno: libc::EINVAL,
            message: format!("bad request: {e}"),
        },
    };
    // The line holds note content for `show`: it is wiped after sending.
    let mut out = zeroize::Zeroizing::new(serde_json::to_string(&r)?);
    out.push('\n');
    w.write_all(out.as_bytes())
}

/// Refuses a socket, or the folder holding it, that another user could
/// have made or replaced: the answer would be forged, the request (a
/// search query) read by them (issue 11.1).
fn check_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let refuse = |what: String| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refusing to talk to {}: {what}", path.display()),
        )
    };
    if let Some(dir) = path.parent() {
        let d = std::fs::symlink_metadata(dir)?;
        if !d.is_dir() || d.uid() != me || d.mode() & 0o077 != 0 {
            return Err(refuse(format!(
                "its folder is not a private folder of yours (owner uid {}, mode {:o})",
                d.uid(),
                d.mode() & 0o7777
            )));
        }
    }
    let m = std::fs::symlink_metadata(path)?;
    if !m.file_type().is_socket() || m.uid() != me {
        return Err(refuse(format!(
            "not a socket of yours (owner uid {})",
            m.uid()
        )));
    }
    Ok(())
}

/// Why a version's content is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    /// `quire show`: audited as an export.
    #[default]
    Export,
    /// `quire diff`: not recorded.
    Compare,
    /// `quire restore`: the next save of the note is the restore.
    Restore,
}

/// Sends one request to the daemon listening on `path`, after checking
/// that the socket and the daemon behind it are this user's.
pub fn call(path: &PathBuf, req: &Request) -> io::Result<Response> {
    check_socket(path)?;
    let mut s = UnixStream::connect(path)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let peer = peer_uid(&s)?;
    if peer != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing to talk to {}: the process behind it runs as uid {peer}, not as you",
                path.display()
            ),
        ));
    }
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    s.write_all(line.as_bytes())?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut resp = zeroize::Zeroizing::new(String::new());
    BufReader::new(s).read_line(&mut resp)?;
    serde_json::from_str(&resp).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
