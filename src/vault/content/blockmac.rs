//! The block MAC (docs/FORMAT.md §4.2, flag `BLOCK_MAC`): a content file's
//! header holds, sealed under its key, the XOR of a keyed value of every
//! non-empty block slot (its number and nonce). A block spliced back from
//! an older copy of the file authenticates on its own but changes that XOR,
//! so the file reads as `EIO`. The XOR is kept per group of
//! [`MAC_GROUP`] slots too: a small file is verified whole the first time
//! a node's key is needed; a large one, whose group sums this device kept
//! (sealed, bound to the header as it is now), group by group as it is
//! read, so a first read costs what it reads. Each change keeps the MAC
//! and the sums current from the slots it touches alone.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::{Content, HostState, Parked};
use crate::crypto::mac::xor_into;
use crate::crypto::random;
use crate::format::content::{self, CBLOCK, MAC_GROUP};
use crate::vault::node::{FileKey, MacState, Node};
use crate::vault::util::eio;

/// Slots read at once when summing a range.
const READ_SLOTS: u64 = 256;
/// Most parked MACs kept (about 80 bytes each, plus 32 per group).
const MAX_PARKED: usize = 16384;
/// Group sums not used for this long are deleted at the next mount.
const SUMS_KEPT_DAYS: u64 = 30;

fn host_state(file: &File) -> Option<HostState> {
    use std::os::unix::fs::MetadataExt;
    let st = file.metadata().ok()?;
    Some((st.ctime(), st.ctime_nsec(), st.size() as i64))
}

fn xor_all(v: &[[u8; 32]]) -> [u8; 32] {
    let mut acc = [0u8; 32];
    for s in v {
        xor_into(&mut acc, s);
    }
    acc
}

impl MacState {
    fn empty() -> MacState {
        MacState {
            root: [0; 32],
            sums: Vec::new(),
            verified: Vec::new(),
            unverified: 0,
            dirty: false,
        }
    }

    /// Sums just computed from the host: every group verified.
    fn scanned(sums: Vec<[u8; 32]>) -> MacState {
        MacState {
            root: xor_all(&sums),
            verified: vec![true; sums.len()],
            sums,
            unverified: 0,
            dirty: true,
        }
    }

    /// Sums kept on this device, agreeing with the header: no group
    /// verified yet (`groups`: how many the file spans now).
    fn kept(root: [u8; 32], mut sums: Vec<[u8; 32]>, groups: usize) -> MacState {
        sums.resize(groups.max(sums.len()), [0; 32]);
        MacState {
            root,
            verified: vec![false; sums.len()],
            unverified: sums.len(),
            sums,
            dirty: false,
        }
    }

    fn sum(&self, g: u64) -> [u8; 32] {
        self.sums.get(g as usize).copied().unwrap_or([0; 32])
    }

    /// Groups past the ones known are made by this mount's own writes.
    fn is_verified(&self, g: u64) -> bool {
        self.verified.get(g as usize).copied().unwrap_or(true)
    }

    fn apply(&mut self, delta: &Sums) {
        for (&g, v) in &delta.0 {
            let g = g as usize;
            if g >= self.sums.len() {
                self.sums.resize(g + 1, [0; 32]);
                self.verified.resize(g + 1, true);
            }
            xor_into(&mut self.sums[g], v);
        }
        xor_into(&mut self.root, &delta.total());
        self.dirty = true;
    }
}

/// Slot values summed per group: group number → XOR of its slots' values.
#[derive(Default)]
pub(crate) struct Sums(BTreeMap<u64, [u8; 32]>);

impl Sums {
    fn add(&mut self, g: u64, v: &[u8; 32]) {
        xor_into(self.0.entry(g).or_insert([0; 32]), v);
    }

    fn merge(&mut self, o: &Sums) {
        for (&g, v) in &o.0 {
            self.add(g, v);
        }
    }

    fn total(&self) -> [u8; 32] {
        let mut acc = [0u8; 32];
        for v in self.0.values() {
            xor_into(&mut acc, v);
        }
        acc
    }
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

    /// The values of slots `first..end` as they are on the host now, summed
    /// per group (slots past the end or in a host hole count nothing).
    pub(crate) fn slots_sums(
        &self,
        k: &FileKey,
        file: &File,
        first: u64,
        end: u64,
    ) -> io::Result<Sums> {
        let mut out = Sums::default();
        let Some(key) = &self.block_mac else {
            return Ok(out);
        };
        let csize = file.metadata()?.len();
        let hl = self.layout.header_len();
        if csize <= hl {
            return Ok(out);
        }
        let end = end.min((csize - hl).div_ceil(CBLOCK));
        let mut buf = Vec::new();
        let (mut group, mut acc) = (first / MAC_GROUP, [0u8; 32]);
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
            let read_end = end.min(i + READ_SLOTS);
            let to = self.layout.block_offset(read_end).min(csize);
            buf.resize((to - off) as usize, 0);
            file.read_exact_at(&mut buf, off)?;
            for j in i..read_end {
                if j / MAC_GROUP != group {
                    out.add(group, &acc);
                    (group, acc) = (j / MAC_GROUP, [0; 32]);
                }
                let at = ((j - i) * CBLOCK) as usize;
                let nonce = &buf[at..(at + crate::crypto::NONCE_LEN).min(buf.len())];
                xor_into(&mut acc, &key.slot(&k.id, j, nonce));
            }
            i = read_end;
        }
        out.add(group, &acc);
        Ok(out)
    }

    /// Makes sure a file's block MAC is known for this node (the caller
    /// holds its content lock): the header's sealed MAC must equal the
    /// slots', checked over the whole file now, or group by group as it
    /// is read when this device kept the file's group sums.
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
        let parked = self.parked_macs.lock().unwrap().get(&node.ino).cloned();
        if let Some(p) = parked
            && p.id == k.id
            && p.state.root == sealed
            && host_state(file) == Some(p.seen)
        {
            *m = Some(p.state);
            *node.host_seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.seen);
            return Ok(());
        }
        let csize = file.metadata()?.len();
        let groups = csize
            .saturating_sub(self.layout.header_len())
            .div_ceil(CBLOCK)
            .div_ceil(MAC_GROUP) as usize;
        if groups > 1
            && let Some(sums) = self.load_sums(k, &h)
            && sums.len() <= groups
            && xor_all(&sums) == sealed
        {
            *m = Some(MacState::kept(sealed, sums, groups));
            self.host_seen_now(node, file);
            return Ok(());
        }
        log::debug!("file {}: verifying its block MAC", node.describe());
        let found = self.slots_sums(k, file, 0, u64::MAX)?;
        let mut sums = vec![[0u8; 32]; groups];
        for (g, v) in found.0 {
            if let Some(s) = sums.get_mut(g as usize) {
                *s = v;
            }
        }
        if xor_all(&sums) != sealed {
            log::error!(
                "file {}: a block is not the one last written there (an older copy spliced in, or a block of it removed): refused",
                node.describe()
            );
            return Err(eio());
        }
        let mut st = MacState::scanned(sums);
        if groups > 1 && self.store_sums(k, &h, &st) {
            st.dirty = false;
        }
        *m = Some(st);
        self.host_seen_now(node, file);
        Ok(())
    }

    /// Verifies the groups of slots `first..end` not yet verified in this
    /// mount (a large file whose kept sums were trusted at open): each
    /// group's slots must sum to its kept sum. The sums of groups wholly
    /// inside `first..end` are taken from `known` when given (the values
    /// of those slots just read).
    pub(crate) fn verify_groups(
        &self,
        node: &Node,
        k: &FileKey,
        file: &File,
        first: u64,
        end: u64,
        known: Option<&Sums>,
    ) -> io::Result<()> {
        if self.block_mac.is_none() || end <= first {
            return Ok(());
        }
        let pending: Vec<u64> = {
            let m = node.mac.lock().unwrap_or_else(|e| e.into_inner());
            let Some(st) = m.as_ref() else {
                return Err(eio());
            };
            if st.unverified == 0 {
                return Ok(());
            }
            let last = ((end - 1) / MAC_GROUP).min(st.verified.len() as u64);
            (first / MAC_GROUP..=last)
                .filter(|&g| !st.is_verified(g))
                .collect()
        };
        for g in pending {
            let whole = first <= g * MAC_GROUP && end >= (g + 1) * MAC_GROUP;
            let found = match known {
                Some(s) if whole => s.0.get(&g).copied().unwrap_or([0; 32]),
                _ => self
                    .slots_sums(k, file, g * MAC_GROUP, (g + 1) * MAC_GROUP)?
                    .total(),
            };
            let mut m = node.mac.lock().unwrap_or_else(|e| e.into_inner());
            let Some(st) = m.as_mut() else {
                return Err(eio());
            };
            if st.is_verified(g) {
                continue;
            }
            if found != st.sum(g) {
                let mib = (MAC_GROUP * content::BLOCK) >> 20;
                log::error!(
                    "file {}: a block in its MiB {}..{} is not the one last written there (an older copy spliced in, or a block of it removed): refused",
                    node.describe(),
                    g * mib,
                    (g + 1) * mib
                );
                return Err(eio());
            }
            st.verified[g as usize] = true;
            st.unverified -= 1;
        }
        Ok(())
    }

    /// The group sums this device kept for a file, if they open for its
    /// header as it is now (their use is noted in the record's time, so
    /// records of files no longer read are pruned).
    fn load_sums(&self, k: &FileKey, header: &[u8]) -> Option<Vec<[u8; 32]>> {
        let path = self.sums_path(&k.id)?;
        let f = crate::store::safe::open(&path, content::MAX_SUMS_RECORD).ok()?;
        let mut rec = Vec::new();
        std::io::Read::read_to_end(&mut &f, &mut rec).ok()?;
        let sums = content::open_group_sums(&self.keys.mac_sums, header, &rec);
        if sums.is_none() {
            log::debug!("the group sums kept for a file do not fit its header: verified whole");
        } else {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        sums
    }

    /// Keeps a large file's group sums on this device, bound to its header
    /// `h` as it is on the host now (which holds `st`'s MAC). Best effort:
    /// without them the file is verified whole at its next first open.
    fn store_sums(&self, k: &FileKey, h: &[u8], st: &MacState) -> bool {
        let Some(path) = self.sums_path(&k.id) else {
            return false;
        };
        let mut sums = st.sums.as_slice();
        while let [rest @ .., last] = sums
            && *last == [0; 32]
        {
            sums = rest;
        }
        let rec = content::seal_group_sums(&self.keys.mac_sums, h, sums);
        let res = (|| -> io::Result<()> {
            if let Some(dir) = path.parent() {
                crate::store::atomic::private_dir(dir)?;
            }
            crate::store::atomic::write_unsynced(&path, &rec)
        })();
        if let Err(e) = &res {
            log::debug!("could not keep a file's group sums: {e}");
        }
        res.is_ok()
    }

    fn sums_path(&self, id: &[u8; 16]) -> Option<PathBuf> {
        let dir = self.sums_dir.get()?;
        Some(dir.join(crate::vault::util::hex(id)))
    }

    /// Sets where this device keeps group sums, deleting the records not
    /// used for [`SUMS_KEPT_DAYS`].
    pub(crate) fn keep_sums_in(&self, dir: PathBuf) {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let old = std::time::Duration::from_secs(SUMS_KEPT_DAYS * 86_400);
            for e in rd.flatten() {
                let stale = e
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > old);
                if stale {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let _ = self.sums_dir.set(dir);
    }

    /// After a change: a large file's group sums are kept for the next
    /// mount (at the close of its last writer, and when the kernel forgets
    /// its node).
    pub(crate) fn keep_sums(&self, node: &Node, file: &File) {
        if self.block_mac.is_none() {
            return;
        }
        let st = {
            let m = node.mac.lock().unwrap_or_else(|e| e.into_inner());
            match m.as_ref() {
                Some(st) if st.dirty && st.sums.len() > 1 => st.clone(),
                _ => return,
            }
        };
        let Some(k) = node.file_key.get() else {
            return;
        };
        // The header as it is now must hold this MAC (another program may
        // have replaced the file).
        let mut h = vec![0u8; self.layout.header_len() as usize];
        if file.read_exact_at(&mut h, 0).is_err()
            || content::open_header_mac(&k.key, &k.id, &h) != Some(st.root)
        {
            return;
        }
        if self.store_sums(k, &h, &st) {
            let mut m = node.mac.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(now) = m.as_mut()
                && now.root == st.root
            {
                now.dirty = false;
            }
        }
    }

    /// Records the host file's state as Quire's own (after a verification
    /// or a change of its own).
    pub(crate) fn host_seen_now(&self, node: &Node, file: &File) {
        *node.host_seen.lock().unwrap_or_else(|e| e.into_inner()) = host_state(file);
    }

    /// A file Quire just created: its MAC is the empty one, as written.
    pub(crate) fn mac_new_file(&self, node: &Node, file: &File) {
        *node.mac.lock().unwrap_or_else(|e| e.into_inner()) = Some(MacState::empty());
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
        drop(m);
        let seen = *node.host_seen.lock().unwrap_or_else(|e| e.into_inner());
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
    /// verified, current, no change in progress. A large file's changed
    /// group sums are kept on this device too.
    pub(crate) fn park_mac(&self, node: &Node) {
        if self.block_mac.is_none()
            || node.kind() != crate::vault::node::Kind::File
            || node.is_dead()
        {
            return;
        }
        let Some(state) = node.mac.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
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
        if state.dirty
            && state.sums.len() > 1
            && let Ok(f) = node.handle().and_then(|h| h.open_file(libc::O_RDONLY))
            && host_state(&f) == Some(seen)
        {
            self.keep_sums(node, &f);
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
                state,
                seen,
            },
        );
    }

    /// After a change replaced the slots in `ranges` (whose values before
    /// were `before`): the MAC and the group sums are updated and the
    /// header rewritten. The new values of the slots in `ranges` are read
    /// back from the host, those of `written` (first slot, the sealed
    /// bytes just written there) taken from memory.
    pub(crate) fn mac_changed(
        &self,
        node: &Node,
        k: &FileKey,
        file: &File,
        ranges: &[(u64, u64)],
        written: &[(u64, &[u8])],
        before: Sums,
    ) -> io::Result<()> {
        let Some(key) = &self.block_mac else {
            return Ok(());
        };
        let mut delta = before;
        for &(a, b) in ranges {
            delta.merge(&self.slots_sums(k, file, a, b)?);
        }
        for &(first, sealed) in written {
            for (j, slot) in sealed.chunks(CBLOCK as usize).enumerate() {
                let n = first + j as u64;
                let nonce = &slot[..crate::crypto::NONCE_LEN.min(slot.len())];
                delta.add(n / MAC_GROUP, &key.slot(&k.id, n, nonce));
            }
        }
        self.mac_apply(node, k, file, delta)
    }

    /// The values of the slots in `ranges` now, before a change; their
    /// groups are verified first, so a change never builds on a block
    /// that is not the one last written.
    pub(crate) fn mac_before(
        &self,
        node: &Node,
        k: &FileKey,
        file: &File,
        ranges: &[(u64, u64)],
    ) -> io::Result<Sums> {
        let mut acc = Sums::default();
        if self.block_mac.is_some() {
            for &(a, b) in ranges {
                let s = self.slots_sums(k, file, a, b)?;
                self.verify_groups(node, k, file, a, b, Some(&s))?;
                acc.merge(&s);
            }
        }
        Ok(acc)
    }

    /// XORs `delta` into the MAC and the group sums, and writes the header
    /// when the MAC changed.
    fn mac_apply(&self, node: &Node, k: &FileKey, file: &File, delta: Sums) -> io::Result<()> {
        let mut m = node.mac.lock().unwrap_or_else(|e| e.into_inner());
        let Some(cur) = m.take() else {
            return Err(eio());
        };
        let mut new = cur.clone();
        new.apply(&delta);
        if new.root != cur.root {
            file.write_all_at(&content::header_with_mac(&k.key, &k.id, &new.root), 0)?;
        }
        *m = Some(new);
        drop(m);
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
        *m = Some(MacState::empty());
        self.host_seen_now(node, file);
        Ok(())
    }
}
