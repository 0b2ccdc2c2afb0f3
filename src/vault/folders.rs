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
//!
//! Histories saved on two computers (issue 18.3) are merged here too, folder
//! by folder: see [`Features::merge_histories`]; and a trash window set on
//! both is settled (the longer holds).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use super::features::Features;
use super::history::{stream_name, stream_owner};
use super::node::{Kind, Node};
use super::tree::Tree;
use crate::format::names;
use crate::store::host::Handle;

impl Features {
    /// Merges the other folder IDs of `dir` into its own (see the module
    /// doc); returns how many entries moved: notes, folders, symlinks
    /// (their binding record sealed anew for the new name) and long names
    /// (their sidecar written anew). What cannot be moved is left, and
    /// stays reported by `check`.
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
                // A long name's encrypted name is in its sidecar (§5.3).
                let (enc, sidecar) = match names::classify(hs) {
                    names::Entry::Direct(enc) => (enc.to_string(), None),
                    names::Entry::Long(_) => {
                        let side = OsString::from(names::sidecar_of(hs));
                        match h
                            .read_child(&side)
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok())
                        {
                            Some(full) => (full, Some(side)),
                            None => continue,
                        }
                    }
                    _ => continue,
                };
                if tree.decrypted_name(dir, &host).is_some() {
                    continue;
                }
                let Some(plain) =
                    names::decode(&enc).and_then(|s| tree.keys.names.decrypt(id, &s).ok())
                else {
                    continue;
                };
                let st = h.stat_child(&host)?;
                let kind = Kind::from_mode(st.st_mode);
                // A symlink's binding record names the other ID (§6.1):
                // the target hashes it accepts are sealed anew below.
                let bound = if kind == Kind::Symlink && tree.bound_symlinks {
                    match symlink_targets(tree, h, &host, id) {
                        Some(t) => t,
                        None => {
                            left += 1;
                            continue;
                        }
                    }
                } else {
                    Vec::new()
                };
                let (name, to) = free_name(tree, dir, &plain)?;
                tree.write_sidecar(dir, &to)?;
                let to = OsString::from(to.host());
                h.rename_child(&host, h, &to, libc::RENAME_NOREPLACE)?;
                if let Some(side) = &sidecar {
                    let _ = h.unlink_child(side);
                }
                if kind == Kind::Symlink && tree.bound_symlinks {
                    tree.write_binding(dir, &to, &bound)?;
                    tree.drop_binding(dir, &host);
                }
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

    /// Merges into each note's history the versions its sync tool's
    /// conflict copies hold (issue 18.3, see `history::merge`); a copy of
    /// the history alone (the note itself did not conflict) is removed once
    /// merged. Returns how many versions were added.
    pub fn merge_histories(&self, tree: &Tree, dir: &Arc<Node>) -> io::Result<usize> {
        if !self.history.enabled() || tree.read_only() {
            return Ok(0);
        }
        let h = dir.handle()?;
        let names = h.read_names()?;
        // The copies' host names, whether the copy is of the note (its
        // content, maybe with a stream) or of its stream alone.
        let mut copies: Vec<(OsString, OsString)> = Vec::new();
        for host in &names {
            let note = stream_owner(host).unwrap_or(host);
            if let Some(c) = tree.copy_of(dir, note)
                && !copies.iter().any(|(n, _)| n == note)
            {
                copies.push((note.to_owned(), c.original));
            }
        }
        let mut added = 0;
        for (copy, original) in copies {
            if h.stat_child(&original).is_err() {
                continue; // the note is gone here: the copy stays shown
            }
            let n = match self.history.merge_copy(tree, dir, &original, &copy) {
                Ok(n) => n,
                Err(e) => {
                    log::error!("the versions of a conflict copy could not be merged: {e}");
                    continue;
                }
            };
            let only_history = h.stat_child(&copy).is_err();
            let Some(plain) = tree.plain_name(dir, &original) else {
                continue;
            };
            let path = tree.path_of(dir, &plain);
            if n > 0 {
                log::warn!(
                    "{n} version(s) of '{}' saved on another computer were merged into its history",
                    String::from_utf8_lossy(&path)
                );
                self.events.audit(
                    crate::format::audit::Event::Save,
                    &path,
                    b"",
                    0,
                    &format!("{n} version(s) saved on another computer merged into its history"),
                );
                added += n;
            }
            if only_history {
                // Everything it held is in the note's own stream now.
                h.unlink_child(&stream_name(&copy))?;
            }
        }
        Ok(added)
    }

    /// [`Features::merge_folder_ids`], then [`Features::merge_histories`],
    /// in every folder the mount shows: (entries moved, versions merged).
    pub fn merge_all(&self, tree: &Tree) -> io::Result<(usize, usize)> {
        // The trash window, if it was set on both (issue 18.6); deletions
        // here that an edit there undid.
        if self.history.enabled() {
            if let Err(e) = self.trash.settle_trash_window(tree) {
                log::error!("could not settle a trash window set on two computers ({e})");
            }
            if let Err(e) = self.trash.drop_overridden_deletions(tree) {
                log::error!("could not tidy deletions another computer's edit undid ({e})");
            }
        }
        if let Err(e) = tree.merge_xattr_copies() {
            log::error!("could not merge attributes set on two computers ({e})");
        }
        let (mut n, mut v) = (0, 0);
        let mut stack = vec![(tree.root(), 0u32)];
        while let Some((d, depth)) = stack.pop() {
            n += self.merge_folder_ids(tree, &d).unwrap_or_else(|e| {
                log::error!("could not merge a folder made on two computers ({e})");
                0
            });
            v += self.merge_histories(tree, &d).unwrap_or_else(|e| {
                log::error!("could not merge histories saved on two computers ({e})");
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
        Ok((n, v))
    }
}

/// The target hashes the binding record of the symlink `host` (in the
/// folder `h`, made under the folder ID `id`) accepts, if it opens and
/// accepts the symlink's target.
fn symlink_targets(tree: &Tree, h: &Handle, host: &OsStr, id: &[u8; 16]) -> Option<Vec<[u8; 32]>> {
    let rec = h
        .read_child(&super::tree::symlink::binding_name(host))
        .ok()?;
    let accepted =
        crate::format::records::open_binding(&tree.keys.symlink, id, host.as_bytes(), &rec).ok()?;
    let target = h.readlink_child(host).ok()?;
    let hash = crate::format::records::target_hash(&target);
    accepted.contains(&hash).then(|| vec![hash])
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
