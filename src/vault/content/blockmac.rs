//! The block MAC (docs/FORMAT.md §4.2, flag `BLOCK_MAC`): a content file's
//! header holds, sealed under its key, the XOR of a keyed value of every
//! non-empty block slot (its number and nonce). A block spliced back from
//! an older copy of the file authenticates on its own but changes that XOR,
//! so the file reads as `EIO`. The MAC is verified the first time a node's
//! key is needed (a pass over the file's slots, host holes skipped) and
//! then kept current by each change from the slots it touches alone.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use super::{Content, HostState, Parked};
use crate::crypto::mac::xor_into;
use crate::crypto::random;
use crate::format::content::{self, CBLOCK};
use crate::vault::node::{FileKey, Node};
use crate::vault::util::eio;

/// Slots read at once when summing a range.
const GROUP: u64 = 256;
/// Most parked MACs kept (about 80 bytes each).
const MAX_PARKED: usize = 16384;

fn host_state(file: &File) -> Option<HostState> {
    use std::os::unix::fs::MetadataExt;
    let st = file.metadata().ok()?;
    Some((st.ctime(), st.ctime_nsec(), st.size() as i64))
}

impl Content {
    /// A fresh header for a new file (with an empty MAC in a `BLOCK_MAC`
    /// vault) and its file ID.
    pub(crate) fn new_file_header(&self) -> (Vec<u8>, [u8; 16]) {
        if self.layout.has_mac() {
            let id = random::bytes::<16>();
            let h = content::header_with_mac(&self.keys.file_key(&id), &id, &[0; 32]);
            (h, id)
        } else {
            let (h, id) = content::new_header();
            (h.to_vec(), id)
        }
    }

    /// XOR of the values of slots `first..end` as they are on the host now
    /// (slots past the end or in a host hole count nothing).
    pub(crate) fn slots_mac(
        &self,
        k: &FileKey,
        file: &File,
        first: u64,
        end: u64,
    ) -> io::Result<[u8; 32]> {
        let mut acc = [0u8; 32];
        let Some(key) = &self.block_mac else {
            return Ok(acc);
        };
        let csize = file.metadata()?.len();
        let hl = self.layout.header_len();
        if csize <= hl {
            return Ok(acc);
        }
        let end = end.min((csize - hl).div_ceil(CBLOCK));
        let mut buf = Vec::new();
        let mut i = first;
        while i < end {
            let off = self.layout.block_offset(i);
            if end - i > 4 {
                // Skip host holes (a sparse file's runs): all zero.
                // SAFETY: a valid descriptor.
                let d = unsafe { libc::lseek(file.as_raw_fd(), off as i64, libc::SEEK_DATA) };
                if d < 0 {
                    if io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
                        break;
                    }
                } else if d as u64 >= self.layout.block_offset(i + 1) {
                    i = (d as u64 - hl) / CBLOCK;
                    continue;
                }
            }
            let group_end = end.min(i + GROUP);
            let to = self.layout.block_offset(group_end).min(csize);
            buf.resize((to - off) as usize, 0);
            file.read_exact_at(&mut buf, off)?;
            for j in i..group_end {
                let at = ((j - i) * CBLOCK) as usize;
                let nonce = &buf[at..(at + crate::crypto::NONCE_LEN).min(buf.len())];
                xor_into(&mut acc, &key.slot(&k.id, j, nonce));
            }
            i = group_end;
        }
        Ok(acc)
    }

    /// Verifies a file's block MAC once per node (the caller holds its
    /// content lock): the header's sealed MAC must equal the slots'.
    pub(crate) fn ensure_mac(&self, node: &Node, k: &FileKey, file: &File) -> io::Result<()> {
        if self.block_mac.is_none() {
            return Ok(());
        }
        let mut m = node.mac.lock().unwrap_or_else(|e| e.into_inner());
        if m.is_some() {
            return Ok(());
        }
        let mut h = vec![0u8; self.layout.header_len() as usize];
        file.read_exact_at(&mut h, 0).map_err(|_| eio())?;
        let Some(sealed) = content::open_header_mac(&k.key, &k.id, &h) else {
            log::error!(
                "the header of file {} failed authentication{}",
                node.describe(),
                self.why_unreadable()
            );
            return Err(eio());
        };
        // Kept, not taken: another node of the same inode may ask too (a
        // stale entry is harmless: its ctime no longer matches).
        let parked = self.parked_macs.lock().unwrap().get(&node.ino).copied();
        if let Some(p) = parked
            && p.id == k.id
            && p.mac == sealed
            && host_state(file) == Some(p.seen)
        {
            *m = Some(sealed);
            *node.host_seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.seen);
            return Ok(());
        }
        log::debug!("file {}: verifying its block MAC", node.describe());
        let found = self.slots_mac(k, file, 0, u64::MAX)?;
        if found != sealed {
            log::error!(
                "file {}: a block is not the one last written there (an older copy spliced in, or a block of it removed): refused",
                node.describe()
            );
            return Err(eio());
        }
        *m = Some(found);
        self.host_seen_now(node, file);
        Ok(())
    }

    /// Records the host file's state as Quire's own (after a verification
    /// or a change of its own).
    pub(crate) fn host_seen_now(&self, node: &Node, file: &File) {
        *node.host_seen.lock().unwrap_or_else(|e| e.into_inner()) = host_state(file);
    }

    /// A file Quire just created: its MAC is the empty one, as written.
    pub(crate) fn mac_new_file(&self, node: &Node, file: &File) {
        *node.mac.lock().unwrap_or_else(|e| e.into_inner()) = Some([0; 32]);
        self.host_seen_now(node, file);
    }

    /// After a change of Quire's own to a file's inode that did not go
    /// through its content (mode, owner, times, xattrs, links, a rename):
    /// its new ctime is Quire's too.
    pub(crate) fn host_settled(&self, node: &Node) {
        if self.block_mac.is_none() || node.kind() != crate::vault::node::Kind::File {
            return;
        }
        let m = node.mac.lock().unwrap_or_else(|e| e.into_inner());
        if m.is_none() {
            return;
        }
        let seen = node
            .open_handle()
            .and_then(|h| h.stat().ok())
            .map(|st| (st.st_ctime, st.st_ctime_nsec, st.st_size));
        *node.host_seen.lock().unwrap_or_else(|e| e.into_inner()) = seen;
    }

    /// At an open: if the host file is not as Quire last left it (written
    /// by something else while mounted), its MAC is verified again.
    pub(crate) fn recheck_if_changed(&self, node: &Node, file: &File) -> io::Result<()> {
        if self.block_mac.is_none() {
            return Ok(());
        }
        let m = node.mac.lock().unwrap_or_else(|e| e.into_inner());
        if m.is_none() {
            return Ok(());
        }
        let seen = *node.host_seen.lock().unwrap_or_else(|e| e.into_inner());
        drop(m);
        if seen.is_none() || seen != host_state(file) {
            log::debug!(
                "file {} changed on the host since Quire last wrote it: verifying its block MAC again",
                node.describe()
            );
            self.mac_forget(node);
        }
        Ok(())
    }

    /// Keeps the verified MAC of a node the kernel forgot (see [`Parked`]),
    /// with the host state Quire last left (not the state now: a host
    /// write since then must not be taken in). Only a settled file's:
    /// verified, current, no change in progress.
    pub(crate) fn park_mac(&self, node: &Node) {
        if self.block_mac.is_none()
            || node.kind() != crate::vault::node::Kind::File
            || node.is_dead()
        {
            return;
        }
        let Some(mac) = *node.mac.lock().unwrap_or_else(|e| e.into_inner()) else {
            return;
        };
        let seen = *node.host_seen.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(k), Some(seen)) = (node.file_key.get(), seen) else {
            return;
        };
        if node
            .undo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            return;
        }
        let mut m = self.parked_macs.lock().unwrap();
        if m.len() >= MAX_PARKED
            && let Some(&old) = m.keys().next()
        {
            m.remove(&old);
        }
        m.insert(
            node.ino,
            Parked {
                id: k.id,
                mac,
                seen,
            },
        );
    }

    /// After a change replaced the slots in `ranges` (whose values before
    /// were `before`): the MAC is updated and the header rewritten. The
    /// new values of the slots in `ranges` are read back from the host,
    /// those of `written` (first slot, the sealed bytes just written
    /// there) taken from memory.
    pub(crate) fn mac_changed(
        &self,
        node: &Node,
        k: &FileKey,
        file: &File,
        ranges: &[(u64, u64)],
        written: &[(u64, &[u8])],
        before: [u8; 32],
    ) -> io::Result<()> {
        let Some(key) = &self.block_mac else {
            return Ok(());
        };
        let mut delta = before;
        for &(a, b) in ranges {
            xor_into(&mut delta, &self.slots_mac(k, file, a, b)?);
        }
        for &(first, sealed) in written {
            for (j, slot) in sealed.chunks(CBLOCK as usize).enumerate() {
                let nonce = &slot[..crate::crypto::NONCE_LEN.min(slot.len())];
                xor_into(&mut delta, &key.slot(&k.id, first + j as u64, nonce));
            }
        }
        self.mac_apply(node, k, file, Some(delta), None)
    }

    /// The values of the slots in `ranges` now, before a change.
    pub(crate) fn mac_before(
        &self,
        k: &FileKey,
        file: &File,
        ranges: &[(u64, u64)],
    ) -> io::Result<[u8; 32]> {
        let mut acc = [0u8; 32];
        if self.block_mac.is_some() {
            for &(a, b) in ranges {
                xor_into(&mut acc, &self.slots_mac(k, file, a, b)?);
            }
        }
        Ok(acc)
    }

    /// Sets the MAC (XORs `delta` into it, or sets it to `value`) and
    /// writes the header when it changed.
    pub(crate) fn mac_apply(
        &self,
        node: &Node,
        k: &FileKey,
        file: &File,
        delta: Option<[u8; 32]>,
        value: Option<[u8; 32]>,
    ) -> io::Result<()> {
        if self.block_mac.is_none() {
            return Ok(());
        }
        let mut m = node.mac.lock().unwrap_or_else(|e| e.into_inner());
        let Some(cur) = *m else {
            return Err(eio());
        };
        let mut new = value.unwrap_or(cur);
        if let Some(d) = delta {
            xor_into(&mut new, &d);
        }
        if new != cur {
            *m = None;
            file.write_all_at(&content::header_with_mac(&k.key, &k.id, &new), 0)?;
            *m = Some(new);
        }
        self.host_seen_now(node, file);
        Ok(())
    }

    /// After a change failed part way: the MAC is verified again from the
    /// host (the journal puts the file and its header back first).
    pub(crate) fn mac_forget(&self, node: &Node) {
        *node.mac.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// A file cut to no slots: its MAC is empty.
    pub(crate) fn mac_set_empty(&self, node: &Node, k: &FileKey, file: &File) -> io::Result<()> {
        let mut m = node.mac.lock().unwrap_or_else(|e| e.into_inner());
        *m = None;
        file.write_all_at(&content::header_with_mac(&k.key, &k.id, &[0; 32]), 0)?;
        *m = Some([0; 32]);
        self.host_seen_now(node, file);
        Ok(())
    }
}
