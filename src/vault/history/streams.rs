//! History streams on disk (docs/FORMAT.md §12): opening and scanning a
//! stream, its owner records (a stream is bound to its note), appending
//! a place, moving a stream along with its note, reading a chunk.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;

use zeroize::Zeroizing;

use super::{History, Owner, Scanned, Stream, lock_stream, read_all, stream_name};
use crate::crypto::random;
use crate::format::history::{self as fmt, ChunkRef, Version};
use crate::format::stream;
use crate::vault::node::Node;
use crate::vault::tree::{Tree, eio};

impl History {
    pub(crate) fn open_stream(
        &self,
        tree: &Tree,
        file: File,
        create: bool,
    ) -> io::Result<Option<Stream>> {
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
    pub(crate) fn scan(
        &self,
        tree: &Tree,
        s: &Stream,
        dir: &Node,
        host: &OsStr,
    ) -> io::Result<(Vec<(u64, Version)>, u64)> {
        let (versions, end, owner) = self.scan_raw(s)?;
        if tree.bound {
            // A sync tool's conflict copy keeps the original's stream as
            // it was copied (§5.5).
            let id = tree.dir_id(dir)?;
            let want: Vec<_> = tree
                .bound_names(dir, host)
                .iter()
                .map(|h| fmt::owner_body(&id, h.as_bytes()))
                .collect();
            if !owner.names_any(&want) {
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
        let (_, _, owner) = self.scan_raw(&s).ok()?;
        let id = tree.dir_id(dir).ok()?;
        let want: Vec<_> = tree
            .bound_names(dir, host)
            .iter()
            .map(|h| fmt::owner_body(&id, h.as_bytes()))
            .collect();
        if owner.names_any(&want) {
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

    /// [`History::scan`] without the owner check: also returns where the
    /// stream says it belongs.
    pub(crate) fn scan_raw(&self, s: &Stream) -> io::Result<Scanned<Owner>> {
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
                fmt::BY => "a device record",
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
                fmt::BY => {
                    let named = fmt::parse_by(&body).and_then(|(at, device)| {
                        let v = out.iter_mut().rev().find(|(o, _)| *o == at)?;
                        v.1.device = Some(device);
                        Some(())
                    });
                    if named.is_none() {
                        log::error!("a device record at byte {pos} names no earlier version");
                        return Err(eio());
                    }
                }
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
    pub(crate) fn append_place(
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
        let (_, end, _) = self.scan_raw(&s)?;
        if s.file.metadata()?.len() > end {
            s.file.set_len(end)?;
        }
        let frame = s.seal(end, kind, body);
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
                    Some(s) => self.scan_raw(&s)?.2,
                    None => Owner::None,
                },
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Err(e),
                Err(e) => return Err(e),
            };
            // A conflict copy's stream still names the original (§5.5).
            let copied_from = crate::format::conflicts::readings(&from.1.to_string_lossy())
                .into_iter()
                .map(|c| fmt::owner_body(from.0, c.original.as_bytes()));
            let claims: Vec<_> = std::iter::once(a.clone()).chain(copied_from).collect();
            if owner.names_any(&claims) {
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

    pub(crate) fn read_chunk(&self, s: &Stream, c: &ChunkRef) -> io::Result<Zeroizing<Vec<u8>>> {
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

    pub(crate) fn stream_at(
        &self,
        tree: &Tree,
        dir: &Node,
        host: &OsStr,
    ) -> io::Result<Option<Stream>> {
        match dir
            .handle()?
            .open_child(&stream_name(host), libc::O_RDONLY, 0)
        {
            Ok(f) => self.open_stream(tree, f, false),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
