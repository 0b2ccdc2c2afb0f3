//! Replaying the crash journal at open (docs/FORMAT.md §11): every file a
//! killed daemon left mid-change is put back to its last commit, a torn
//! append to a history stream or the audit log is cut, and nothing else is
//! touched.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use std::sync::Mutex;

use super::{CUT_INDEX, HEADER_INDEX, Journal, Recovered, Session};
use crate::format::content;
use crate::format::stream;
use crate::format::undo::{self, Record};

impl Journal {
    /// Undoes a node's changes since its last commit, in place (after a
    /// failed write: the file goes back to its committed content instead of
    /// keeping half a change). The saved blocks are read back from the
    /// journal. If this fails too, the session stays open and the next
    /// unlock rolls it back.
    pub(crate) fn rollback(&self, slot: &Mutex<Option<Session>>, file: &File) -> io::Result<()> {
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = slot.as_ref() else {
            return Ok(());
        };
        if !s.tracked {
            return Ok(());
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(f), Some(key)) = (inner.file.as_ref(), inner.key.as_ref()) else {
            return Ok(());
        };
        let mut bytes = vec![0u8; inner.len as usize];
        f.read_exact_at(&mut bytes, 0)?;
        let frames = stream::open_all(key, undo::MAGIC, &inner.generation, &bytes);
        let Some(u) = unfinished(frames.frames, &self.path).remove(&s.id) else {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        };
        put_back(file, &u.blocks, u.size, self.layout)?;
        let id = s.id;
        self.append(&mut inner, &[Record::End { session: id }])?;
        inner.live = inner.live.saturating_sub(1);
        *slot = None;
        log::warn!("a write failed; the file was put back as it was at its last save");
        Ok(())
    }

    pub(super) fn recover(&self, bytes: &[u8]) -> io::Result<Recovered> {
        let mut rec = Recovered::default();
        let generation = match stream::parse_header(undo::MAGIC, bytes) {
            Ok(g) => g,
            Err(e) => {
                log::error!(
                    "{} is not a readable undo journal ({e:?}); ignoring it",
                    self.path.display()
                );
                return Ok(rec);
            }
        };
        let key = self.keys.undo_key(&generation);
        let frames = stream::open_all(&key, undo::MAGIC, &generation, bytes);
        if frames.tampered {
            log::error!(
                "{}: a record at byte {} failed authentication; later records ignored",
                self.path.display(),
                frames.end
            );
        }
        let appends: Vec<(u8, u64, [u8; 16], Vec<u8>)> = frames
            .frames
            .iter()
            .filter_map(|f| match Record::decode(f.kind, &f.body) {
                Some(Record::Append {
                    target,
                    offset,
                    dir_id,
                    name,
                }) => Some((target, offset, dir_id, name)),
                _ => None,
            })
            .collect();
        let open = unfinished(frames.frames, &self.path);
        if open.is_empty() && appends.is_empty() {
            return Ok(rec);
        }
        let dirs = folders_by_id(&self.data)?;
        // Appends a crash interrupted: their torn frames are cut (a torn
        // frame no record explains is reported as tampering by readers).
        for (target, offset, dir_id, name) in &appends {
            let path = match *target {
                // The folder-ID field names the device whose chain it
                // is; zero in journals of older versions (`quire.audit`).
                undo::TO_AUDIT if *dir_id == [0; 16] => {
                    self.data.with_file_name(crate::store::AUDIT)
                }
                undo::TO_AUDIT => self
                    .data
                    .with_file_name(crate::store::AUDIT_DIR)
                    .join(crate::format::devices::file_name(dir_id)),
                _ => {
                    let n = std::ffi::OsStr::from_bytes(name);
                    let plain = matches!(
                        Path::new(n).components().collect::<Vec<_>>()[..],
                        [std::path::Component::Normal(_)]
                    );
                    match dirs.get(dir_id).filter(|_| plain) {
                        Some(d) => d.join(n),
                        None => continue,
                    }
                }
            };
            if let Err(e) = cut_torn_append(&path, *offset) {
                log::warn!(
                    "{}: could not check an interrupted append ({e})",
                    path.display()
                );
            }
        }
        let mut sessions: Vec<_> = open.into_values().collect();
        sessions.sort_by(|a, b| a.name.cmp(&b.name));
        for s in sessions {
            let name = std::ffi::OsStr::from_bytes(&s.name);
            let plain_component = matches!(
                Path::new(name).components().collect::<Vec<_>>()[..],
                [std::path::Component::Normal(_)]
            );
            let Some(dir) = dirs.get(&s.dir_id).filter(|_| plain_component) else {
                rec.skipped += 1;
                log::warn!(
                    "a change interrupted by a crash was in a folder that is gone; nothing to roll back"
                );
                continue;
            };
            let host = dir.join(name);
            match undo_file(&host, &s.file_id, s.ino, s.size, &s.blocks, self.layout) {
                Ok(true) => {
                    rec.files += 1;
                    log::warn!(
                        "rolled {} back to its last saved content (interrupted by a crash)",
                        host.display()
                    );
                }
                Ok(false) => {
                    rec.skipped += 1;
                    log::warn!(
                        "{} changed identity since the crash (replaced by a sync tool, a restored backup or another device); left as it is",
                        host.display()
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    rec.skipped += 1;
                    log::warn!(
                        "{} was interrupted by a crash and is gone since; nothing to roll back",
                        host.display()
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Ok(rec)
    }
}

/// Maps every folder's ID to its host path (a walk, done only when a crash
/// left something to undo).
pub(super) fn folders_by_id(data: &Path) -> io::Result<HashMap<[u8; 16], PathBuf>> {
    let mut out = HashMap::new();
    let mut stack = vec![data.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(b) = crate::store::safe::read(
            &d.join(crate::format::dirid::FILE_NAME),
            crate::store::safe::MAX_RECORD,
        ) && let Some(id) = crate::format::dirid::parse(&b)
        {
            out.insert(id, d.clone());
        }
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Ok(out)
}

/// Writes saved blocks back and cuts the file to its committed size.
/// `Ok(false)` if the file at that path is another file now: another
/// file ID, or (`ino`, journals since issue 18.1) another host inode, as
/// when a sync tool or a restored backup replaced it after the crash.
pub(super) fn undo_file(
    host: &Path,
    id: &[u8; 16],
    ino: Option<u64>,
    size: u64,
    blocks: &[(u64, Vec<u8>)],
    layout: content::Layout,
) -> io::Result<bool> {
    let f = crate::store::safe::open_with(
        OpenOptions::new().read(true).write(true),
        host,
        content::MAX_FILE_SIZE * 2,
    )?;
    let mut h = vec![0u8; layout.header_len() as usize];
    let meta = f.metadata()?;
    if ino.is_some_and(|i| i != std::os::unix::fs::MetadataExt::ino(&meta)) {
        return Ok(false);
    }
    let len = meta.len();
    if len >= layout.header_len() {
        f.read_exact_at(&mut h, 0)?;
        match content::parse_header(&h, layout) {
            Ok(found) if &found == id => {}
            _ => return Ok(false),
        }
    } else if size > 0 {
        // The header itself is older than the session: cannot be ours.
        return Ok(false);
    }
    put_back(&f, blocks, size, layout)?;
    f.sync_all()?;
    Ok(true)
}

/// One session a journal left without END.
pub(super) struct Unfinished {
    file_id: [u8; 16],
    size: u64,
    ino: Option<u64>,
    dir_id: [u8; 16],
    name: Vec<u8>,
    blocks: Vec<(u64, Vec<u8>)>,
}

/// The sessions of a journal's frames that have no END, by number.
pub(super) fn unfinished(frames: Vec<stream::Frame>, path: &Path) -> HashMap<u64, Unfinished> {
    let mut open = HashMap::new();
    for f in frames {
        match Record::decode(f.kind, &f.body) {
            Some(Record::Begin {
                session,
                file_id,
                size,
                ino,
                dir_id,
                name,
            }) => {
                open.insert(
                    session,
                    Unfinished {
                        file_id,
                        size,
                        ino,
                        dir_id,
                        name,
                        blocks: Vec::new(),
                    },
                );
            }
            Some(Record::Block {
                session,
                index,
                bytes,
            }) => {
                if let Some(o) = open.get_mut(&session) {
                    o.blocks.push((index, bytes));
                }
            }
            Some(Record::End { session }) => {
                open.remove(&session);
            }
            Some(Record::Append { .. }) => {}
            None => log::error!("{}: malformed record skipped", path.display()),
        }
    }
    open
}

/// Cuts `path` back to `offset` if the frames from there do not add up
/// to its end (an append a crash cut short).
pub(super) fn cut_torn_append(path: &Path, offset: u64) -> io::Result<()> {
    let f = match crate::store::safe::open_with(
        OpenOptions::new().read(true).write(true),
        path,
        u64::MAX,
    ) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    // The note may be stale: the stream it named may have moved away and
    // another taken its name since. Cut only if `offset` is a frame
    // boundary of the stream now there (walked from its header).
    if offset == 0 && len < stream::HEADER_LEN {
        // A new stream's first write, cut inside its header.
        f.set_len(0)?;
        return Ok(());
    }
    let offset = offset.max(stream::HEADER_LEN);
    let mut at = stream::HEADER_LEN;
    while at < offset {
        let mut h = [0u8; stream::FRAME_HEADER as usize];
        if at + stream::FRAME_HEADER > len {
            return Ok(());
        }
        f.read_exact_at(&mut h, at)?;
        let Some((n, _)) = stream::parse_frame_header(&h) else {
            return Ok(());
        };
        at += stream::FRAME_HEADER + n as u64;
    }
    if at != offset {
        return Ok(());
    }
    while at < len {
        let mut h = [0u8; stream::FRAME_HEADER as usize];
        if at + stream::FRAME_HEADER > len {
            break;
        }
        f.read_exact_at(&mut h, at)?;
        let Some((n, _)) = stream::parse_frame_header(&h) else {
            break;
        };
        let end = at + stream::FRAME_HEADER + n as u64;
        if end > len {
            break;
        }
        at = end;
    }
    if at < len {
        f.set_len(at)?;
        f.sync_all()?;
        log::warn!(
            "{}: cut {} bytes of an append interrupted by a crash",
            path.display(),
            len - at
        );
    }
    Ok(())
}

/// Writes a session's saved blocks back (the first saved copy of each) and
/// cuts the file to its committed host size.
pub(super) fn put_back(
    f: &File,
    blocks: &[(u64, Vec<u8>)],
    size: u64,
    layout: content::Layout,
) -> io::Result<()> {
    // A cut in the session: everything from the first block cut goes
    // first, so slots that were holes are holes again after the final
    // set_len (FORMAT §11).
    let cut = blocks
        .iter()
        .filter(|(i, b)| *i == CUT_INDEX && b.len() == 8)
        .map(|(_, b)| u64::from_be_bytes(b[..8].try_into().expect("8 bytes")))
        .min();
    if let Some(c) = cut {
        crate::store::fault::point()?;
        let at = layout.block_offset(c);
        if f.metadata()?.len() > at {
            f.set_len(at)?;
        }
    }
    let mut done = HashSet::new();
    done.insert(CUT_INDEX);
    for (index, bytes) in blocks {
        if done.insert(*index) {
            crate::store::fault::point()?;
            let at = match *index {
                HEADER_INDEX => 0,
                i => layout.block_offset(i),
            };
            f.write_all_at(bytes, at)?;
        }
    }
    crate::store::fault::point()?;
    f.set_len(size)
}

/// A change in progress (a session without END) as a backup sees it: the
/// file's host path and how to undo the change in a copy of it.
pub struct OpenChange {
    /// Host path of the file.
    pub host: PathBuf,
    file_id: [u8; 16],
    ino: Option<u64>,
    size: u64,
    blocks: Vec<(u64, Vec<u8>)>,
}

impl Journal {
    /// Every change not yet committed (issue 19.2: a backup stores such a
    /// file as it was at its last commit). Called with the commit gate
    /// closed, so no session starts or ends meanwhile.
    pub fn open_changes(&self) -> io::Result<Vec<OpenChange>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(f), Some(key)) = (inner.file.as_ref(), inner.key.as_ref()) else {
            return Ok(Vec::new());
        };
        if inner.live == 0 {
            return Ok(Vec::new());
        }
        let mut bytes = vec![0u8; inner.len as usize];
        f.read_exact_at(&mut bytes, 0)?;
        let frames = stream::open_all(key, undo::MAGIC, &inner.generation, &bytes);
        drop(inner);
        let open = unfinished(frames.frames, &self.path);
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let dirs = folders_by_id(&self.data)?;
        let mut out = Vec::new();
        for s in open.into_values() {
            let name = std::ffi::OsStr::from_bytes(&s.name);
            if let Some(d) = dirs.get(&s.dir_id) {
                out.push(OpenChange {
                    host: d.join(name),
                    file_id: s.file_id,
                    ino: s.ino,
                    size: s.size,
                    blocks: s.blocks,
                });
            }
        }
        Ok(out)
    }
}

impl OpenChange {
    /// Whether `f` (a copy of the file, whose host inode was `ino`) is the
    /// file this change is about.
    pub fn is_of(&self, ino: u64) -> bool {
        self.ino.is_none_or(|i| i == ino)
    }

    /// Undoes the change in `copy`, a writable copy of the file: it then
    /// holds the file's last committed content. `Ok(false)` if the copy's
    /// header names another file.
    pub fn undo_in(&self, copy: &File, layout: content::Layout) -> io::Result<bool> {
        let len = copy.metadata()?.len();
        if len >= layout.header_len() {
            let mut h = vec![0u8; layout.header_len() as usize];
            copy.read_exact_at(&mut h, 0)?;
            if content::parse_header(&h, layout).ok() != Some(self.file_id) {
                return Ok(false);
            }
        }
        put_back(copy, &self.blocks, self.size, layout)?;
        Ok(true)
    }
}
