//! The unlocked vault's working object: a [`Notebook`] is its [`Tree`]
//! (namespace and content, reached through `Deref`) together with its
//! [`Features`]. The FUSE layer, the control socket and the CLI work on a
//! notebook; the feature operations they use are listed here.

use std::ffi::OsStr;
use std::io;
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::SystemTime;

use zeroize::Zeroizing;

use super::check::Report;
use super::events::{Listener, Waker};
use super::expiry::{Applied, Plan};
use super::features::Features;
use super::history::{NoteInfo, VersionInfo};
use super::lifecycle::{Change, Dated, Error as DateError};
use super::node::Node;
use super::trash::{Entry, Policy};
use super::tree::Tree;
use crate::format::audit::Event;
use crate::format::lifecycle::Dates;

/// An unlocked vault's tree and features.
pub struct Notebook {
    tree: Tree,
    f: Arc<Features>,
}

impl Deref for Notebook {
    type Target = Tree;
    fn deref(&self) -> &Tree {
        &self.tree
    }
}

impl Notebook {
    pub(crate) fn new(tree: Tree, f: Arc<Features>) -> Notebook {
        Notebook { tree, f }
    }

    pub(crate) fn features(&self) -> &Features {
        &self.f
    }

    /// Enters the commit gate: every change to the vault folder runs
    /// inside it, so that a backup can find a moment when none is half
    /// made (see [`super::gate`]).
    pub fn change(&self) -> super::gate::Inside<'_> {
        self.f.gate.enter()
    }

    /// While the guard lives, audit records this thread writes name `uid`
    /// as the account that made the change (a FUSE request's caller).
    pub fn acting_as(&self, uid: u32) -> super::audit::Acting {
        super::audit::acting_as(uid)
    }

    /// The namespace and content core.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Whether this vault keeps history (and a trash).
    pub fn keeps_history(&self) -> bool {
        self.f.history.enabled()
    }

    /// The versions of the note `name` in `dir`, oldest first (empty if it
    /// has none).
    pub fn versions(&self, dir: &Node, name: &OsStr) -> io::Result<Vec<VersionInfo>> {
        self.f.history.versions(&self.tree, dir, name)
    }

    /// The content of version `number` (1-based) of `name` in `dir`.
    pub fn version_content(
        &self,
        dir: &Node,
        name: &OsStr,
        number: usize,
    ) -> io::Result<Zeroizing<Vec<u8>>> {
        self.f
            .history
            .version_content(&self.tree, dir, name, number)
    }

    /// Whether the entry `name` of `dir` keeps history (not debris, not in
    /// a `.git` folder).
    pub fn keeps_history_of(&self, dir: &Arc<Node>, name: &OsStr) -> bool {
        self.f.history.keeps_history_of(&self.tree, dir, name)
    }

    /// Every trash entry; unreadable ones are logged and skipped.
    pub fn trash_entries(&self) -> io::Result<Vec<Entry>> {
        self.f.trash.trash_entries(&self.tree)
    }

    /// The content of a trashed note.
    pub fn trash_content(&self, id: &str) -> io::Result<zeroize::Zeroizing<Vec<u8>>> {
        self.f.trash.trash_content(&self.tree, id)
    }

    /// Verifies the whole vault; `progress` gets the number of items done.
    pub fn check(&self, progress: &mut dyn FnMut(u64)) -> io::Result<Report> {
        self.f.check(&self.tree, progress)
    }

    /// Appends an audit record (no-op when the tree is read-only).
    pub fn audit(&self, event: Event, path: &[u8], to: &[u8], version: u32, detail: &str) {
        self.f.events.audit(event, path, to, version, detail)
    }

    /// Records that the Linux account `uid` (`who`) opened `node`, a note
    /// (issue 20.3: reads by another account than the vault's owner, on a
    /// mount with `--allow-other`). Editor debris and `.git` insides are
    /// not recorded, as for every audit record.
    pub fn record_read(&self, node: &Node, uid: u32, who: &str) {
        let Some((dir, host)) = node.location() else {
            return;
        };
        let Some(plain) = self.tree.plain_name(&dir, &host) else {
            return;
        };
        let name = OsStr::from_bytes(&plain);
        if !self.keeps_history_of(&dir, name) {
            return;
        }
        let path = self.tree.path_of(&dir, &plain);
        self.f
            .events
            .audit_by(uid, Event::Read, &path, 0, &format!("opened by {who}"));
    }

    /// As [`Notebook::record_read`], for version `number` of the note
    /// `name` (plaintext) in `dir`, opened in `.history/`.
    pub fn record_version_read(
        &self,
        dir: &Arc<Node>,
        name: &OsStr,
        number: usize,
        uid: u32,
        who: &str,
    ) {
        let path = self.tree.path_of(dir, name.as_bytes());
        self.f.events.audit_by(
            uid,
            Event::Read,
            &path,
            number as u32,
            &format!("version {number} opened by {who}"),
        );
    }

    /// Reads and verifies the audit log.
    pub fn read_audit(
        &self,
    ) -> std::io::Result<(Vec<super::audit::Chained>, super::audit::Verdict)> {
        self.f.events.read_audit(&self.tree)
    }

    /// Tells `l` of every change from now on (once per tree).
    pub fn set_listener(&self, l: Listener) {
        self.f.events.set_listener(l)
    }

    /// Another program changed the name of `c` (a sync tool brought
    /// another computer's version, issue 18.5): the search index follows.
    pub fn changed_outside(&self, c: &crate::vault::tree::outside::Outside) {
        use crate::vault::events::Change;
        if !self.tree.is_note(&c.dir, &c.name) {
            return;
        }
        let path = self.tree.path_of(&c.dir, c.name.as_encoded_bytes());
        match self.tree.lookup(&c.dir, &c.name) {
            Ok((_, a)) if a.kind == super::node::Kind::File => {
                self.f.events.emit(Change::Saved { path, version: 0 })
            }
            Ok(_) => {}
            Err(_) => self.f.events.emit(Change::Removed { path }),
        }
    }

    /// The current content of the note `name` in `dir`.
    pub fn read_current(&self, dir: &Arc<Node>, name: &OsStr) -> io::Result<Zeroizing<Vec<u8>>> {
        self.f.history.read_current(&self.tree, dir, name)
    }

    /// The plan at `now` for this vault.
    pub fn plan_lifecycle(&self, now: SystemTime) -> io::Result<Plan> {
        self.f.expiry.plan_lifecycle(&self.tree, now)
    }

    /// Merges what two computers made apart: folders made under one name
    /// into one folder ID, and versions kept in conflict copies into the
    /// notes' histories (see `vault::folders`). Returns (entries moved,
    /// versions merged).
    pub fn merge_from_other_computers(&self) -> io::Result<(usize, usize)> {
        self.f.merge_all(&self.tree)
    }

    /// [`Notebook::merge_from_other_computers`] in the one folder `dir`
    /// (the watcher saw a folder ID or a history stream arrive there).
    pub fn merge_folder_from_other_computers(&self, dir: &Arc<Node>) -> io::Result<(usize, usize)> {
        Ok((
            self.f.merge_folder_ids(&self.tree, dir)?,
            self.f.merge_histories(&self.tree, dir)?,
        ))
    }

    /// Every note (regular file, not editor debris) with its modification
    /// time and size, for the search index.
    pub fn notes(&self) -> io::Result<Vec<NoteInfo>> {
        self.f.history.notes(&self.tree)
    }

    /// Applies a plan: each note is checked again (its dates may have
    /// changed since planning) and moved to the trash as expired; each
    /// trash entry is purged. `known` maps a host inode number to the node
    /// the mount still holds for it.
    pub fn apply_lifecycle(
        &self,
        p: &Plan,
        now: SystemTime,
        known: &dyn Fn(u64) -> Option<Arc<Node>>,
    ) -> io::Result<Applied> {
        self.f.expiry.apply_lifecycle(&self.tree, p, now, known)
    }

    /// Puts a trashed note back at its path (or, if that name is taken, at
    /// `name (restored …)`), creating missing folders. Returns the path.
    pub fn trash_restore(&self, id: &str) -> io::Result<Vec<u8>> {
        self.f.trash.trash_restore(&self.tree, id)
    }

    /// The vault's trash policy.
    pub fn trash_policy(&self) -> Policy {
        self.f.trash.trash_policy(&self.tree)
    }

    /// Removes what interrupted trash moves left: temporary entry folders
    /// and entries with nothing in them.
    pub fn tidy_trash(&self) -> io::Result<usize> {
        self.f.trash.tidy_trash(&self.tree)
    }

    /// Writes the audit log's remembered head now (the daemon calls this
    /// periodically; it is also written when the tree closes).
    pub fn save_audit_head(&self) {
        self.f.events.save_audit_head()
    }

    /// Every note with dates, by walking the vault (folders excluded from
    /// history, like `.git`, are skipped).
    pub fn scan_dates(&self) -> io::Result<Vec<Dated>> {
        self.f.expiry.scan_dates(&self.tree)
    }

    /// Makes version `number` of `name` in `dir` its current content again;
    /// recorded as a new version (origin "restore"): nothing is lost.
    pub fn restore_version(&self, dir: &Arc<Node>, name: &OsStr, number: usize) -> io::Result<()> {
        self.f
            .history
            .restore_version(&self.tree, dir, name, number)
    }

    /// When the disk is low on space, purges the trash entries that
    /// [`crate::vault::trash::plan_space`] picks (oldest first, only as many as bring free
    /// space back over the threshold, and none if all it may purge would
    /// not; never a retained entry, one of the newest, or one from the
    /// last days). Each purge is logged and audited ("low disk space").
    /// Returns how many went.
    pub fn purge_for_space(&self) -> io::Result<usize> {
        self.f.trash.purge_for_space(&self.tree)
    }

    /// Deletes trash entries for good (content, versions and record).
    pub fn purge(&self, entries: &[Entry]) -> io::Result<usize> {
        self.f.trash.purge(&self.tree, entries)
    }

    /// Opens a trash entry's content for reading in bounded pieces (the
    /// `.trash` view and `check`: a 16 GiB note in the trash is never read
    /// whole, issue 16.12).
    pub fn open_trash_entry(&self, id: &str) -> io::Result<super::content::OpenFile> {
        self.f.trash.open_trash_entry(&self.tree, id)
    }

    /// This device and the vault's device records (§18).
    pub fn devices(&self) -> io::Result<Arc<super::devices::Devices>> {
        self.f.devices.clone().ok_or_else(|| {
            io::Error::other("this device's ID could not be read or made (see `quire logs`)")
        })
    }

    /// The log's lines for `quire logs` (issue 10.8), with the host paths
    /// the daemon logs (`…/d/<encrypted>/<encrypted>`, never plaintext on
    /// disk) shown as the note paths they stand for, where they still
    /// exist: `clients/anna.md (host …/d/Xy…)` becomes `clients/anna.md`.
    pub fn log_lines(&self) -> io::Result<Vec<String>> {
        self.f.log_lines(&self.tree)
    }

    /// What the daemon's lifecycle timer waits on: woken when a note's
    /// dates change. It holds no reference to the tree, so waiting never
    /// keeps a sealed vault's keys alive.
    pub fn lifecycle_waker(&self) -> Waker {
        self.f.events.lifecycle_waker()
    }

    /// Announces that the next save of `path` (within a minute) makes its
    /// version `number` current again: it is recorded with origin
    /// "restore" and audited as a restore from that version. `quire
    /// restore` writes through the mount (so the kernel's caches see it)
    /// after announcing it here.
    pub fn expect_restore(&self, path: &[u8], number: usize) {
        self.f.history.expect_restore(path, number)
    }

    /// The dates of a note.
    pub fn dates(&self, node: &Node) -> io::Result<Dates> {
        self.f.lifecycle.dates(&self.tree, node)
    }

    /// Number of host entries to verify (for a progress bar's total).
    pub fn check_size(&self) -> u64 {
        self.f.check_size(&self.tree)
    }

    /// Changes a note's dates under the rules; records it in the audit log.
    pub fn change_dates(
        &self,
        node: &Node,
        change: &Change,
        now: SystemTime,
    ) -> Result<Dates, DateError> {
        self.f.lifecycle.change_dates(&self.tree, node, change, now)
    }

    /// `quire audit --accept` (see [`super::audit::AuditLog::accept`]).
    pub fn accept_audit(&self) -> std::io::Result<()> {
        self.f.events.accept_audit(&self.tree)
    }

    /// Sets the trash window (days deleted notes are kept).
    pub fn set_trash_days(&self, days: u32) -> io::Result<()> {
        self.f.trash.set_trash_days(&self.tree, days)
    }

    /// Whether the vault's disk is low on space (issue 10.3): less free
    /// than 5 % of the disk or 1 GiB, whichever is smaller.
    pub fn low_on_space(&self) -> bool {
        self.f.trash.low_on_space(&self.tree)
    }

    /// Bytes missing to bring the vault's disk back over the low-space
    /// threshold (0: not low).
    pub fn space_deficit(&self) -> u64 {
        self.f.trash.space_deficit(&self.tree)
    }

    /// Host bytes the trash takes (contents, versions, records).
    pub fn trash_bytes(&self) -> io::Result<u64> {
        self.f.trash.trash_bytes(&self.tree)
    }
}
