//! Changing a file's size: truncating (long cuts in committed pieces so
//! the crash journal stays replayable), extending with zeros, fallocate.

use std::io;
use std::os::unix::fs::FileExt;

use super::sparse;
use super::{Content, FirstChange, OpenFile, TOUCHED, ZERO_CHUNK, modifying, reserve};
use crate::format::content::{self, BLOCK};
use crate::store::host::seek_extent;

impl Content {
    /// Sets the plaintext size (truncate or extend with zeros).
    pub fn truncate(&self, of: &OpenFile, size: u64, on_first: FirstChange) -> io::Result<()> {
        if !of.writable {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        sparse::check_size(size, 0)?;
        let _g = of.node.io.write().unwrap_or_else(|e| e.into_inner());
        self.holes_changed(&of.node);
        TOUCHED.set(false);
        let r = self.truncate_locked(of, size, on_first);
        self.holes_changed(&of.node);
        if r.is_err() {
            self.mac_forget(&of.node);
            if TOUCHED.get() {
                self.undo_after_error(of);
            }
        }
        r
    }

    pub(crate) fn truncate_locked(
        &self,
        of: &OpenFile,
        size: u64,
        on_first: FirstChange,
    ) -> io::Result<()> {
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
            return self.write_locked(of, size - 1, &[0], on_first);
        }
        if size > psize {
            let mut pos = psize;
            while pos < size {
                let n = (size - pos).min(ZERO_CHUNK);
                self.write_locked(of, pos, &vec![0u8; n as usize], on_first)?;
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
            self.truncate_locked(of, mid, on_first)?;
            self.journal.commit(&of.node.undo)?;
            return self.truncate_locked(of, size, on_first);
        }
        if size == 0 {
            self.before_cut(of, csize, 0, on_first)?;
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
        self.before_change(of, csize, b.saturating_sub(1), b, on_first)?;
        self.before_cut(of, csize, b + 1, on_first)?;
        let mut p = self.read_blocks(&of.node, &of.file, psize, b, b)?;
        p.truncate((size - b * BLOCK) as usize);
        let k = self.key(&of.node, &of.file)?;
        let mut sealed = Vec::new();
        content::seal_blocks(&k.key, &k.id, b, &p, true, &mut sealed);
        // The new final block, the marker before it, and every slot cut.
        let ranges = [(b.saturating_sub(1), u64::MAX)];
        let before = self.mac_before(&of.node, k, &of.file, &ranges)?;
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
    pub fn fallocate(
        &self,
        of: &OpenFile,
        offset: u64,
        length: u64,
        mode: i32,
        on_first: FirstChange,
    ) -> io::Result<()> {
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
        let end = sparse::check_size(offset, length)?;
        let _g = of.node.io.write().unwrap_or_else(|e| e.into_inner());
        self.holes_changed(&of.node);
        TOUCHED.set(false);
        let r = self.fallocate_locked(of, offset, end, keep, punch || zero, on_first);
        self.holes_changed(&of.node);
        if r.is_err() {
            self.mac_forget(&of.node);
            if TOUCHED.get() {
                self.undo_after_error(of);
            }
        }
        r
    }

    pub(crate) fn fallocate_locked(
        &self,
        of: &OpenFile,
        offset: u64,
        end: u64,
        keep: bool,
        zeroing: bool,
        on_first: FirstChange,
    ) -> io::Result<()> {
        let (_, psize) = self.sizes(&of.node, &of.file)?;
        if zeroing && offset < psize {
            self.zero_range(of, offset, end.min(psize), on_first)?;
            of.unrecorded
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if !keep && end > psize {
            self.truncate_locked(of, end, on_first)?;
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
    pub(crate) fn zero_range(
        &self,
        of: &OpenFile,
        a: u64,
        e: u64,
        on_first: FirstChange,
    ) -> io::Result<()> {
        let zeros = |from: u64, to: u64| -> io::Result<()> {
            let mut pos = from;
            while pos < to {
                let n = (to - pos).min(ZERO_CHUNK);
                self.write_locked(of, pos, &vec![0u8; n as usize], on_first)?;
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
            self.before_change(of, csize, cx, cy, on_first)?;
            if m > cy {
                self.before_change(of, csize, m, m, on_first)?;
            }
            let ranges = [(s.min(cx), m.max(cy) + 1)];
            let before = self.mac_before(&of.node, k, &of.file, &ranges)?;
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

    /// When cutting a file to `size` would save more than
    /// [`CUT_PIECE`] bytes of data in the crash journal (which must stay
    /// small enough to replay), the plaintext size to cut to first: the
    /// tail holding about that much data. `None`: one piece will do.
    pub(crate) fn piece_point(
        &self,
        of: &OpenFile,
        size: u64,
        csize: u64,
    ) -> io::Result<Option<u64>> {
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
