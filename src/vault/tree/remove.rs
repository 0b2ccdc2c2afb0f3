//! Removing names: unlinking files (which the trash may take instead, and
//! a retained note refuses) and removing empty folders, with the leftovers
//! of interrupted operations cleared on the way.

use std::ffi::OsStr;
use std::io;
use std::sync::Arc;

use super::hooks::{Reason, Removal};
use super::{Tree, errno, keep_reachable};
use crate::format::{dirid, names};
use crate::store::host::Handle;
use crate::vault::node::{Kind, Node};

impl Tree {
    /// Removes a non-directory name.
    /// `known` maps a host inode number to the node the caller (the FUSE
    /// inode table) still holds for it, if any.
    pub fn unlink(
        &self,
        dir: &Arc<Node>,
        name: &OsStr,
        known: impl Fn(u64) -> Option<Arc<Node>>,
    ) -> io::Result<()> {
        self.writable()?;
        let hn = self.host_name(dir, name)?;
        // A retained note cannot be deleted (docs/FORMAT.md §15).
        self.hooks().may_remove(self, dir, OsStr::new(hn.host()))?;
        self.remove_file(dir, name, hn, &known, Reason::Deleted)
    }

    /// Removes a non-directory name, to the trash with `reason` where the
    /// trash takes it (a feature [`super::Hooks::take`]s it).
    pub(crate) fn remove_file(
        &self,
        dir: &Arc<Node>,
        name: &OsStr,
        hn: names::HostName,
        known: &dyn Fn(u64) -> Option<Arc<Node>>,
        reason: Reason,
    ) -> io::Result<()> {
        let host = OsStr::new(hn.host());
        let st = dir.handle()?.stat_child(host)?;
        let node = known(st.st_ino);
        if let Some(n) = &node {
            self.content.commit_node(n)?;
        }
        keep_reachable(node.as_deref(), st.st_nlink)?;
        let removal = Removal {
            dir,
            name,
            host,
            st: &st,
            node: node.as_deref(),
            reason,
        };
        let trashed = self.hooks().take(self, &removal)?;
        // A long symlink's target file (§6.2), named by its host target.
        let long_id = (!trashed
            && Kind::from_mode(st.st_mode) == Kind::Symlink
            && st.st_nlink <= 1
            && st.st_size as usize == crate::format::records::LONG_HOST_LEN)
            .then(|| dir.handle().ok()?.readlink_child(host).ok())
            .flatten()
            .and_then(|t| crate::format::records::parse_long_host_target(&t));
        // Its attributes go with its last name (§7.1).
        let attrs = (!trashed && st.st_nlink <= 1)
            .then(|| self.file_id_at(dir.handle().ok()?, host))
            .flatten()
            .filter(|id| !self.id_in_use_near(dir, host, id, true));
        if !trashed {
            dir.handle()?.unlink_child(host)?;
            if let Some(id) = attrs {
                self.drop_xattrs(&id);
            }
            if Kind::from_mode(st.st_mode) == Kind::Symlink && self.bound_symlinks {
                self.drop_binding(dir, host);
            }
            if let Some((id, _)) = long_id {
                // Its last name gone: a long target's file goes too (§6.2).
                self.drop_long_target(&id);
            }
        }
        self.hooks().removed(self, &removal, trashed);
        if let Some(n) = &node {
            self.content.host_settled(n);
            n.mark_dead_if_gone(st.st_nlink);
            if st.st_nlink <= 1 && n.holds_handle() {
                n.clear_location();
            }
        }
        self.remove_sidecar(dir, &hn);
        Ok(())
    }

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
        let attrs = self
            .sealed_xattrs()
            .then(|| self.dir_id(&victim_node).ok())
            .flatten();
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
        if let Some(id) = attrs {
            self.drop_xattrs(&id);
        }
        let removal = Removal {
            dir,
            name,
            host,
            st: &st,
            node: None,
            reason: Reason::Deleted,
        };
        self.hooks().removed(self, &removal, false);
        Ok(())
    }

    /// ENOTEMPTY unless `dir` holds only its ID. Leftovers of an interrupted
    /// mkdir (an empty `.quire-mkdir-*`) and sidecars whose entry is gone are
    /// removed on the way; anything else (a sync tool's file, say) keeps the
    /// folder non-empty and is logged, so nothing unknown is deleted.
    pub(crate) fn check_empty(&self, dir: &Handle, node: Option<&Arc<Node>>) -> io::Result<()> {
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
            // A feature's file beside a note that is gone (its history,
            // its dates): the feature says whether it goes.
            if let Some(r) = self.hooks().leftover(self, dir, node, n, &present) {
                r?;
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
            if s.starts_with(super::NEW_PREFIX) {
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
}
