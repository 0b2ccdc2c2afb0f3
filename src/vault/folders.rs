//! Folders made under one name on two computers at once (issue 18.4). The
//! folder's host name is the same on both (an encryption of its name under
//! the parent's ID), but each computer gave it a folder ID of its own; the
//! sync tool keeps one `quire.dirid` and a copy of the other
//! (`quire.sync-conflict-….dirid`), and the notes made in the other
//! computer's copy carry names encrypted under the other ID. Merging moves
//! each of them to the kept ID (its name encrypted anew; its history and
//! dates records re-bound to it), under a free name, then removes the
//! copy. Nothing else changes: content is bound to its file ID, not its
//! folder, and a sub-folder keeps its own ID.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use super::features::Features;
use super::history::stream_name;
use super::node::{Kind, Node};
use super::tree::Tree;
use crate::format::names;

impl Features {
    /// Merges the other folder IDs of `dir` into its own (see the module
    /// doc); returns how many entries moved. Symlinks and long names made
    /// under another ID are left (and stay reported by `check`).
    pub fn merge_folder_ids(&self, tree: &Tree, dir: &Arc<Node>) -> io::Result<usize> {
        let others = tree.other_folder_ids(dir);
        if others.is_empty() || tree.read_only() {
            return Ok(0);
        }
        let main = tree.dir_id(dir)?;
        let h = dir.handle()?;
        let mut moved = 0;
        for (file, id) in &others {
            let mut left = 0;
            for host in h.read_names()? {
                let Some(hs) = host.to_str() else { continue };
                let names::Entry::Direct(enc) = names::classify(hs) else {
                    continue;
                };
                if tree.decrypted_name(dir, &host).is_some() {
                    continue;
                }
                let Some(plain) =
                    names::decode(enc).and_then(|s| tree.keys.names.decrypt(id, &s).ok())
                else {
                    continue;
                };
                let st = h.stat_child(&host)?;
                let kind = Kind::from_mode(st.st_mode);
                if kind == Kind::Symlink {
                    left += 1;
                    continue;
                }
                let (name, to) = free_name(tree, dir, &plain)?;
                tree.write_sidecar(dir, &to)?;
                let to = OsString::from(to.host());
                h.rename_child(&host, h, &to, libc::RENAME_NOREPLACE)?;
                if kind == Kind::File {
                    let side = stream_name(&host);
                    if h.stat_child(&side).is_ok()
                        && let Err(e) = self.history.move_stream(
                            tree,
                            h,
                            &side,
                            (id, &host),
                            h,
                            &stream_name(&to),
                            (&main, &to),
                            libc::RENAME_NOREPLACE,
                            (true, true),
                        )
                    {
                        log::error!("the history of a merged note did not move along: {e}");
                    }
                    if let Err(e) = self
                        .lifecycle
                        .move_dates(tree, dir, (id, &host), (&main, &to))
                    {
                        log::error!("the dates of a merged note did not move along: {e}");
                    }
                }
                let path = tree.path_of(dir, name.as_bytes());
                log::warn!(
                    "'{}' was made in this folder on another computer while both created the folder: merged into it",
                    String::from_utf8_lossy(&path)
                );
                self.events.audit(
                    crate::format::audit::Event::Rename,
                    &path,
                    &path,
                    0,
                    "made on another computer in a folder both created: merged",
                );
                if kind == Kind::File {
                    self.events.emit(crate::vault::events::Change::Saved {
                        path: path.clone(),
                        version: 0,
                    });
                }
                moved += 1;
            }
            if left == 0 {
                h.unlink_child(file)?;
            }
        }
        Ok(moved)
    }

    /// [`Features::merge_folder_ids`] in every folder the mount shows.
    pub fn merge_all_folder_ids(&self, tree: &Tree) -> io::Result<usize> {
        let mut n = 0;
        let mut stack = vec![(tree.root(), 0u32)];
        while let Some((d, depth)) = stack.pop() {
            n += self.merge_folder_ids(tree, &d).unwrap_or_else(|e| {
                log::error!("could not merge a folder made on two computers ({e})");
                0
            });
            if depth > 256 {
                continue;
            }
            for e in tree
                .read_dir(&d)?
                .into_iter()
                .filter(|e| e.kind == Kind::Dir)
            {
                if let Ok((node, _)) = tree.lookup_entry(&d, &e) {
                    stack.push((Arc::new(node), depth + 1));
                }
            }
        }
        Ok(n)
    }
}

/// `plain`, or, if that name is taken in `dir`, `<stem> (from another
/// computer[ N])<.ext>`: the name and its host name under `dir`'s own ID.
fn free_name(tree: &Tree, dir: &Node, plain: &[u8]) -> io::Result<(OsString, names::HostName)> {
    let dot = plain.iter().rposition(|&b| b == b'.').filter(|&i| i > 0);
    let (stem, ext) = match dot {
        Some(i) => (&plain[..i], &plain[i..]),
        None => (plain, &b""[..]),
    };
    for n in 0..1000u32 {
        let name = match n {
            0 => plain.to_vec(),
            1 => [stem, b" (from another computer)", ext].concat(),
            n => [
                stem,
                format!(" (from another computer {n})").as_bytes(),
                ext,
            ]
            .concat(),
        };
        let name = OsStr::from_bytes(&name).to_owned();
        let hn = tree.host_name(dir, &name)?;
        match dir.handle()?.stat_child(OsStr::new(hn.host())) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok((name, hn)),
            _ => continue,
        }
    }
    Err(io::Error::from_raw_os_error(libc::EEXIST))
}
