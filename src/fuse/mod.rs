//! Layer 3: the thin `fuser::Filesystem` adapter. Owns the inode and handle
//! tables and errno mapping; every decision about bytes on disk belongs to
//! `vault`. Holds no key: it only calls [`Tree`] methods.

mod activity;
mod inodes;
mod views;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

pub use activity::Activity;
use inodes::Inodes;

use crate::vault::{Attr, DirEntry, Kind, Node, OpenFile, Owner, Time, Tree};

/// How long the kernel may cache attributes and entries. Quire is the only
/// writer of the ciphertext while mounted (the vault lock), so caching is safe.
const TTL: Duration = Duration::from_secs(10);

/// Largest write the kernel may send in one request.
const MAX_WRITE: u32 = 1 << 20;

fn errno_of(e: &io::Error) -> Errno {
    let code = e.raw_os_error().unwrap_or_else(|| {
        log::error!("internal error reported as EIO: {:?}", e.kind());
        libc::EIO
    });
    if code == libc::EMFILE || code == libc::ENFILE {
        // Every file the kernel remembers holds one host handle; say once
        // what to do when that runs out.
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            log::error!(
                "out of file handles: the vault has more files in use than the open-file limit; raise it (ulimit -n / LimitNOFILE) and remount"
            )
        });
    }
    Errno::from_i32(code)
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::Socket => FileType::Socket,
        Kind::CharDev => FileType::CharDevice,
        Kind::BlockDev => FileType::BlockDevice,
    }
}

fn to_time(t: TimeOrNow) -> Time {
    match t {
        TimeOrNow::Now => Time::Now,
        TimeOrNow::SpecificTime(st) => match st.duration_since(UNIX_EPOCH) {
            Ok(d) => Time::At(d.as_secs() as i64, d.subsec_nanos() as i64),
            Err(e) => {
                let d = e.duration();
                let (mut s, mut n) = (-(d.as_secs() as i64), -(d.subsec_nanos() as i64));
                if n < 0 {
                    s -= 1;
                    n += 1_000_000_000;
                }
                Time::At(s, n)
            }
        },
    }
}

/// Keeps the number of remembered nodes (each holding a host descriptor)
/// under the open-file limit by asking the kernel to drop the least recently
/// used entries from its cache; it then forgets them. Must run outside the
/// FUSE worker threads (a notification from inside a request can deadlock).
#[derive(Clone)]
pub struct Pressure(Arc<Inodes>);

impl Pressure {
    /// One round: once nodes use all but a reserve of the `limit`
    /// descriptors (an eighth of it, at least 128, kept for open files and
    /// the daemon itself), ask the kernel to drop the least recently used
    /// entries until twice the reserve is free. Below that the kernel's cache
    /// is left alone: every dropped entry costs a lookup later. Relief must
    /// come early: an entry cannot be dropped while a request holds its
    /// folder, so waiting until descriptors run out could stall.
    pub fn relieve(&self, limit: u64, notifier: &fuser::Notifier) -> usize {
        let reserve = (limit / 8).max(128).min(limit / 2);
        let high = limit - reserve;
        let low = limit.saturating_sub(2 * reserve);
        self.0.high_water.store(high, Ordering::Relaxed);
        let n = crate::vault::open_handles() as u64;
        if n <= high {
            return 0;
        }
        let victims = self.0.victims((n - low) as usize);
        let count = victims.len();
        for (parent, name) in victims {
            // ENOENT: the kernel had already dropped it.
            let _ = notifier.inval_entry(INodeNo(parent), &name);
        }
        count
    }

    /// Wakes the pressure thread at once (host descriptors ran out).
    pub fn wake(&self) {
        self.0.wake();
    }

    /// Waits until the table grows past the high-water mark, or `timeout`.
    pub fn wait(&self, timeout: std::time::Duration) {
        self.0.wait(timeout);
    }
}

/// A directory handle: a snapshot of the listing taken at opendir (and
/// re-taken on rewind), so offsets stay stable while entries change.
struct DirHandle {
    entries: Vec<Listed>,
    /// Whether a readdir has been answered since the snapshot was taken.
    read: bool,
}

/// One entry of a directory snapshot; `entry` is `None` for `.` and `..`.
struct Listed {
    ino: u64,
    kind: FileType,
    name: std::ffi::OsString,
    entry: Option<DirEntry>,
}

/// The mounted filesystem.
pub struct QuireFs {
    tree: Arc<Tree>,
    inodes: Arc<Inodes>,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, DirHandle>>,
    next_fh: AtomicU64,
    activity: Arc<Activity>,
    views: views::Views,
    /// Open versions (read-only, decrypted in memory, wiped on release).
    vfiles: Mutex<HashMap<u64, Arc<zeroize::Zeroizing<Vec<u8>>>>>,
    /// Open virtual folders.
    vdirs: Mutex<HashMap<u64, Vec<views::VEntry>>>,
}

impl QuireFs {
    /// Wraps an opened tree.
    pub fn new(tree: Arc<Tree>, activity: Arc<Activity>) -> io::Result<QuireFs> {
        let root = tree.root();
        let root_attr = tree.getattr(&root)?;
        Ok(QuireFs {
            inodes: Arc::new(Inodes::new(root, root_attr.ino)),
            tree,
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            activity,
            views: views::Views::default(),
            vfiles: Mutex::new(HashMap::new()),
            vdirs: Mutex::new(HashMap::new()),
        })
    }

    /// A handle for [`Pressure::relieve`], taken before the filesystem moves
    /// into its session.
    pub fn pressure(&self) -> Pressure {
        Pressure(self.inodes.clone())
    }

    fn attr(&self, a: &Attr) -> FileAttr {
        FileAttr {
            ino: INodeNo(self.inodes.fuse_ino(a.ino)),
            size: a.size,
            blocks: a.blocks,
            atime: a.atime,
            mtime: a.mtime,
            ctime: a.ctime,
            crtime: a.ctime,
            kind: file_type(a.kind),
            perm: a.perm,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            rdev: a.rdev,
            blksize: 4096,
            flags: 0,
        }
    }

    fn node(&self, ino: INodeNo) -> Result<Arc<Node>, Errno> {
        self.activity.touch();
        if views::is_virtual(ino.0) {
            // Everything not answered by the views is a change: refused.
            return Err(Errno::EROFS);
        }
        self.inodes.get(ino.0).ok_or(Errno::ESTALE)
    }

    /// Owner shown for virtual entries: the vault root's.
    fn view_owner(&self) -> (u32, u32) {
        self.tree
            .getattr(&self.tree.root())
            .map(|a| (a.uid, a.gid))
            .unwrap_or((0, 0))
    }

    fn owner(req: &Request) -> Option<Owner> {
        Some(Owner {
            uid: req.uid(),
            gid: req.gid(),
        })
    }

    fn entry(&self, reply: ReplyEntry, parent: INodeNo, name: &OsStr, r: io::Result<(Node, Attr)>) {
        match r {
            Ok((node, attr)) => {
                self.inodes.remember(node, attr.ino, parent.0, name);
                reply.entry(&TTL, &self.attr(&attr), Generation(0));
            }
            Err(e) => reply.error(errno_of(&e)),
        }
    }

    /// The node the kernel still holds for a host inode, if any.
    fn known(&self, host_ino: u64) -> Option<Arc<Node>> {
        self.inodes.get(self.inodes.fuse_ino(host_ino))
    }

    fn new_fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    fn file(&self, fh: FileHandle) -> Result<Arc<OpenFile>, Errno> {
        self.files
            .lock()
            .unwrap()
            .get(&fh.0)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    fn listing(&self, dir: &Node) -> io::Result<Vec<Listed>> {
        let dot = |name: &str| Listed {
            ino: 1,
            kind: FileType::Directory,
            name: name.into(),
            entry: None,
        };
        let mut v = vec![dot("."), dot("..")];
        for e in self.tree.read_dir(dir)? {
            v.push(Listed {
                ino: self.inodes.fuse_ino(e.ino),
                kind: file_type(e.kind),
                name: e.name.clone(),
                entry: Some(e),
            });
        }
        Ok(v)
    }

    fn dir_handle<R>(
        &self,
        node: &Node,
        fh: FileHandle,
        offset: u64,
        f: impl FnOnce(&DirHandle) -> R,
    ) -> Result<R, Errno> {
        let mut dirs = self.dirs.lock().unwrap();
        let h = dirs.get_mut(&fh.0).ok_or(Errno::EBADF)?;
        if offset == 0 && h.read {
            // rewinddir: show the directory as it is now.
            if let Ok(e) = self.listing(node) {
                h.entries = e;
            }
        }
        h.read = true;
        Ok(f(h))
    }
}

macro_rules! tri {
    ($reply:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => {
                $reply.error(e.into_errno());
                return;
            }
        }
    };
}

trait IntoErrno {
    fn into_errno(self) -> Errno;
}
impl IntoErrno for Errno {
    fn into_errno(self) -> Errno {
        self
    }
}
impl IntoErrno for io::Error {
    fn into_errno(self) -> Errno {
        errno_of(&self)
    }
}

impl Filesystem for QuireFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        let _ = config.set_max_write(MAX_WRITE);
        let _ = config.set_max_readahead(MAX_WRITE);
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_PARALLEL_DIROPS);
        // open(O_TRUNC) arrives as one request, so truncating and rewriting
        // a file is one change that a crash rolls back whole.
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_ATOMIC_O_TRUNC);
        // One round trip for a listing and its attributes (ls -l, find, grep -r).
        let _ = config.add_capabilities(
            fuser::InitFlags::FUSE_DO_READDIRPLUS | fuser::InitFlags::FUSE_READDIRPLUS_AUTO,
        );
        Ok(())
    }

    fn destroy(&mut self) {
        self.files.lock().unwrap().clear();
        self.dirs.lock().unwrap().clear();
        log::info!("filesystem session ended");
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
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

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if views::is_virtual(ino.0) {
            return;
        }
        self.inodes.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if views::is_virtual(ino.0) {
            let (uid, gid) = self.view_owner();
            let a = tri!(reply, self.views.getattr(&self.tree, ino.0, uid, gid));
            return reply.attr(&views::VTTL, &a);
        }
        let node = tri!(reply, self.node(ino));
        let a = tri!(reply, self.tree.getattr(&node));
        reply.attr(&TTL, &self.attr(&a));
    }

    fn setattr(
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

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let node = tri!(reply, self.node(ino));
        let t = tri!(reply, self.tree.readlink(&node));
        reply.data(&t);
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let dir = tri!(reply, self.node(parent));
        self.entry(
            reply,
            parent,
            name,
            self.tree
                .mknod(&dir, name, mode, rdev as u64, Self::owner(req)),
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let dir = tri!(reply, self.node(parent));
        self.entry(
            reply,
            parent,
            name,
            self.tree.mkdir(&dir, name, mode, Self::owner(req)),
        );
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let dir = tri!(reply, self.node(parent));
        tri!(reply, self.tree.unlink(&dir, name, |i| self.known(i)));
        reply.ok();
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let dir = tri!(reply, self.node(parent));
        tri!(reply, self.tree.rmdir(&dir, name));
        reply.ok();
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        let dir = tri!(reply, self.node(parent));
        self.entry(
            reply,
            parent,
            link_name,
            self.tree
                .symlink(&dir, link_name, target.as_os_str(), Self::owner(req)),
        );
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let a = tri!(reply, self.node(parent));
        let b = tri!(reply, self.node(newparent));
        tri!(
            reply,
            self.tree
                .rename(&a, name, &b, newname, flags.bits(), |i| self.known(i))
        );
        reply.ok();
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let node = tri!(reply, self.node(ino));
        let dir = tri!(reply, self.node(newparent));
        let a = tri!(reply, self.tree.link(&node, &dir, newname));
        self.inodes
            .add_lookup(self.inodes.fuse_ino(a.ino), newparent.0, newname);
        reply.entry(&TTL, &self.attr(&a), Generation(0));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        if views::is_virtual(ino.0) {
            if write {
                return reply.error(Errno::EROFS);
            }
            let c = tri!(reply, self.views.content(&self.tree, ino.0));
            let fh = self.new_fh();
            self.vfiles.lock().unwrap().insert(fh, Arc::new(c));
            self.activity.opened();
            return reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
        }
        let node = tri!(reply, self.node(ino));
        let of = tri!(reply, self.tree.open(node, write));
        if write && flags.0 & libc::O_TRUNC != 0 {
            tri!(reply, self.tree.truncate(&of, 0));
        }
        let fh = self.new_fh();
        self.files.lock().unwrap().insert(fh, Arc::new(of));
        self.activity.opened();
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
    }

    fn read(
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

    fn write(
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

    fn flush(
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

    fn release(
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

    fn fsync(
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

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
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

    fn readdir(
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

    fn readdirplus(
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

    fn releasedir(
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

    fn fsyncdir(
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

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
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

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let node = tri!(reply, self.node(ino));
        tri!(reply, self.tree.set_xattr(&node, name, value, flags));
        reply.ok();
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if views::is_virtual(ino.0) {
            return reply.error(Errno::ENODATA);
        }
        let node = tri!(reply, self.node(ino));
        let v = tri!(reply, self.tree.get_xattr(&node, name));
        if size == 0 {
            reply.size(v.len() as u32);
        } else if v.len() > size as usize {
            reply.error(Errno::ERANGE);
        } else {
            reply.data(&v);
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        if views::is_virtual(ino.0) {
            return reply.size(0);
        }
        let node = tri!(reply, self.node(ino));
        let names = tri!(reply, self.tree.list_xattr(&node));
        let mut buf = Vec::new();
        for n in names {
            buf.extend_from_slice(&n);
            buf.push(0);
        }
        if size == 0 {
            reply.size(buf.len() as u32);
        } else if buf.len() > size as usize {
            reply.error(Errno::ERANGE);
        } else {
            reply.data(&buf);
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let node = tri!(reply, self.node(ino));
        tri!(reply, self.tree.remove_xattr(&node, name));
        reply.ok();
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // default_permissions: the kernel checks modes itself.
        if views::is_virtual(ino.0) {
            return reply.ok();
        }
        tri!(reply, self.node(ino));
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
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

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        // Files have no holes (sparse ranges are sealed zero blocks), so
        // SEEK_DATA finds data everywhere and SEEK_HOLE finds only the end.
        let of = tri!(reply, self.file(fh));
        let size = tri!(reply, self.tree.getattr(of.node()).map(|a| a.size)) as i64;
        match whence {
            libc::SEEK_DATA if offset < size => reply.offset(offset.max(0)),
            libc::SEEK_HOLE if offset < size => reply.offset(size),
            libc::SEEK_DATA | libc::SEEK_HOLE => reply.error(Errno::ENXIO),
            _ => reply.error(Errno::EINVAL),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        if mode != 0 {
            // Punching holes or zeroing ranges would need sealed zero blocks
            // in place; not offered, as on several local filesystems.
            reply.error(Errno::EOPNOTSUPP);
            return;
        }
        let of = tri!(reply, self.file(fh));
        let size = tri!(reply, self.tree.getattr(of.node()).map(|a| a.size));
        if offset + length > size {
            tri!(reply, self.tree.truncate(&of, offset + length));
        }
        reply.ok();
    }
}
