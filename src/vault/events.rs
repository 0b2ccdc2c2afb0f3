//! What the vault tells others about its changes: records in the audit log
//! (docs/FORMAT.md §16), and a wake-up for the daemon's lifecycle timer
//! when a note's dates change.
//!
//! Only *noteworthy* names are recorded: not editor debris (swap and
//! temporary files) and nothing inside a `.git` folder, the same rule that
//! decides what keeps history.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::audit::AuditLog;
use super::node::Node;
use super::tree::Tree;
use crate::format::audit::Event;

/// A change the search index follows (paths are vault paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A note was saved (or restored); `version` is its version number
    /// (0 when history is not kept).
    Saved {
        /// Path.
        path: Vec<u8>,
        /// Version number.
        version: u32,
    },
    /// A note went to the trash or was deleted.
    Removed {
        /// Path.
        path: Vec<u8>,
    },
    /// A note or a folder was renamed.
    Renamed {
        /// Old path.
        from: Vec<u8>,
        /// New path.
        to: Vec<u8>,
    },
    /// Two names swapped what they hold (`RENAME_EXCHANGE`).
    Exchanged {
        /// One path.
        a: Vec<u8>,
        /// The other.
        b: Vec<u8>,
    },
    /// A trashed note was purged.
    Purged {
        /// Its path when it was trashed.
        path: Vec<u8>,
    },
}

/// Who is told of changes (the daemon's indexer).
pub type Listener = Box<dyn Fn(Change) + Send + Sync>;

/// What the vault tells others: the audit log (none when read-only),
/// the listener (the daemon's indexer) and the lifecycle timer's waker.
pub struct Events {
    pub(crate) audit: Option<Arc<AuditLog>>,
    /// The vault's layout, the remembered heads and this device's chain,
    /// for reading the audit chains.
    pub(crate) audit_read: (
        crate::store::Layout,
        super::audit::Heads,
        Option<super::audit::ChainId>,
    ),
    pub(crate) listener: std::sync::OnceLock<Listener>,
    pub(crate) lifecycle_wake: Waker,
}

impl Events {
    /// Tells `l` of every change from now on (once per tree).
    pub fn set_listener(&self, l: Listener) {
        let _ = self.listener.set(l);
    }

    pub(crate) fn emit(&self, c: Change) {
        if let Some(l) = self.listener.get() {
            l(c);
        }
    }

    /// Whether changes to `name` in `dir` are recorded.
    pub(crate) fn noteworthy(&self, tree: &Tree, dir: &Arc<Node>, name: &OsStr) -> bool {
        self.audit.is_some() && tree.is_note(dir, name)
    }

    /// Appends an audit record (no-op when the tree is read-only).
    pub fn audit(&self, event: Event, path: &[u8], to: &[u8], version: u32, detail: &str) {
        if let Some(a) = &self.audit {
            a.append(event, path, to, version, detail);
        }
    }

    /// Holds off audit writes (queued records written first) while the
    /// guard lives; `None` on a read-only tree.
    pub(crate) fn quiet_audit(&self) -> Option<super::audit::Quiet<'_>> {
        self.audit.as_ref().map(|a| a.quiet())
    }

    /// Appends a record of what the Linux account `uid` did.
    pub fn audit_by(&self, uid: u32, event: Event, path: &[u8], version: u32, detail: &str) {
        if let Some(a) = &self.audit {
            a.append_by(uid, event, path, b"", version, detail);
        }
    }

    /// Appends a record about `name` in `dir`.
    pub(crate) fn audit_name(
        &self,
        tree: &Tree,
        event: Event,
        dir: &Arc<Node>,
        name: &OsStr,
        version: u32,
        detail: &str,
    ) {
        if self.audit.is_some() {
            let p = tree.path_of(dir, name.as_bytes());
            self.audit(event, &p, b"", version, detail);
        }
    }

    /// Writes the audit log's remembered head now (the daemon calls this
    /// periodically; it is also written when the tree closes).
    pub fn save_audit_head(&self) {
        if let Some(a) = &self.audit {
            a.save_head();
        }
    }

    /// `quire audit --accept` (see [`super::audit::AuditLog::accept`]).
    pub fn accept_audit(&self, tree: &Tree) -> std::io::Result<()> {
        tree.writable_check()?;
        let a = self.audit.as_ref().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::Unsupported, "the audit log is not open")
        })?;
        let (old, new) = a.accept()?;
        log::warn!(
            "audit log accepted as reviewed: the head remembered here moves from {} to record {new}",
            old.map(|s| format!("record {s}"))
                .unwrap_or_else(|| "nothing".into())
        );
        Ok(())
    }

    /// Reads and verifies the audit log.
    pub fn read_audit(
        &self,
        tree: &Tree,
    ) -> std::io::Result<(Vec<super::audit::Chained>, super::audit::Verdict)> {
        if let Some(a) = &self.audit {
            a.flush();
        }
        let (layout, heads, me) = &self.audit_read;
        super::audit::read_all(&tree.keys, layout, Some(heads), *me)
    }

    /// Wakes whoever waits on [`Events::lifecycle_waker`].
    pub(crate) fn lifecycle_changed(&self) {
        self.lifecycle_wake.wake();
    }

    /// What the daemon's lifecycle timer waits on: woken when a note's
    /// dates change. It holds no reference to the tree, so waiting never
    /// keeps a sealed vault's keys alive.
    pub fn lifecycle_waker(&self) -> Waker {
        self.lifecycle_wake.clone()
    }
}

/// A wake-up flag shared between the tree and a waiting thread.
#[derive(Clone, Default)]
pub struct Waker(Arc<(Mutex<bool>, Condvar)>);

impl Waker {
    /// Sets the flag and wakes the waiter.
    pub fn wake(&self) {
        let (m, c) = &*self.0;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        c.notify_all();
    }

    /// Waits until woken or `timeout` passes; clears the flag.
    pub fn wait(&self, timeout: Duration) {
        let (m, c) = &*self.0;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        let (mut g, _) = c
            .wait_timeout_while(g, timeout, |woken| !*woken)
            .unwrap_or_else(|e| e.into_inner());
        *g = false;
    }
}
