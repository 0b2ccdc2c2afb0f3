//! Note history (docs/FORMAT.md §12): every save of a note appends a
//! version to its history stream `<host name>.qh`, next to the note, so
//! folder renames carry histories along for free and a note renamed keeps
//! its history.
//!
//! Content is split into chunks by the keyed content-defined chunker of
//! [`chunker`]; a chunk equal to one of the previous version's is
//! referenced, not stored again, so a small edit of a large file stores
//! about one chunk, and an unchanged save stores nothing.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

pub mod chunker;
mod notes;

pub use notes::NoteInfo;

use crate::crypto::{AeadKey, random};
use crate::format::history::{self as fmt, ChunkRef, Origin, Version};
use crate::format::stream;
use crate::vault::debris;
use crate::vault::events::Events;
use crate::vault::lifecycle::records::Lifecycle;
use crate::vault::node::{Kind, Node};
use crate::vault::tree::{Tree, eio};

/// Files larger than this are not versioned (documented in the README).
pub const MAX_VERSIONED: u64 = 64 << 20;
/// An fsync of a file that stays open records a version only if the last
/// one is older than this (a database would otherwise make one per
/// transaction).
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(600);
/// An fsync sooner than this after the open is part of a save (an editor
/// writes, fsyncs and closes), recorded at the close; later ones are
/// checkpoints of a file kept open.
pub const CHECKPOINT_GRACE: Duration = Duration::from_secs(2);

/// One version as listed.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    /// 1-based, oldest first.
    pub number: usize,
    /// When it was saved.
    pub time: SystemTime,
    /// Plaintext size.
    pub size: u64,
    /// Why it was recorded.
    pub origin: Origin,
}

/// The history feature (flag 0x10): its chunker (none when the vault
/// keeps no history) and the restores `quire restore` announced.
pub struct History {
    pub(crate) chunker: Option<chunker::Chunker>,
    /// Restores announced by `quire restore` (path → version, when): the
    /// next save of that note is recorded and audited as a restore.
    pub(crate) restores: Mutex<Vec<(Vec<u8>, usize, Instant)>>,
    pub(crate) events: Arc<Events>,
    pub(crate) lifecycle: Arc<Lifecycle>,
}

impl History {
    /// Whether this vault keeps history (and a trash).
    pub fn enabled(&self) -> bool {
        self.chunker.is_some()
    }
}

/// What a node remembers of its stream between saves, so a save does not
/// re-read the whole stream.
pub(crate) struct Tail {
    id: [u8; 16],
    end: u64,
    last: Option<Version>,
    /// Versions in the stream.
    count: u32,
}

/// A stream read through: its versions (with their frame offsets), the
/// end of its last whole frame, and what it says of its place.
type Scanned<O> = (Vec<(u64, Version)>, u64, O);

/// Where a stream says it belongs (its last OWNER or MOVE frame).
enum Owner {
    /// No frame at all (a crash right after the stream's header): it
    /// holds nothing to misattribute, so it belongs anywhere.
    Empty,
    /// No OWNER frame (vaults without `BOUND`).
    None,
    /// At one place (an OWNER body).
    At(Vec<u8>),
    /// Being moved: at either place (from, to).
    Moving(Vec<u8>, Vec<u8>),
}

impl Owner {
    fn names(&self, place: &[u8]) -> bool {
        match self {
            Owner::Empty => true,
            Owner::None => false,
            Owner::At(p) => p == place,
            Owner::Moving(a, b) => a == place || b == place,
        }
    }
}

/// An opened history stream.
struct Stream {
    file: File,
    id: [u8; 16],
    key: AeadKey,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH.MM.SS` in local time: how versions are named (dots, as
/// a `:` upsets some tools).
pub fn stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    let tm = local_tm(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}.{:02}.{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

pub use super::util::local_tm;

/// Unique names for versions in order (`.2`, `.3` … for equal seconds).
pub fn stamps(times: &[SystemTime]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    times
        .iter()
        .map(|t| {
            let l = stamp(*t);
            let n = seen.entry(l.clone()).or_insert(0);
            *n += 1;
            if *n == 1 { l } else { format!("{l}.{n}") }
        })
        .collect()
}

/// Host name of the history stream of the entry `host`.
pub(crate) fn stream_name(host: &OsStr) -> OsString {
    let mut s = host.to_owned();
    s.push(fmt::SUFFIX);
    s
}

impl History {
    fn open_stream(&self, tree: &Tree, file: File, create: bool) -> io::Result<Option<Stream>> {
        let len = file.metadata()?.len();
        if len == 0 {
            if !create {
                return Ok(None);
            }
            let id = random::bytes::<16>();
            file.write_all_at(&stream::header(fmt::MAGIC, &id), 0)?;
            let key = tree.keys.history_key(&id);
            return Ok(Some(Stream { file, id, key }));
        }
        let mut h = [0u8; stream::HEADER_LEN as usize];
        file.read_exact_at(&mut h, 0).map_err(|_| eio())?;
        let id = stream::parse_header(fmt::MAGIC, &h).map_err(|e| {
            log::error!("a history stream has a bad header ({e:?})");
            eio()
        })?;
        let key = tree.keys.history_key(&id);
        Ok(Some(Stream { file, id, key }))
    }

    /// Reads a whole stream: versions (with their frame offsets) and the
    /// end of the last good frame. Chunk frames are not decrypted. With
    /// `BOUND`, the stream's last OWNER frame must name `dir`'s ID and
    /// `host` (FORMAT §12): a stream moved onto another note is tampering.
    fn scan(
        &self,
        tree: &Tree,
        s: &Stream,
        dir: &Node,
        host: &OsStr,
    ) -> io::Result<(Vec<(u64, Version)>, u64)> {
        let (versions, end, owner) = self.scan_raw(tree, s)?;
        if tree.bound {
            let want = fmt::owner_body(&tree.dir_id(dir)?, host.as_bytes());
            if !owner.names(&want) {
                log::error!(
                    "the history stream of {}/{} belongs to another note (moved or swapped on the host): refused",
                    tree.describe(dir),
                    host.to_string_lossy()
                );
                return Err(eio());
            }
        }
        Ok((versions, end))
    }

    /// Whether the stream of `host` in `dir` belongs elsewhere (its last
    /// OWNER frame names another note; `BOUND` vaults only).
    pub(crate) fn stream_misplaced(&self, tree: &Tree, dir: &Node, host: &OsStr) -> Option<String> {
        if !tree.bound {
            return None;
        }
        let s = self.stream_at(tree, dir, host).ok()??;
        let (_, _, owner) = self.scan_raw(tree, &s).ok()?;
        let id = tree.dir_id(dir).ok()?;
        if owner.names(&fmt::owner_body(&id, host.as_bytes())) {
            return None;
        }
        // Say whose it is, where that can be told.
        let name = |p: &[u8]| -> String {
            if p.len() > 16 && p[..16] == id {
                let h = OsStr::from_bytes(&p[16..]);
                match tree.plain_name(dir, h) {
                    Some(n) => format!("'{}' in this folder", String::from_utf8_lossy(&n)),
                    None => format!("host name {} in this folder", h.to_string_lossy()),
                }
            } else {
                "a note in another folder or the trash".to_string()
            }
        };
        Some(match &owner {
            Owner::Empty | Owner::None => "no note (it has no owner record)".to_string(),
            Owner::At(p) => name(p),
            Owner::Moving(a, b) => format!("{} or {}", name(a), name(b)),
        })
    }

    /// [`Tree::scan`] without the owner check: also returns where the
    /// stream says it belongs.
    fn scan_raw(&self, _tree: &Tree, s: &Stream) -> io::Result<Scanned<Owner>> {
        let bytes = Zeroizing::new(read_all(&s.file)?);
        let mut pos = stream::HEADER_LEN as usize;
        let mut out = Vec::new();
        let mut owner = Owner::None;
        while pos + stream::FRAME_HEADER as usize <= bytes.len() {
            let fh: [u8; 5] = bytes[pos..pos + 5].try_into().expect("5 bytes");
            let Some((len, kind)) = stream::parse_frame_header(&fh) else {
                log::error!("a history stream has a corrupt frame at byte {pos}");
                return Err(eio());
            };
            let start = pos + stream::FRAME_HEADER as usize;
            let end = start + len as usize;
            if end > bytes.len() {
                break; // torn tail of an interrupted save
            }
            let what = match kind {
                fmt::VERSION => "a version record",
                fmt::OWNER | fmt::MOVE => "an owner record",
                _ => {
                    pos = end;
                    continue;
                }
            };
            let body = stream::open_frame(
                &s.key,
                fmt::MAGIC,
                &s.id,
                pos as u64,
                kind,
                &bytes[start..end],
            )
            .map_err(|_| {
                log::error!("{what} at byte {pos} failed authentication");
                eio()
            })?;
            match kind {
                fmt::VERSION => {
                    let v = Version::decode(&body).ok_or_else(|| {
                        log::error!("a version record at byte {pos} is malformed");
                        eio()
                    })?;
                    out.push((pos as u64, v));
                }
                fmt::OWNER => owner = Owner::At(body),
                _ => {
                    let (from, to) = fmt::move_places(&body).ok_or_else(|| {
                        log::error!("a move record at byte {pos} is malformed");
                        eio()
                    })?;
                    owner = Owner::Moving(from, to);
                }
            }
            pos = end;
        }
        if pos == stream::HEADER_LEN as usize {
            owner = Owner::Empty;
        }
        Ok((out, pos as u64, owner))
    }

    /// Appends one OWNER or MOVE frame to the stream `side` of `at` (the
    /// journal notes it when `at` is a folder of the tree, `dir_id`).
    fn append_place(
        &self,
        tree: &Tree,
        at: &crate::store::host::Handle,
        side: &OsStr,
        kind: u8,
        body: &[u8],
        journal: Option<&[u8; 16]>,
    ) -> io::Result<()> {
        let file = at.open_child(side, libc::O_RDWR, 0)?;
        lock_stream(&file)?;
        let s = self.open_stream(tree, file, false)?.ok_or_else(eio)?;
        let (_, end, _) = self.scan_raw(tree, &s)?;
        if s.file.metadata()?.len() > end {
            s.file.set_len(end)?;
        }
        let frame = stream::seal_frame(&s.key, fmt::MAGIC, &s.id, end, kind, body);
        let noted = journal.is_some_and(|id| {
            tree.content
                .journal
                .note_append(
                    crate::format::undo::TO_HISTORY,
                    end,
                    *id,
                    side.as_bytes().to_vec(),
                )
                .is_ok()
        });
        let r = s.file.write_all_at(&frame, end);
        if noted {
            tree.content.journal.appended();
        }
        r
    }

    /// Moves the history stream `from_side` of `from_dir` to `to_side` of
    /// `to_dir` (a rename with `flags`), keeping it bound (FORMAT §12):
    /// a MOVE frame naming both places first, so a crash at any point
    /// leaves it valid where it is, then the rename, then an OWNER frame
    /// naming the new place. `from`/`to` are the owners (folder or trash
    /// entry ID, host name); `journaled` says which places are folders of
    /// the tree (the crash journal can find those). The rename's result is
    /// returned; a stream that did not belong where it was moves as it is
    /// (it stays refused).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn move_stream(
        &self,
        tree: &Tree,
        from_dir: &crate::store::host::Handle,
        from_side: &OsStr,
        from: (&[u8; 16], &OsStr),
        to_dir: &crate::store::host::Handle,
        to_side: &OsStr,
        to: (&[u8; 16], &OsStr),
        flags: u32,
        journaled: (bool, bool),
    ) -> io::Result<()> {
        let a = fmt::owner_body(from.0, from.1.as_bytes());
        let b = fmt::owner_body(to.0, to.1.as_bytes());
        let mut bound = false;
        if tree.bound {
            let owner = match from_dir.open_child(from_side, libc::O_RDONLY, 0) {
                Ok(f) => match self.open_stream(tree, f, false)? {
                    Some(s) => self.scan_raw(tree, &s)?.2,
                    None => Owner::None,
                },
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Err(e),
                Err(e) => return Err(e),
            };
            if owner.names(&a) {
                let j = journaled.0.then_some(from.0);
                self.append_place(
                    tree,
                    from_dir,
                    from_side,
                    fmt::MOVE,
                    &fmt::move_body(&a, &b),
                    j,
                )?;
                bound = true;
            } else {
                log::error!(
                    "a history stream in {} did not belong to the note it was with: moved unbound",
                    from_dir.host_path()
                );
            }
        }
        from_dir.rename_child(from_side, to_dir, to_side, flags)?;
        if bound {
            let j = journaled.1.then_some(to.0);
            if let Err(e) = self.append_place(tree, to_dir, to_side, fmt::OWNER, &b, j) {
                // The MOVE frame keeps it valid here.
                log::error!("a moved history stream could not record its new place: {e}");
            }
        }
        Ok(())
    }

    fn read_chunk(&self, _tree: &Tree, s: &Stream, c: &ChunkRef) -> io::Result<Zeroizing<Vec<u8>>> {
        let mut fh = [0u8; 5];
        s.file.read_exact_at(&mut fh, c.offset).map_err(|_| eio())?;
        let (len, kind) = stream::parse_frame_header(&fh).ok_or_else(eio)?;
        if kind != fmt::CHUNK {
            return Err(eio());
        }
        let mut sealed = vec![0u8; len as usize];
        s.file
            .read_exact_at(&mut sealed, c.offset + stream::FRAME_HEADER)
            .map_err(|_| eio())?;
        let plain = stream::open_frame(&s.key, fmt::MAGIC, &s.id, c.offset, kind, &sealed)
            .map_err(|_| {
                log::error!("a history chunk at byte {} failed authentication", c.offset);
                eio()
            })?;
        if plain.len() != c.len as usize {
            return Err(eio());
        }
        Ok(Zeroizing::new(plain))
    }

    /// Whether the entry `host` of `dir` keeps history: not debris, and not
    /// inside an excluded folder (`.git`).
    pub(crate) fn versioned_name(&self, tree: &Tree, dir: &Arc<Node>, host: &OsStr) -> bool {
        if self.chunker.is_none() {
            return false;
        }
        match tree.plain_name(dir, host) {
            Some(n) if !debris::is_debris(&n) => {}
            _ => return false,
        }
        tree.folder_versioned(dir, 0)
    }

    /// Records the current content of `node` as a version if it differs
    /// from the last one. Errors are logged, not returned: a note whose
    /// history cannot be written is still saved.
    pub(crate) fn save_version(&self, tree: &Tree, node: &Node, origin: Origin) {
        self.save_version_inner(tree, node, None, origin)
    }

    /// [`Tree::save_version`] reading through a descriptor already open.
    pub(crate) fn save_version_from(&self, tree: &Tree, node: &Node, file: &File, origin: Origin) {
        self.save_version_inner(tree, node, Some(file), origin)
    }

    fn save_version_inner(&self, tree: &Tree, node: &Node, file: Option<&File>, origin: Origin) {
        // A save announced by `quire restore` is a restore (issue 10.7).
        let mut restored_from = None;
        if !self.restores.lock().unwrap().is_empty()
            && let Some((dir, host)) = node.location()
            && let Some(name) = tree.plain_name(&dir, &host)
        {
            restored_from = self.take_restore(&tree.path_of(&dir, &name));
        }
        let origin = if restored_from.is_some() {
            Origin::Restore
        } else {
            origin
        };
        let saved = match self.try_save_version(tree, node, file, origin, Mode::Append) {
            Ok(s) => s,
            Err(e) => {
                log::error!("could not record a version of {}: {e}", tree.describe(node));
                Saved::NotKept
            }
        };
        if tree.read_only() || node.kind != Kind::File {
            return;
        }
        let Some((dir, host)) = node.location() else {
            return;
        };
        use std::os::unix::ffi::OsStrExt;
        if let Some(name) = tree.plain_name(&dir, &host)
            && self.events.noteworthy(tree, &dir, OsStr::from_bytes(&name))
        {
            use crate::format::audit::Event;
            let (event, detail) = match origin {
                Origin::Restore => (
                    Event::Restore,
                    match restored_from {
                        Some(n) => format!("version {n} made current"),
                        None => "an old version made current".to_string(),
                    },
                ),
                Origin::Checkpoint => (Event::Save, "checkpoint of a file kept open".to_string()),
                Origin::Save => (Event::Save, String::new()),
            };
            let version = match saved {
                Saved::Version(n) => Some(n),
                Saved::NotKept => Some(0),
                Saved::Unchanged => None,
            };
            if let Some(version) = version {
                let path = tree.path_of(&dir, &name);
                self.events.audit(event, &path, b"", version, &detail);
                self.events
                    .emit(super::events::Change::Saved { path, version });
            }
            self.lifecycle
                .apply_front_matter(tree, node, &dir, &host, &name);
        }
    }

    /// Before a note's content changes or goes (its first change after a
    /// save, a rename of it or over it): if it has no stream yet, its
    /// current content — so far only implicitly its first version — is
    /// written as version 1, dated by its modification time. `locked`: the
    /// caller holds the node's content lock.
    pub(crate) fn keep_first_version(
        &self,
        tree: &Tree,
        node: &Node,
        file: Option<&File>,
        locked: bool,
    ) {
        let mode = if locked {
            Mode::FirstLocked
        } else {
            Mode::First
        };
        if let Err(e) = self.try_save_version(tree, node, file, Origin::Save, mode) {
            log::error!(
                "could not record the first version of {}: {e}",
                tree.describe(node)
            );
        }
    }

    fn try_save_version(
        &self,
        tree: &Tree,
        node: &Node,
        file: Option<&File>,
        origin: Origin,
        mode: Mode,
    ) -> io::Result<Saved> {
        let Some(chunker) = &self.chunker else {
            return Ok(Saved::NotKept);
        };
        if node.kind != Kind::File || tree.read_only() {
            return Ok(Saved::NotKept);
        }
        let Some((dir, host)) = node.location() else {
            return Ok(Saved::NotKept);
        };
        if !self.versioned_name(tree, &dir, &host) {
            return Ok(Saved::NotKept);
        }
        let side = stream_name(&host);
        // Lazy first version: a note without a stream is its own version 1,
        // so writing a note once (most notes) stores it once. The stream is
        // made only when that content is about to change or move.
        let exists = dir.handle()?.stat_child(&side).is_ok();
        match mode {
            Mode::Append if !exists && origin != Origin::Restore => return Ok(Saved::Version(1)),
            Mode::First | Mode::FirstLocked if exists => return Ok(Saved::Unchanged),
            _ => {}
        }
        let mut time_ns = now_ns();
        let content = {
            let opened;
            let f = match file {
                Some(f) => f,
                None => {
                    opened = node.handle()?.open_file(libc::O_RDONLY)?;
                    &opened
                }
            };
            let _g = (mode != Mode::FirstLocked)
                .then(|| node.io.read().unwrap_or_else(|e| e.into_inner()));
            let (_, psize) = tree.content.sizes_of(node, f)?;
            if psize > MAX_VERSIONED || (psize == 0 && mode != Mode::Append) {
                return Ok(Saved::NotKept);
            }
            if mode != Mode::Append {
                use std::os::unix::fs::MetadataExt;
                let m = f.metadata()?;
                time_ns = m.mtime() * 1_000_000_000 + m.mtime_nsec();
            }
            tree.content.read_all_plain(node, f, psize)?
        };
        let mut rec = node.recorder.lock().unwrap_or_else(|e| e.into_inner());
        // A new note's first version: create the stream, header and frames
        // written at once.
        let (s, fresh) = match dir.handle()?.open_child(
            &side,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            0o600,
        ) {
            Ok(file) => {
                let id = random::bytes::<16>();
                let key = tree.keys.history_key(&id);
                (Stream { file, id, key }, true)
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let f = dir.handle()?.open_child(&side, libc::O_RDWR, 0)?;
                (self.open_stream(tree, f, true)?.expect("created"), false)
            }
            Err(e) => return Err(e),
        };
        // One appender at a time: a move of this stream (another thread)
        // appends its MOVE and OWNER frames under the same lock.
        lock_stream(&s.file)?;
        let tail = tail_of(&mut rec);
        let len = if fresh { 0 } else { s.file.metadata()?.len() };
        let t = match tail.take() {
            _ if fresh => Tail {
                id: s.id,
                end: stream::HEADER_LEN,
                last: None,
                count: 0,
            },
            Some(t) if t.id == s.id && t.end == len => t,
            // Just created: nothing to read.
            _ if len == stream::HEADER_LEN => Tail {
                id: s.id,
                end: len,
                last: None,
                count: 0,
            },
            _ => {
                let (versions, end) = self.scan(tree, &s, &dir, &host)?;
                Tail {
                    id: s.id,
                    end,
                    count: versions.len() as u32,
                    last: versions.into_iter().last().map(|(_, v)| v),
                }
            }
        };
        let hash = chunker.hash(&content);
        if t.last.as_ref().is_some_and(|v| v.hash == hash) {
            *tail = Some(t);
            *node.last_version.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            return Ok(Saved::Unchanged);
        }
        // Chunks of the last version, and those written by this save: a
        // chunk repeated within one note (a sparse file's runs of zeros, a
        // pasted block) is stored once.
        let mut known: HashMap<[u8; 16], ChunkRef> = t
            .last
            .iter()
            .flat_map(|v| v.chunks.iter().map(|c| (c.hash, *c)))
            .collect();
        let mut buf = Vec::new();
        if tree.bound && t.end == stream::HEADER_LEN {
            // A new stream says whose it is first (FORMAT §12).
            buf.extend_from_slice(&stream::seal_frame(
                &s.key,
                fmt::MAGIC,
                &s.id,
                t.end,
                fmt::OWNER,
                &fmt::owner_body(&tree.dir_id(&dir)?, host.as_bytes()),
            ));
        }
        let mut refs = Vec::new();
        let mut start = 0;
        let ends = chunker.cut(&content);
        let whole = ends.len() == 1;
        for end in ends {
            let piece = &content[start..end];
            let mut h = [0u8; 16];
            if whole {
                // One chunk: its hash is the content's.
                h.copy_from_slice(&hash[..16]);
            } else {
                h.copy_from_slice(&chunker.hash(piece)[..16]);
            }
            match known.get(&h) {
                Some(c) if c.len as usize == piece.len() => refs.push(*c),
                _ => {
                    let at = t.end + buf.len() as u64;
                    buf.extend_from_slice(&stream::seal_frame(
                        &s.key,
                        fmt::MAGIC,
                        &s.id,
                        at,
                        fmt::CHUNK,
                        piece,
                    ));
                    let c = ChunkRef {
                        offset: at,
                        len: piece.len() as u32,
                        hash: h,
                    };
                    known.insert(h, c);
                    refs.push(c);
                }
            }
            start = end;
        }
        let v = Version {
            time_ns,
            size: content.len() as u64,
            hash,
            origin,
            chunks: refs,
        };
        let at = t.end + buf.len() as u64;
        buf.extend_from_slice(&stream::seal_frame(
            &s.key,
            fmt::MAGIC,
            &s.id,
            at,
            fmt::VERSION,
            &v.encode(),
        ));
        let end = t.end + buf.len() as u64;
        let (write_at, bytes) = if fresh {
            let mut all = stream::header(fmt::MAGIC, &s.id);
            all.extend_from_slice(&buf);
            (0, all)
        } else {
            (t.end, buf)
        };
        if len > t.end {
            // Bytes past the last frame that no crash explains (a crash's
            // torn frame is cut when the journal is replayed): reported,
            // then cut so the stream can go on.
            log::error!(
                "the history stream of {} has {} bytes past its last frame that no interrupted save explains: cut",
                tree.describe(node),
                len - t.end
            );
            s.file.set_len(t.end)?;
        }
        let noted = match tree.dir_id(&dir) {
            Ok(id) => tree
                .content
                .journal
                .note_append(
                    crate::format::undo::TO_HISTORY,
                    write_at,
                    id,
                    std::os::unix::ffi::OsStrExt::as_bytes(side.as_os_str()).to_vec(),
                )
                .is_ok(),
            Err(_) => false,
        };
        let r = crate::store::fault::point().and_then(|_| s.file.write_all_at(&bytes, write_at));
        if noted {
            tree.content.journal.appended();
        }
        if let Err(e) = r {
            let _ = s.file.set_len(if fresh { 0 } else { t.end });
            return Err(e);
        }
        let count = t.count + 1;
        *tail = Some(Tail {
            id: s.id,
            end,
            last: Some(v),
            count,
        });
        *node.last_version.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        Ok(Saved::Version(count))
    }

    fn stream_at(&self, tree: &Tree, dir: &Node, host: &OsStr) -> io::Result<Option<Stream>> {
        match dir
            .handle()?
            .open_child(&stream_name(host), libc::O_RDONLY, 0)
        {
            Ok(f) => self.open_stream(tree, f, false),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The versions of the note `name` in `dir`, oldest first (empty if it
    /// has none).
    pub fn versions(&self, tree: &Tree, dir: &Node, name: &OsStr) -> io::Result<Vec<VersionInfo>> {
        let host = tree.host_name_of(dir, name)?;
        self.versions_at(tree, dir, &host)
    }

    /// Whether the entry `name` of `dir` keeps history (not debris, not in
    /// a `.git` folder).
    pub fn keeps_history_of(&self, tree: &Tree, dir: &Arc<Node>, name: &OsStr) -> bool {
        tree.host_name_of(dir, name)
            .is_ok_and(|h| self.versioned_name(tree, dir, &h))
    }

    /// Bytes of the stream of `host` past its last whole frame: 0 for a
    /// sound stream. A crash's torn frame is cut when the journal is
    /// replayed, so anything left is unexplained (issue 11.8).
    pub(crate) fn stream_tail(&self, tree: &Tree, dir: &Node, host: &OsStr) -> io::Result<u64> {
        match self.stream_at(tree, dir, host)? {
            Some(s) => {
                let len = s.file.metadata()?.len();
                Ok(len.saturating_sub(self.scan(tree, &s, dir, host)?.1))
            }
            None => Ok(0),
        }
    }

    pub(crate) fn versions_at(
        &self,
        tree: &Tree,
        dir: &Node,
        host: &OsStr,
    ) -> io::Result<Vec<VersionInfo>> {
        let versions = match self.stream_at(tree, dir, host)? {
            Some(s) => self.scan(tree, &s, dir, host)?.0,
            None => Vec::new(),
        };
        let mut out: Vec<VersionInfo> = versions
            .iter()
            .enumerate()
            .map(|(i, (_, v))| VersionInfo {
                number: i + 1,
                time: UNIX_EPOCH + Duration::from_nanos(v.time_ns.max(0) as u64),
                size: v.size,
                origin: v.origin,
            })
            .collect();
        // A damaged current content does not hide the saved versions
        // (they are how it is put right).
        let implicit = match self.implicit_current(tree, dir, host, versions.last().map(|(_, v)| v))
        {
            Ok(i) => i,
            Err(e) if !versions.is_empty() => {
                log::warn!(
                    "the current content of {}/{} cannot be read ({e}); its saved versions are listed",
                    tree.describe(dir),
                    host.to_string_lossy()
                );
                None
            }
            Err(e) => return Err(e),
        };
        if let Some((time, size, _)) = implicit {
            out.push(VersionInfo {
                number: out.len() + 1,
                time,
                size,
                origin: Origin::Save,
            });
        }
        Ok(out)
    }

    /// The note's current content when it is not the stream's last version
    /// (a note saved once has no stream: it is its own version 1).
    fn implicit_current(
        &self,
        tree: &Tree,
        dir: &Node,
        host: &OsStr,
        last: Option<&Version>,
    ) -> io::Result<Option<Implicit>> {
        let Some(chunker) = &self.chunker else {
            return Ok(None);
        };
        // Only notes of the tree (not a trash entry's content) that are not
        // debris have an implicit current version.
        let in_tree = dir.dir_id.get().is_some()
            || dir
                .handle()?
                .stat_child(OsStr::new(crate::format::dirid::FILE_NAME))
                .is_ok();
        if !in_tree
            || tree
                .plain_name(dir, host)
                .is_none_or(|n| debris::is_debris(&n))
        {
            return Ok(None);
        }
        let st = match dir.handle()?.stat_child(host) {
            Ok(st) if Kind::from_mode(st.st_mode) == Kind::File => st,
            _ => return Ok(None),
        };
        let psize = tree
            .content
            .layout
            .plain_size(st.st_size as u64)
            .ok_or_else(eio)?;
        if psize > MAX_VERSIONED || (psize == 0 && last.is_none()) {
            return Ok(None);
        }
        let content =
            tree.plain_content(&Node::detached(dir.handle()?.lookup(host)?, st.st_ino))?;
        if last.is_some_and(|v| v.hash == chunker.hash(&content)) {
            return Ok(None);
        }
        let time = UNIX_EPOCH
            + Duration::new(
                st.st_mtime.max(0) as u64,
                st.st_mtime_nsec.clamp(0, 999_999_999) as u32,
            );
        Ok(Some((time, psize, content)))
    }

    /// The content of version `number` (1-based) of `name` in `dir`.
    pub fn version_content(
        &self,
        tree: &Tree,
        dir: &Node,
        name: &OsStr,
        number: usize,
    ) -> io::Result<Zeroizing<Vec<u8>>> {
        let host = tree.host_name_of(dir, name)?;
        self.version_content_at(tree, dir, &host, number)
    }

    pub(crate) fn version_content_at(
        &self,
        tree: &Tree,
        dir: &Node,
        host: &OsStr,
        number: usize,
    ) -> io::Result<Zeroizing<Vec<u8>>> {
        let stream = self.stream_at(tree, dir, host)?;
        let versions = match &stream {
            Some(s) => self.scan(tree, s, dir, host)?.0,
            None => Vec::new(),
        };
        if number == versions.len() + 1
            && let Some((_, _, c)) =
                self.implicit_current(tree, dir, host, versions.last().map(|(_, v)| v))?
        {
            return Ok(c);
        }
        let (_, v) = versions
            .get(number.wrapping_sub(1))
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        let s = stream.as_ref().expect("a version implies a stream");
        let mut out = Zeroizing::new(Vec::with_capacity(v.size as usize));
        for c in &v.chunks {
            out.extend_from_slice(&self.read_chunk(tree, s, c)?);
        }
        if let Some(ch) = &self.chunker
            && ch.hash(&out) != v.hash
        {
            log::error!("a version's content does not match its hash");
            return Err(eio());
        }
        Ok(out)
    }
}

/// Takes the stream's append lock (released when the file is closed).
fn lock_stream(f: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn read_all(f: &File) -> io::Result<Vec<u8>> {
    let len = f.metadata()?.len();
    if len > crate::store::safe::MAX_STREAM {
        log::error!("a history stream is {len} bytes, more than any can be: damaged or tampered");
        return Err(eio());
    }
    let mut v = vec![0u8; len as usize];
    f.read_exact_at(&mut v, 0)?;
    Ok(v)
}

/// A note's current content as an implicit last version: (modified, size,
/// content).
type Implicit = (SystemTime, u64, Zeroizing<Vec<u8>>);

/// What recording a version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Saved {
    /// Recorded as version N (1: a new note, its own first version).
    Version(u32),
    /// The same content as the last version: nothing recorded.
    Unchanged,
    /// Not kept (no history, debris, too large, or failed).
    NotKept,
}

/// What a save does about a note without a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A save: appends if the stream exists (else the note is implicitly
    /// its first version).
    Append,
    /// Writes the current content as version 1 if there is no stream.
    First,
    /// [`Mode::First`] with the node's content lock already held.
    FirstLocked,
}

/// Used by [`super::node::Node`].
/// The stream tail a node's recorder slot holds (set on first use).
fn tail_of(rec: &mut Option<Box<dyn std::any::Any + Send>>) -> &mut Option<Tail> {
    if !rec.as_ref().is_some_and(|b| b.is::<Option<Tail>>()) {
        *rec = Some(Box::new(None::<Tail>));
    }
    rec.as_mut()
        .and_then(|b| b.downcast_mut())
        .expect("set above")
}
