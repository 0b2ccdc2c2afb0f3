//! Path-level note operations for the CLI and the control socket: finding
//! a note by its path in the vault, reading it, restoring an old version.

use std::ffi::{OsStr, OsString};
use std::io;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::node::{Kind, Node};
use super::tree::Tree;
use crate::format::history::Origin;

/// How long an announced restore waits for its save.
const RESTORE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl Tree {
    /// Resolves a `/`-separated path in the vault to (folder, name).
    pub fn resolve(&self, path: &[u8]) -> io::Result<(Arc<Node>, OsString)> {
        use std::os::unix::ffi::OsStrExt;
        let parts: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|p| !p.is_empty() && *p != b".")
            .collect();
        if parts.iter().any(|p| *p == b"..") {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let Some((name, dirs)) = parts.split_last() else {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        };
        let mut dir = self.root();
        for d in dirs {
            let (n, a) = self.lookup(&dir, OsStr::from_bytes(d))?;
            if a.kind != Kind::Dir {
                return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
            }
            dir = Arc::new(n);
        }
        Ok((dir, OsStr::from_bytes(name).to_owned()))
    }

    /// The current content of the note `name` in `dir`.
    pub fn read_current(&self, dir: &Arc<Node>, name: &OsStr) -> io::Result<Zeroizing<Vec<u8>>> {
        let (n, a) = self.lookup(dir, name)?;
        if a.kind != Kind::File {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        // Read whole (for a diff): only what history would keep; a larger
        // file is read through the mount, in pieces (issue 16.12).
        if a.size > super::history::MAX_VERSIONED {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        self.plain_content(&n)
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
    pub fn restore_version(&self, dir: &Arc<Node>, name: &OsStr, number: usize) -> io::Result<()> {
        let content = self.version_content(dir, name, number)?;
        self.expect_restore(&self.path_of(dir, name.as_encoded_bytes()), number);
        let node = match self.lookup(dir, name) {
            Ok((n, _)) => Arc::new(n),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let (n, _, _) = self.create(dir, name, 0o600, true, None)?;
                Arc::new(n)
            }
            Err(e) => return Err(e),
        };
        let of = self.open(node.clone(), true)?;
        let r = (|| {
            self.truncate(&of, 0)?;
            self.write(&of, 0, &content)?;
            self.flush(&of)
        })();
        node.changed
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.release(&of)?;
        r?;
        self.save_version(&node, Origin::Restore);
        Ok(())
    }
}

/// What [`Tree::walk_files`] calls: (folder, entry, path).
pub(crate) type FileVisitor<'a> = dyn FnMut(&Arc<Node>, &super::DirEntry, &[u8]) + 'a;

/// A note found by [`Tree::notes`].
#[derive(Debug, Clone)]
pub struct NoteInfo {
    /// Path in the vault.
    pub path: Vec<u8>,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Plaintext size.
    pub size: u64,
}

impl Tree {
    /// Calls `f(folder, entry, path)` for every regular file of the vault,
    /// walking every folder except those excluded from history (`.git`).
    pub(crate) fn walk_files(&self, f: &mut FileVisitor<'_>) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let mut stack: Vec<(Arc<Node>, Vec<u8>, u32)> = vec![(self.root(), Vec::new(), 0)];
        while let Some((dir, path, depth)) = stack.pop() {
            let entries = match self.read_dir(&dir) {
                Ok(e) => e,
                Err(e) => {
                    log::error!("{} unreadable ({e})", self.describe(&dir));
                    continue;
                }
            };
            for e in entries {
                let mut p = path.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(e.name.as_bytes());
                match e.kind {
                    Kind::Dir
                        if depth < 256 && !super::debris::is_excluded_folder(e.name.as_bytes()) =>
                    {
                        if let Ok((n, _)) = self.lookup_entry(&dir, &e) {
                            stack.push((Arc::new(n), p, depth + 1));
                        }
                    }
                    Kind::File => f(&dir, &e, &p),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Every note (regular file, not editor debris) with its modification
    /// time and size, for the search index.
    pub fn notes(&self) -> io::Result<Vec<NoteInfo>> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::new();
        self.walk_files(&mut |dir, e, p| {
            if super::debris::is_debris(e.name.as_bytes()) {
                return;
            }
            if let Ok((_, a)) = self.lookup_entry(dir, e) {
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
