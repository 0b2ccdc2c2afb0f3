//! Plaintext names and paths of what the namespace holds: decrypting a
//! host name, a folder's path, resolving a vault path, and which names
//! are a note's (not editor debris, not inside an excluded folder such as
//! `.git`: the rule history and the audit log both follow).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use super::Tree;
use crate::format::names;
use crate::vault::debris;
use crate::vault::node::{Kind, Node};

/// What [`Tree::walk_files`] calls: (folder, entry, path).
pub(crate) type FileVisitor<'a> = dyn FnMut(&Arc<Node>, &super::DirEntry, &[u8]) + 'a;

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
                    Kind::Dir if depth < 256 && !debris::is_excluded_folder(e.name.as_bytes()) => {
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

    /// The plaintext name of `host` in `dir`, if it decrypts, or the name
    /// a sync tool's conflict copy is shown under.
    pub(crate) fn plain_name(&self, dir: &Node, host: &OsStr) -> Option<Vec<u8>> {
        self.decrypted_name(dir, host)
            .or_else(|| Some(self.copy_of(dir, host)?.shown()))
    }

    /// The plaintext name of `host` in `dir`, if it decrypts.
    pub(crate) fn decrypted_name(&self, dir: &Node, host: &OsStr) -> Option<Vec<u8>> {
        let id = self.dir_id(dir).ok()?;
        let h = host.to_str()?;
        let encoded = match names::classify(h) {
            names::Entry::Hidden => return None,
            names::Entry::Direct(s) => s.to_string(),
            names::Entry::Long(hash) => {
                let b = dir
                    .handle()
                    .ok()?
                    .read_child(OsStr::new(&names::sidecar_of(hash)))
                    .ok()?;
                String::from_utf8(b).ok()?
            }
        };
        let sealed = names::decode(&encoded)?;
        self.keys.names.decrypt(&id, &sealed).ok()
    }

    /// Whether notes in folder `d` keep history: no `.git` above. Cached
    /// on the folder's node.
    pub(crate) fn folder_versioned(&self, d: &Arc<Node>, depth: u32) -> bool {
        if let Some(v) = d.versioned.get() {
            return *v;
        }
        let v = match d.location() {
            None => true, // the root
            Some(_) if depth > 256 => true,
            Some((parent, h)) => {
                !self
                    .plain_name(&parent, &h)
                    .is_some_and(|n| debris::is_excluded_folder(&n))
                    && self.folder_versioned(&parent, depth + 1)
            }
        };
        let _ = d.versioned.set(v);
        v
    }

    /// The plaintext path of folder `dir` (empty for the root).
    pub(crate) fn plain_path(&self, dir: &Arc<Node>) -> Option<Vec<u8>> {
        let mut parts = Vec::new();
        let mut d = dir.clone();
        while let Some((parent, host)) = d.location() {
            parts.push(self.plain_name(&parent, &host)?);
            d = parent;
        }
        parts.reverse();
        Some(parts.join(&b'/'))
    }

    /// The plaintext path of `name` in `dir`.
    pub(crate) fn path_of(&self, dir: &Arc<Node>, name: &[u8]) -> Vec<u8> {
        let mut p = self.plain_path(dir).unwrap_or_default();
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        p
    }

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

    /// Whether `name` in `dir` is a note's: not debris, and not inside an
    /// excluded folder (`.git`).
    pub(crate) fn is_note(&self, dir: &Arc<Node>, name: &OsStr) -> bool {
        !debris::is_debris(name.as_bytes()) && self.folder_versioned(dir, 0)
    }
}
