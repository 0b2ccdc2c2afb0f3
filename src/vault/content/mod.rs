//! File content (docs/FORMAT.md §4): the block layout, sealing and
//! reading blocks, holes, the block MAC and the crash journal's part in
//! every change. [`Content`] owns the state this takes (layout, keys, the
//! journal, verified MACs and hole runs); one [`OpenFile`] per open handle,
//! and the per-node lock makes read-modify-write of shared blocks safe
//! across handles and links. It knows nothing of names, history, the trash
//! or the audit log: the namespace ([`super::tree`]) calls it, and passes
//! in what to do before a file's first change since its last commit.

pub(crate) mod blockmac;
mod commit;
mod cut;
pub(crate) mod sparse;
mod write;

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::{Arc, Mutex};

use super::journal::Journal;
use super::node::{FileKey, Kind, Node};
use super::util::eio;
use crate::crypto::SubKeys;
use crate::crypto::mac::BlockMacKey;
use crate::format::content::{self, BLOCK, Layout};

/// What is done before the first change to a file since its last commit,
/// while its content is still intact (the history keeps a note's first
/// version then): given the node and the open host file.
pub type FirstChange<'a> = &'a dyn Fn(&Node, &File);

/// A run of holes verified: (host inode, first slot, marker slot, the
/// marker's sealed bytes).
pub(crate) type VerifiedRun = (u64, u64, u64, [u8; content::MARKER_LEN]);

/// A block MAC this mount verified (and kept current) for a file whose
/// node the kernel has since forgotten, so that its next open does not
/// read the whole file again. Trusted only for the same file (ID and the
/// sealed MAC in its header) while the host file's change time and size
/// are the ones seen when it was parked: any write to the host file,
/// Quire's or another's, changes its ctime.
#[derive(Clone)]
pub(crate) struct Parked {
    id: [u8; 16],
    state: super::node::MacState,
    seen: HostState,
}

/// A host file's (ctime s, ctime ns, size): what any write to it changes.
pub(crate) type HostState = (i64, i64, i64);

/// The content engine of an unlocked vault.
pub struct Content {
    pub(crate) keys: Arc<SubKeys>,
    /// The crash journal every change is noted in first (§11).
    pub(crate) journal: Arc<Journal>,
    read_only: bool,
    /// Feature flag 0x100: every file has its header from creation on.
    bound: bool,
    /// Feature flag 0x40: files may have holes (docs/FORMAT.md §4).
    pub(crate) sparse: bool,
    /// Where blocks sit in content files (flag 0x200: after a header
    /// holding the block MAC, §4.2).
    pub(crate) layout: Layout,
    /// The block MAC's key (flag 0x200).
    pub(crate) block_mac: Option<BlockMacKey>,
    /// The last run of holes verified: (host inode, first slot, marker
    /// slot, the marker's sealed bytes). Trusted only while the marker is
    /// unchanged; also cleared by changes to that file.
    pub(crate) hole_cache: Mutex<Option<VerifiedRun>>,
    /// Block MACs verified in this mount whose nodes the kernel forgot,
    /// by host inode (see [`Parked`]).
    pub(crate) parked_macs: Mutex<HashMap<u64, Parked>>,
    /// Says why a file may fail authentication other than tampering (set
    /// by the vault: another device mid-write, issue 18.1); asked only
    /// when one does.
    pub(crate) explain: std::sync::OnceLock<Explain>,
    /// Names this device in the conflict copies it makes (7 characters,
    /// docs/FORMAT.md §5.5).
    pub(crate) device_tag: std::sync::OnceLock<String>,
    /// Where this device keeps large files' group sums (§4.2), once the
    /// vault has said.
    pub(crate) sums_dir: std::sync::OnceLock<std::path::PathBuf>,
}

/// Says why a file may fail authentication other than tampering (see
/// `Content`'s `explain` field).
pub type Explain = Box<dyn Fn() -> Option<String> + Send + Sync>;

/// The content format flags a vault was made with.
pub(crate) struct Flags {
    pub(crate) read_only: bool,
    pub(crate) bound: bool,
    pub(crate) sparse: bool,
    pub(crate) block_mac: bool,
}

/// Largest chunk sealed at once when extending a file with zeros.
const ZERO_CHUNK: u64 = 1 << 20;

/// An open regular file.
pub struct OpenFile {
    node: Arc<Node>,
    file: File,
    writable: bool,
    /// Written through this handle since its last close (flush).
    wrote: std::sync::atomic::AtomicBool,
    /// Changed through this handle (written or truncated) and not yet
    /// recorded as a version.
    unrecorded: std::sync::atomic::AtomicBool,
    /// When it was opened (an fsync soon after is a save, not a checkpoint).
    opened: std::time::Instant,
}

impl Content {
    /// "; <why>" when something other than tampering may explain a file
    /// that fails authentication, else "".
    pub(crate) fn why_unreadable(&self) -> String {
        self.explain
            .get()
            .and_then(|f| f())
            .map(|w| format!("; {w}"))
            .unwrap_or_default()
    }

    pub(crate) fn new(keys: Arc<SubKeys>, journal: Arc<Journal>, f: Flags) -> Content {
        let layout = if f.block_mac {
            Layout::MAC
        } else {
            Layout::PLAIN
        };
        Content {
            block_mac: f
                .block_mac
                .then(|| crate::crypto::mac::BlockMacKey::new(&keys.block_mac)),
            keys,
            journal,
            read_only: f.read_only,
            bound: f.bound,
            sparse: f.sparse,
            layout,
            hole_cache: Mutex::new(None),
            parked_macs: Mutex::new(HashMap::new()),
            explain: std::sync::OnceLock::new(),
            device_tag: std::sync::OnceLock::new(),
            sums_dir: std::sync::OnceLock::new(),
        }
    }

    /// Opens a file for I/O. Write access always opens the host file
    /// read-write, because partial blocks are read, modified and re-sealed.
    pub fn open(&self, node: Arc<Node>, write: bool) -> io::Result<OpenFile> {
        if node.kind != Kind::File {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if write && self.read_only {
            return Err(io::Error::from_raw_os_error(libc::EROFS));
        }
        let file = if write {
            match node.handle()?.open_file(libc::O_RDWR) {
                Ok(f) => f,
                // A write-only file (mode 0200) as a non-root user: the kernel
                // already allowed the write; read access is ours to add.
                Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                    let mode = node.handle()?.stat()?.st_mode & 0o7777;
                    node.handle()?.chmod(mode | 0o600)?;
                    let f = node.handle()?.open_file(libc::O_RDWR);
                    node.handle()?.chmod(mode)?;
                    f?
                }
                Err(e) => return Err(e),
            }
        } else {
            node.handle()?.open_file(libc::O_RDONLY)?
        };
        // The block MAC is verified at the first open in a mount (FORMAT
        // §4.2), also for an empty file (one cut to its header).
        {
            let _g = node.io.read().unwrap_or_else(|e| e.into_inner());
            if self.block_mac.is_some() {
                self.recheck_if_changed(&node, &file)?;
                self.key(&node, &file)?;
            }
            // A host length that is not a header and whole sealed blocks
            // was cut on the host (the journal rolls a crash's torn tail
            // back at mount): EIO now, not a note that opens shorter or
            // empty and that an editor then saves that way (issue 17.5).
            self.sizes(&node, &file)?;
        }
        // Sequential reads are the common case (editors, grep, cp): a larger
        // host readahead window keeps cold reads streaming.
        // SAFETY: valid fd; advice only.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
        }
        node.opens
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if write {
            node.writers
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(OpenFile {
            node,
            file,
            writable: write,
            wrote: std::sync::atomic::AtomicBool::new(false),
            unrecorded: std::sync::atomic::AtomicBool::new(false),
            opened: std::time::Instant::now(),
        })
    }

    /// Wraps a host file just created by [`super::tree::Tree::create`].
    pub fn open_created(&self, node: Arc<Node>, file: File) -> OpenFile {
        node.opens
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        node.writers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenFile {
            node,
            file,
            writable: true,
            wrote: std::sync::atomic::AtomicBool::new(false),
            unrecorded: std::sync::atomic::AtomicBool::new(false),
            opened: std::time::Instant::now(),
        }
    }

    /// The file's key, its block MAC verified (once per node).
    pub(crate) fn key<'a>(&self, node: &'a Node, file: &File) -> io::Result<&'a FileKey> {
        let k = self.header_key(node, file)?;
        self.ensure_mac(node, k, file)?;
        Ok(k)
    }

    /// The file's key from its header alone.
    pub(crate) fn header_key<'a>(&self, node: &'a Node, file: &File) -> io::Result<&'a FileKey> {
        if let Some(k) = node.file_key.get() {
            return Ok(k);
        }
        let mut h = vec![0u8; self.layout.header_len() as usize];
        file.read_exact_at(&mut h, 0).map_err(|e| {
            log::error!("file {} has a truncated header: {e}", node.describe());
            eio()
        })?;
        let id = content::parse_header(&h, self.layout).map_err(|e| {
            log::error!("file {} has a bad header: {e:?}", node.describe());
            eio()
        })?;
        Ok(node.file_key.get_or_init(|| FileKey {
            id,
            key: self.keys.file_key(&id),
        }))
    }

    /// The file ID of a regular file (from its header).
    pub(crate) fn file_id(&self, node: &Node) -> io::Result<[u8; 16]> {
        if let Some(k) = node.file_key.get() {
            return Ok(k.id);
        }
        let f = node.handle()?.open_file(libc::O_RDONLY)?;
        Ok(self.header_key(node, &f)?.id)
    }

    /// Host and plaintext sizes of an open host file.
    pub(crate) fn sizes_of(&self, node: &Node, file: &File) -> io::Result<(u64, u64)> {
        self.sizes(node, file)
    }

    /// The whole plaintext of a file of `psize` bytes.
    pub(crate) fn read_all_plain(
        &self,
        node: &Node,
        file: &File,
        psize: u64,
    ) -> io::Result<zeroize::Zeroizing<Vec<u8>>> {
        if psize == 0 {
            return Ok(zeroize::Zeroizing::new(Vec::new()));
        }
        let mut out = zeroize::Zeroizing::new(Vec::new());
        let mut sealed = zeroize::Zeroizing::new(Vec::new());
        self.read_blocks_into(
            node,
            file,
            psize,
            0,
            content::block_count(psize) - 1,
            &mut sealed,
            &mut out,
        )?;
        Ok(out)
    }

    /// The whole plaintext of a file node, read under its content lock.
    pub fn plain_content(&self, node: &Node) -> io::Result<zeroize::Zeroizing<Vec<u8>>> {
        let f = node.handle()?.open_file(libc::O_RDONLY)?;
        let _g = node.io.read().unwrap_or_else(|e| e.into_inner());
        let (csize, psize) = self.sizes(node, &f)?;
        if csize > 0 {
            self.key(node, &f)?;
        }
        self.read_all_plain(node, &f, psize)
    }

    /// Authenticates every block of a file without holding it in memory
    /// (a sparse file may be terabytes): 1 MiB at a time, runs of holes
    /// skipped once their marker is verified. Returns the plaintext size.
    pub(crate) fn verify_content(&self, node: &Node) -> io::Result<u64> {
        let f = node.handle()?.open_file(libc::O_RDONLY)?;
        let _g = node.io.read().unwrap_or_else(|e| e.into_inner());
        let (csize, psize) = self.sizes(node, &f)?;
        if csize > 0 {
            self.key(node, &f)?;
        }
        if psize == 0 {
            return Ok(0);
        }
        let final_block = content::block_count(psize) - 1;
        let (mut sealed, mut out) = (Vec::new(), zeroize::Zeroizing::new(Vec::new()));
        let mut b = 0;
        while b <= final_block {
            if let Some((_, m)) = self.cached_run(node, &f, b) {
                b = m + 1;
                continue;
            }
            let last = final_block.min(b + 255);
            self.read_blocks_into(node, &f, psize, b, last, &mut sealed, &mut out)?;
            b = last + 1;
        }
        // Groups inside runs of holes were skipped above: every group of a
        // large file checked against its kept sum all the same.
        let k = self.key(node, &f)?;
        self.verify_groups(node, k, &f, 0, u64::MAX, None)?;
        Ok(psize)
    }

    /// The first `n` bytes (or fewer) of a note's plaintext.
    pub(crate) fn plain_prefix(
        &self,
        node: &Node,
        n: u64,
    ) -> io::Result<zeroize::Zeroizing<Vec<u8>>> {
        let f = node.handle()?.open_file(libc::O_RDONLY)?;
        let _g = node.io.read().unwrap_or_else(|e| e.into_inner());
        let (_, psize) = self.sizes(node, &f)?;
        let mut out = zeroize::Zeroizing::new(Vec::new());
        if psize == 0 || n == 0 {
            return Ok(out);
        }
        let last = (content::block_count(psize) - 1).min((n - 1) / content::BLOCK);
        let mut sealed = zeroize::Zeroizing::new(Vec::new());
        self.read_blocks_into(node, &f, psize, 0, last, &mut sealed, &mut out)?;
        out.truncate(n as usize);
        Ok(out)
    }

    /// Plaintext size from the host size; a torn tail is an error.
    pub(crate) fn sizes(&self, node: &Node, file: &File) -> io::Result<(u64, u64)> {
        self.sizes_and_allocated(node, file).map(|(c, p, _)| (c, p))
    }

    /// Host size, plaintext size and host bytes allocated, from one fstat.
    pub(crate) fn sizes_and_allocated(
        &self,
        node: &Node,
        file: &File,
    ) -> io::Result<(u64, u64, u64)> {
        let meta = file.metadata()?;
        let csize = meta.len();
        if csize == 0 && self.bound {
            // Every file of a BOUND vault has its header from creation on
            // (FORMAT §4): an empty host file was cut on the host.
            log::error!(
                "file {} has lost its header (0 bytes on the host)",
                node.describe()
            );
            return Err(eio());
        }
        let psize = self.layout.plain_size(csize).ok_or_else(|| {
            log::error!(
                "file {} has a truncated last block ({csize} bytes)",
                node.describe()
            );
            eio()
        })?;
        Ok((csize, psize, meta.blocks() * 512))
    }

    /// Decrypts blocks `first..=last` (which must exist).
    pub(crate) fn read_blocks(
        &self,
        node: &Node,
        file: &File,
        psize: u64,
        first: u64,
        last: u64,
    ) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(((last - first + 1) * BLOCK) as usize);
        self.read_blocks_into(node, file, psize, first, last, &mut Vec::new(), &mut out)?;
        Ok(out)
    }

    /// Decrypts blocks `first..=last` into `out` (cleared first), using
    /// `sealed` as the read buffer: both are reused across requests.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn read_blocks_into(
        &self,
        node: &Node,
        file: &File,
        psize: u64,
        first: u64,
        last: u64,
        sealed: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let k = self.key(node, file)?;
        self.verify_groups(node, k, file, first, last + 1, None)?;
        let from = self.layout.block_offset(first);
        let to = self
            .layout
            .cipher_size(psize)
            .min(self.layout.block_offset(last + 1));
        sealed.resize((to - from) as usize, 0);
        file.read_exact_at(sealed, from)?;
        out.clear();
        let final_block = content::block_count(psize) - 1;
        self.open_with_holes(node, k, file, first, sealed, final_block, out)
            .map_err(|n| {
                log::error!(
                    "block {n} of file {} failed authentication{}",
                    node.describe(),
                    self.why_unreadable()
                );
                eio()
            })
    }

    /// Reads up to `size` bytes at `off` and hands them to `f`. The bytes
    /// live in per-thread buffers reused across requests, so a large read
    /// costs no allocation or page faults.
    pub fn read_with<R>(
        &self,
        of: &OpenFile,
        off: u64,
        size: u32,
        f: impl FnOnce(&[u8]) -> R,
    ) -> io::Result<R> {
        thread_local! {
            static BUFS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
        }
        let _g = of.node.io.read().unwrap_or_else(|e| e.into_inner());
        let (_, psize) = self.sizes(&of.node, &of.file)?;
        if off >= psize || size == 0 {
            return Ok(f(&[]));
        }
        let end = psize.min(off + size as u64);
        let first = off / BLOCK;
        let last = (end - 1) / BLOCK;
        BUFS.with(|b| {
            let mut b = b.borrow_mut();
            let (sealed, plain) = &mut *b;
            self.read_blocks_into(&of.node, &of.file, psize, first, last, sealed, plain)?;
            let s = (off - first * BLOCK) as usize;
            let r = f(&plain[s..s + (end - off) as usize]);
            // Plaintext must not linger in memory longer than needed.
            zeroize::Zeroize::zeroize(&mut plain[..]);
            Ok(r)
        })
    }
}

thread_local! {
    /// Set once a request has started changing a file's bytes: an error
    /// after that point may have left blocks half-written.
    static TOUCHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the start of a change to a file's bytes (and is where the
/// fault-injection layer can fail it). An error before any such point left
/// the file as it was, so acknowledged earlier writes stay; an error after
/// it may have torn blocks, so the file is rolled back to its last commit.
fn modifying() -> io::Result<()> {
    TOUCHED.set(true);
    crate::store::fault::point()
}

/// Allocates host blocks beyond the end without changing the size, so that
/// ENOSPC is reported before anything is overwritten. Filesystems without
/// fallocate are written to directly.
fn reserve(file: &File, off: u64, len: u64) -> io::Result<()> {
    // SAFETY: valid fd; offsets are within i64 for any real file.
    let r = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_KEEP_SIZE,
            off as i64,
            len as i64,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(()),
        _ => Err(e),
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        self.node
            .opens
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl OpenFile {
    /// The node this handle is open on.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The open host file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// When the handle was opened.
    pub(crate) fn opened(&self) -> std::time::Instant {
        self.opened
    }

    /// Whether the handle was opened for writing.
    pub fn writable(&self) -> bool {
        self.writable
    }
}
