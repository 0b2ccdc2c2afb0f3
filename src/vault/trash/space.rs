//! Emptying the trash: purging entries (the window, `quire trash
//! --purge`) and giving way when the disk runs low (the oldest first, only
//! as many as lift free space over the threshold; never retained ones).

use std::ffi::OsStr;
use std::io;
use std::time::{Duration, SystemTime};

use crate::store::host::Handle;

use super::{Entry, LOW_SPACE, Trash};
use crate::vault::tree::Tree;

/// Host bytes the files of a trash entry folder take.
pub(super) fn host_bytes(e: &Handle) -> u64 {
    e.read_names()
        .unwrap_or_default()
        .iter()
        .filter_map(|n| e.stat_child(n).ok())
        .map(|st| st.st_blocks as u64 * 512)
        .sum()
}

/// Bytes a disk (as `statvfs` shows it) lacks to be over the low-space
/// threshold: 5 % of its size or [`LOW_SPACE`], whichever is smaller
/// (issue 10.3); 0 when it is not low. The one rule the daemon's purge,
/// `quire status` and `quire mount` use.
pub fn space_deficit(s: &libc::statvfs) -> u64 {
    let (total, free) = (s.f_blocks * s.f_frsize, s.f_bavail * s.f_frsize);
    (total / 20).min(LOW_SPACE).saturating_sub(free)
}

/// The newest trash entries are never purged for space (issue 17.6).
pub const SPACE_KEEP_NEWEST: usize = 10;
/// Nor those deleted within this long.
pub const SPACE_KEEP_RECENT: Duration = Duration::from_secs(7 * 86_400);

/// A trash entry as the space purge sees it.
#[derive(Debug, Clone, Copy)]
pub struct SpaceEntry {
    /// When it was deleted.
    pub deleted: SystemTime,
    /// A retention date holds it.
    pub retained: bool,
    /// Host bytes purging it frees.
    pub bytes: u64,
}

/// What to purge for space: indices into the entries, oldest first.
#[derive(Debug, Default)]
pub struct SpacePlan {
    /// Entries to purge.
    pub purge: Vec<usize>,
    /// Why nothing is purged, when nothing is.
    pub why: String,
}

/// Plans a purge for space (pure, for tests with a fixed clock; issue
/// 17.6): someone else filling a shared disk must not be able to empty the
/// trash. Only entries that are not retained, not among the
/// [`SPACE_KEEP_NEWEST`] newest and not deleted within
/// [`SPACE_KEEP_RECENT`] may go, oldest first, and only as many as free
/// `deficit` bytes; if all of them together would not, none go (purging
/// could not help).
pub fn plan_space(entries: &[SpaceEntry], deficit: u64, now: SystemTime) -> SpacePlan {
    if deficit == 0 {
        return SpacePlan::default();
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(entries[i].deleted));
    let newest: std::collections::HashSet<usize> =
        order.iter().take(SPACE_KEEP_NEWEST).copied().collect();
    let mut may: Vec<usize> = (0..entries.len())
        .filter(|i| {
            let e = &entries[*i];
            !e.retained
                && !newest.contains(i)
                && now
                    .duration_since(e.deleted)
                    .is_ok_and(|age| age >= SPACE_KEEP_RECENT)
        })
        .collect();
    may.sort_by_key(|&i| entries[i].deleted);
    let could: u64 = may.iter().map(|&i| entries[i].bytes).sum();
    if could < deficit {
        return SpacePlan {
            purge: Vec::new(),
            why: format!(
                "the entries it may purge (not retained, not the {SPACE_KEEP_NEWEST} newest, not deleted in the last {} days) hold {} MiB, and {} MiB more is needed; free space on that disk",
                SPACE_KEEP_RECENT.as_secs() / 86_400,
                could >> 20,
                deficit >> 20
            ),
        };
    }
    let mut freed = 0;
    let mut purge = Vec::new();
    for i in may {
        if freed >= deficit {
            break;
        }
        freed += entries[i].bytes;
        purge.push(i);
    }
    SpacePlan {
        purge,
        why: String::new(),
    }
}

impl Trash {
    pub(crate) fn remove_entry(&self, tree: &Tree, id: &str) -> io::Result<()> {
        let t = self
            .trash_dir(tree, false)?
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        let e = t.lookup(OsStr::new(id))?;
        for n in e.read_names()? {
            e.unlink_child(&n)?;
        }
        t.rmdir_child(OsStr::new(id))
    }

    /// Deletes trash entries for good (content, versions and record).
    pub fn purge(&self, tree: &Tree, entries: &[Entry]) -> io::Result<usize> {
        tree.writable_check()?;
        let mut n = 0;
        let now = SystemTime::now();
        for e in entries {
            if e.retain_until.is_some_and(|r| r > now) {
                log::info!("trash entry {} is retained: not purged", e.id);
                continue;
            }
            self.purge_one(tree, e, e.reason.as_str())?;
            n += 1;
        }
        if n > 0 {
            // Old blocks of what was purged may be in the crash journal.
            tree.content.journal.forget_if_idle()?;
        }
        Ok(n)
    }

    pub(crate) fn purge_one(&self, tree: &Tree, e: &Entry, detail: &str) -> io::Result<()> {
        // The note's attributes go with it (§7.1), unless a file at its
        // old place shares its file ID (a sync tool's conflict copy of it,
        // or the note it was a copy of).
        let attrs = self
            .trash_dir(tree, false)?
            .and_then(|t| t.lookup(OsStr::new(&e.id)).ok())
            .and_then(|h| tree.file_id_at(&h, OsStr::new(super::CONTENT)))
            .filter(|a| {
                !tree.resolve(&e.path).is_ok_and(|(dir, name)| {
                    use std::os::unix::ffi::{OsStrExt, OsStringExt};
                    // A copy's shown name: ask its original's place.
                    let name = crate::vault::tree::conflicts::original_of_shown(name.as_bytes())
                        .map(std::ffi::OsString::from_vec)
                        .unwrap_or(name);
                    tree.host_name(&dir, &name).is_ok_and(|host| {
                        tree.id_in_use_near(&dir, OsStr::new(host.host()), a, false)
                    })
                })
            });
        self.remove_entry(tree, &e.id)?;
        if let Some(a) = attrs {
            tree.drop_xattrs(&a);
        }
        log::info!("purged trash entry {} ({detail})", e.id);
        self.events
            .audit(crate::format::audit::Event::Purge, &e.path, b"", 0, detail);
        self.events.emit(crate::vault::events::Change::Purged {
            path: e.path.clone(),
        });
        Ok(())
    }

    /// Whether the vault's disk is low on space (issue 10.3): less free
    /// than 5 % of the disk or 1 GiB, whichever is smaller.
    pub fn low_on_space(&self, tree: &Tree) -> bool {
        self.space_deficit(tree) > 0
    }

    /// Bytes missing to bring the vault's disk back over the low-space
    /// threshold (0: not low).
    pub fn space_deficit(&self, tree: &Tree) -> u64 {
        tree.statfs().map(|s| space_deficit(&s)).unwrap_or(0)
    }

    /// When the disk is low on space, purges the trash entries that
    /// [`plan_space`] picks (oldest first, only as many as bring free
    /// space back over the threshold, and none if all it may purge would
    /// not; never a retained entry, one of the newest, or one from the
    /// last days). Each purge is logged and audited ("low disk space").
    /// Returns how many went.
    pub fn purge_for_space(&self, tree: &Tree) -> io::Result<usize> {
        if tree.read_only() {
            return Ok(0);
        }
        let deficit = self.space_deficit(tree);
        if deficit == 0 {
            return Ok(0);
        }
        let now = SystemTime::now();
        let entries = self.trash_entries(tree)?;
        let sized: Vec<SpaceEntry> = entries
            .iter()
            .map(|e| SpaceEntry {
                deleted: e.deleted,
                retained: e.retain_until.is_some_and(|r| r > now),
                bytes: self.entry_bytes(tree, &e.id),
            })
            .collect();
        let plan = plan_space(&sized, deficit, now);
        if plan.purge.is_empty() {
            // Said once per state, not every minute.
            static TOLD: std::sync::Mutex<Option<(usize, u64)>> = std::sync::Mutex::new(None);
            let state = (entries.len(), deficit >> 20);
            let mut told = TOLD.lock().unwrap_or_else(|e| e.into_inner());
            if *told != Some(state) {
                *told = Some(state);
                log::warn!(
                    "the disk holding the vault is low on space ({} MiB short); the trash is not purged: {}",
                    deficit >> 20,
                    plan.why
                );
            }
            return Ok(0);
        }
        let mut n = 0;
        for i in &plan.purge {
            let e = &entries[*i];
            self.purge_one(tree, e, &format!("low disk space ({})", e.reason.as_str()))?;
            n += 1;
        }
        log::warn!("the disk is low on space: {n} trash entries purged early, oldest first");
        tree.content.journal.forget_if_idle()?;
        Ok(n)
    }

    /// Host bytes one trash entry takes (content, versions, records).
    pub(crate) fn entry_bytes(&self, tree: &Tree, id: &str) -> u64 {
        self.entry_handle(tree, id)
            .map(|e| host_bytes(&e))
            .unwrap_or(0)
    }

    /// Host bytes the trash takes (contents, versions, records).
    pub fn trash_bytes(&self, tree: &Tree) -> io::Result<u64> {
        let Some(t) = self.trash_dir(tree, false)? else {
            return Ok(0);
        };
        Ok(t.read_names()?
            .iter()
            .filter_map(|id| t.lookup(id).ok())
            .map(|e| host_bytes(&e))
            .sum())
    }
}
