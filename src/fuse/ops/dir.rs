//! Directory operations: lookups, listings (with the virtual views), creating,
//! linking, renaming and removing entries.
#![allow(clippy::too_many_arguments)] // fuser's `Filesystem` signatures, argument for argument

#[allow(unused_imports)]
use super::super::*;

impl QuireFs {
    pub(in crate::fuse) fn op_lookup(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        reply: ReplyEntry,
    ) {
        let (uid, gid) = self.view_owner();
        if parent.0 == 1 && name == views::HISTORY && self.tree.keeps_history() {
            let a = tri!(reply, self.views.history_root(&self.tree, uid, gid));
            return reply.entry(&views::VTTL, &a, Generation(0));
        }
        if parent.0 == 1 && name == views::TRASH && self.tree.keeps_history() {
            let a = tri!(reply, self.views.trash_root(&self.tree, uid, gid));
            return reply.entry(&views::VTTL, &a, Generation(0));
        }
        if views::is_virtual(parent.0) {
            let a = tri!(
                reply,
                self.views.lookup(&self.tree, parent.0, name, uid, gid)
            );
            return reply.entry(&views::VTTL, &a, Generation(0));
        }
        let dir = tri!(reply, self.node(parent));
        self.entry(reply, parent, name, self.tree.lookup(&dir, name));
    }

    pub(in crate::fuse) fn op_readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let node = tri!(reply, self.node(ino));
        let t = tri!(reply, self.tree.readlink(&node));
        reply.data(&t);
    }

    pub(in crate::fuse) fn op_mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        tri!(reply, self.reserved(parent, name));
        let dir = tri!(reply, self.node(parent));
        self.entry(
            reply,
            parent,
            name,
            self.tree
                .mknod(&dir, name, mode, rdev as u64, Self::owner(req)),
        );
    }

    pub(in crate::fuse) fn op_mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        tri!(reply, self.reserved(parent, name));
        let dir = tri!(reply, self.node(parent));
        self.entry(
            reply,
            parent,
            name,
            self.tree.mkdir(&dir, name, mode, Self::owner(req)),
        );
    }

    pub(in crate::fuse) fn op_unlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        reply: ReplyEmpty,
    ) {
        let dir = tri!(reply, self.node(parent));
        tri!(reply, self.tree.unlink(&dir, name, |i| self.known(i)));
        reply.ok();
    }

    pub(in crate::fuse) fn op_rmdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        reply: ReplyEmpty,
    ) {
        let dir = tri!(reply, self.node(parent));
        tri!(reply, self.tree.rmdir(&dir, name));
        reply.ok();
    }

    pub(in crate::fuse) fn op_symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        tri!(reply, self.reserved(parent, link_name));
        let dir = tri!(reply, self.node(parent));
        self.entry(
            reply,
            parent,
            link_name,
            self.tree
                .symlink(&dir, link_name, target.as_os_str(), Self::owner(req)),
        );
    }

    pub(in crate::fuse) fn op_rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        tri!(reply, self.reserved(newparent, newname));
        let a = tri!(reply, self.node(parent));
        let b = tri!(reply, self.node(newparent));
        tri!(
            reply,
            self.tree
                .rename(&a, name, &b, newname, flags.bits(), |i| self.known(i))
        );
        reply.ok();
    }

    pub(in crate::fuse) fn op_link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        tri!(reply, self.reserved(newparent, newname));
        let node = tri!(reply, self.node(ino));
        let dir = tri!(reply, self.node(newparent));
        let a = tri!(reply, self.tree.link(&node, &dir, newname));
        self.inodes
            .add_lookup(self.inodes.fuse_ino(a.ino), newparent.0, newname);
        reply.entry(&TTL, &self.attr(&a), Generation(0));
    }

    pub(in crate::fuse) fn op_opendir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _flags: OpenFlags,
        reply: ReplyOpen,
    ) {
        if views::is_virtual(ino.0) {
            let (uid, gid) = self.view_owner();
            let list = tri!(reply, self.views.list(&self.tree, ino.0, uid, gid));
            let fh = self.new_fh();
            self.vdirs.lock().unwrap().insert(fh, list);
            self.activity.opened();
            return reply.opened(FileHandle(fh), FopenFlags::empty());
        }
        let node = tri!(reply, self.node(ino));
        let entries = tri!(reply, self.listing(&node));
        let fh = self.new_fh();
        self.dirs.lock().unwrap().insert(
            fh,
            DirHandle {
                entries,
                read: false,
            },
        );
        self.activity.opened();
        reply.opened(FileHandle(fh), FopenFlags::empty());
    }

    pub(in crate::fuse) fn op_readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if views::is_virtual(ino.0) {
            if let Some(list) = self.vdirs.lock().unwrap().get(&fh.0) {
                let dots = [
                    (ino.0, FileType::Directory, OsStr::new(".")),
                    (1, FileType::Directory, OsStr::new("..")),
                ];
                let all = dots
                    .into_iter()
                    .chain(list.iter().map(|e| (e.ino, e.kind, e.name.as_os_str())));
                for (i, (eino, kind, name)) in all.enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(eino), (i + 1) as u64, kind, name) {
                        break;
                    }
                }
            }
            return reply.ok();
        }
        let node = tri!(reply, self.node(ino));
        tri!(
            reply,
            self.dir_handle(&node, fh, offset, |h| {
                for (i, l) in h.entries.iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(l.ino), (i + 1) as u64, l.kind, &l.name) {
                        break;
                    }
                }
            })
        );
        reply.ok();
    }

    pub(in crate::fuse) fn op_readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        if views::is_virtual(ino.0) {
            let (uid, gid) = self.view_owner();
            let me = tri!(reply, self.views.getattr(&self.tree, ino.0, uid, gid));
            if let Some(list) = self.vdirs.lock().unwrap().get(&fh.0) {
                let dots = [(OsStr::new("."), me), (OsStr::new(".."), me)];
                let all = dots
                    .into_iter()
                    .chain(list.iter().map(|e| (e.name.as_os_str(), e.attr)));
                for (i, (name, a)) in all.enumerate().skip(offset as usize) {
                    if reply.add(a.ino, (i + 1) as u64, name, &views::VTTL, &a, Generation(0)) {
                        break;
                    }
                }
            }
            return reply.ok();
        }
        let node = tri!(reply, self.node(ino));
        let dir_attr = tri!(reply, self.tree.getattr(&node));
        let dir_attr = self.attr(&dir_attr);
        tri!(
            reply,
            self.dir_handle(&node, fh, offset, |h| {
                for (i, l) in h.entries.iter().enumerate().skip(offset as usize) {
                    let off = (i + 1) as u64;
                    let Some(e) = &l.entry else {
                        // The kernel takes no reference for "." and "..".
                        if reply.add(dir_attr.ino, off, &l.name, &TTL, &dir_attr, Generation(0)) {
                            break;
                        }
                        continue;
                    };
                    let (child, attr) = match self.tree.lookup_entry(&node, e) {
                        Ok(x) => x,
                        // Removed since the snapshot: skipped.
                        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                        // Anything else ends this batch; the kernel asks
                        // again from here rather than missing an entry.
                        Err(_) => break,
                    };
                    let fattr = self.attr(&attr);
                    if reply.add(fattr.ino, off, &l.name, &TTL, &fattr, Generation(0)) {
                        break;
                    }
                    self.inodes.remember(child, attr.ino, ino.0, &l.name);
                }
            })
        );
        reply.ok();
    }

    pub(in crate::fuse) fn op_releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        if self.dirs.lock().unwrap().remove(&fh.0).is_some()
            || self.vdirs.lock().unwrap().remove(&fh.0).is_some()
        {
            self.activity.closed();
        }
        reply.ok();
    }

    pub(in crate::fuse) fn op_fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let node = tri!(reply, self.node(ino));
        tri!(reply, self.tree.fsync_dir(&node));
        reply.ok();
    }
}
