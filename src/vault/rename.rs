//! Removing folders and renaming entries (the parts of the namespace with
//! the most cases: empty checks with crash leftovers, directories over
//! directories, exchanges, and keeping nodes, histories and the crash
//! journal in step with the names).

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use super::node::{Kind, Node};
use super::tree::{Tree, errno, keep_reachable};
use crate::format::{dirid, names};
use crate::store::host::Handle;

/// One name of a rename, for its binding record: folder, host name, the
/// target hashes it accepts before, and after.
type Side<'a> = (&'a Arc<Node>, &'a OsStr, &'a [[u8; 32]], &'a [[u8; 32]]);

impl Tree {
    /// Removes an empty directory.
    pub fn rmdir(&self, dir: &Arc<Node>, name: &OsStr) -> io::Result<()> {
        self.writable()?;
        let hn = self.host_name(dir, name)?;
        let host = OsStr::new(hn.host());
        let st = dir.handle()?.stat_child(host)?;
        if Kind::from_mode(st.st_mode) != Kind::Dir {
            return Err(errno(libc::ENOTDIR));
        }
        let victim = dir.handle()?.lookup(host)?;
        let victim_node = Arc::new(Node::new(victim.clone_handle()?, Kind::Dir, st.st_ino));
        victim_node.relocate(dir.clone(), host.to_owned());
        self.check_empty(&victim, Some(&victim_node))?;
        let id = victim.read_child(OsStr::new(dirid::FILE_NAME)).ok();
        // The directory may be read-only (chmod 555): the ID file lives inside.
        let mode = st.st_mode & 0o7777;
        let restore_mode = mode & 0o200 == 0;
        if restore_mode {
            victim.chmod(mode | 0o700)?;
        }
        match victim.unlink_child(OsStr::new(dirid::FILE_NAME)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        if let Err(e) = dir.handle()?.rmdir_child(host) {
            if let Some(id) = id {
                let _ = victim.create_child_with(OsStr::new(dirid::FILE_NAME), &id, 0o400);
            }
            if restore_mode {
                let _ = victim.chmod(mode);
            }
            return Err(e);
        }
        self.remove_sidecar(dir, &hn);
        if self.noteworthy(dir, name) {
            self.audit_name(crate::format::audit::Event::Rmdir, dir, name, 0, "");
        }
        Ok(())
    }

    /// ENOTEMPTY unless `dir` holds only its ID. Leftovers of an interrupted
    /// mkdir (an empty `.quire-mkdir-*`) and sidecars whose entry is gone are
    /// removed on the way; anything else (a sync tool's file, say) keeps the
    /// folder non-empty and is logged, so nothing unknown is deleted.
    fn check_empty(&self, dir: &Handle, node: Option<&Arc<Node>>) -> io::Result<()> {
        let names = dir.read_names()?;
        let present: std::collections::HashSet<&OsStr> =
            names.iter().map(|n| n.as_os_str()).collect();
        for n in &names {
            let s = n.to_string_lossy();
            if s == dirid::FILE_NAME {
                continue;
            }
            if let Some(stem) = s.strip_suffix(".name")
                && s.ends_with(names::SIDECAR_SUFFIX)
                && !present.contains(OsStr::new(stem))
            {
                dir.unlink_child(n)?;
                continue;
            }
            if let Some(stem) = s.strip_suffix(crate::format::history::SUFFIX)
                && !present.contains(OsStr::new(stem))
            {
                // The history of a note that is gone: kept in the trash.
                self.trash_orphan_history(dir, node, n)?;
                continue;
            }
            if let Some(stem) = s.strip_suffix(crate::format::lifecycle::SUFFIX)
                && !present.contains(OsStr::new(stem))
            {
                // The dates of a path whose note is gone (left by a rename
                // to debris): they go, unless they still retain something.
                if let Some(node) = node
                    && let Ok(d) = self.dates_at(node, OsStr::new(stem))
                    && let Some(until) =
                        super::lifecycle::retained(&d, std::time::SystemTime::now())
                {
                    log::warn!(
                        "folder {} keeps the retention record of a note (until {until}); it stays non-empty",
                        dir.host_path()
                    );
                    return Err(errno(libc::ENOTEMPTY));
                }
                dir.unlink_child(n)?;
                continue;
            }
            if let Some(stem) = s.strip_suffix(crate::format::records::BINDING_SUFFIX) {
                if present.contains(OsStr::new(stem)) {
                    // The record of a symlink still here.
                    return Err(errno(libc::ENOTEMPTY));
                }
                // A symlink's binding record left by a crash.
                dir.unlink_child(n)?;
                continue;
            }
            if s.starts_with(super::tree::NEW_PREFIX) {
                // A new file a crash left before it got its name.
                dir.unlink_child(n)?;
                continue;
            }
            if s.starts_with(".quire-mkdir-")
                && let Ok(t) = dir.lookup(n)
                && t.read_names()
                    .map(|v| v.iter().all(|c| c == OsStr::new(dirid::FILE_NAME)))
                    .unwrap_or(false)
            {
                let _ = t.chmod(0o700);
                let _ = t.unlink_child(OsStr::new(dirid::FILE_NAME));
                dir.rmdir_child(n)?;
                continue;
            }
            if names::classify(&s) == names::Entry::Hidden {
                log::warn!(
                    "folder {} holds a foreign file {s}; it stays non-empty",
                    dir.host_path()
                );
            }
            return Err(errno(libc::ENOTEMPTY));
        }
        Ok(())
    }

    /// Dates and the audit record after a rename (not an exchange): a
    /// note's dates go with it to another note name, stay with the path
    /// when it goes to debris (vim's `note` → `note~`: the new `note` gets
    /// them), and merge, the stricter winning, when it replaces a note.
    #[allow(clippy::too_many_arguments)]
    fn after_rename(
        &self,
        dir: &Arc<Node>,
        name: &OsStr,
        ah: &OsStr,
        to: &Arc<Node>,
        to_name: &OsStr,
        bh: &OsStr,
        src: &libc::stat,
        dst: Option<&libc::stat>,
    ) {
        let note = |d: &Arc<Node>, n: &OsStr| {
            !super::debris::is_debris(n.as_bytes()) && self.folder_versioned(d, 0)
        };
        let (src_note, dst_note) = (note(dir, name), note(to, to_name));
        if src_note && dst_note {
            let (from, to_path) = (
                self.path_of(dir, name.as_bytes()),
                self.path_of(to, to_name.as_bytes()),
            );
            self.audit(crate::format::audit::Event::Rename, &from, &to_path, 0, "");
            self.emit(super::events::Change::Renamed { from, to: to_path });
        }
        if Kind::from_mode(src.st_mode) != Kind::File || !dst_note {
            return;
        }
        let r = (|| -> io::Result<()> {
            let moved = self.dates_at(dir, ah)?;
            if moved.is_empty() {
                return Ok(());
            }
            if !src_note {
                // Debris carrying dates (set on a temporary file): dropped.
                let _ = dir
                    .handle()?
                    .unlink_child(&super::lifecycle::record_name(ah));
                return Ok(());
            }
            let kept = if dst.is_some() {
                self.dates_at(to, bh)?
            } else {
                Default::default()
            };
            let merged = super::lifecycle::merge(&kept, &moved);
            self.write_dates_at(to, bh, &merged)?;
            if !(Arc::ptr_eq(dir, to) && ah == bh) {
                let _ = dir
                    .handle()?
                    .unlink_child(&super::lifecycle::record_name(ah));
            }
            Ok(())
        })();
        if let Err(e) = r {
            log::error!("the dates of a renamed note were not carried: {e}");
        }
        self.lifecycle_changed();
    }

    /// Binding records after a rename: each name's record accepts only what
    /// it now holds; a name left without a symlink loses its record.
    fn settle_bindings(&self, b: Side, a: Side, exchange: bool) {
        let (to, bh, dst_t, after_b) = b;
        let (dir, ah, src_t, after_a) = a;
        let r = (|| -> io::Result<()> {
            if after_b.is_empty() {
                self.drop_binding(to, bh);
            } else if !dst_t.is_empty() {
                self.write_binding(to, bh, after_b)?;
            }
            if exchange {
                if after_a.is_empty() {
                    self.drop_binding(dir, ah);
                } else if !src_t.is_empty() {
                    self.write_binding(dir, ah, after_a)?;
                }
            } else if !(Arc::ptr_eq(dir, to) && ah == bh) {
                self.drop_binding(dir, ah);
            }
            Ok(())
        })();
        if let Err(e) = r {
            log::error!("a symlink's binding record was not settled after a rename: {e}");
        }
    }

    /// Binding records back as they were, after a rename that failed.
    fn restore_bindings(&self, b: Side, a: Side) -> io::Result<()> {
        for (d, h, before, after) in [b, a] {
            if !before.is_empty() {
                self.write_binding(d, h, before)?;
            } else if !after.is_empty() {
                self.drop_binding(d, h);
            }
        }
        Ok(())
    }

    /// Renames (flags: `RENAME_NOREPLACE`, `RENAME_EXCHANGE`). A directory
    /// keeps its own ID, so moving a directory is O(1).
    pub fn rename(
        &self,
        dir: &Arc<Node>,
        name: &OsStr,
        to: &Arc<Node>,
        to_name: &OsStr,
        flags: u32,
        known: impl Fn(u64) -> Option<Arc<Node>>,
    ) -> io::Result<()> {
        self.writable()?;
        let a = self.host_name(dir, name)?;
        let b = self.host_name(to, to_name)?;
        let (ah, bh) = (OsStr::new(a.host()), OsStr::new(b.host()));
        let exchange = flags & libc::RENAME_EXCHANGE != 0;
        let src = dir.handle()?.stat_child(ah)?;
        let dst = to.handle()?.stat_child(bh).ok();
        // Two names of one inode: POSIX says rename does nothing (and the
        // source's sidecar must stay).
        if !exchange
            && let Some(d) = &dst
            && d.st_ino == src.st_ino
        {
            return if flags & libc::RENAME_NOREPLACE != 0 {
                Err(errno(libc::EEXIST))
            } else {
                Ok(())
            };
        }
        // Retention belongs to the text: an exchange would move a retained
        // note's text under a name its dates and history do not follow
        // (issue 17.2), so it is refused while either side is retained.
        if exchange {
            self.check_not_retained(dir, ah)?;
            self.check_not_retained(to, bh)?;
        }
        let moved = known(src.st_ino);
        let replaced = dst.as_ref().and_then(|d| known(d.st_ino));
        // Which side keeps history (each name decrypted once).
        let is_file = |m: u32| Kind::from_mode(m) == Kind::File;
        let history = self.history.is_some() && !exchange;
        let src_versioned = history && is_file(src.st_mode) && self.versioned_name(dir, ah);
        let dst_versioned = history && self.versioned_name(to, bh);
        let carry = dst_versioned && is_file(src.st_mode);
        // Content about to move away from a name or be replaced: a note
        // that so far was only implicitly its first version gets it written.
        let keep = |d: &Arc<Node>, h: &OsStr, known: &Option<Arc<Node>>| {
            let n = known
                .clone()
                .or_else(|| self.node_at(d, h).ok().map(|(n, _)| Arc::new(n)));
            if let Some(n) = n {
                self.keep_first_version(&n, None, false);
            }
        };
        if src_versioned {
            keep(dir, ah, &moved);
        }
        if dst_versioned && dst.as_ref().is_some_and(|d| is_file(d.st_mode)) {
            keep(to, bh, &replaced);
        }
        // The journal names files by host path: changes in progress are
        // committed before a path changes.
        for n in moved.iter().chain(replaced.iter()) {
            self.commit(n)?;
        }
        if !exchange && let (Some(n), Some(d)) = (&replaced, &dst) {
            keep_reachable(Some(n), d.st_nlink)?;
        }
        self.write_sidecar(to, &b)?;
        if exchange {
            self.write_sidecar(dir, &a)?;
        }
        // Renaming a directory over an empty one: the host target still holds
        // its ID file, so the host would say ENOTEMPTY. Clear it first.
        let mut cleared: Option<(Handle, Vec<u8>)> = None;
        if !exchange
            && flags & libc::RENAME_NOREPLACE == 0
            && let Some(d) = &dst
            && Kind::from_mode(d.st_mode) == Kind::Dir
        {
            if Kind::from_mode(src.st_mode) != Kind::Dir {
                return Err(errno(libc::EISDIR));
            }
            let victim = to.handle()?.lookup(bh)?;
            self.check_empty(&victim, None)?;
            if let Ok(id) = victim.read_child(OsStr::new(dirid::FILE_NAME)) {
                victim.unlink_child(OsStr::new(dirid::FILE_NAME))?;
                cleared = Some((victim, id));
            }
        }
        // Symlink binding records (FORMAT §6.1) follow their symlinks:
        // while the rename is in flight each name's record accepts what
        // it holds now and what it will hold, so a crash at any point
        // leaves every symlink readable.
        let src_t = self.bound_targets(dir, ah, Some(&src));
        let dst_t = self.bound_targets(to, bh, dst.as_ref());
        let after_a = if exchange { dst_t.clone() } else { Vec::new() };
        let after_b = src_t.clone();
        // What a name will hold comes first: a record keeps at most
        // MAX_BOUND_TARGETS hashes, the first ones.
        let union = |x: &[[u8; 32]], y: &[[u8; 32]]| [x, y].concat();
        if !after_b.is_empty() {
            self.write_binding(to, bh, &union(&after_b, &dst_t))?;
        }
        if !after_a.is_empty() {
            self.write_binding(dir, ah, &union(&after_a, &src_t))?;
        }
        if let Err(e) = dir.handle()?.rename_child(ah, to.handle()?, bh, flags) {
            if let Some((victim, id)) = cleared {
                let _ = victim.create_child_with(OsStr::new(dirid::FILE_NAME), &id, 0o400);
            }
            let _ = self.restore_bindings((to, bh, &dst_t, &after_b), (dir, ah, &src_t, &after_a));
            return Err(e);
        }
        if self.bound_symlinks {
            self.settle_bindings(
                (to, bh, &dst_t, &after_b),
                (dir, ah, &src_t, &after_a),
                exchange,
            );
        }
        if !exchange && a.host() != b.host() {
            self.remove_sidecar(dir, &a);
        }
        if !exchange {
            self.after_rename(dir, name, ah, to, to_name, bh, &src, dst.as_ref());
        } else if self.noteworthy(dir, name) || self.noteworthy(to, to_name) {
            // An exchange is audited like a rename, both ways in one record.
            let (from, to_path) = (
                self.path_of(dir, name.as_bytes()),
                self.path_of(to, to_name.as_bytes()),
            );
            self.audit(
                crate::format::audit::Event::Rename,
                &from,
                &to_path,
                0,
                "exchanged",
            );
            self.emit(super::events::Change::Exchanged {
                a: from,
                b: to_path,
            });
        }
        if !exchange && let (Some(n), Some(d)) = (&replaced, &dst) {
            self.host_settled(n);
            n.mark_dead_if_gone(d.st_nlink);
        }
        // Lazy nodes follow their names.
        if let Some(n) = &moved {
            n.relocate(to.clone(), bh.to_owned());
            self.host_settled(n);
        }
        if exchange && let Some(n) = replaced {
            n.relocate(dir.clone(), ah.to_owned());
            self.host_settled(&n);
        }
        if carry {
            // A rename to a name that keeps history is a save of that name
            // (how most editors save); a plain rename takes the note's own
            // history along. A rename to debris (vim's note → note~) leaves
            // the history with the path.
            if dst.is_none()
                && src_versioned
                && let (Ok(from), Ok(into)) = (self.dir_id(dir), self.dir_id(to))
            {
                let r = self.move_stream(
                    dir.handle()?,
                    &super::history::stream_name(ah),
                    (&from, ah),
                    to.handle()?,
                    &super::history::stream_name(bh),
                    (&into, bh),
                    libc::RENAME_NOREPLACE,
                    (true, true),
                );
                if let Err(e) = r
                    && e.raw_os_error() != Some(libc::ENOENT)
                    && e.raw_os_error() != Some(libc::EEXIST)
                {
                    log::error!("the history of a renamed note did not move along: {e}");
                }
            }
            // The rename itself is done: history is best effort from here.
            let node = match moved {
                Some(n) => Some(n),
                None => self.node_at(to, bh).ok().map(|(n, _)| Arc::new(n)),
            };
            if let Some(node) = node {
                node.relocate(to.clone(), bh.to_owned());
                self.save_version(&node, crate::format::history::Origin::Save);
            }
        }
        Ok(())
    }
}
