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

use crate::vault::Tree;
use crate::vault::check::Report;
use crate::vault::trash::{self, Entry};

/// A request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
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

/// A response.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Response {
    /// Done.
    Ok,
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

/// Runs one request against a tree.
pub fn handle(tree: &Tree, req: Request, now: SystemTime) -> Response {
    match run(tree, req, now) {
        Ok(r) => r,
        Err(e) => err(e),
    }
}

fn run(tree: &Tree, req: Request, now: SystemTime) -> io::Result<Response> {
    Ok(match req {
        Request::Log { path } => {
            let (dir, name) = tree.resolve(path.as_bytes())?;
            tree.lookup(&dir, &name)?;
            let versions = tree
                .versions(&dir, &name)?
                .into_iter()
                .map(|v| VersionOut {
                    number: v.number,
                    time_ns: ns(v.time),
                    size: v.size,
                    origin: v.origin.as_str().into(),
                })
                .collect();
            Response::Versions { versions }
        }
        Request::Show { path, version } => {
            let (dir, name) = tree.resolve(path.as_bytes())?;
            let c = tree.version_content(&dir, &name, version)?;
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
        Request::TrashList => Response::Trash {
            entries: tree.trash_entries()?.iter().map(trash_out).collect(),
        },
        Request::TrashShow { id } => Response::Content {
            data: B64.encode(&tree.trash_content(&id)?[..]),
        },
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
        Request::Check => Response::Check {
            report: tree.check(&mut |_| {})?,
        },
    })
}

/// Serves requests on `path` until the process ends. The socket is
/// created mode 0600; a peer with another uid (other than root) is refused.
pub fn serve(path: &Path, tree: std::sync::Weak<Tree>) -> io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new()
        .name("quire-control".into())
        .spawn(move || {
            for s in listener.incoming().flatten() {
                // The tree goes when the filesystem session ends (keys wiped).
                let Some(tree) = tree.upgrade() else { return };
                if let Err(e) = serve_one(s, &tree) {
                    log::warn!("control request failed: {e}");
                }
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

fn serve_one(s: UnixStream, tree: &Tree) -> io::Result<()> {
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
        Ok(req) => handle(tree, req, SystemTime::now()),
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

/// Sends one request to the daemon listening on `path`.
pub fn call(path: &PathBuf, req: &Request) -> io::Result<Response> {
    let mut s = UnixStream::connect(path)?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    s.write_all(line.as_bytes())?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut resp = zeroize::Zeroizing::new(String::new());
    BufReader::new(s).read_line(&mut resp)?;
    serde_json::from_str(&resp).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
