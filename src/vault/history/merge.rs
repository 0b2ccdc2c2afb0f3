//! Histories that merge (issue 18.3, FORMAT §12.1). A note saved on two
//! computers while apart ends with one computer's history stream under its
//! name and the other's in a sync tool's conflict copy: beside a conflict
//! copy of the note, or alone when only the history conflicted. The
//! versions the copy holds and the note's stream lacks are appended to the
//! note's stream (each with its own time and device), so nothing saved on
//! either computer is lost when the copy is resolved; listings put them in
//! time order. Merging is idempotent: a version is known by its time and
//! content hash, so merging again, or on both computers at once, adds
//! nothing twice.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use zeroize::Zeroizing;

use super::{History, Stream, lock_stream, record_frames, stream_name, version_frames};
use crate::format::history::{ChunkRef, Origin, Version};
use crate::vault::node::Node;
use crate::vault::tree::{Tree, eio};

impl History {
    /// Appends to the history of the note `host` in `dir` the versions of
    /// the conflict copy `copy` (the host name of a copy of the note: its
    /// stream is `copy.qh`, its content `copy` if the note itself was
    /// copied) that the note's history lacks. Returns how many.
    pub(crate) fn merge_copy(
        &self,
        tree: &Tree,
        dir: &Arc<Node>,
        host: &OsStr,
        copy: &OsStr,
    ) -> io::Result<usize> {
        let Some(chunker) = &self.chunker else {
            return Ok(0);
        };
        if tree.read_only() {
            return Ok(0);
        }
        // What the copy holds: its stream's versions, then its content if
        // that was changed after its last version (or it has no stream).
        let mut theirs: Vec<(Version, Zeroizing<Vec<u8>>)> = Vec::new();
        let mut last = None;
        if let Some(s) = self.stream_at(tree, dir, copy)? {
            let scanned = self.scan(tree, &s, dir, copy)?.0;
            last = scanned.last().map(|(_, v)| v.clone());
            for (_, v) in super::listed(scanned) {
                let content = self.content_of(&s, &v)?;
                theirs.push((v, content));
            }
        }
        if dir.handle()?.stat_child(copy).is_ok()
            && let Some((time, size, content)) =
                self.implicit_current(tree, dir, copy, last.as_ref())?
        {
            let time_ns = time
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            let v = Version {
                time_ns,
                size,
                hash: chunker.hash(&content),
                origin: Origin::Save,
                chunks: Vec::new(),
                device: None,
            };
            theirs.push((v, content));
        }
        if theirs.is_empty() {
            return Ok(0);
        }
        // The note's own stream: made first (its content as version 1) if
        // the note was saved only once here.
        let (node, _) = tree.node_at(dir, host)?;
        self.keep_first_version(tree, &node, None, false);
        let side = stream_name(host);
        let h = dir.handle()?;
        let file = match h.open_child(&side, libc::O_RDWR, 0) {
            Ok(f) => f,
            // An empty note keeps no history of its own.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(0),
            Err(e) => return Err(e),
        };
        lock_stream(&file)?;
        let s = self.open_stream(tree, file, false)?.ok_or_else(eio)?;
        let (ours, end) = self.scan(tree, &s, dir, host)?;
        let Some(own_last) = ours.last().map(|(_, v)| v.clone()) else {
            return Ok(0);
        };
        let have: HashSet<(i64, [u8; 32])> =
            ours.iter().map(|(_, v)| (v.time_ns, v.hash)).collect();
        let mut known: HashMap<[u8; 16], ChunkRef> = ours
            .iter()
            .flat_map(|(_, v)| v.chunks.iter().map(|c| (c.hash, *c)))
            .collect();
        let mut buf = Vec::new();
        let mut added = 0;
        for (v, content) in theirs {
            if have.contains(&(v.time_ns, v.hash)) || chunker.hash(&content) != v.hash {
                continue;
            }
            let v = Version {
                chunks: Vec::new(),
                ..v
            };
            let (frames, _) =
                version_frames(chunker, &s, end + buf.len() as u64, &content, &mut known, v);
            buf.extend_from_slice(&frames);
            added += 1;
        }
        if added == 0 {
            return Ok(0);
        }
        // The note's own last version again, so the stream still ends with
        // what the note holds (FORMAT §12.1).
        buf.extend_from_slice(&record_frames(&s, end + buf.len() as u64, &own_last));
        if s.file.metadata()?.len() > end {
            s.file.set_len(end)?;
        }
        super::append_journaled(tree, &s, dir, &side, end, &buf, end)?;
        Ok(added)
    }

    /// A version's content, read from its chunks and checked against its
    /// hash.
    pub(crate) fn content_of(&self, s: &Stream, v: &Version) -> io::Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(Vec::with_capacity(v.size as usize));
        for c in &v.chunks {
            out.extend_from_slice(&self.read_chunk(s, c)?);
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

impl History {
    /// Writes the new history stream `side` in `at` (it must not exist)
    /// holding every version of `from`'s stream `old`, in stream order,
    /// each with its time, origin and device: its chunks sealed and its
    /// hashes computed under this history's keys (re-keying, issue 20.1).
    /// With `owner` (flag `BOUND`), an OWNER frame naming it comes first.
    /// Returns how many versions.
    pub(crate) fn copy_stream(
        &self,
        tree: &Tree,
        from: &History,
        old: &Stream,
        at: &crate::store::host::Handle,
        side: &OsStr,
        owner: Option<&[u8]>,
    ) -> io::Result<usize> {
        let (Some(chunker), Some(_)) = (&self.chunker, &from.chunker) else {
            return Ok(0);
        };
        let (versions, _, _) = from.scan_raw(old)?;
        let file = at.open_child(side, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, 0o600)?;
        let s = self.open_stream(tree, file, true)?.ok_or_else(eio)?;
        let mut end = crate::format::stream::HEADER_LEN;
        if let Some(b) = owner {
            let frame = s.seal(end, crate::format::history::OWNER, b);
            s.file.write_all_at(&frame, end)?;
            end += frame.len() as u64;
        }
        let mut known = HashMap::new();
        for (_, v) in &versions {
            let content = from.content_of(old, v)?;
            let v = Version {
                hash: chunker.hash(&content),
                chunks: Vec::new(),
                ..v.clone()
            };
            let (frames, _) = version_frames(chunker, &s, end, &content, &mut known, v);
            s.file.write_all_at(&frames, end)?;
            end += frames.len() as u64;
        }
        Ok(versions.len())
    }
}
