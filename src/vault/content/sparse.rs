//! Holes in files (docs/FORMAT.md §4, feature flag `SPARSE`): a run of
//! block slots that are all zero on the host (a host hole, so they cost no
//! disk) closed by a sealed hole marker in its last slot. A zero slot reads
//! as zeros only when the next non-zero slot is a marker of this file and
//! position whose run covers it; a zeroed, punched or removed data block is
//! therefore still detected. The final block of a file is always a data
//! block, so truncation stays detected by its last-block flag.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use super::{Content, OpenFile};
use crate::store::host::seek_extent;
use crate::vault::node::{FileKey, Node};

use crate::format::content::{self, BLOCK, CBLOCK, MARKER_LEN};

/// What a block slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// All zero: inside a run of holes (or tampered).
    Zero,
    /// A hole marker: the run `start..=` this slot.
    Marker(u64),
    /// Anything else: a data block (or tampered).
    Data,
}

fn zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

impl Content {
    /// Reads what slot `n` holds (a slot before the file's final block).
    pub(crate) fn slot_kind(&self, k: &FileKey, file: &File, n: u64) -> io::Result<Slot> {
        let mut head = [0u8; MARKER_LEN + 12];
        file.read_exact_at(&mut head, self.layout.block_offset(n))?;
        if zero(&head) {
            let mut slot = vec![0u8; CBLOCK as usize];
            file.read_exact_at(&mut slot, self.layout.block_offset(n))?;
            return Ok(if zero(&slot) { Slot::Zero } else { Slot::Data });
        }
        if !zero(&head[MARKER_LEN..]) {
            return Ok(Slot::Data);
        }
        let mut slot = vec![0u8; CBLOCK as usize];
        file.read_exact_at(&mut slot, self.layout.block_offset(n))?;
        Ok(match content::open_marker(&k.key, &k.id, n, &slot) {
            Some(s) => Slot::Marker(s),
            None => Slot::Data,
        })
    }

    /// The run of holes holding slot `n` (zero or a marker) of a file whose
    /// final block is `final_block`: (first slot, marker slot), or `None`
    /// when no marker of this file covers it (tampering). Host holes are
    /// skipped with `SEEK_DATA`; zeros written out by a copy that did not
    /// keep holes are scanned.
    pub(crate) fn hole_run(
        &self,
        node: &Node,
        k: &FileKey,
        file: &File,
        n: u64,
        final_block: u64,
    ) -> io::Result<Option<(u64, u64)>> {
        if let Some(r) = self.cached_run(node, file, n) {
            return Ok(Some(r));
        }
        let mut j = n;
        let mut buf = vec![0u8; 64 * CBLOCK as usize];
        while j < final_block {
            // Up to 64 slots at a time, stopping before the final block.
            let count = (final_block - j).min(64);
            let len = (count * CBLOCK) as usize;
            file.read_exact_at(&mut buf[..len], self.layout.block_offset(j))?;
            match buf[..len].iter().position(|&b| b != 0) {
                None => {
                    j += count;
                    // Skip a host hole in one step.
                    let from = self.layout.block_offset(j);
                    if let Some(d) = crate::store::host::seek_extent(file, from, true)
                        && d > from
                    {
                        j = j.max(self.layout.slot_at(d));
                    }
                }
                Some(p) => {
                    let m = j + p as u64 / CBLOCK;
                    if m >= final_block {
                        return Ok(None);
                    }
                    // The marker's group must be the one last written
                    // (an older marker spliced back would set other runs).
                    self.verify_groups(node, k, file, m, m + 1, None)?;
                    let at = ((m - j) * CBLOCK) as usize;
                    let slot = &buf[at..at + CBLOCK as usize];
                    return Ok(match content::open_marker(&k.key, &k.id, m, slot) {
                        Some(s) if s <= n => {
                            let mut sealed = [0u8; MARKER_LEN];
                            sealed.copy_from_slice(&slot[..MARKER_LEN]);
                            *self.hole_cache.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some((node.ino, s, m, sealed));
                            Some((s, m))
                        }
                        _ => None,
                    });
                }
            }
        }
        Ok(None)
    }

    /// The last verified run, if it holds slot `n` of this file and its
    /// marker is still the very bytes verified: every change to a run
    /// rewrites its marker (a fresh nonce) or overwrites it, so a run read
    /// again by another path while a write was under way is never trusted.
    pub(crate) fn cached_run(&self, node: &Node, file: &File, n: u64) -> Option<(u64, u64)> {
        let (ino, s, m, sealed) = (*self.hole_cache.lock().unwrap_or_else(|e| e.into_inner()))?;
        if ino != node.ino || n < s || n > m {
            return None;
        }
        let mut now = [0u8; MARKER_LEN];
        file.read_exact_at(&mut now, self.layout.block_offset(m))
            .ok()?;
        (now == sealed).then_some((s, m))
    }

    /// Forgets verified runs of a file that changes.
    pub(crate) fn holes_changed(&self, node: &Node) {
        let mut c = self.hole_cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.is_some_and(|(ino, ..)| ino == node.ino) {
            *c = None;
        }
    }

    /// Decrypts blocks `first..` from `sealed` (the host bytes from block
    /// `first` on) into `out`, reading holes as zeros. Returns the failing
    /// block when one neither opens nor lies in a run of holes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open_with_holes(
        &self,
        node: &Node,
        k: &FileKey,
        file: &File,
        first: u64,
        sealed: &[u8],
        final_block: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), u64> {
        let mut cur = first;
        let last = first + (sealed.len() as u64).div_ceil(CBLOCK) - 1;
        loop {
            let at = ((cur - first) * CBLOCK) as usize;
            let before = out.len();
            match content::open_blocks(&k.key, &k.id, cur, &sealed[at..], final_block, out) {
                Ok(()) => return Ok(()),
                Err((n, _)) => {
                    out.truncate(before + ((n - cur) * BLOCK) as usize);
                    if !self.sparse || n >= final_block {
                        return Err(n);
                    }
                    let (_, m) = match self.hole_run(node, k, file, n, final_block) {
                        Ok(Some(r)) => r,
                        _ => return Err(n),
                    };
                    let upto = m.min(last);
                    out.resize(out.len() + ((upto - n + 1) * BLOCK) as usize, 0);
                    if upto == last {
                        return Ok(());
                    }
                    cur = upto + 1;
                }
            }
        }
    }

    /// Writes the marker of slot `n` for the run `start..=n`.
    pub(crate) fn write_marker(
        &self,
        k: &FileKey,
        file: &File,
        n: u64,
        start: u64,
    ) -> io::Result<()> {
        let mut slot = vec![0u8; CBLOCK as usize];
        slot[..MARKER_LEN].copy_from_slice(&content::seal_marker(&k.key, &k.id, n, start));
        file.write_all_at(&slot, self.layout.block_offset(n))
    }

    /// The run that slots `x..=y` (all before the final block
    /// `final_block`) join when they become holes: (first slot, marker
    /// slot), reaching into the runs of holes just before and after them.
    pub(crate) fn plan_holes(
        &self,
        node: &Node,
        k: &FileKey,
        file: &File,
        x: u64,
        y: u64,
        final_block: u64,
    ) -> io::Result<(u64, u64)> {
        let mut start = x;
        if x > 0 {
            match self.slot_kind(k, file, x - 1)? {
                Slot::Marker(s) => start = s,
                Slot::Zero => {
                    if let Some((s, _)) = self.hole_run(node, k, file, x - 1, final_block)? {
                        start = s;
                    }
                }
                Slot::Data => {}
            }
        }
        let mut end = y;
        if y + 1 < final_block {
            match self.slot_kind(k, file, y + 1)? {
                Slot::Marker(_) => end = y + 1,
                Slot::Zero => {
                    if let Some((_, m)) = self.hole_run(node, k, file, y + 1, final_block)? {
                        end = m;
                    }
                }
                Slot::Data => {}
            }
        }
        Ok((start, end))
    }

    /// Punches slots `x..=y` on the host and writes the marker of the run
    /// `start..=end` (from [`Content::plan_holes`]).
    pub(crate) fn make_holes(
        &self,
        k: &FileKey,
        file: &File,
        x: u64,
        y: u64,
        start: u64,
        end: u64,
    ) -> io::Result<()> {
        let from = self.layout.block_offset(x);
        let len = (y - x + 1) * CBLOCK;
        // SAFETY: valid fd; offsets below MAX_FILE_SIZE fit in i64.
        let r = unsafe {
            libc::fallocate(
                file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                from as i64,
                len as i64,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            if !matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
            ) {
                return Err(e);
            }
            // No hole punching on this host: zeros, written out.
            let chunk = vec![0u8; (CBLOCK * 256) as usize];
            let mut pos = from;
            while pos < from + len {
                let n = (from + len - pos).min(chunk.len() as u64);
                file.write_all_at(&chunk[..n as usize], pos)?;
                pos += n;
            }
        }
        self.write_marker(k, file, end, start)
    }
}

/// `EFBIG` for a size past [`content::MAX_FILE_SIZE`] (or one that
/// overflows).
pub(crate) fn check_size(off: u64, len: u64) -> io::Result<u64> {
    match off.checked_add(len) {
        Some(e) if e <= content::MAX_FILE_SIZE => Ok(e),
        _ => Err(io::Error::from_raw_os_error(libc::EFBIG)),
    }
}

impl Content {
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
