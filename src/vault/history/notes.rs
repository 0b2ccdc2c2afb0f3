//! Path-level note operations for the CLI and the control socket: finding
//! a note by its path in the vault, reading it, restoring an old version.

use std::ffi::OsStr;
use std::io;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::History;
use crate::format::history::Origin;
use crate::vault::node::{Kind, Node};
use crate::vault::tree::Tree;

/// How long an announced restore waits for its save.
const RESTORE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl History {
    /// The current content of the note `name` in `dir`.
    pub fn read_current(
        &self,
        tree: &Tree,
        dir: &Arc<Node>,
        name: &OsStr,
    ) -> io::Result<Zeroizing<Vec<u8>>> {
        let (n, a) = tree.lookup(dir, name)?;
        if a.kind != Kind::File {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        // Read whole (for a diff): only what history would keep; a larger
        // file is read through the mount, in pieces (issue 16.12).
        if a.size > super::MAX_VERSIONED {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        tree.plain_content(&n)
    }

    /// Announces that the next save of `path` (within a minute) makes its
    /// version `number` current again: it is recorded with origin
    /// "restore" and audited as a restore from that version. `quire
    /// restore` writes through the mount (so the kernel's caches see it)
    /// after announcing it here.
    pub fn expect_restore(&self, path: &[u8], number: usize) {
        let mut r = self.restores.lock().unwrap();
        r.retain(|(p, _, t)| p != path && t.elapsed() < RESTORE_WINDOW);
        r.push((path.to_vec(), number, std::time::Instant::now()));
    }

    /// Takes the announced restore of `path`, if any.
    pub(crate) fn take_restore(&self, path: &[u8]) -> Option<usize> {
        let mut r = self.restores.lock().unwrap();
        if r.is_empty() {
            return None;
        }
        let i = r
            .iter()
            .position(|(p, _, t)| p == path && t.elapsed() < RESTORE_WINDOW)?;
        Some(r.remove(i).1)
    }

    /// Makes version `number` of `name` in `dir` its current content again;
    /// recorded as a new version (origin "restore"): nothing is lost.
    pub fn restore_version(
        &self,
        tree: &Tree,
        dir: &Arc<Node>,
        name: &OsStr,
        number: usize,
    ) -> io::Result<()> {
        let content = self.version_content(tree, dir, name, number)?;
        self.expect_restore(&tree.path_of(dir, name.as_encoded_bytes()), number);
        let node = match tree.lookup(dir, name) {
            Ok((n, _)) => Arc::new(n),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let (n, _, _) = tree.create(dir, name, 0o600, true, None)?;
                Arc::new(n)
            }
            Err(e) => return Err(e),
        };
        let of = tree.open(node.clone(), true)?;
        let r = (|| {
            tree.truncate(&of, 0)?;
            tree.write(&of, 0, &content)?;
            tree.flush(&of)
        })();
        node.changed
            .store(false, std::sync::atomic::Ordering::Relaxed);
        tree.release(&of)?;
        r?;
        self.save_version(tree, &node, Origin::Restore);
        Ok(())
    }
}

/// A note found by [`History::notes`].
#[derive(Debug, Clone)]
pub struct NoteInfo {
    /// Path in the vault.
    pub path: Vec<u8>,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Plaintext size.
    pub size: u64,
}

impl History {
    /// Every note (regular file, not editor debris) with its modification
    /// time and size, for the search index.
    pub fn notes(&self, tree: &Tree) -> io::Result<Vec<NoteInfo>> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::new();
        tree.walk_files(&mut |dir, e, p| {
            if crate::vault::debris::is_debris(e.name.as_bytes()) {
                return;
            }
            if let Ok((_, a)) = tree.lookup_entry(dir, e) {
                let mtime_ns = a
                    .mtime
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as i64)
                    .unwrap_or(0);
                out.push(NoteInfo {
                    path: p.to_vec(),
                    mtime_ns,
                    size: a.size,
                });
            }
        })?;
        Ok(out)
    }
}
