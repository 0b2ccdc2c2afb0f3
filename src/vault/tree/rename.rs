//! Renaming entries (the part of the namespace with the most cases:
//! directories over directories, exchanges, symlink binding records, and
//! keeping nodes and the crash journal in step with the names). Features
//! follow through [`super::Hooks::before_rename`] and [`super::Hooks::renamed`].

use std::ffi::OsStr;
use std::io;
use std::sync::Arc;

use super::hooks::Rename;
use super::{Tree, errno, keep_reachable};
use crate::format::dirid;
use crate::store::host::Handle;
use crate::vault::node::{Kind, Node};

/// One name of a rename, for its binding record: folder, host name, the
/// target hashes it accepts before, and after.
type Side<'a> = (&'a Arc<Node>, &'a OsStr, &'a [[u8; 32]], &'a [[u8; 32]]);

impl Tree {
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
            self.hooks().may_remove(self, dir, ah)?;
            self.hooks().may_remove(self, to, bh)?;
        }
        let moved = known(src.st_ino);
        let replaced = dst.as_ref().and_then(|d| known(d.st_ino));
        let r = Rename {
            dir,
            name,
            ah,
            to,
            to_name,
            bh,
            src: &src,
            dst: dst.as_ref(),
            exchange,
            src_note: self.is_note(dir, name),
            dst_note: self.is_note(to, to_name),
            moved: moved.as_ref(),
            replaced: replaced.as_ref(),
        };
        // Content about to move away from a name or be replaced.
        self.hooks().before_rename(self, &r);
        // The journal names files by host path: changes in progress are
        // committed before a path changes.
        for n in moved.iter().chain(replaced.iter()) {
            self.content.commit_node(n)?;
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
        // A commit of a moved file checks that its name still holds it
        // (issue 18.5): it waits while the name changes under it.
        let _moving = moved
            .as_ref()
            .filter(|n| n.kind() == Kind::File)
            .map(|n| n.io.write().unwrap_or_else(|e| e.into_inner()));
        let _swapped = replaced
            .as_ref()
            .filter(|n| exchange && n.kind() == Kind::File && n.ino != src.st_ino)
            .map(|n| n.io.write().unwrap_or_else(|e| e.into_inner()));
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
        if !exchange && let (Some(n), Some(d)) = (&replaced, &dst) {
            self.content.host_settled(n);
            n.mark_dead_if_gone(d.st_nlink);
            // Its name holds another file now: an open file keeps being
            // written as an unlinked one is (POSIX), not as one replaced
            // behind the vault's back.
            if n.holds_handle() {
                n.clear_location();
            }
        }
        // Lazy nodes follow their names.
        if let Some(n) = &moved {
            n.relocate(to.clone(), bh.to_owned());
            self.content.host_settled(n);
        }
        if exchange && let Some(n) = &replaced {
            n.relocate(dir.clone(), ah.to_owned());
            self.content.host_settled(n);
        }
        drop(_moving);
        drop(_swapped);
        self.hooks().renamed(self, &r);
        Ok(())
    }
}
