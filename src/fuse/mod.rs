//! Layer 3: the thin `fuser::Filesystem` adapter. Owns the inode and handle
//! tables and errno mapping; every decision about bytes on disk belongs to
//! `vault`. Holds no key: it only calls [`Notebook`] methods.

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

use crate::vault::{Attr, DirEntry, Kind, Node, Notebook, OpenFile, Owner, Time};

/// How long the kernel may cache attributes and entries. Other programs
/// (a sync tool) may change the ciphertext while mounted: what they change
/// is invalidated as the vault's watcher reports it (issue 18.5).
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

/// Applies the vault's lifecycle plan while it is mounted (docs/FORMAT.md
/// §15): nodes the kernel still holds are committed and marked gone, and
/// each expired note is dropped from the kernel's cache at once, so it stops
/// being visible at its path. Runs outside the FUSE worker threads.
#[derive(Clone)]
pub struct Sweeper(Arc<Inodes>, Arc<std::sync::RwLock<bool>>);

impl Sweeper {
    /// Applies `plan` at `now`; `notifier` invalidates kernel entries.
    pub fn apply(
        &self,
        tree: &Notebook,
        plan: &crate::vault::expiry::Plan,
        now: std::time::SystemTime,
        notifier: Option<&fuser::Notifier>,
    ) -> io::Result<crate::vault::expiry::Applied> {
        let inodes = &self.0;
        // Inside the commit gate; the kernel is told after leaving it (a
        // notification waits on the kernel, which may wait on an operation
        // held at the gate).
        let done = {
            let _change = tree.change();
            tree.apply_lifecycle(plan, now, &|host| inodes.get(inodes.fuse_ino(host)))?
        };
        if let Some(n) = notifier {
            for (dir, name) in &done.expired {
                let _ = n.inval_entry(INodeNo(inodes.fuse_ino(*dir)), name);
            }
        }
        Ok(done)
    }
}

impl Sweeper {
    /// Asks the kernel to forget what other programs changed under it
    /// (issue 18.5): an entry whose name now holds another file, or none,
    /// and that file's cached pages. Returns how many were stale.
    pub fn outside(
        &self,
        tree: &Notebook,
        changes: &[crate::vault::tree::outside::Outside],
        notifier: &fuser::Notifier,
    ) -> usize {
        if changes.is_empty() {
            return 0;
        }
        // Never once the session has ended: a notification then could wait
        // on the kernel for ever (the filesystem answers nothing more).
        let serving = self.1.read().unwrap_or_else(|e| e.into_inner());
        if !*serving {
            return 0;
        }
        let inodes = &self.0;
        let known = inodes.named();
        let mut stale = 0;
        for c in changes {
            let parent = inodes.fuse_ino(c.dir_ino);
            let now = tree
                .lookup(&c.dir, &c.name)
                .ok()
                .map(|(_, a)| inodes.fuse_ino(a.ino));
            match known.get(&(parent, c.name.clone())) {
                Some(&old) if now != Some(old) => {
                    let _ = notifier.inval_entry(INodeNo(parent), &c.name);
                    let _ = notifier.inval_inode(INodeNo(old), 0, -1);
                    stale += 1;
                }
                Some(_) => {}
                // The table keeps one name per inode (the last looked up):
                // a name gone that it does not list may still be cached by
                // the kernel under that name. Dropping an entry the kernel
                // does not hold costs one answered notification.
                None if now.is_none() && notifier.inval_entry(INodeNo(parent), &c.name).is_ok() => {
                    stale += 1;
                }
                None => {}
            }
        }
        stale
    }

    /// After the watcher lost events (its queue overflowed): every entry
    /// the kernel holds is checked against the host as [`Sweeper::outside`]
    /// does for one. Returns how many were stale.
    pub fn recheck_all(&self, tree: &Notebook, notifier: &fuser::Notifier) -> usize {
        let serving = self.1.read().unwrap_or_else(|e| e.into_inner());
        if !*serving {
            return 0;
        }
        let inodes = &self.0;
        let mut stale = 0;
        for ((parent, name), old) in inodes.named() {
            let Some(dir) = inodes.get(parent) else {
                continue;
            };
            let now = tree
                .lookup(&dir, &name)
                .ok()
                .map(|(_, a)| inodes.fuse_ino(a.ino));
            if now != Some(old) {
                let _ = notifier.inval_entry(INodeNo(parent), &name);
                let _ = notifier.inval_inode(INodeNo(old), 0, -1);
                stale += 1;
            }
        }
        stale
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
    tree: Arc<Notebook>,
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
    /// Whether the session still answers requests (see [`Sweeper::outside`]).
    serving: Arc<std::sync::RwLock<bool>>,
    /// Which reads by other accounts are audited (issue 20.3).
    readers: readers::Readers,
}

impl QuireFs {
    /// Wraps an opened tree.
    pub fn new(tree: Arc<Notebook>, activity: Arc<Activity>) -> io::Result<QuireFs> {
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
            serving: Arc::new(std::sync::RwLock::new(true)),
            vdirs: Mutex::new(HashMap::new()),
            readers: readers::Readers::default(),
        })
    }

    /// A handle for applying lifecycle plans, taken before the filesystem
    /// moves into its session.
    pub fn sweeper(&self) -> Sweeper {
        Sweeper(self.inodes.clone(), self.serving.clone())
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

    /// `.history` and `.trash` at the root are the virtual views: no real
    /// entry may take those names (it would be hidden behind them).
    fn reserved(&self, parent: INodeNo, name: &OsStr) -> Result<(), Errno> {
        if parent.0 == 1
            && self.tree.keeps_history()
            && (name == views::HISTORY || name == views::TRASH)
        {
            return Err(Errno::EEXIST);
        }
        Ok(())
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

mod ops;
mod readers;

// Every operation that may change the vault folder runs inside the
// commit gate (`let _change = self.tree.change()`): a backup closes it for
// a moment when no change is half made (issue 19.2).
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
        let tree = self.tree.clone();
        let _change = tree.change();
        *self.serving.write().unwrap_or_else(|e| e.into_inner()) = false;
        // An idle seal says so (issue 16.7).
        let detail = self.activity.seal_detail();
        self.tree
            .audit(crate::vault::AuditEvent::Unmount, b"", b"", 0, &detail);
        self.files.lock().unwrap().clear();
        self.dirs.lock().unwrap().clear();
        log::info!("filesystem session ended");
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.op_lookup(_req, parent, name, reply)
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let _change = self.tree.change();
        if views::is_virtual(ino.0) {
            return;
        }
        if let Some(node) = self.inodes.forget(ino.0, nlookup) {
            // Its verified block MAC outlives it (while the host file is
            // unchanged), so reopening it costs no full pass.
            self.tree.content.park_mac(&node);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.op_getattr(_req, ino, _fh, reply)
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
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_setattr(
            _req, ino, mode, uid, gid, size, atime, mtime, _ctime, fh, _crtime, _chgtime,
            _bkuptime, _flags, reply,
        )
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.op_readlink(_req, ino, reply)
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
        let _change = self.tree.change();
        let _by = self.tree.acting_as(req.uid());
        self.op_mknod(req, parent, name, mode, _umask, rdev, reply)
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
        let _change = self.tree.change();
        let _by = self.tree.acting_as(req.uid());
        self.op_mkdir(req, parent, name, mode, _umask, reply)
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_unlink(_req, parent, name, reply)
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_rmdir(_req, parent, name, reply)
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        let _change = self.tree.change();
        let _by = self.tree.acting_as(req.uid());
        self.op_symlink(req, parent, link_name, target, reply)
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
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_rename(_req, parent, name, newparent, newname, flags, reply)
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_link(_req, ino, newparent, newname, reply)
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_open(_req, ino, flags, reply)
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
        self.op_read(_req, _ino, fh, offset, size, _flags, _lock_owner, reply)
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
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_write(
            _req,
            _ino,
            fh,
            offset,
            data,
            _write_flags,
            _flags,
            _lock_owner,
            reply,
        )
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_flush(_req, _ino, fh, _lock_owner, reply)
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
        let _change = self.tree.change();
        // No acting account: a release may come from a kernel worker (a
        // delayed close) with its uid 0; the closing process's `flush`
        // carries who it was.
        self.op_release(_req, _ino, fh, _flags, _lock_owner, _flush, reply)
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_fsync(_req, _ino, fh, datasync, reply)
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.op_opendir(_req, ino, _flags, reply)
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.op_readdir(_req, ino, fh, offset, reply)
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.op_readdirplus(_req, ino, fh, offset, reply)
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.op_releasedir(_req, _ino, fh, _flags, reply)
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_fsyncdir(_req, ino, _fh, _datasync, reply)
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.op_statfs(_req, _ino, reply)
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
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_setxattr(_req, ino, name, value, flags, _position, reply)
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.op_getxattr(_req, ino, name, size, reply)
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.op_listxattr(_req, ino, size, reply)
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_removexattr(_req, ino, name, reply)
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        self.op_access(_req, ino, _mask, reply)
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
        let _change = self.tree.change();
        let _by = self.tree.acting_as(req.uid());
        self.op_create(req, parent, name, mode, _umask, flags, reply)
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
        self.op_lseek(_req, _ino, fh, offset, whence, reply)
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
        let _change = self.tree.change();
        let _by = self.tree.acting_as(_req.uid());
        self.op_fallocate(_req, _ino, fh, offset, length, mode, reply)
    }
}
