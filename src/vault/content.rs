//! Reading and writing file content through the block layout of
//! docs/FORMAT.md §4. One [`OpenFile`] per open handle; the per-node lock
//! makes read-modify-write of shared blocks safe across handles and links.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;

use super::node::{FileKey, Kind, Node};
use super::sparse::Slot;
use super::tree::{Tree, eio};
use crate::format::content::{self, BLOCK};
use crate::store::host::seek_extent;

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

impl Tree {
    /// Opens a file for I/O. Write access always opens the host file
    /// read-write, because partial blocks are read, modified and re-sealed.
    pub fn open(&self, node: Arc<Node>, write: bool) -> io::Result<OpenFile> {
        if node.kind != Kind::File {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if write && self.read_only() {
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

    /// Wraps a host file just created by [`Tree::create`].
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
    fn key<'a>(&self, node: &'a Node, file: &File) -> io::Result<&'a FileKey> {
        let k = self.header_key(node, file)?;
        self.ensure_mac(node, k, file)?;
        Ok(k)
    }

    /// The file's key from its header alone.
    fn header_key<'a>(&self, node: &'a Node, file: &File) -> io::Result<&'a FileKey> {
        if let Some(k) = node.file_key.get() {
            return Ok(k);
        }
        let mut h = vec![0u8; self.layout.header_len() as usize];
        file.read_exact_at(&mut h, 0).map_err(|e| {
            log::error!("file {} has a truncated header: {e}", self.describe(node));
            eio()
        })?;
        let id = content::parse_header(&h, self.layout).map_err(|e| {
            log::error!("file {} has a bad header: {e:?}", self.describe(node));
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
    fn sizes(&self, node: &Node, file: &File) -> io::Result<(u64, u64)> {
        self.sizes_and_allocated(node, file).map(|(c, p, _)| (c, p))
    }

    /// Host size, plaintext size and host bytes allocated, from one fstat.
    fn sizes_and_allocated(&self, node: &Node, file: &File) -> io::Result<(u64, u64, u64)> {
        let meta = file.metadata()?;
        let csize = meta.len();
        if csize == 0 && self.bound {
            // Every file of a BOUND vault has its header from creation on
            // (FORMAT §4): an empty host file was cut on the host.
            log::error!(
                "file {} has lost its header (0 bytes on the host)",
                self.describe(node)
            );
            return Err(eio());
        }
        let psize = self.layout.plain_size(csize).ok_or_else(|| {
            log::error!(
                "file {} has a truncated last block ({csize} bytes)",
                self.describe(node)
            );
            eio()
        })?;
        Ok((csize, psize, meta.blocks() * 512))
    }

    /// Decrypts blocks `first..=last` (which must exist).
    fn read_blocks(
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
    fn read_blocks_into(
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
                    "block {n} of file {} failed authentication",
                    self.describe(node)
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

    /// Writes `data` at `off`, growing the file (with sealed zero blocks
    /// across any gap) as needed.
    pub fn write(&self, of: &OpenFile, off: u64, data: &[u8]) -> io::Result<usize> {
        if !of.writable {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        super::sparse::check_size(off, data.len() as u64)?;
        let _g = of.node.io.write().unwrap_or_else(|e| e.into_inner());
        self.holes_changed(&of.node);
        TOUCHED.set(false);
        if off == 0 && !data.is_empty() {
            let fm = if data.starts_with(b"---") { 1 } else { 2 };
            of.node
                .front_matter
                .store(fm, std::sync::atomic::Ordering::Relaxed);
        }
        of.wrote.store(true, std::sync::atomic::Ordering::Relaxed);
        of.unrecorded
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let r = self.write_locked(of, off, data);
        // Reads made while writing (the first version kept) may have
        // verified runs that this write then changed.
        self.holes_changed(&of.node);
        if let Err(e) = r {
            self.mac_forget(&of.node);
            if TOUCHED.get() {
                self.undo_after_error(of);
            }
            return Err(e);
        }
        Ok(data.len())
    }

    fn ensure_header(&self, of: &OpenFile, csize: u64) -> io::Result<u64> {
        if csize > 0 {
            return Ok(csize);
        }
        let (h, id) = self.new_file_header();
        modifying()?;
        of.file.write_all_at(&h, 0)?;
        let _ = of.node.file_key.set(FileKey {
            id,
            key: self.keys.file_key(&id),
        });
        self.mac_new_file(&of.node, &of.file);
        Ok(self.layout.header_len())
    }

    fn write_locked(&self, of: &OpenFile, off: u64, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let (committed, psize, allocated) = self.sizes_and_allocated(&of.node, &of.file)?;
        let csize = self.ensure_header(of, committed)?;
        let k = self.key(&of.node, &of.file)?;
        let end = off + data.len() as u64;
        let new_psize = psize.max(end);
        if self.sparse && off / BLOCK > content::block_count(psize) {
            return self.write_past_gap(of, k, committed, psize, off, data);
        }
        // First block to re-seal: the one holding `off`, or the old final
        // block when growing (its last-block flag changes, and any gap after
        // it is filled with sealed zeros).
        let mut first = off.min(psize) / BLOCK;
        if new_psize > psize && psize > 0 {
            first = first.min((psize - 1) / BLOCK);
        }
        let range_start = first * BLOCK;
        let range_end = if end >= psize {
            end
        } else {
            psize.min(end.div_ceil(BLOCK) * BLOCK)
        };
        let mut buf = vec![0u8; (range_end - range_start) as usize];
        // Existing plaintext is needed only for blocks not wholly overwritten:
        // the first and the last of the range.
        let last = (range_end - 1) / BLOCK;
        let covered = |b: u64| off <= b * BLOCK && end >= ((b + 1) * BLOCK).min(new_psize);
        let mut need: Vec<u64> = Vec::new();
        for b in [first, last] {
            if b * BLOCK < psize && !covered(b) && !need.contains(&b) {
                need.push(b);
            }
        }
        for b in need {
            let p = self.read_blocks(&of.node, &of.file, psize, b, b)?;
            let at = ((b - first) * BLOCK) as usize;
            buf[at..at + p.len()].copy_from_slice(&p);
        }
        let at = (off - range_start) as usize;
        buf[at..at + data.len()].copy_from_slice(data);
        let mut sealed = Vec::with_capacity(buf.len() + buf.len().div_ceil(BLOCK as usize) * 28);
        content::seal_blocks(
            &k.key,
            &k.id,
            first,
            &buf,
            range_end == new_psize,
            &mut sealed,
        );
        // Writing into a run of holes splits it: the part before gets a
        // marker of its own, the part after a marker that no longer
        // claims the blocks written (docs/FORMAT.md §4).
        let mut markers: Vec<(u64, u64)> = Vec::new();
        if self.sparse && psize > 0 {
            let final_block = content::block_count(psize) - 1;
            if first > 0
                && first - 1 < final_block
                && let super::sparse::Slot::Zero = self.slot_kind(k, &of.file, first - 1)?
                && let Some((s, _)) =
                    self.hole_run(&of.node, k, &of.file, first - 1, final_block)?
            {
                markers.push((first - 1, s));
            }
            if last + 1 < final_block {
                match self.slot_kind(k, &of.file, last + 1)? {
                    super::sparse::Slot::Marker(s) if s <= last => {
                        markers.push((last + 1, last + 1))
                    }
                    super::sparse::Slot::Zero => {
                        if let Some((s, m)) =
                            self.hole_run(&of.node, k, &of.file, last + 1, final_block)?
                            && s <= last
                        {
                            markers.push((m, last + 1));
                        }
                    }
                    _ => {}
                }
            }
            self.holes_changed(&of.node);
        }
        self.before_change(of, committed, first, last)?;
        for &(n, _) in &markers {
            self.before_change(of, committed, n, n)?;
        }
        of.node
            .changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let write_at = self.layout.block_offset(first);
        let new_csize = self.layout.cipher_size(new_psize);
        // Host blocks already allocated (ext4 counts delayed allocation
        // too) cannot run out; only growth beyond them needs a reservation.
        if new_csize > csize && new_csize > allocated {
            // Reserve the space first: a full disk fails here, before any
            // existing byte is touched.
            reserve(&of.file, csize, new_csize - csize)?;
        }
        let markers_at: Vec<(u64, u64)> = markers.iter().map(|&(n, _)| (n, n + 1)).collect();
        let mut replaced = markers_at.clone();
        replaced.push((first, last + 1));
        let before = self.mac_before(k, &of.file, &replaced)?;
        if let Err(e) = modifying().and_then(|_| of.file.write_all_at(&sealed, write_at)) {
            let _ = of.file.set_len(csize);
            return Err(e);
        }
        for (n, s) in markers {
            modifying()?;
            self.write_marker(k, &of.file, n, s)?;
        }
        let written = [(first, &sealed[..])];
        self.mac_changed(&of.node, k, &of.file, &markers_at, &written, before)
    }

    /// A write that starts past the block after the final one (sparse
    /// vaults): the old final block is re-sealed as a full, non-final
    /// block, the blocks between become a run of holes (never written, so
    /// a host hole), and the data is sealed from its own block on.
    fn write_past_gap(
        &self,
        of: &OpenFile,
        k: &FileKey,
        committed: u64,
        psize: u64,
        off: u64,
        data: &[u8],
    ) -> io::Result<()> {
        let csize = self.layout.cipher_size(psize);
        let nb = content::block_count(psize);
        let w = off / BLOCK;
        let mut old_final = Vec::new();
        if psize > 0 {
            let mut p = self.read_blocks(&of.node, &of.file, psize, nb - 1, nb - 1)?;
            p.resize(BLOCK as usize, 0);
            content::seal_blocks(&k.key, &k.id, nb - 1, &p, false, &mut old_final);
            zeroize::Zeroize::zeroize(&mut p);
        }
        let mut buf = vec![0u8; (off - w * BLOCK) as usize];
        buf.extend_from_slice(data);
        let mut sealed = Vec::with_capacity(buf.len() + buf.len().div_ceil(BLOCK as usize) * 28);
        content::seal_blocks(&k.key, &k.id, w, &buf, true, &mut sealed);
        zeroize::Zeroize::zeroize(&mut buf);
        if psize > 0 {
            self.before_change(of, committed, nb - 1, nb - 1)?;
        } else {
            // Opens the crash-undo session (nothing to save yet).
            self.before_change(of, committed, 0, 0)?;
        }
        of.node
            .changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let new_csize = self.layout.cipher_size(off + data.len() as u64);
        // Only what is written needs room: the marker's slot and the data.
        let from = self.layout.block_offset(w - 1);
        reserve(&of.file, from, new_csize - from)?;
        let replaced = [
            (nb.saturating_sub(1), nb),
            (w - 1, w),
            (w, content::block_count(off + data.len() as u64)),
        ];
        let before = self.mac_before(k, &of.file, &replaced)?;
        let r = modifying()
            .and_then(|_| self.write_marker(k, &of.file, w - 1, nb))
            .and_then(|_| of.file.write_all_at(&sealed, self.layout.block_offset(w)))
            .and_then(|_| {
                if psize > 0 {
                    of.file
                        .write_all_at(&old_final, self.layout.block_offset(nb - 1))
                } else {
                    Ok(())
                }
            });
        if let Err(e) = r {
            let _ = of.file.set_len(csize);
            return Err(e);
        }
        let mut written = vec![(w, &sealed[..])];
        if psize > 0 {
            written.push((nb - 1, &old_final[..]));
        }
        self.mac_changed(&of.node, k, &of.file, &[(w - 1, w)], &written, before)
    }

    /// Puts a file back to its last commit after a failed change.
    fn undo_after_error(&self, of: &OpenFile) {
        self.mac_forget(&of.node);
        if let Err(e) = self.journal.rollback(&of.node.undo, &of.file) {
            log::error!(
                "could not undo a failed write to {} ({e}); the next mount will",
                self.describe(&of.node)
            );
        }
    }

    /// Sets the plaintext size (truncate or extend with zeros).
    pub fn truncate(&self, of: &OpenFile, size: u64) -> io::Result<()> {
        if !of.writable {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        super::sparse::check_size(size, 0)?;
        let _g = of.node.io.write().unwrap_or_else(|e| e.into_inner());
        self.holes_changed(&of.node);
        TOUCHED.set(false);
        let r = self.truncate_locked(of, size);
        self.holes_changed(&of.node);
        if r.is_err() {
            self.mac_forget(&of.node);
            if TOUCHED.get() {
                self.undo_after_error(of);
            }
        }
        r
    }

    fn truncate_locked(&self, of: &OpenFile, size: u64) -> io::Result<()> {
        let (csize, psize) = self.sizes(&of.node, &of.file)?;
        if size != psize {
            of.node
                .changed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            of.unrecorded
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if size > psize && self.sparse {
            // One zero byte at the new end: the blocks between become a
            // run of holes, the new final block is sealed zeros.
            return self.write_locked(of, size - 1, &[0]);
        }
        if size > psize {
            let mut pos = psize;
            while pos < size {
                let n = (size - pos).min(ZERO_CHUNK);
                self.write_locked(of, pos, &vec![0u8; n as usize])?;
                pos += n;
            }
            return Ok(());
        }
        if size == psize {
            // Still updates mtime/ctime, as ftruncate does.
            return of.file.set_len(csize);
        }
        if let Some(mid) = self.piece_point(of, size, csize)? {
            // More data to cut than one journal session should hold: the
            // tail goes first, committed on its own (issue 16.11).
            self.truncate_locked(of, mid)?;
            self.journal.commit(&of.node.undo)?;
            return self.truncate_locked(of, size);
        }
        if size == 0 {
            self.before_cut(of, csize, 0)?;
            modifying()?;
            of.file.set_len(csize.min(self.layout.header_len()))?;
            if self.block_mac.is_some() {
                // Nothing is left to verify: the MAC of no slots.
                let k = self.header_key(&of.node, &of.file)?;
                self.mac_set_empty(&of.node, k, &of.file)?;
            }
            return Ok(());
        }
        let b = (size - 1) / BLOCK;
        // The new final block cut out of a run of holes: the run's part
        // before it gets a marker of its own.
        let mut marker = None;
        if self.sparse && b > 0 && b - 1 < content::block_count(psize) - 1 {
            let k = self.key(&of.node, &of.file)?;
            let final_block = content::block_count(psize) - 1;
            if let super::sparse::Slot::Zero = self.slot_kind(k, &of.file, b - 1)?
                && let Some((s, _)) = self.hole_run(&of.node, k, &of.file, b - 1, final_block)?
            {
                marker = Some((b - 1, s));
            }
            self.holes_changed(&of.node);
        }
        self.before_change(of, csize, b.saturating_sub(1), b)?;
        self.before_cut(of, csize, b + 1)?;
        let mut p = self.read_blocks(&of.node, &of.file, psize, b, b)?;
        p.truncate((size - b * BLOCK) as usize);
        let k = self.key(&of.node, &of.file)?;
        let mut sealed = Vec::new();
        content::seal_blocks(&k.key, &k.id, b, &p, true, &mut sealed);
        // The new final block, the marker before it, and every slot cut.
        let ranges = [(b.saturating_sub(1), u64::MAX)];
        let before = self.mac_before(k, &of.file, &ranges)?;
        modifying()?;
        of.file.write_all_at(&sealed, self.layout.block_offset(b))?;
        if let Some((n, s)) = marker {
            self.write_marker(k, &of.file, n, s)?;
        }
        modifying()?;
        of.file.set_len(self.layout.cipher_size(size))?;
        self.mac_changed(&of.node, k, &of.file, &ranges, &[], before)
    }

    /// `fallocate(2)`: mode 0 (extend and reserve host room), `KEEP_SIZE`
    /// (reserve only), `PUNCH_HOLE | KEEP_SIZE` and `ZERO_RANGE` (with or
    /// without `KEEP_SIZE`). In a sparse vault whole blocks zeroed become
    /// holes; elsewhere zeros are sealed. Other modes: `EOPNOTSUPP`.
    pub fn fallocate(&self, of: &OpenFile, offset: u64, length: u64, mode: i32) -> io::Result<()> {
        if !of.writable {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        let keep = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        let punch = mode & libc::FALLOC_FL_PUNCH_HOLE != 0;
        let zero = mode & libc::FALLOC_FL_ZERO_RANGE != 0;
        let known =
            libc::FALLOC_FL_KEEP_SIZE | libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE;
        if mode & !known != 0 || (punch && zero) || (punch && !keep) {
            return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        }
        if length == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let end = super::sparse::check_size(offset, length)?;
        let _g = of.node.io.write().unwrap_or_else(|e| e.into_inner());
        self.holes_changed(&of.node);
        TOUCHED.set(false);
        let r = self.fallocate_locked(of, offset, end, keep, punch || zero);
        self.holes_changed(&of.node);
        if r.is_err() {
            self.mac_forget(&of.node);
            if TOUCHED.get() {
                self.undo_after_error(of);
            }
        }
        r
    }

    fn fallocate_locked(
        &self,
        of: &OpenFile,
        offset: u64,
        end: u64,
        keep: bool,
        zeroing: bool,
    ) -> io::Result<()> {
        let (_, psize) = self.sizes(&of.node, &of.file)?;
        if zeroing && offset < psize {
            self.zero_range(of, offset, end.min(psize))?;
            of.unrecorded
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if !keep && end > psize {
            self.truncate_locked(of, end)?;
        }
        if !zeroing {
            // Room for every block of the range, so writes there cannot
            // fail for lack of space (what callers of fallocate expect).
            let (csize, _) = self.sizes(&of.node, &of.file)?;
            let from = self.layout.block_offset(offset / BLOCK);
            let to = self.layout.cipher_size(end).max(csize);
            if to > from {
                reserve(&of.file, from, to - from)?;
            }
        }
        Ok(())
    }

    /// Zeros plaintext bytes `a..e` (within the size): whole blocks before
    /// the final one become holes in a sparse vault; the rest is sealed
    /// zeros.
    fn zero_range(&self, of: &OpenFile, a: u64, e: u64) -> io::Result<()> {
        let zeros = |from: u64, to: u64| -> io::Result<()> {
            let mut pos = from;
            while pos < to {
                let n = (to - pos).min(ZERO_CHUNK);
                self.write_locked(of, pos, &vec![0u8; n as usize])?;
                pos += n;
            }
            Ok(())
        };
        let (csize, psize) = self.sizes(&of.node, &of.file)?;
        let final_block = content::block_count(psize) - 1;
        let x = a.div_ceil(BLOCK);
        let y_end = (e / BLOCK).min(final_block);
        if !self.sparse || x >= y_end {
            return zeros(a, e);
        }
        let k = self.key(&of.node, &of.file)?;
        of.node
            .changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        // 16 MiB at a time, each committed before the next: the crash
        // journal holds the old blocks of one piece, not of the whole range.
        const PIECE: u64 = 4096;
        let mut cx = x;
        while cx < y_end {
            let cy = (cx + PIECE).min(y_end) - 1;
            let (s, m) = self.plan_holes(&of.node, k, &of.file, cx, cy, final_block)?;
            self.before_change(of, csize, cx, cy)?;
            if m > cy {
                self.before_change(of, csize, m, m)?;
            }
            let ranges = [(s.min(cx), m.max(cy) + 1)];
            let before = self.mac_before(k, &of.file, &ranges)?;
            modifying()?;
            self.make_holes(k, &of.file, cx, cy, s, m)?;
            self.mac_changed(&of.node, k, &of.file, &ranges, &[], before)?;
            self.holes_changed(&of.node);
            if cy + 1 < y_end {
                self.journal.commit(&of.node.undo)?;
            }
            cx = cy + 1;
        }
        zeros(a, x * BLOCK)?;
        zeros(y_end * BLOCK, e)
    }

    /// Truncates a file that is not open (setattr without a handle).
    pub fn truncate_node(&self, node: Arc<Node>, size: u64) -> io::Result<()> {
        let of = self.open(node, true)?;
        let r = self.truncate(&of, size);
        let c = self.release(&of);
        r.and(c)
    }

    /// fsync / fdatasync: the content is durable and becomes what a crash
    /// rolls back to.
    pub fn fsync(&self, of: &OpenFile, datasync: bool) -> io::Result<()> {
        crate::store::fault::point()?;
        if datasync {
            of.file.sync_data()?;
        } else {
            of.file.sync_all()?;
        }
        self.commit(&of.node)?;
        // A file that stays open and is fsync'd often (a database) gets a
        // version at most every CHECKPOINT_EVERY; its close records the last.
        // An fsync soon after the open is an editor's save (vim writes,
        // fsyncs, closes): its close records it as a save, not a
        // checkpoint (issue 16.7).
        let kept_open = of.opened.elapsed() >= super::history::CHECKPOINT_GRACE;
        let due = kept_open
            && of
                .node
                .last_version
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_none_or(|t| t.elapsed() >= super::history::CHECKPOINT_EVERY);
        if due
            && of
                .node
                .changed
                .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            self.save_version_from(
                &of.node,
                &of.file,
                crate::format::history::Origin::Checkpoint,
            );
        }
        Ok(())
    }

    /// A close of a descriptor on this handle (`close` waits for it): the
    /// changes so far are committed.
    ///
    /// A handle that wrote records a version here, while `close` waits (the
    /// release comes later, when the next save may already be under way).
    /// Not for a handle that only truncated: a shell's `>` closes a
    /// duplicate descriptor right after truncating, before writing.
    pub fn flush(&self, of: &OpenFile) -> io::Result<()> {
        if of.writable {
            self.commit(&of.node)?;
            if self.low_on_space() {
                // The lifecycle thread purges the trash, oldest first.
                self.lifecycle_changed();
            }
            if of.wrote.swap(false, std::sync::atomic::Ordering::AcqRel) {
                of.unrecorded
                    .store(false, std::sync::atomic::Ordering::Release);
                // Recorded already (an fsync's checkpoint, or another
                // handle's save since the last write): nothing new to
                // record or audit (issue 10.7: vim's first :w fsyncs,
                // then closes).
                if of
                    .node
                    .changed
                    .swap(false, std::sync::atomic::Ordering::AcqRel)
                {
                    self.save_version_from(
                        &of.node,
                        &of.file,
                        crate::format::history::Origin::Save,
                    );
                }
            }
        }
        Ok(())
    }

    /// Closes a handle (once per handle, after its last descriptor is
    /// closed). The last writer's close commits its changes; a change not
    /// yet recorded (a truncate without a write) becomes a version.
    pub fn release(&self, of: &OpenFile) -> io::Result<()> {
        if !of.writable {
            return Ok(());
        }
        if of
            .node
            .writers
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            self.commit(&of.node)?;
        }
        // Only this handle's own unrecorded change (a truncate without a
        // write): the release comes after `close` returned, when another
        // handle may be in the middle of the next save.
        if of
            .unrecorded
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            self.save_version_from(&of.node, &of.file, crate::format::history::Origin::Save);
        }
        Ok(())
    }

    /// Commits a node's changes in progress (see [`super::journal`]).
    pub(crate) fn commit(&self, node: &Node) -> io::Result<()> {
        let _g = node.io.write().unwrap_or_else(|e| e.into_inner());
        self.journal.commit(&node.undo).map(|_| ())
    }

    /// Journals blocks `first..=last` (as committed at host size `csize`)
    /// before they change.
    fn before_change(&self, of: &OpenFile, csize: u64, first: u64, last: u64) -> io::Result<()> {
        let k = self.first_change(of, csize)?;
        self.journal.before_change(
            &of.node.undo,
            || self.journal_location(&of.node),
            &of.file,
            &k.id,
            csize,
            first,
            last,
        )
    }

    /// Before everything from block `first` on is cut: the journal saves
    /// what it holds in bounded batches, skipping holes (issue 16.11).
    fn before_cut(&self, of: &OpenFile, csize: u64, first: u64) -> io::Result<()> {
        let k = self.first_change(of, csize)?;
        self.journal.before_cut(
            &of.node.undo,
            || self.journal_location(&of.node),
            &of.file,
            &k.id,
            csize,
            first,
        )
    }

    /// What every change does first: the file's key, and for the first
    /// change since the last save of a note saved only once, its stream,
    /// written while its content is still intact.
    fn first_change<'a>(&self, of: &'a OpenFile, csize: u64) -> io::Result<&'a FileKey> {
        let k = self.key(&of.node, &of.file)?;
        if self.history.is_some()
            && csize > self.layout.header_len()
            && of
                .node
                .undo
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_none()
        {
            self.keep_first_version(&of.node, Some(&of.file), true);
        }
        Ok(k)
    }

    /// The folder ID and host name the crash journal names a file by.
    fn journal_location(&self, node: &Node) -> Option<([u8; 16], Vec<u8>)> {
        let (dir, host) = node.location()?;
        let id = self.dir_id(&dir).ok()?;
        Some((
            id,
            std::os::unix::ffi::OsStrExt::as_bytes(host.as_os_str()).to_vec(),
        ))
    }

    /// When cutting a file to `size` would save more than
    /// [`CUT_PIECE`] bytes of data in the crash journal (which must stay
    /// small enough to replay), the plaintext size to cut to first: the
    /// tail holding about that much data. `None`: one piece will do.
    fn piece_point(&self, of: &OpenFile, size: u64, csize: u64) -> io::Result<Option<u64>> {
        let from = self.layout.block_offset(size / BLOCK + 1);
        if csize <= from + CUT_PIECE {
            return Ok(None);
        }
        // Data extents of the host file in [from, csize), from the end.
        let mut extents = Vec::new();
        let mut at = from;
        while let Some(d) = seek_extent(&of.file, at, true).filter(|&d| d < csize) {
            let h = seek_extent(&of.file, d, false).unwrap_or(csize);
            extents.push((d, h));
            at = h;
        }
        let total: u64 = extents.iter().map(|(a, b)| b - a).sum();
        if total <= CUT_PIECE {
            return Ok(None);
        }
        let mut sum = 0;
        for (a, b) in extents.iter().rev() {
            if sum + (b - a) >= CUT_PIECE {
                let block = self.layout.slot_at(b - (CUT_PIECE - sum));
                let mid = block.max(size / BLOCK + 2) * BLOCK;
                let (_, psize) = self.sizes(&of.node, &of.file)?;
                return Ok((mid > size && mid < psize).then_some(mid));
            }
            sum += b - a;
        }
        Ok(None)
    }
}

/// The most data one cut saves in the crash journal; a longer cut is made
/// in committed pieces from the end (a crash during it leaves the file cut
/// part of the way: FORMAT §11). Keeps the journal replayable (under
/// `store::safe::MAX_JOURNAL`).
const CUT_PIECE: u64 = 256 << 20;

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

impl Tree {
    /// `lseek(SEEK_DATA / SEEK_HOLE)` (issue 16.14): answered from the
    /// file's hole runs, so `cp`, `tar --sparse` and backup tools skip them
    /// instead of reading every zero. A host hole is a run of hole slots
    /// (FORMAT §4); a marker slot closes a run and reads as zeros too. The
    /// answers are hints, as POSIX allows: reads still verify every block.
    /// `data`: `SEEK_DATA`, else `SEEK_HOLE`.
    pub fn seek_data(&self, of: &OpenFile, offset: u64, data: bool) -> io::Result<u64> {
        let (node, file) = (&of.node, &of.file);
        let _g = node.io.read().unwrap_or_else(|e| e.into_inner());
        let (_, psize) = self.sizes(node, file)?;
        if offset >= psize {
            return Err(io::Error::from_raw_os_error(libc::ENXIO));
        }
        if !self.sparse {
            return Ok(if data { offset } else { psize });
        }
        let k = self.key(node, file)?;
        let final_block = content::block_count(psize) - 1;
        // The slot where the next host data (or hole) starts, from slot n.
        let next = |n: u64, data: bool| {
            seek_extent(file, self.layout.block_offset(n), data)
                .map_or(final_block, |h| self.layout.slot_at(h))
        };
        let mut n = offset / BLOCK;
        while n < final_block {
            if data {
                let m = next(n, true).max(n);
                if m >= final_block {
                    break;
                }
                match self.slot_kind(k, file, m)? {
                    Slot::Data => return Ok((m * BLOCK).max(offset)),
                    // A run's marker (or zeros a copy wrote out): still a hole.
                    Slot::Marker(_) | Slot::Zero => n = m + 1,
                }
            } else {
                match self.slot_kind(k, file, n)? {
                    Slot::Zero | Slot::Marker(_) => return Ok((n * BLOCK).max(offset)),
                    Slot::Data => {
                        // Jump to the slot where the next host hole starts.
                        n = next(n + 1, false).max(n + 1);
                    }
                }
            }
        }
        // The final block is always data; the end of the file is a hole.
        Ok(if data {
            (final_block * BLOCK).max(offset)
        } else {
            psize
        })
    }
}

impl OpenFile {
    /// The node this handle is open on.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Whether the handle was opened for writing.
    pub fn writable(&self) -> bool {
        self.writable
    }
}
