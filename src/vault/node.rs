//! A node of an unlocked vault's tree, and its plaintext attributes.

use std::ffi::OsString;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::crypto::AeadKey;
use crate::format::content;
use crate::store::host::Handle;

/// The kind of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Character device.
    CharDev,
    /// Block device.
    BlockDev,
}

impl Kind {
    pub(crate) fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::CharDev,
            libc::S_IFBLK => Kind::BlockDev,
            _ => Kind::File,
        }
    }
}

/// Plaintext attributes of a node, as `stat` should show them.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    /// Host inode number: stable while the node is known, shared by hard links.
    pub ino: u64,
    /// Kind.
    pub kind: Kind,
    /// Plaintext size.
    pub size: u64,
    /// 512-byte blocks used on the host.
    pub blocks: u64,
    /// Access time.
    pub atime: SystemTime,
    /// Modification time.
    pub mtime: SystemTime,
    /// Status change time.
    pub ctime: SystemTime,
    /// Permission bits (including setuid/setgid/sticky).
    pub perm: u16,
    /// Hard link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for device nodes.
    pub rdev: u32,
}

fn time(s: i64, ns: i64) -> SystemTime {
    if s >= 0 {
        UNIX_EPOCH + Duration::new(s as u64, ns as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(s.unsigned_abs()) + Duration::from_nanos(ns as u64)
    }
}

impl Attr {
    pub(crate) fn from_host(st: &libc::stat, layout: content::Layout) -> Attr {
        let kind = Kind::from_mode(st.st_mode);
        let size = match kind {
            // A torn tail reports the readable prefix; reads of the tail fail.
            Kind::File => layout.plain_size(st.st_size as u64).unwrap_or_else(|| {
                let body = (st.st_size as u64).saturating_sub(layout.header_len());
                body / content::CBLOCK * content::BLOCK
            }),
            // A symlink's size is its plaintext target length; the host holds
            // base64url(nonce ‖ target ‖ tag).
            Kind::Symlink => ((st.st_size as u64) * 3 / 4).saturating_sub(28),
            _ => st.st_size as u64,
        };
        Attr {
            ino: st.st_ino,
            kind,
            size,
            blocks: st.st_blocks as u64,
            atime: time(st.st_atime, st.st_atime_nsec),
            mtime: time(st.st_mtime, st.st_mtime_nsec),
            ctime: time(st.st_ctime, st.st_ctime_nsec),
            perm: (st.st_mode & 0o7777) as u16,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev as u32,
        }
    }
}

/// Per-file key material, read once from the file's header.
pub(crate) struct FileKey {
    pub(crate) id: [u8; 16],
    pub(crate) key: AeadKey,
}

/// Number of nodes currently holding a host handle (one descriptor each).
static HANDLES: AtomicUsize = AtomicUsize::new(0);

/// How many host descriptors nodes hold right now.
pub fn open_handles() -> usize {
    HANDLES.load(Ordering::Relaxed)
}

/// One node of the tree. Shared by every name (hard link) and open handle of
/// the same host inode, so the content lock covers them all.
///
/// Folders hold an `O_PATH` handle from the start. Other nodes are lazy:
/// they remember where they were seen (parent folder and host name) and
/// open their handle only when an operation needs it, so listing, creating
/// and removing files costs no descriptor. The fuse layer keeps the location
/// current across renames (`Node::relocate`) and pins a node whose name is
/// about to go away while another name or an open file may still reach it.
pub struct Node {
    pub(crate) ino: u64,
    fd: OnceLock<Handle>,
    loc: Mutex<Option<(Arc<Node>, OsString)>>,
    pub(crate) kind: Kind,
    pub(crate) dir_id: OnceLock<[u8; 16]>,
    /// Serialises writers against readers of the content blocks. Shared
    /// by every node of one host file (see [`Node::content_lock`]).
    pub(crate) io: Arc<RwLock<()>>,
    pub(crate) file_key: OnceLock<FileKey>,
    /// The block MAC of the file's slots as they are on the host (flag
    /// `BLOCK_MAC`, FORMAT §4.2): `None` until verified against the
    /// header, then kept current by every change.
    pub(crate) mac: Mutex<Option<MacState>>,
    /// The host file's (ctime s, ns, size) right after Quire last verified
    /// or changed it, while `mac` is set: a later open that finds another
    /// state verifies the MAC again (something else wrote the host file).
    pub(crate) host_seen: Mutex<Option<(i64, i64, i64)>>,
    /// For a symlink (flag `BOUND_SYMLINKS`, FORMAT §6.1): the hash of
    /// the host target the binding record of the name it was last looked
    /// up by (or created, linked, read as) accepted; `None` if that failed.
    /// A host symlink's target cannot change in place, so this holds for
    /// every name of the inode while nothing newer was looked up.
    pub(crate) link_ok: Mutex<Option<[u8; 32]>>,
    /// Open file handles on this node.
    pub(crate) opens: AtomicUsize,
    /// Handles open for writing: the last one to close commits.
    pub(crate) writers: AtomicUsize,
    /// Crash-undo state between a first change and its commit.
    pub(crate) undo: Mutex<Option<super::journal::Session>>,
    /// Set once the file's last name is gone and nothing holds it open: its
    /// host inode number may then be reused by a new file, which must get a
    /// fresh node (not this one's cached key).
    dead: std::sync::atomic::AtomicBool,
    /// Written since the last version was recorded.
    pub(crate) changed: std::sync::atomic::AtomicBool,
    /// Another program replaced or removed the host file under the node's
    /// name while it was open here (issue 18.5): writes are refused.
    pub(crate) replaced: std::sync::atomic::AtomicBool,
    /// What a feature keeps per node while it records the node's versions
    /// (the history: where its stream ends), opaque to the core; holding
    /// the lock serialises those records.
    pub(crate) recorder: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// When a version was last recorded (or found unchanged).
    pub(crate) last_version: Mutex<Option<std::time::Instant>>,
    /// When this mount created the file, if it did.
    pub(crate) created: OnceLock<std::time::Instant>,
    /// For a folder: whether its notes keep history (no `.git` above).
    pub(crate) versioned: OnceLock<bool>,
    /// Whether the note starts with `---` (front matter, docs/FORMAT.md
    /// §15), as its last write at offset 0 showed: 0 unknown, 1 yes, 2 no.
    pub(crate) front_matter: std::sync::atomic::AtomicU8,
}

impl Node {
    pub(crate) fn new(handle: Handle, kind: Kind, ino: u64) -> Node {
        let fd = OnceLock::new();
        let _ = fd.set(handle);
        HANDLES.fetch_add(1, Ordering::Relaxed);
        Node::with(fd, None, kind, ino)
    }

    /// A node for a host file outside the tree (a trash entry's content).
    pub(crate) fn detached(handle: Handle, ino: u64) -> Node {
        Node::new(handle, Kind::File, ino)
    }

    pub(crate) fn lazy(parent: Arc<Node>, host: OsString, kind: Kind, ino: u64) -> Node {
        Node::with(OnceLock::new(), Some((parent, host)), kind, ino)
    }

    fn with(
        fd: OnceLock<Handle>,
        loc: Option<(Arc<Node>, OsString)>,
        kind: Kind,
        ino: u64,
    ) -> Node {
        Node {
            ino,
            fd,
            loc: Mutex::new(loc),
            kind,
            dir_id: OnceLock::new(),
            io: if kind == Kind::File {
                Self::content_lock(ino)
            } else {
                Arc::default()
            },
            file_key: OnceLock::new(),
            mac: Mutex::new(None),
            host_seen: Mutex::new(None),
            link_ok: Mutex::new(None),
            opens: AtomicUsize::new(0),
            writers: AtomicUsize::new(0),
            undo: Mutex::new(None),
            dead: std::sync::atomic::AtomicBool::new(false),
            changed: std::sync::atomic::AtomicBool::new(false),
            replaced: std::sync::atomic::AtomicBool::new(false),
            recorder: Mutex::new(None),
            last_version: Mutex::new(None),
            created: OnceLock::new(),
            versioned: OnceLock::new(),
            front_matter: Default::default(),
        }
    }

    /// A folder's directory ID (docs/FORMAT.md §5), read once from its
    /// ID file.
    pub(crate) fn dir_id(&self) -> io::Result<[u8; 16]> {
        if let Some(id) = self.dir_id.get() {
            return Ok(*id);
        }
        if self.kind != Kind::Dir {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        let name = std::ffi::OsStr::new(crate::format::dirid::FILE_NAME);
        let bytes = self.handle()?.read_child(name).map_err(|e| {
            log::error!(
                "directory {} has no readable {}: {e}",
                self.describe(),
                crate::format::dirid::FILE_NAME
            );
            super::util::eio()
        })?;
        let id = crate::format::dirid::parse(&bytes).ok_or_else(|| {
            log::error!(
                "directory {} has a corrupt {}",
                self.describe(),
                crate::format::dirid::FILE_NAME
            );
            super::util::eio()
        })?;
        Ok(*self.dir_id.get_or_init(|| id))
    }

    /// The content lock of host file `ino`, one for every node of it alive:
    /// a reader inside the daemon (the indexer, `quire show`, history) that
    /// looks a note up as a node of its own then waits for a write through the
    /// kernel's node of the same file instead of reading its blocks and block
    /// MAC mid-change (issue 16.13: fsx with mmap logged spurious "not the
    /// block last written there" refusals).
    fn content_lock(ino: u64) -> Arc<RwLock<()>> {
        use std::collections::HashMap;
        use std::sync::Weak;
        static LOCKS: Mutex<Option<HashMap<u64, Weak<RwLock<()>>>>> = Mutex::new(None);
        let mut g = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
        let map = g.get_or_insert_with(HashMap::new);
        if let Some(l) = map.get(&ino).and_then(Weak::upgrade) {
            return l;
        }
        let l = Arc::new(RwLock::new(()));
        map.insert(ino, Arc::downgrade(&l));
        if map.len() > 4096 && map.len().is_power_of_two() {
            map.retain(|_, w| w.strong_count() > 0);
        }
        l
    }

    /// The node's host handle, opened on first use.
    pub(crate) fn handle(&self) -> io::Result<&Handle> {
        if let Some(h) = self.fd.get() {
            return Ok(h);
        }
        let (parent, host) = self
            .loc
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ESTALE))?;
        let h = parent.handle()?.lookup(&host)?;
        if h.stat()?.st_ino != self.ino {
            // The name now belongs to another file.
            return Err(io::Error::from_raw_os_error(libc::ESTALE));
        }
        if self.fd.set(h).is_ok() {
            HANDLES.fetch_add(1, Ordering::Relaxed);
        }
        Ok(self.fd.get().expect("just set"))
    }

    /// The node's host handle if it is already open.
    pub(crate) fn open_handle(&self) -> Option<&Handle> {
        self.fd.get()
    }

    /// Opens the handle now, so the node stays reachable after its name goes.
    pub fn pin(&self) -> io::Result<()> {
        self.handle().map(|_| ())
    }

    /// Records a new name of a lazy node (after a rename or a lookup).
    pub(crate) fn relocate(&self, parent: Arc<Node>, host: OsString) {
        // Kept current even once the handle is open: the crash journal and
        // history find a file by its folder and host name.
        *self.loc.lock().unwrap_or_else(|e| e.into_inner()) = Some((parent, host));
    }

    /// Forgets the node's name (its last link is gone): history and the
    /// crash journal then leave it alone.
    pub(crate) fn clear_location(&self) {
        *self.loc.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Where the node was last seen: its folder and host name.
    pub(crate) fn location(&self) -> Option<(Arc<Node>, OsString)> {
        self.loc.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes over `other`'s location if this node is still lazy (a second
    /// lookup of the same inode, perhaps by another name).
    pub fn adopt_location(&self, other: &Node) {
        if let Some((p, h)) = other.loc.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            self.relocate(p, h);
        }
        if self.kind == Kind::Symlink {
            // The latest lookup's verdict on the symlink's binding.
            let seen = *other.link_ok.lock().unwrap_or_else(|e| e.into_inner());
            *self.link_ok.lock().unwrap_or_else(|e| e.into_inner()) = seen;
        }
    }

    /// Host path for log lines (ciphertext only).
    pub(crate) fn describe(&self) -> String {
        if let Some(h) = self.fd.get() {
            return h.host_path();
        }
        match &*self.loc.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((p, host)) => format!("{}/{}", p.describe(), host.to_string_lossy()),
            None => "<unknown host path>".into(),
        }
    }

    /// The node's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether a file handle is open on this node (it must then stay
    /// reachable after its name goes: see [`Node::pin`]).
    pub fn is_open(&self) -> bool {
        self.opens.load(Ordering::Relaxed) > 0
    }

    /// Whether the file this node stood for is gone (see the field).
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_dead_if_gone(&self, links_before: u64) {
        if links_before <= 1 && !self.is_open() && self.kind != Kind::Dir {
            self.dead.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the node holds a host descriptor.
    pub fn holds_handle(&self) -> bool {
        self.fd.get().is_some()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.fd.get().is_some() {
            HANDLES.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A file's block MAC as this mount knows it: the sealed MAC (`root`, the
/// XOR of every group's sum) and each group's sum, with the groups already
/// verified against the host (kept by `content::blockmac`, FORMAT §4.2).
#[derive(Clone)]
pub(crate) struct MacState {
    pub(crate) root: [u8; 32],
    pub(crate) sums: Vec<[u8; 32]>,
    pub(crate) verified: Vec<bool>,
    pub(crate) unverified: usize,
    /// Changed since its sums were last kept on this device.
    pub(crate) dirty: bool,
}
