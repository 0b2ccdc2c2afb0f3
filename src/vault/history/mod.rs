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
mod merge;
mod notes;
mod streams;
mod versions;

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
    /// The device that saved it (§18), where recorded.
    pub device: Option<[u8; 16]>,
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
    /// This device (§18), named by a BY frame after each version it saves.
    pub(crate) device: Option<[u8; 16]>,
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
pub(crate) type Scanned<O> = (Vec<(u64, Version)>, u64, O);

/// Where a stream says it belongs (its last OWNER or MOVE frame).
pub(crate) enum Owner {
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
    /// Whether it names any of `places`.
    fn names_any<P: AsRef<[u8]>>(&self, places: &[P]) -> bool {
        places.iter().any(|p| self.names(p.as_ref()))
    }

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
pub(crate) struct Stream {
    file: File,
    id: [u8; 16],
    key: AeadKey,
}

impl Stream {
    /// A frame of `kind` holding `body`, sealed for offset `at` of this
    /// stream (FORMAT §10).
    fn seal(&self, at: u64, kind: u8, body: &[u8]) -> Vec<u8> {
        stream::seal_frame(&self.key, fmt::MAGIC, &self.id, at, kind, body)
    }
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

/// The note a history stream's host name belongs to (`X.qh` → `X`).
pub(crate) fn stream_owner(side: &OsStr) -> Option<&OsStr> {
    side.as_bytes()
        .strip_suffix(fmt::SUFFIX.as_bytes())
        .filter(|b| !b.is_empty())
        .map(OsStr::from_bytes)
}

impl History {
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

    /// [`History::save_version`] reading through a descriptor already open.
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
                let last = versions.last().map(|(_, v)| v.clone());
                Tail {
                    id: s.id,
                    end,
                    count: listed(versions).len() as u32,
                    last,
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
            buf.extend_from_slice(&s.seal(
                t.end,
                fmt::OWNER,
                &fmt::owner_body(&tree.dir_id(&dir)?, host.as_bytes()),
            ));
        }
        let v = Version {
            time_ns,
            size: content.len() as u64,
            hash,
            origin,
            chunks: Vec::new(),
            device: self.device,
        };
        let (frames, v) = version_frames(
            chunker,
            &s,
            t.end + buf.len() as u64,
            &content,
            &mut known,
            v,
        );
        buf.extend_from_slice(&frames);
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
        append_journaled(
            tree,
            &s,
            &dir,
            &side,
            write_at,
            &bytes,
            if fresh { 0 } else { t.end },
        )?;
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
}

/// The frames that record `content` as the version `v` (its chunk list
/// filled in here) at the end `at` of the stream `s`: a CHUNK frame for
/// each chunk `known` lacks (it learns them), the VERSION frame and, when
/// the device is known, its BY frame.
pub(crate) fn version_frames(
    chunker: &chunker::Chunker,
    s: &Stream,
    at: u64,
    content: &[u8],
    known: &mut HashMap<[u8; 16], ChunkRef>,
    mut v: Version,
) -> (Vec<u8>, Version) {
    let mut buf = Vec::new();
    let mut start = 0;
    let ends = chunker.cut(content);
    let whole = ends.len() == 1;
    for end in ends {
        let piece = &content[start..end];
        let mut h = [0u8; 16];
        if whole {
            // One chunk: its hash is the content's.
            h.copy_from_slice(&v.hash[..16]);
        } else {
            h.copy_from_slice(&chunker.hash(piece)[..16]);
        }
        match known.get(&h) {
            Some(c) if c.len as usize == piece.len() => v.chunks.push(*c),
            _ => {
                let off = at + buf.len() as u64;
                buf.extend_from_slice(&s.seal(off, fmt::CHUNK, piece));
                let c = ChunkRef {
                    offset: off,
                    len: piece.len() as u32,
                    hash: h,
                };
                known.insert(h, c);
                v.chunks.push(c);
            }
        }
        start = end;
    }
    buf.extend_from_slice(&record_frames(s, at + buf.len() as u64, &v));
    (buf, v)
}

/// The VERSION frame of `v` at `at` of `s` and, when its device is known,
/// the BY frame naming it.
pub(crate) fn record_frames(s: &Stream, at: u64, v: &Version) -> Vec<u8> {
    let mut buf = s.seal(at, fmt::VERSION, &v.encode());
    if let Some(d) = &v.device {
        let by = at + buf.len() as u64;
        buf.extend_from_slice(&s.seal(by, fmt::BY, &fmt::by_body(at, d)));
    }
    buf
}

/// Writes `bytes` at `at` of the stream `s` (the history `side` of a note
/// in `dir`), noted in the crash journal first so a torn append is told
/// from tampering (FORMAT §11); on failure the stream is cut back to
/// `undo_len`.
pub(crate) fn append_journaled(
    tree: &Tree,
    s: &Stream,
    dir: &Node,
    side: &OsStr,
    at: u64,
    bytes: &[u8],
    undo_len: u64,
) -> io::Result<()> {
    let noted = tree.dir_id(dir).is_ok_and(|id| {
        tree.content
            .journal
            .note_append(
                crate::format::undo::TO_HISTORY,
                at,
                id,
                side.as_bytes().to_vec(),
            )
            .is_ok()
    });
    let r = crate::store::fault::point().and_then(|_| s.file.write_all_at(bytes, at));
    if noted {
        tree.content.journal.appended();
    }
    if r.is_err() {
        let _ = s.file.set_len(undo_len);
    }
    r
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

/// A stream's versions as listed and numbered: in time order (a history
/// merged from two devices interleaves), each saved content once (a merge
/// made on both devices, or the restatement of the note's own last
/// version after merged ones, records it again). The stream's last record
/// stays what the note's current content is compared with.
pub(crate) fn listed(mut v: Vec<(u64, Version)>) -> Vec<(u64, Version)> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|(_, x)| seen.insert((x.time_ns, x.hash)));
    v.sort_by_key(|(_, x)| x.time_ns);
    v
}
