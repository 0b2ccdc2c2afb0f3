//! File operations: attributes, open/read/write, the close that commits, fsync,
//! create, lseek, fallocate, statfs.
#![allow(clippy::too_many_arguments)] // fuser's `Filesystem` signatures, argument for argument

#[allow(unused_imports)]
use super::super::*;

impl QuireFs {
    pub(in crate::fuse) fn op_getattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: Option<FileHandle>,
        reply: ReplyAttr,
    ) {
        if views::is_virtual(ino.0) {
            let (uid, gid) = self.view_owner();
            let a = tri!(reply, self.views.getattr(&self.tree, ino.0, uid, gid));
            return reply.attr(&views::VTTL, &a);
        }
        let node = tri!(reply, self.node(ino));
        let a = tri!(reply, self.tree.getattr(&node));
        reply.attr(&TTL, &self.attr(&a));
    }

    pub(in crate::fuse) fn op_setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let node = tri!(reply, self.node(ino));
        if let Some(m) = mode {
            tri!(reply, self.tree.chmod(&node, m));
        }
        if uid.is_some() || gid.is_some() {
            tri!(reply, self.tree.chown(&node, uid, gid));
        }
        if let Some(s) = size {
            if node.kind() == Kind::Dir {
                reply.error(Errno::EISDIR);
                return;
            }
            let open = fh.and_then(|fh| self.files.lock().unwrap().get(&fh.0).cloned());
            let r = match open {
                Some(of) if of.writable() => self.tree.truncate(&of, s),
                _ => self.tree.truncate_node(node.clone(), s),
            };
            tri!(reply, r);
        }
        if atime.is_some() || mtime.is_some() {
            let a = atime.map(to_time).unwrap_or(Time::Omit);
            let m = mtime.map(to_time).unwrap_or(Time::Omit);
            tri!(reply, self.tree.utimens(&node, a, m));
        }
        let a = tri!(reply, self.tree.getattr(&node));
        reply.attr(&TTL, &self.attr(&a));
    }

    pub(in crate::fuse) fn op_open(
        &self,
        _req: &Request,
        ino: INodeNo,
        flags: OpenFlags,
        reply: ReplyOpen,
    ) {
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        if views::is_virtual(ino.0) {
            if write {
                return reply.error(Errno::EROFS);
            }
            // A trash entry may be any size: read through a handle in
            // bounded pieces, like a note (issue 16.12). Versions (at most
            // 64 MiB) are held whole.
            if let Some(id) = self.views.trash_entry(ino.0) {
                let of = tri!(reply, self.tree.open_trash_entry(&id));
                let fh = self.new_fh();
                self.files.lock().unwrap().insert(fh, Arc::new(of));
                self.activity.opened();
                return reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
            let c = tri!(reply, self.views.content(&self.tree, ino.0));
            if let Some((dir, name, number)) = self.views.version_of(ino.0)
                && self.readers.due(_req.uid(), ino.0, number)
            {
                let who = super::super::readers::account(_req.uid());
                self.tree
                    .record_version_read(&dir, &name, number, _req.uid(), &who);
            }
            let fh = self.new_fh();
            self.vfiles.lock().unwrap().insert(fh, Arc::new(c));
            self.activity.opened();
            return reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
        }
        let node = tri!(reply, self.node(ino));
        let of = tri!(reply, self.tree.open(node.clone(), write));
        if self.readers.due(_req.uid(), ino.0, 0) {
            let who = super::super::readers::account(_req.uid());
            self.tree.record_read(&node, _req.uid(), &who);
        }
        if write && flags.0 & libc::O_TRUNC != 0 {
            tri!(reply, self.tree.truncate(&of, 0));
        }
        let fh = self.new_fh();
        self.files.lock().unwrap().insert(fh, Arc::new(of));
        self.activity.opened();
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
    }

    pub(in crate::fuse) fn op_read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.activity.touch();
        let v = self.vfiles.lock().unwrap().get(&fh.0).cloned();
        if let Some(v) = v {
            let start = (offset as usize).min(v.len());
            let end = start.saturating_add(size as usize).min(v.len());
            return reply.data(&v[start..end]);
        }
        let of = tri!(reply, self.file(fh));
        let mut reply = Some(reply);
        let r = self.tree.read_with(&of, offset, size, |data| {
            if let Some(r) = reply.take() {
                r.data(data);
            }
        });
        if let (Err(e), Some(r)) = (r, reply) {
            r.error(errno_of(&e));
        }
    }

    /// `SEEK_DATA` / `SEEK_HOLE` from the file's hole runs (issue 16.14);
    /// the kernel answers `SEEK_SET`/`CUR`/`END` itself.
    pub(in crate::fuse) fn op_lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        self.activity.touch();
        let data = match whence {
            libc::SEEK_DATA => true,
            libc::SEEK_HOLE => false,
            _ => return reply.error(Errno::EINVAL),
        };
        if offset < 0 {
            return reply.error(Errno::ENXIO);
        }
        if let Some(v) = self.vfiles.lock().unwrap().get(&fh.0).cloned() {
            // A version or trash entry (held in memory): all data.
            let len = v.len() as i64;
            return if offset >= len {
                reply.error(Errno::ENXIO)
            } else {
                reply.offset(if data { offset } else { len })
            };
        }
        let of = tri!(reply, self.file(fh));
        match self.tree.seek_data(&of, offset as u64, data) {
            Ok(o) => reply.offset(o as i64),
            Err(e) => reply.error(errno_of(&e)),
        }
    }

    pub(in crate::fuse) fn op_write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.activity.touch();
        let of = tri!(reply, self.file(fh));
        let n = tri!(reply, self.tree.write(&of, offset, data));
        reply.written(n as u32);
    }

    pub(in crate::fuse) fn op_flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() waits for flush (release is sent after it returns), so
        // this is where a close commits.
        if let Ok(of) = self.file(fh) {
            tri!(reply, self.tree.flush(&of));
        }
        reply.ok();
    }

    pub(in crate::fuse) fn op_release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if self.vfiles.lock().unwrap().remove(&fh.0).is_some() {
            self.activity.closed();
            return reply.ok();
        }
        let of = self.files.lock().unwrap().remove(&fh.0);
        if let Some(of) = of {
            self.activity.closed();
            tri!(reply, self.tree.release(&of));
        }
        reply.ok();
    }

    pub(in crate::fuse) fn op_fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let of = tri!(reply, self.file(fh));
        tri!(reply, self.tree.fsync(&of, datasync));
        reply.ok();
    }

    pub(in crate::fuse) fn op_statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = tri!(reply, self.tree.statfs());
        reply.statfs(
            s.f_blocks,
            s.f_bfree,
            s.f_bavail,
            s.f_files,
            s.f_ffree,
            s.f_bsize as u32,
            255,
            s.f_frsize as u32,
        );
    }

    pub(in crate::fuse) fn op_access(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mask: AccessFlags,
        reply: ReplyEmpty,
    ) {
        // default_permissions: the kernel checks modes itself.
        if views::is_virtual(ino.0) {
            return reply.ok();
        }
        tri!(reply, self.node(ino));
        reply.ok();
    }

    pub(in crate::fuse) fn op_create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        tri!(reply, self.reserved(parent, name));
        let dir = tri!(reply, self.node(parent));
        let excl = flags & libc::O_EXCL != 0;
        let (node, attr, file) = tri!(
            reply,
            self.tree.create(&dir, name, mode, excl, Self::owner(req))
        );
        let node = self.inodes.remember(node, attr.ino, parent.0, name);
        let of = self.tree.open_created(node, file);
        let mut attr = attr;
        // The name may have existed after all (created meanwhile by another
        // process): O_TRUNC is ours to honour (FUSE_ATOMIC_O_TRUNC).
        if flags & libc::O_TRUNC != 0 && attr.size > 0 {
            tri!(reply, self.tree.truncate(&of, 0));
            attr = tri!(reply, self.tree.getattr(of.node()));
        }
        let fh = self.new_fh();
        self.files.lock().unwrap().insert(fh, Arc::new(of));
        self.activity.opened();
        reply.created(
            &TTL,
            &self.attr(&attr),
            Generation(0),
            FileHandle(fh),
            FopenFlags::FOPEN_KEEP_CACHE,
        );
    }

    pub(in crate::fuse) fn op_fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let of = tri!(reply, self.file(fh));
        tri!(reply, self.tree.fallocate(&of, offset, length, mode));
        reply.ok();
    }
}
