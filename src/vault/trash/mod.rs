//! The trash (docs/FORMAT.md §13): a deleted note is moved, with its history
//! stream, into `d/quire.trash/<entry>/` beside a sealed record of where it
//! was; it can be restored, and is purged after the vault's retention
//! window. Purging is plan-then-apply: [`plan_purge`] is a pure function of
//! (entries, policy, now), so tests use a fixed clock.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::crypto::random;
use crate::format::lifecycle;
use crate::store::host::Handle;
use crate::vault::debris;
use crate::vault::events::Events;
use crate::vault::history::{History, stream_name};
use crate::vault::lifecycle::record_name;
use crate::vault::lifecycle::records::Lifecycle;
use crate::vault::node::{Kind, Node};
mod import;
mod restore;
mod space;

pub use space::{
    SPACE_KEEP_NEWEST, SPACE_KEEP_RECENT, SpaceEntry, SpacePlan, plan_space, space_deficit,
};

pub use crate::vault::tree::hooks::Reason;
use crate::vault::tree::{Tree, hex};

/// Folder of the trash inside the data root (its `.` hides it).
pub const FOLDER: &str = "quire.trash";
/// Content file of an entry.
const CONTENT: &str = "c";
/// Metadata record of an entry.
const META: &str = "m";
/// The vault's trash settings record.
const SETTINGS: &str = "settings";
/// Default trash window (days a deleted note is kept; not a retention date).
pub const DEFAULT_KEEP_DAYS: u32 = 60;
/// Free space under which the trash gives way, at most (or 5 % of the disk
/// when that is less).
pub const LOW_SPACE: u64 = 1 << 30;

/// The trash feature: it takes deleted notes (with their histories and
/// dates) and keeps them for a window.
pub struct Trash {
    pub(crate) events: Arc<Events>,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) history: Arc<History>,
}

/// One trash entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Entry ID (hex), its folder name.
    pub id: String,
    /// Path in the vault when it was trashed (no leading `/`).
    pub path: Vec<u8>,
    /// When.
    pub deleted: SystemTime,
    /// Why.
    pub reason: Reason,
    /// Plaintext size of the content (0 for a history-only entry).
    pub size: u64,
    /// Whether the content file is there (not for history-only entries).
    pub has_content: bool,
    /// The note's retention date, if it had one (it is not purged before).
    pub retain_until: Option<SystemTime>,
    /// The deleted note's last owner and permission bits: its versions
    /// are shown with them, so trashing a private note does not open it
    /// to other users of an `--allow-other` mount (issue 11.3).
    pub owner: (u32, u32, u16),
}

/// The trash policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Days an entry is kept.
    pub keep: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            keep: Duration::from_secs(DEFAULT_KEEP_DAYS as u64 * 86_400),
        }
    }
}

/// Entries whose window has passed at `now`, oldest first.
pub fn plan_purge(entries: &[Entry], policy: Policy, now: SystemTime) -> Vec<Entry> {
    let mut v: Vec<Entry> = entries
        .iter()
        .filter(|e| e.deleted + policy.keep <= now)
        .cloned()
        .collect();
    v.sort_by_key(|e| e.deleted);
    v
}

/// The 16 bytes a trash entry's lifecycle record is bound to: its ID.
pub(crate) fn entry_key(id: &str) -> [u8; 16] {
    crate::vault::tree::unhex(id).unwrap_or([0; 16])
}

fn meta_aad(id: &str) -> Vec<u8> {
    let mut a = b"quire/v1/trash/".to_vec();
    a.extend_from_slice(id.as_bytes());
    a
}

/// `time i64 ns ‖ reason u8 ‖ path`.
fn encode_meta(deleted: SystemTime, reason: Reason, path: &[u8]) -> Vec<u8> {
    let ns = deleted
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let mut b = ns.to_be_bytes().to_vec();
    b.push(reason as u8);
    b.extend_from_slice(path);
    b
}

fn decode_meta(b: &[u8]) -> Option<(SystemTime, Reason, Vec<u8>)> {
    if b.len() < 10 {
        return None;
    }
    let ns = i64::from_be_bytes(b[..8].try_into().ok()?);
    let reason = match b[8] {
        0 => Reason::Deleted,
        1 => Reason::Expired,
        2 => Reason::History,
        _ => return None,
    };
    Some((
        UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64),
        reason,
        b[9..].to_vec(),
    ))
}

impl Trash {
    fn trash_dir(&self, tree: &Tree, create: bool) -> io::Result<Option<Handle>> {
        let root = tree.root();
        match root.handle()?.lookup(OsStr::new(FOLDER)) {
            Ok(h) => Ok(Some(h)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                match root.handle()?.mkdir_child(OsStr::new(FOLDER), 0o700) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                root.handle()?.lookup(OsStr::new(FOLDER)).map(Some)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn new_entry(&self, tree: &Tree, path: &[u8], reason: Reason) -> io::Result<(Handle, String)> {
        let t = self.trash_dir(tree, true)?.expect("created");
        let id = hex(&random::bytes::<16>());
        // Made under a temporary name and renamed into place, so a crash
        // never leaves an entry without its record.
        let tmp = format!("{id}.tmp");
        t.mkdir_child(OsStr::new(&tmp), 0o700)?;
        let made = (|| {
            let e = t.lookup(OsStr::new(&tmp))?;
            let sealed = tree.keys.trash.seal(
                &meta_aad(&id),
                &encode_meta(SystemTime::now(), reason, path),
            );
            // Not fsync'd (nor is the rename that follows): like the unlink it
            // replaces, a trash move is durable at the next sync.
            let mut f = e.open_child(
                OsStr::new(META),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                0o600,
            )?;
            std::io::Write::write_all(&mut f, &sealed)?;
            t.rename_child(
                OsStr::new(&tmp),
                &t,
                OsStr::new(&id),
                libc::RENAME_NOREPLACE,
            )?;
            Ok(e)
        })();
        match made {
            Ok(e) => Ok((e, id)),
            Err(err) => {
                if let Ok(e) = t.lookup(OsStr::new(&tmp)) {
                    let _ = e.unlink_child(OsStr::new(META));
                }
                let _ = t.rmdir_child(OsStr::new(&tmp));
                Err(err)
            }
        }
    }

    /// Decides, for a file about to lose its last name, whether it goes
    /// to the trash, and moves it there. `Ok(false)`: unlink it as usual.
    #[allow(clippy::too_many_arguments)] // what unlink already knows, passed on
    pub(crate) fn trash_file(
        &self,
        tree: &Tree,
        dir: &Arc<Node>,
        name: &OsStr,
        host: &OsStr,
        st: &libc::stat,
        node: Option<&Node>,
        dates: &lifecycle::Dates,
        reason: Reason,
    ) -> io::Result<bool> {
        if !self.history.enabled()
            || Kind::from_mode(st.st_mode) != Kind::File
            || st.st_nlink > 1
            || !self.history.versioned_name(tree, dir, host)
        {
            return Ok(false);
        }
        let side = stream_name(host);
        // Short-lived means the *note* is new: its host file created within
        // seconds by this mount, and it never had a second version. A note
        // saved by rename gets a new host file at every save, but its
        // history came along with it: an older version means the note is
        // not new (issue 10.1), and so does a second version, however
        // quickly it was saved (issue 16.3). A retained note is never new
        // enough to skip the trash (issue 17.2).
        let short_lived = reason == Reason::Deleted
            && super::lifecycle::retained(dates, SystemTime::now()).is_none()
            && node
                .and_then(|n| n.created.get())
                .is_some_and(|t| t.elapsed() < debris::SHORT_LIVED)
            && self.history.versions_at(tree, dir, host).is_ok_and(|v| {
                v.len() <= 1
                    && v.iter()
                        .all(|v| v.time.elapsed().is_ok_and(|age| age < debris::SHORT_LIVED))
            });
        if short_lived {
            // Created and removed within seconds: a temporary file. Its
            // history is the versions it made itself, if any.
            let _ = dir.handle()?.unlink_child(&side);
            return Ok(false);
        }
        // (A folder whose name no longer decrypts: the note keeps its name.)
        let path = tree.path_of(dir, name.as_bytes());
        let (entry, entry_id) = match self.new_entry(tree, &path, reason) {
            Ok(e) => e,
            Err(e) if super::lifecycle::retained(dates, SystemTime::now()).is_some() => {
                // A retained note is never deleted for good (issue 17.2).
                log::warn!("the trash cannot take a deleted retained note ({e}); it stays");
                return Err(e);
            }
            Err(e) => {
                // A full disk must not stop a user from deleting to make room.
                log::warn!("the trash cannot take a deleted file ({e}); it is deleted for good");
                let _ = dir.handle()?.unlink_child(&side);
                return Ok(false);
            }
        };
        // The note's dates go along, sealed for the entry (§13, §15).
        if !dates.is_empty() {
            let ek = entry_key(&entry_id);
            let owner = self.lifecycle.lc_owner(tree, &ek, OsStr::new(CONTENT));
            let sealed = lifecycle::seal(&tree.keys.lifecycle, &owner, dates);
            entry.create_child_with(&record_name(OsStr::new(CONTENT)), &sealed, 0o600)?;
        }
        dir.handle()?
            .rename_child(host, &entry, OsStr::new(CONTENT), 0)?;
        if !dates.is_empty() {
            let _ = dir.handle()?.unlink_child(&record_name(host));
        }
        let c_side = stream_name(OsStr::new(CONTENT));
        let (from, into) = (tree.dir_id(dir)?, entry_key(&entry_id));
        let to = (&into, OsStr::new(CONTENT));
        match self.history.move_stream(
            tree,
            dir.handle()?,
            &side,
            (&from, host),
            &entry,
            &c_side,
            to,
            0,
            (true, false),
        ) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        Ok(true)
    }

    /// Moves an orphan history stream (its note gone) of `dir` to the
    /// trash, so removing the folder loses nothing.
    pub(crate) fn trash_orphan_history(
        &self,
        tree: &Tree,
        dir: &Handle,
        dir_node: Option<&Arc<Node>>,
        side: &OsStr,
    ) -> io::Result<()> {
        let stem = side
            .as_bytes()
            .strip_suffix(crate::format::history::SUFFIX.as_bytes())
            .unwrap_or(side.as_bytes());
        let mut path = dir_node
            .and_then(|d| tree.plain_path(d))
            .unwrap_or_default();
        let name = dir_node
            .and_then(|d| tree.plain_name(d, OsStr::from_bytes(stem)))
            .unwrap_or_else(|| b"(unnamed)".to_vec());
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        let (entry, entry_id) = self.new_entry(tree, &path, Reason::History)?;
        let c_side = stream_name(OsStr::new(CONTENT));
        let from = match dir_node {
            Some(d) => tree.dir_id(d).ok(),
            None => dir
                .read_child(OsStr::new(crate::format::dirid::FILE_NAME))
                .ok()
                .and_then(|b| crate::format::dirid::parse(&b)),
        };
        let Some(from) = from else {
            return dir.rename_child(side, &entry, &c_side, 0);
        };
        let into = entry_key(&entry_id);
        let to = (&into, OsStr::new(CONTENT));
        let from = (&from, OsStr::from_bytes(stem));
        self.history
            .move_stream(tree, dir, side, from, &entry, &c_side, to, 0, (true, false))
    }

    /// Every trash entry; unreadable ones are logged and skipped.
    pub fn trash_entries(&self, tree: &Tree) -> io::Result<Vec<Entry>> {
        let Some(t) = self.trash_dir(tree, false)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for id in t.read_names()? {
            let Some(ids) = id.to_str() else { continue };
            if ids == SETTINGS || ids.len() != 32 {
                continue;
            }
            let Ok(e) = t.lookup(&id) else { continue };
            let meta = e
                .read_child(OsStr::new(META))
                .ok()
                .and_then(|b| tree.keys.trash.open(&meta_aad(ids), &b).ok())
                .and_then(|b| decode_meta(&b));
            let Some((deleted, reason, path)) = meta else {
                log::error!("trash entry {ids} has a missing or tampered record; skipped");
                continue;
            };
            let (has_content, size, st) = match e.stat_child(OsStr::new(CONTENT)) {
                Ok(st) => (
                    true,
                    tree.content
                        .layout
                        .plain_size(st.st_size as u64)
                        .unwrap_or(0),
                    st,
                ),
                Err(_) => match e.stat_child(&stream_name(OsStr::new(CONTENT))) {
                    // History only: the stream has no note mode; owner only.
                    Ok(mut st) => {
                        st.st_mode = 0o400;
                        (false, 0, st)
                    }
                    // A move into the trash interrupted by a crash: nothing in it.
                    Err(_) => continue,
                },
            };
            let owner = (st.st_uid, st.st_gid, (st.st_mode & 0o7777) as u16);
            let retain_until = self
                .entry_dates(tree, &e, ids)
                .retain_until
                .as_deref()
                .and_then(super::lifecycle::instant);
            out.push(Entry {
                id: ids.to_string(),
                path,
                deleted,
                reason,
                size,
                has_content,
                retain_until,
                owner,
            });
        }
        out.sort_by_key(|e| e.deleted);
        Ok(out)
    }

    /// The dates a trashed note had (none if it had none; a damaged
    /// record is logged and read as none).
    fn entry_dates(&self, tree: &Tree, e: &Handle, id: &str) -> lifecycle::Dates {
        match e.read_child(&record_name(OsStr::new(CONTENT))) {
            Ok(b) => {
                let ek = entry_key(id);
                let owner = self.lifecycle.lc_owner(tree, &ek, OsStr::new(CONTENT));
                lifecycle::open(&tree.keys.lifecycle, &owner, &b).unwrap_or_else(|_| {
                    log::error!("the dates of trash entry {id} failed authentication");
                    lifecycle::Dates::default()
                })
            }
            Err(_) => lifecycle::Dates::default(),
        }
    }

    fn entry_handle(&self, tree: &Tree, id: &str) -> io::Result<Handle> {
        let t = self
            .trash_dir(tree, false)?
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        t.lookup(OsStr::new(id))
    }

    /// Removes what interrupted trash moves left: temporary entry folders
    /// and entries with nothing in them.
    pub fn tidy_trash(&self, tree: &Tree) -> io::Result<usize> {
        tree.writable_check()?;
        // Attribute files a crash left before their rename (§7.1).
        let mut n = tree.tidy_xattrs();
        let Some(t) = self.trash_dir(tree, false)? else {
            return Ok(n);
        };
        for name in t.read_names()? {
            let Some(s) = name.to_str() else { continue };
            if s == SETTINGS || s == "settings.tmp" {
                continue;
            }
            if s.starts_with(crate::vault::tree::NEW_PREFIX) {
                // A settings record a crash left before its rename (not
                // one being written right now: a minute old at least).
                let old = t.stat_child(&name).is_ok_and(|st| {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0);
                    now - st.st_mtime > 60
                });
                if old {
                    t.unlink_child(&name)?;
                    n += 1;
                }
                continue;
            }
            let Ok(e) = t.lookup(&name) else { continue };
            let empty = e.stat_child(OsStr::new(CONTENT)).is_err()
                && e.stat_child(&stream_name(OsStr::new(CONTENT))).is_err();
            if s.ends_with(".tmp") || (s.len() == 32 && empty) {
                if !empty {
                    continue;
                }
                for c in e.read_names()? {
                    e.unlink_child(&c)?;
                }
                t.rmdir_child(&name)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The content of a trashed note.
    pub fn trash_content(&self, tree: &Tree, id: &str) -> io::Result<zeroize::Zeroizing<Vec<u8>>> {
        let node = self.trash_node(tree, id)?;
        // Whole in memory only up to what history keeps; larger entries
        // are read in pieces through `.trash/` (issue 16.12).
        if tree.getattr(&node)?.size > super::history::MAX_VERSIONED {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        tree.plain_content(&node)
    }

    /// A trash entry's content as a node, for streamed reads and checks.
    fn trash_node(&self, tree: &Tree, id: &str) -> io::Result<Node> {
        let e = self.entry_handle(tree, id)?;
        let h = e.lookup(OsStr::new(CONTENT))?;
        let st = h.stat()?;
        Ok(Node::detached(h, st.st_ino))
    }

    /// Opens a trash entry's content for reading in bounded pieces (the
    /// `.trash` view and `check`: a 16 GiB note in the trash is never read
    /// whole, issue 16.12).
    pub fn open_trash_entry(
        &self,
        tree: &Tree,
        id: &str,
    ) -> io::Result<crate::vault::content::OpenFile> {
        tree.open(Arc::new(self.trash_node(tree, id)?), false)
    }

    /// Verifies a trash entry's content block by block; returns its size.
    pub(crate) fn verify_trash_entry(&self, tree: &Tree, id: &str) -> io::Result<u64> {
        tree.content.verify_content(&self.trash_node(tree, id)?)
    }

    /// The vault's trash policy.
    pub fn trash_policy(&self, tree: &Tree) -> Policy {
        // Set on two computers while apart, the window forks into a sync
        // tool's conflict copy: the longer one holds (§13), so neither
        // computer's choice purges a note early.
        let days = self
            .settings_records(tree)
            .into_iter()
            .map(|(_, d)| d)
            .max()
            .unwrap_or(DEFAULT_KEEP_DAYS);
        Policy {
            keep: Duration::from_secs(days as u64 * 86_400),
        }
    }

    /// The trash window's record and a sync tool's conflict copies of it
    /// that open: (host name, days).
    fn settings_records(&self, tree: &Tree) -> Vec<(std::ffi::OsString, u32)> {
        let Ok(Some(t)) = self.trash_dir(tree, false) else {
            return Vec::new();
        };
        t.read_names()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| {
                let s = n.to_string_lossy();
                s == SETTINGS
                    || crate::format::conflicts::readings(&s)
                        .iter()
                        .any(|c| c.original == SETTINGS)
            })
            .filter_map(|n| {
                let b = t.read_child(&n).ok()?;
                let b = tree.keys.trash.open(b"quire/v1/trash-settings", &b).ok()?;
                let days = u32::from_be_bytes(b.get(..4)?.try_into().ok()?);
                Some((n, days))
            })
            .collect()
    }

    /// A read-write mount settles a forked trash window: the longer one is
    /// written as the window and the copies go. Returns the window if it
    /// was forked.
    pub fn settle_trash_window(&self, tree: &Tree) -> io::Result<Option<u32>> {
        tree.writable_check()?;
        let records = self.settings_records(tree);
        if records.len() < 2 {
            return Ok(None);
        }
        let days = records
            .iter()
            .map(|(_, d)| *d)
            .max()
            .unwrap_or(DEFAULT_KEEP_DAYS);
        let own = records.iter().find(|(n, _)| n == SETTINGS).map(|(_, d)| *d);
        if own != Some(days) {
            self.set_trash_days(tree, days)?;
        }
        let t = self.trash_dir(tree, false)?.ok_or_else(super::tree::eio)?;
        for (n, d) in &records {
            if n != SETTINGS {
                t.unlink_child(n)?;
                log::warn!(
                    "the trash window was set on two computers at once ({d} and {days} days): the longer, {days} days, is kept"
                );
            }
        }
        Ok(Some(days))
    }

    /// Sets the trash window (days deleted notes are kept).
    pub fn set_trash_days(&self, tree: &Tree, days: u32) -> io::Result<()> {
        tree.writable_check()?;
        let t = self.trash_dir(tree, true)?.expect("created");
        let sealed = tree
            .keys
            .trash
            .seal(b"quire/v1/trash-settings", &days.to_be_bytes());
        crate::vault::tree::replace_record(&t, OsStr::new(SETTINGS), &sealed, true)
    }
}

#[cfg(test)]
mod tests {
    use super::restore::restored_name;
    use super::*;

    fn entry(id: &str, days_ago: u64, now: SystemTime) -> Entry {
        Entry {
            id: id.into(),
            path: format!("notes/{id}.md").into_bytes(),
            deleted: now - Duration::from_secs(days_ago * 86_400),
            reason: Reason::Deleted,
            size: 10,
            has_content: true,
            retain_until: None,
            owner: (0, 0, 0o600),
        }
    }

    #[test]
    fn a_space_purge_takes_only_old_entries_and_only_when_it_helps() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_608_000);
        const MIB: u64 = 1 << 20;
        let e = |days: u64, mib: u64, retained: bool| SpaceEntry {
            deleted: now - Duration::from_secs(days * 86_400),
            retained,
            bytes: mib * MIB,
        };
        // Twelve entries: two 30 and 20 days old (one retained), ten
        // recent ones (the newest ten, and all under a week old).
        let mut entries = vec![e(30, 50, false), e(20, 40, true)];
        for d in 0..10 {
            entries.push(e(d % 5, 100, false));
        }
        // 30 MiB short: the 30-day-old entry alone is enough.
        let p = plan_space(&entries, 30 * MIB, now);
        assert_eq!(p.purge, vec![0]);
        // 60 MiB short: all it may purge (50 MiB) cannot help: nothing.
        let p = plan_space(&entries, 60 * MIB, now);
        assert!(p.purge.is_empty());
        assert!(p.why.contains("50 MiB"), "{}", p.why);
        // Not low: nothing.
        assert!(plan_space(&entries, 0, now).purge.is_empty());
        // Old entries beyond the newest ten go, oldest first, only as
        // many as needed.
        let mut old: Vec<SpaceEntry> = (0..14).map(|i| e(100 - i, 10, false)).collect();
        old.reverse();
        let p = plan_space(&old, 25 * MIB, now);
        assert_eq!(p.purge, vec![13, 12, 11]);
        // Only 4 may go (14 minus the newest 10): 40 MiB at most.
        assert!(plan_space(&old, 41 * MIB, now).purge.is_empty());
    }

    #[test]
    fn purge_plan_with_a_fixed_clock() {
        // 2026-11-25T12:00:00Z
        let now = UNIX_EPOCH + Duration::from_secs(1_795_608_000);
        let entries = vec![
            entry("a", 61, now),
            entry("b", 60, now),
            entry("c", 59, now),
            entry("d", 0, now),
            entry("e", 400, now),
        ];
        let plan = plan_purge(&entries, Policy::default(), now);
        let ids: Vec<&str> = plan.iter().map(|e| e.id.as_str()).collect();
        // Oldest first; exactly 60 days old is due.
        assert_eq!(ids, ["e", "a", "b"]);
        // A shorter window, and a clock one day later.
        let week = Policy {
            keep: Duration::from_secs(7 * 86_400),
        };
        assert_eq!(plan_purge(&entries, week, now).len(), 4);
        let later = now + Duration::from_secs(86_400);
        assert_eq!(plan_purge(&entries, Policy::default(), later).len(), 4);
        assert!(plan_purge(&[], Policy::default(), now).is_empty());
    }

    #[test]
    fn restored_copies_keep_their_extension_last() {
        let s = "2026-12-02T18.57.03";
        let n = |f: &str| String::from_utf8(restored_name(f.as_bytes(), s)).unwrap();
        assert_eq!(n("misc.txt"), "misc (restored 2026-12-02T18.57.03).txt");
        assert_eq!(n("a.b.md"), "a.b (restored 2026-12-02T18.57.03).md");
        assert_eq!(n("README"), "README (restored 2026-12-02T18.57.03)");
        assert_eq!(n(".bashrc"), ".bashrc (restored 2026-12-02T18.57.03)");
        assert_eq!(n("odd."), "odd. (restored 2026-12-02T18.57.03)");
    }

    #[test]
    fn meta_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_608_000);
        let b = encode_meta(t, Reason::Expired, b"a/b.md");
        assert_eq!(
            decode_meta(&b),
            Some((t, Reason::Expired, b"a/b.md".to_vec()))
        );
        assert_eq!(decode_meta(&b[..9]), None);
    }
}
