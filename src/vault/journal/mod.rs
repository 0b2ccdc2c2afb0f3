//! The crash-undo journal `quire.undo` (docs/FORMAT.md §11): what makes
//! every file read, after a daemon is killed at any instant, as either its
//! last committed content or the new one, never a mix or a torn block.
//!
//! A file's content changes in place. Before the first change after a
//! commit, a BEGIN record notes the file's committed host size and path;
//! before a block that existed at the commit is overwritten, its sealed
//! bytes are saved in a BLOCK record. A commit (the last writer's close, an
//! fsync, a rename or unlink of the file) writes END. On the next unlock,
//! every session without END is rolled back: saved blocks are written back
//! and the file is cut to its committed size.
//!
//! Records are written with one `write` each and before the change they
//! protect, so a killed daemon (whose writes the host kernel still holds)
//! always leaves enough to undo. Against power loss, only fsync'd data is
//! promised (see docs/THREAT_MODEL.md).

mod replay;
pub use replay::OpenChange;

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::crypto::{AeadKey, SubKeys, random};
use crate::format::content;
use crate::format::stream;
use crate::format::undo::{self, Record};

/// Journal size past which it is started afresh once no file is dirty.
const RESET_AT: u64 = 1 << 20;

/// Per-file state between a first change and its commit.
pub(crate) struct Session {
    id: u64,
    /// Blocks that existed at the commit; only these need saving.
    committed_blocks: u64,
    saved: HashSet<u64>,
    /// Every block from this index on is saved (a cut, [`Journal::before_cut`]):
    /// a constant, not a set of billions of indices for a large sparse file.
    saved_from: u64,
    /// False for a file the journal cannot name (already unlinked): a crash
    /// loses it anyway.
    tracked: bool,
}

impl Session {
    fn is_saved(&self, b: u64) -> bool {
        (b < CUT_INDEX && b >= self.saved_from) || self.saved.contains(&b)
    }
}

struct Inner {
    file: Option<File>,
    generation: [u8; 16],
    key: Option<AeadKey>,
    len: u64,
    next_session: u64,
    live: usize,
}

/// The "block index" under which a session saves the file's header (it
/// holds the block MAC, FORMAT §4.2, §11).
const HEADER_INDEX: u64 = u64::MAX;
/// The "block index" of a cut marker: its bytes are the first block cut
/// (u64 BE). Rolling back cuts the file there before putting saved blocks
/// back, so slots that were holes come back as holes (FORMAT §11).
const CUT_INDEX: u64 = u64::MAX - 1;
/// Saved blocks are appended to the journal in batches of this many bytes
/// at most: a cut of a large file costs bounded memory (issue 16.11).
const BATCH: usize = 16 << 20;

/// The vault's crash-undo journal.
pub struct Journal {
    path: PathBuf,
    data: PathBuf,
    keys: Arc<SubKeys>,
    /// Where blocks sit in the vault's content files.
    layout: content::Layout,
    inner: Mutex<Inner>,
}

/// What recovery did at unlock.
#[derive(Debug, Default, Clone, Copy)]
pub struct Recovered {
    /// Files rolled back to their last committed content.
    pub files: usize,
    /// Sessions that could not be undone (file gone or replaced).
    pub skipped: usize,
}

impl Journal {
    /// Opens the journal of the vault whose data folder is `data`, first
    /// rolling back any session a crash left open (read-write only).
    pub(crate) fn open(
        path: PathBuf,
        data: &Path,
        keys: Arc<SubKeys>,
        read_only: bool,
        layout: content::Layout,
    ) -> io::Result<(Journal, Recovered)> {
        let data = std::fs::canonicalize(data)?;
        let j = Journal {
            path,
            data,
            keys,
            layout,
            inner: Mutex::new(Inner {
                file: None,
                generation: [0; 16],
                key: None,
                len: 0,
                next_session: 0,
                live: 0,
            }),
        };
        let mut rec = Recovered::default();
        match crate::store::safe::read(&j.path, crate::store::safe::MAX_JOURNAL) {
            Ok(bytes) => {
                if read_only {
                    log::warn!(
                        "{} holds changes interrupted by a crash; mount read-write to roll them back",
                        j.path.display()
                    );
                } else {
                    rec = j.recover(&bytes)?;
                    std::fs::remove_file(&j.path)?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok((j, rec))
    }

    fn append(&self, inner: &mut Inner, records: &[Record]) -> io::Result<()> {
        if inner.file.is_none() {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(crate::store::safe::FLAGS)
                .open(&self.path)?;
            crate::store::safe::check(&f, &self.path, 0)?;
            inner.generation = random::bytes::<16>();
            let h = stream::header(undo::MAGIC, &inner.generation);
            f.write_all(&h)?;
            inner.key = Some(self.keys.undo_key(&inner.generation));
            inner.len = h.len() as u64;
            inner.file = Some(f);
        }
        let key = inner.key.as_ref().expect("set with the file");
        let mut buf = Vec::new();
        for r in records {
            let (kind, body) = r.encode();
            let at = inner.len + buf.len() as u64;
            buf.extend_from_slice(&stream::seal_frame(
                key,
                undo::MAGIC,
                &inner.generation,
                at,
                kind,
                &body,
            ));
        }
        let f = inner.file.as_ref().expect("opened above");
        if let Err(e) = crate::store::fault::point().and_then(|_| f.write_all_at(&buf, inner.len)) {
            // Nothing after a failed record may be trusted: cut it off.
            let _ = f.set_len(inner.len);
            return Err(e);
        }
        inner.len += buf.len() as u64;
        Ok(())
    }

    /// Called under the node's content lock before blocks
    /// `first..=last` of `file` (host size `csize`) are rewritten or cut.
    /// `locate` names the file (folder ID, host name) if it still has a name.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn before_change(
        &self,
        slot: &Mutex<Option<Session>>,
        locate: impl FnOnce() -> Option<([u8; 16], Vec<u8>)>,
        file: &File,
        file_id: &[u8; 16],
        csize: u64,
        first: u64,
        last: u64,
    ) -> io::Result<()> {
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = match &*slot {
            Some(_) => None,
            None => {
                let path = locate();
                Some((
                    Session {
                        id: inner.next_session,
                        committed_blocks: self
                            .layout
                            .plain_size(csize)
                            .map(content::block_count)
                            .unwrap_or(0),
                        saved: HashSet::new(),
                        saved_from: u64::MAX,
                        tracked: path.is_some(),
                    },
                    path,
                ))
            }
        };
        let mut records = Vec::new();
        if let Some((s, Some((dir_id, name)))) = &fresh {
            use std::os::unix::fs::MetadataExt;
            records.push(Record::Begin {
                session: s.id,
                file_id: *file_id,
                size: csize,
                ino: Some(file.metadata()?.ino()),
                dir_id: *dir_id,
                name: name.clone(),
            });
        }
        let s = match &fresh {
            Some((s, _)) => s,
            None => slot.as_ref().expect("checked above"),
        };
        let last = last.min(s.committed_blocks.saturating_sub(1));
        // A header holding the block MAC changes with every change: saved
        // once per session, as "block" u64::MAX (FORMAT §11).
        let hl = self.layout.header_len();
        let save_header =
            s.tracked && self.layout.has_mac() && csize >= hl && !s.is_saved(HEADER_INDEX);
        if save_header {
            let mut bytes = vec![0u8; hl as usize];
            file.read_exact_at(&mut bytes, 0)?;
            records.push(Record::Block {
                session: s.id,
                index: HEADER_INDEX,
                bytes,
            });
        }
        if s.tracked && s.committed_blocks > 0 {
            for b in first..=last {
                if s.is_saved(b) {
                    continue;
                }
                let from = self.layout.block_offset(b);
                let to = self.layout.block_offset(b + 1).min(csize);
                if to <= from {
                    continue;
                }
                let mut bytes = vec![0u8; (to - from) as usize];
                file.read_exact_at(&mut bytes, from)?;
                records.push(Record::Block {
                    session: s.id,
                    index: b,
                    bytes,
                });
            }
        }
        if !records.is_empty() {
            self.append(&mut inner, &records)?;
        }
        if let Some((s, _)) = fresh {
            inner.next_session += 1;
            inner.live += 1;
            *slot = Some(s);
        }
        let s = slot.as_mut().expect("set above");
        if save_header {
            s.saved.insert(HEADER_INDEX);
        }
        if s.tracked && s.committed_blocks > 0 {
            for b in first..=last {
                if b < s.saved_from {
                    s.saved.insert(b);
                }
            }
        }
        Ok(())
    }

    /// Before the file is cut at block `first` (everything from there on
    /// goes): saves the committed blocks from `first` to the end that hold
    /// data on the host — host holes are skipped with `SEEK_DATA`, and come
    /// back as holes because a CUT marker makes a rollback cut the file
    /// before putting blocks back —, appended in batches of at most
    /// [`BATCH`] bytes. Memory is bounded and time follows the data
    /// actually stored (issue 16.11).
    #[allow(clippy::too_many_arguments)] // as before_change
    pub(crate) fn before_cut(
        &self,
        slot: &Mutex<Option<Session>>,
        locate: impl FnOnce() -> Option<([u8; 16], Vec<u8>)>,
        file: &File,
        file_id: &[u8; 16],
        csize: u64,
        first: u64,
    ) -> io::Result<()> {
        // The session (and the header), as for any change.
        self.before_change(
            slot,
            locate,
            file,
            file_id,
            csize,
            first,
            first.saturating_sub(1),
        )?;
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let s = slot.as_mut().expect("begun above");
        if !s.tracked || first >= s.saved_from {
            return Ok(());
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut records = vec![Record::Block {
            session: s.id,
            index: CUT_INDEX,
            bytes: first.to_be_bytes().to_vec(),
        }];
        let mut pending = 0usize;
        let end = s.committed_blocks.min(s.saved_from);
        let mut b = first;
        while b < end {
            if s.saved.contains(&b) {
                b += 1;
                continue;
            }
            let from = self.layout.block_offset(b);
            let Some(d) = crate::store::host::seek_extent(file, from, true) else {
                // Nothing but holes up to the end.
                break;
            };
            let at = self.layout.slot_at(d).max(b);
            if at != b {
                b = at;
                continue;
            }
            let to = self.layout.block_offset(b + 1).min(csize);
            if to <= from {
                break;
            }
            let mut bytes = vec![0u8; (to - from) as usize];
            file.read_exact_at(&mut bytes, from)?;
            pending += bytes.len();
            records.push(Record::Block {
                session: s.id,
                index: b,
                bytes,
            });
            if pending >= BATCH {
                self.append(&mut inner, &records)?;
                records.clear();
                pending = 0;
            }
            b += 1;
        }
        if !records.is_empty() {
            self.append(&mut inner, &records)?;
        }
        s.saved.retain(|&x| x < first || x == HEADER_INDEX);
        s.saved_from = first;
        Ok(())
    }

    /// Commits a node's changes: its current content becomes what a crash
    /// rolls back to. Returns whether there was anything to commit.
    pub(crate) fn commit(&self, slot: &Mutex<Option<Session>>) -> io::Result<bool> {
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = slot.take() else {
            return Ok(false);
        };
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.live = inner.live.saturating_sub(1);
        if s.tracked {
            self.append(&mut inner, &[Record::End { session: s.id }])?;
        }
        if inner.live == 0 && inner.len > RESET_AT {
            // Start a new generation: nothing in the old one is needed.
            if let Some(f) = inner.file.take() {
                f.set_len(0)?;
            }
        }
        Ok(true)
    }

    /// Empties the journal if no change is in progress, so blocks saved
    /// from notes purged since cannot linger in it (docs/FORMAT.md §15).
    pub(crate) fn forget_if_idle(&self) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.live == 0
            && let Some(f) = inner.file.take()
        {
            f.set_len(0)?;
        }
        Ok(())
    }

    /// Records that frames are about to be appended at `offset` of a
    /// history stream (`dir_id`, host `name`) or of the audit log, so that
    /// a crash's torn frame is told from tampering (issue 11.8). The
    /// journal is not started over until [`Journal::appended`].
    pub(crate) fn note_append(
        &self,
        target: u8,
        offset: u64,
        dir_id: [u8; 16],
        name: Vec<u8>,
    ) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.append(
            &mut inner,
            &[Record::Append {
                target,
                offset,
                dir_id,
                name,
            }],
        )?;
        inner.live += 1;
        Ok(())
    }

    /// The append noted by [`Journal::note_append`] is written.
    pub(crate) fn appended(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.live = inner.live.saturating_sub(1);
    }

    /// Files being changed right now.
    pub fn dirty(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).live
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        if inner.file.is_some() && inner.live == 0 {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::crypto::MasterKey;

    /// Issue 11.8: a torn frame at an append the journal noted is a
    /// crash's and is cut at the next read-write unlock; bytes past the
    /// last frame of a stream the journal says nothing about are left for
    /// the readers to report.
    #[test]
    fn a_noted_append_torn_by_a_crash_is_cut_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("d");
        std::fs::create_dir(&data).unwrap();
        let id = [7u8; 16];
        std::fs::write(data.join(crate::format::dirid::FILE_NAME), id).unwrap();
        let keys = Arc::new(MasterKey::generate().subkeys(&[1u8; 16]));
        let frame = |n: u32| {
            let mut h = n.to_be_bytes().to_vec();
            h.push(1);
            h
        };
        // A stream: its header, a whole frame of 30, then a frame
        // header saying 50 bytes with only 4 after it.
        let mut good = vec![9u8; stream::HEADER_LEN as usize];
        good.extend(frame(30));
        good.extend([1u8; 30]);
        let mut torn = good.clone();
        torn.extend(frame(50));
        torn.extend([4, 5, 6, 7]);
        std::fs::write(data.join("s.qh"), &torn).unwrap();
        std::fs::write(data.join("other.qh"), &torn).unwrap();
        // A stale note: the stream now at that name has no frame boundary
        // at the noted offset (another stream took the name).
        std::fs::write(data.join("stale.qh"), &torn).unwrap();
        // Audit chains beside the data folder: a device's (named by the
        // device ID in the folder-ID field) and an older version's.
        let dev = [0xd3u8; 16];
        let chain = data
            .with_file_name("audit")
            .join(crate::format::devices::file_name(&dev));
        std::fs::create_dir_all(chain.parent().unwrap()).unwrap();
        std::fs::write(&chain, &torn).unwrap();
        std::fs::write(data.with_file_name("quire.audit"), &torn).unwrap();
        let journal = d.path().join("quire.undo");
        {
            let (j, _) = Journal::open(
                journal.clone(),
                &data,
                keys.clone(),
                false,
                content::Layout::PLAIN,
            )
            .unwrap();
            j.note_append(undo::TO_HISTORY, good.len() as u64, id, b"s.qh".to_vec())
                .unwrap();
            j.note_append(
                undo::TO_HISTORY,
                good.len() as u64 - 7,
                id,
                b"stale.qh".to_vec(),
            )
            .unwrap();
            j.note_append(undo::TO_AUDIT, good.len() as u64, dev, Vec::new())
                .unwrap();
            j.note_append(undo::TO_AUDIT, good.len() as u64, [0; 16], Vec::new())
                .unwrap();
            // The daemon is killed here: no `appended`, the journal stays.
        }
        assert!(journal.exists());
        let (_j, _) =
            Journal::open(journal.clone(), &data, keys, false, content::Layout::PLAIN).unwrap();
        assert_eq!(std::fs::read(data.join("s.qh")).unwrap(), good);
        assert_eq!(std::fs::read(data.join("other.qh")).unwrap(), torn);
        assert_eq!(std::fs::read(data.join("stale.qh")).unwrap(), torn);
        assert_eq!(std::fs::read(&chain).unwrap(), good);
        assert_eq!(
            std::fs::read(data.with_file_name("quire.audit")).unwrap(),
            good
        );
        assert!(!journal.exists());
    }
}
