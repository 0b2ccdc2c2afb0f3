//! Writing: sealing blocks at an offset, growing a file across a gap
//! (with holes where the vault allows them), and rolling a failed write
//! back to the last commit.

use std::io;
use std::os::unix::fs::FileExt;

use super::sparse::{self};
use super::{Content, FirstChange, OpenFile, TOUCHED, modifying, reserve};
use crate::format::content::{self, BLOCK};
use crate::vault::node::FileKey;

impl Content {
    /// Writes `data` at `off`, growing the file (with sealed zero blocks
    /// across any gap) as needed.
    pub fn write(
        &self,
        of: &OpenFile,
        off: u64,
        data: &[u8],
        on_first: FirstChange,
    ) -> io::Result<usize> {
        if !of.writable {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        sparse::check_size(off, data.len() as u64)?;
        if of.node.replaced.load(std::sync::atomic::Ordering::Acquire) {
            // Another program replaced the file under its name (issue
            // 18.5): nothing more goes into a file no name reaches.
            return Err(crate::vault::util::eio());
        }
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
        let r = self.write_locked(of, off, data, on_first);
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

    pub(crate) fn ensure_header(&self, of: &OpenFile, csize: u64) -> io::Result<u64> {
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

    pub(crate) fn write_locked(
        &self,
        of: &OpenFile,
        off: u64,
        data: &[u8],
        on_first: FirstChange,
    ) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let (committed, psize, allocated) = self.sizes_and_allocated(&of.node, &of.file)?;
        let csize = self.ensure_header(of, committed)?;
        let k = self.key(&of.node, &of.file)?;
        let end = off + data.len() as u64;
        let new_psize = psize.max(end);
        if self.sparse && off / BLOCK > content::block_count(psize) {
            return self.write_past_gap(of, k, committed, psize, off, data, on_first);
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
        self.before_change(of, committed, first, last, on_first)?;
        for &(n, _) in &markers {
            self.before_change(of, committed, n, n, on_first)?;
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
        let before = self.mac_before(&of.node, k, &of.file, &replaced)?;
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
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_past_gap(
        &self,
        of: &OpenFile,
        k: &FileKey,
        committed: u64,
        psize: u64,
        off: u64,
        data: &[u8],
        on_first: FirstChange,
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
            self.before_change(of, committed, nb - 1, nb - 1, on_first)?;
        } else {
            // Opens the crash-undo session (nothing to save yet).
            self.before_change(of, committed, 0, 0, on_first)?;
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
        let before = self.mac_before(&of.node, k, &of.file, &replaced)?;
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
    pub(crate) fn undo_after_error(&self, of: &OpenFile) {
        self.mac_forget(&of.node);
        if let Err(e) = self.journal.rollback(&of.node.undo, &of.file) {
            log::error!(
                "could not undo a failed write to {} ({e}); the next mount will",
                &of.node.describe()
            );
        }
    }
}
