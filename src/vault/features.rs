//! The features together, and how they follow the core: [`Features`]
//! implements the namespace's [`Hooks`], calling each feature at the
//! commit points in the order the rules need (the audit record after the
//! history is written, the dates before a note goes to the trash).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::debris;
use super::events::{Change, Events};
use super::expiry::Expiry;
use super::history::{self, CHECKPOINT_EVERY, CHECKPOINT_GRACE, History};
use super::lifecycle::records::Lifecycle;
use super::lifecycle::{self, record_name};
use super::node::{Kind, Node};
use super::trash::Trash;
use super::tree::Hooks;
use super::tree::Tree;
use super::tree::hooks::{Commit, Reason, Removal, Rename, XattrOp};
use super::util::errno;
use crate::format::audit::Event;
use crate::format::history::Origin;
use crate::store::host::Handle;
use crate::vault::content::OpenFile;

/// Every feature of an unlocked vault, each owning its state.
pub struct Features {
    pub(crate) events: Arc<Events>,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) history: Arc<History>,
    pub(crate) trash: Arc<Trash>,
    pub(crate) expiry: Expiry,
    /// The daemon log's path, for `quire logs`.
    pub(crate) log_path: PathBuf,
    /// This device and the vault's device records (§18), if this device's
    /// ID could be read or made.
    pub(crate) devices: Option<Arc<super::devices::Devices>>,
    /// The vault folder and the vault's ID (backups, §19).
    pub(crate) root: PathBuf,
    pub(crate) vault_id: [u8; 16],
    /// Every change runs inside it; a backup closes it (issue 19.2).
    pub(crate) gate: super::gate::Gate,
}

fn is_file(m: u32) -> bool {
    Kind::from_mode(m) == Kind::File
}

impl Features {
    /// Keeps the first version of the note at `h` in `d` (its node, if
    /// known) before its content moves away or is replaced.
    fn keep(&self, t: &Tree, d: &Arc<Node>, h: &OsStr, known: Option<&Arc<Node>>) {
        let n = known
            .cloned()
            .or_else(|| t.node_at(d, h).ok().map(|(n, _)| Arc::new(n)));
        if let Some(n) = n {
            self.history.keep_first_version(t, &n, None, false);
        }
    }

    /// A note's dates after a rename (not an exchange): they go with it to
    /// another note name, stay with the path when it goes to debris (vim's
    /// `note` → `note~`: the new `note` gets them), and merge, the
    /// stricter winning, when it replaces a note.
    fn carry_dates(&self, t: &Tree, r: &Rename) {
        if Kind::from_mode(r.src.st_mode) != Kind::File || !r.dst_note {
            return;
        }
        let lc = &self.lifecycle;
        let res = (|| -> io::Result<()> {
            let moved = lc.dates_at(t, r.dir, r.ah)?;
            if moved.is_empty() {
                return Ok(());
            }
            if !r.src_note {
                // Debris carrying dates (set on a temporary file): dropped.
                let _ = r.dir.handle()?.unlink_child(&record_name(r.ah));
                return Ok(());
            }
            let kept = if r.dst.is_some() {
                lc.dates_at(t, r.to, r.bh)?
            } else {
                Default::default()
            };
            let merged = lifecycle::merge(&kept, &moved);
            lc.write_dates_at(t, r.to, r.bh, &merged)?;
            if !(Arc::ptr_eq(r.dir, r.to) && r.ah == r.bh) {
                let _ = r.dir.handle()?.unlink_child(&record_name(r.ah));
            }
            Ok(())
        })();
        if let Err(e) = res {
            log::error!("the dates of a renamed note were not carried: {e}");
        }
        self.events.lifecycle_changed();
    }

    /// A rename to a name that keeps history is a save of that name (how
    /// most editors save); a plain rename takes the note's own history
    /// along. A rename to debris (vim's note → note~) leaves the history
    /// with the path.
    fn carry_history(&self, t: &Tree, r: &Rename) {
        let kept = self.history.enabled() && !r.exchange;
        let src_versioned = kept && is_file(r.src.st_mode) && r.src_note;
        if !(kept && r.dst_note && is_file(r.src.st_mode)) {
            return;
        }
        if r.dst.is_none()
            && src_versioned
            && let (Ok(from), Ok(into), Ok(a), Ok(b)) = (
                t.dir_id(r.dir),
                t.dir_id(r.to),
                r.dir.handle(),
                r.to.handle(),
            )
        {
            let res = self.history.move_stream(
                t,
                a,
                &history::stream_name(r.ah),
                (&from, r.ah),
                b,
                &history::stream_name(r.bh),
                (&into, r.bh),
                libc::RENAME_NOREPLACE,
                (true, true),
            );
            if let Err(e) = res
                && e.raw_os_error() != Some(libc::ENOENT)
                && e.raw_os_error() != Some(libc::EEXIST)
            {
                log::error!("the history of a renamed note did not move along: {e}");
            }
        }
        // The rename itself is done: history is best effort from here.
        let node = match r.moved {
            Some(n) => Some(n.clone()),
            None => t.node_at(r.to, r.bh).ok().map(|(n, _)| Arc::new(n)),
        };
        if let Some(node) = node {
            node.relocate(r.to.clone(), r.bh.to_owned());
            self.history.save_version(t, &node, Origin::Save);
        }
    }

    /// The date an attribute name stands for (§15): `Some(true)` expiry,
    /// `Some(false)` retention.
    fn date_attr(name: &OsStr) -> Option<bool> {
        let b = name.as_bytes();
        if b == lifecycle::XATTR_EXPIRES.as_bytes() {
            Some(true)
        } else if b == lifecycle::XATTR_RETAIN.as_bytes() {
            Some(false)
        } else {
            None
        }
    }

    fn date_value(&self, t: &Tree, node: &Node, expiry: bool) -> io::Result<Option<String>> {
        if node.kind != Kind::File {
            return Ok(None);
        }
        let d = self.lifecycle.dates(t, node)?;
        Ok(if expiry { d.expires } else { d.retain_until })
    }

    fn change_date(
        &self,
        t: &Tree,
        node: &Node,
        expiry: bool,
        value: Option<String>,
    ) -> io::Result<()> {
        let mut c = lifecycle::Change::default();
        if expiry {
            c.expires = Some(value);
        } else {
            c.retain_until = Some(value);
        }
        match self.lifecycle.change_dates(t, node, &c, SystemTime::now()) {
            Ok(_) => Ok(()),
            Err(lifecycle::Error::Refused(r)) => {
                log::info!("a date change was refused: {r}");
                Err(errno(r.errno()))
            }
            Err(lifecycle::Error::Io(e)) => Err(e),
        }
    }

    fn date_xattr(
        &self,
        t: &Tree,
        node: &Node,
        expiry: bool,
        op: XattrOp,
    ) -> io::Result<Option<Vec<u8>>> {
        match op {
            XattrOp::Get => Ok(self.date_value(t, node, expiry)?.map(String::into_bytes)),
            XattrOp::Set(value, flags) => {
                let text = std::str::from_utf8(value)
                    .map_err(|_| errno(libc::EINVAL))?
                    .trim_end_matches(['\0', '\n'])
                    .to_string();
                let cur = self.date_value(t, node, expiry)?;
                if flags & libc::XATTR_CREATE != 0 && cur.is_some() {
                    return Err(errno(libc::EEXIST));
                }
                if flags & libc::XATTR_REPLACE != 0 && cur.is_none() {
                    return Err(errno(libc::ENODATA));
                }
                self.change_date(t, node, expiry, Some(text)).map(|_| None)
            }
            XattrOp::Remove => {
                if self.date_value(t, node, expiry)?.is_none() {
                    return Err(errno(libc::ENODATA));
                }
                self.change_date(t, node, expiry, None).map(|_| None)
            }
        }
    }
}

impl Hooks for Features {
    fn first_change(&self, t: &Tree, node: &Node, file: &File) {
        if self.history.enabled() {
            self.history.keep_first_version(t, node, Some(file), true);
        }
    }

    fn committed(&self, t: &Tree, of: &OpenFile, c: Commit) {
        let (node, file) = (of.node(), of.file());
        match c {
            Commit::Synced => {
                // A file that stays open and is fsync'd often (a database)
                // gets a version at most every CHECKPOINT_EVERY; its close
                // records the last. An fsync soon after the open is an
                // editor's save (vim writes, fsyncs, closes): its close
                // records it as a save, not a checkpoint (issue 16.7).
                let kept_open = of.opened().elapsed() >= CHECKPOINT_GRACE;
                let due = kept_open
                    && node
                        .last_version
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .is_none_or(|t| t.elapsed() >= CHECKPOINT_EVERY);
                if due && node.changed.swap(false, Ordering::AcqRel) {
                    self.history
                        .save_version_from(t, node, file, Origin::Checkpoint);
                }
            }
            Commit::Closed { save } => {
                if self.trash.low_on_space(t) {
                    // The lifecycle thread purges the trash, oldest first.
                    self.events.lifecycle_changed();
                }
                if save {
                    self.history.save_version_from(t, node, file, Origin::Save);
                }
            }
            Commit::Released { save } => {
                if save {
                    self.history.save_version_from(t, node, file, Origin::Save);
                }
            }
        }
    }

    fn created(&self, t: &Tree, dir: &Arc<Node>, name: &OsStr, host: &OsStr, folder: bool) {
        if folder {
            if self.events.noteworthy(t, dir, name) && !debris::is_excluded_folder(name.as_bytes())
            {
                self.events.audit_name(t, Event::Mkdir, dir, name, 0, "");
            }
            return;
        }
        // A new file under a name that has a history is a note saved by
        // re-creating it (vim moves the old file to `note~` and writes a
        // new one): a save, audited as such at its close, not a create
        // (issue 16.7).
        let resaved = self.history.enabled()
            && dir
                .handle()
                .is_ok_and(|h| h.stat_child(&history::stream_name(host)).is_ok());
        if !resaved && self.events.noteworthy(t, dir, name) {
            self.events.audit_name(t, Event::Create, dir, name, 0, "");
        }
    }

    fn may_remove(&self, t: &Tree, dir: &Arc<Node>, host: &OsStr) -> io::Result<()> {
        self.lifecycle.check_not_retained(t, dir, host).map(|_| ())
    }

    fn take(&self, t: &Tree, r: &Removal) -> io::Result<bool> {
        let dates = self.lifecycle.dates_at(t, r.dir, r.host)?;
        self.trash
            .trash_file(t, r.dir, r.name, r.host, r.st, r.node, &dates, r.reason)
    }

    fn removed(&self, t: &Tree, r: &Removal, taken: bool) {
        let kind = Kind::from_mode(r.st.st_mode);
        if kind == Kind::Dir {
            if self.events.noteworthy(t, r.dir, r.name) {
                self.events
                    .audit_name(t, Event::Rmdir, r.dir, r.name, 0, "");
            }
            return;
        }
        if !taken
            && r.st.st_nlink <= 1
            && let Ok(h) = r.dir.handle()
        {
            // Its dates go with its last name.
            let _ = h.unlink_child(&record_name(r.host));
        }
        if kind == Kind::File && self.events.noteworthy(t, r.dir, r.name) {
            let (event, detail) = match (r.reason, taken) {
                (Reason::Expired, true) => (Event::Expire, "to the trash"),
                (Reason::Expired, false) => (Event::Expire, "deleted for good"),
                (_, true) => (Event::Delete, "to the trash"),
                (_, false) => (Event::Delete, "deleted for good"),
            };
            let path = t.path_of(r.dir, r.name.as_bytes());
            self.events.audit(event, &path, b"", 0, detail);
            self.events.emit(Change::Removed { path });
        }
    }

    fn leftover(
        &self,
        t: &Tree,
        dir: &Handle,
        node: Option<&Arc<Node>>,
        name: &OsStr,
        present: &HashSet<&OsStr>,
    ) -> Option<io::Result<()>> {
        let s = name.to_string_lossy();
        if let Some(stem) = s.strip_suffix(crate::format::history::SUFFIX)
            && !present.contains(OsStr::new(stem))
        {
            // The history of a note that is gone: kept in the trash.
            return Some(self.trash.trash_orphan_history(t, dir, node, name));
        }
        if let Some(stem) = s.strip_suffix(crate::format::lifecycle::SUFFIX)
            && !present.contains(OsStr::new(stem))
        {
            // The dates of a path whose note is gone (left by a rename to
            // debris): they go, unless they still retain something.
            if let Some(node) = node
                && let Ok(d) = self.lifecycle.dates_at(t, node, OsStr::new(stem))
                && let Some(until) = lifecycle::retained(&d, SystemTime::now())
            {
                log::warn!(
                    "folder {} keeps the retention record of a note (until {until}); it stays non-empty",
                    dir.host_path()
                );
                return Some(Err(errno(libc::ENOTEMPTY)));
            }
            return Some(dir.unlink_child(name));
        }
        None
    }

    fn before_rename(&self, t: &Tree, r: &Rename) {
        let kept = self.history.enabled() && !r.exchange;
        if kept && is_file(r.src.st_mode) && r.src_note {
            self.keep(t, r.dir, r.ah, r.moved);
        }
        if kept && r.dst_note && r.dst.is_some_and(|d| is_file(d.st_mode)) {
            self.keep(t, r.to, r.bh, r.replaced);
        }
    }

    fn renamed(&self, t: &Tree, r: &Rename) {
        if !r.exchange {
            if r.src_note && r.dst_note {
                let (from, to) = (
                    t.path_of(r.dir, r.name.as_bytes()),
                    t.path_of(r.to, r.to_name.as_bytes()),
                );
                self.events.audit(Event::Rename, &from, &to, 0, "");
                self.events.emit(Change::Renamed { from, to });
            }
            self.carry_dates(t, r);
        } else if self.events.noteworthy(t, r.dir, r.name)
            || self.events.noteworthy(t, r.to, r.to_name)
        {
            // An exchange is audited like a rename, both ways in one record.
            let (a, b) = (
                t.path_of(r.dir, r.name.as_bytes()),
                t.path_of(r.to, r.to_name.as_bytes()),
            );
            self.events.audit(Event::Rename, &a, &b, 0, "exchanged");
            self.events.emit(Change::Exchanged { a, b });
        }
        self.carry_history(t, r);
    }

    fn xattr(
        &self,
        t: &Tree,
        node: &Node,
        name: &OsStr,
        op: XattrOp,
    ) -> Option<io::Result<Option<Vec<u8>>>> {
        let expiry = Self::date_attr(name)?;
        Some(self.date_xattr(t, node, expiry, op))
    }

    fn xattr_names(&self, t: &Tree, node: &Node, out: &mut Vec<Vec<u8>>) {
        if node.kind == Kind::File
            && let Ok(d) = self.lifecycle.dates(t, node)
        {
            if d.expires.is_some() {
                out.push(lifecycle::XATTR_EXPIRES.as_bytes().to_vec());
            }
            if d.retain_until.is_some() {
                out.push(lifecycle::XATTR_RETAIN.as_bytes().to_vec());
            }
        }
    }
}
