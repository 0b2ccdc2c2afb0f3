//! Listing a note's versions and reading one back (the `.history/`
//! view, `quire log`, `quire show`), including the implicit first version
//! of a note saved once.

use std::ffi::OsStr;
use std::io;
use std::sync::Arc;

use zeroize::Zeroizing;

use std::time::{Duration, UNIX_EPOCH};

use super::{History, Implicit, MAX_VERSIONED, VersionInfo, listed};
use crate::format::history::{Origin, Version};
use crate::vault::debris;
use crate::vault::node::Kind;
use crate::vault::node::Node;
use crate::vault::tree::{Tree, eio};

impl History {
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
        let scanned = match self.stream_at(tree, dir, host)? {
            Some(s) => self.scan(tree, &s, dir, host)?.0,
            None => Vec::new(),
        };
        let last = scanned.last().map(|(_, v)| v.clone());
        let versions = listed(scanned);
        let mut out: Vec<VersionInfo> = versions
            .iter()
            .enumerate()
            .map(|(i, (_, v))| VersionInfo {
                number: i + 1,
                time: UNIX_EPOCH + Duration::from_nanos(v.time_ns.max(0) as u64),
                size: v.size,
                origin: v.origin,
                device: v.device,
            })
            .collect();
        // A damaged current content does not hide the saved versions
        // (they are how it is put right).
        let implicit = match self.implicit_current(tree, dir, host, last.as_ref()) {
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
                device: None,
            });
        }
        Ok(out)
    }

    /// The note's current content when it is not the stream's last version
    /// (a note saved once has no stream: it is its own version 1).
    pub(crate) fn implicit_current(
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
        let scanned = match &stream {
            Some(s) => self.scan(tree, s, dir, host)?.0,
            None => Vec::new(),
        };
        let last = scanned.last().map(|(_, v)| v.clone());
        let versions = listed(scanned);
        if number == versions.len() + 1
            && let Some((_, _, c)) = self.implicit_current(tree, dir, host, last.as_ref())?
        {
            return Ok(c);
        }
        let (_, v) = versions
            .get(number.wrapping_sub(1))
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        let s = stream.as_ref().expect("a version implies a stream");
        self.content_of(s, v)
    }
}
