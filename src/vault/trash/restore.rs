//! Putting a trashed note back where it was (or beside it, when the name
//! is taken again), with its history and dates.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use std::time::SystemTime;

use super::{CONTENT, Reason, Trash, entry_key};
use crate::format::lifecycle;
use crate::vault::history::stream_name;
use crate::vault::lifecycle::record_name;
use crate::vault::node::Kind;
use crate::vault::tree::Tree;

impl Trash {
    /// Puts a trashed note back at its path (or, if that name is taken, at
    /// `name (restored …)`), creating missing folders. Returns the path.
    pub fn trash_restore(&self, tree: &Tree, id: &str) -> io::Result<Vec<u8>> {
        tree.writable_check()?;
        let entries = self.trash_entries(tree)?;
        let entry = entries
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        let eh = self.entry_handle(tree, id)?;
        let mut parts: Vec<&[u8]> = entry.path.split(|&b| b == b'/').collect();
        let file = parts.pop().unwrap_or(b"restored");
        let mut dir = tree.root();
        for p in parts {
            let name = OsStr::from_bytes(p);
            let next = match tree.lookup(&dir, name) {
                Ok((n, a)) if a.kind == Kind::Dir => n,
                Ok(_) => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    tree.mkdir(&dir, name, 0o700, None)?;
                    tree.lookup(&dir, name)?.0
                }
                Err(e) => return Err(e),
            };
            dir = Arc::new(next);
        }
        let mut name = file.to_vec();
        if tree.lookup(&dir, OsStr::from_bytes(&name)).is_ok() {
            let stamp = crate::vault::history::stamp(SystemTime::now());
            name = restored_name(file, &stamp);
        }
        let hn = tree.host_name_for(&dir, OsStr::from_bytes(&name))?;
        let host = OsString::from(&hn);
        if entry.has_content {
            eh.rename_child(
                OsStr::new(CONTENT),
                dir.handle()?,
                &host,
                libc::RENAME_NOREPLACE,
            )?;
        }
        let (from, into) = (entry_key(id), tree.dir_id(&dir)?);
        let _ = self.history.move_stream(
            tree,
            &eh,
            &stream_name(OsStr::new(CONTENT)),
            (&from, OsStr::new(CONTENT)),
            dir.handle()?,
            &stream_name(&host),
            (&into, &host),
            libc::RENAME_NOREPLACE,
            (false, true),
        );
        // Its dates come back, except a passed expiry (it would expire again).
        let mut dates = self.entry_dates(tree, &eh, id);
        if entry.reason == Reason::Expired {
            dates.expires = None;
        }
        if !dates.is_empty() {
            let id = tree.dir_id(&dir)?;
            let sealed = lifecycle::seal(
                &tree.keys.lifecycle,
                &self.lifecycle.lc_owner(tree, &id, &host),
                &dates,
            );
            dir.handle()?
                .create_child_with(&record_name(&host), &sealed, 0o600)?;
        }
        self.remove_entry(tree, id)?;
        let path = tree.path_of(&dir, &name);
        self.events.audit(
            crate::format::audit::Event::Restore,
            &entry.path,
            &path,
            0,
            "from the trash",
        );
        self.events.lifecycle_changed();
        self.events.emit(crate::vault::events::Change::Saved {
            path: path.clone(),
            version: 0,
        });
        Ok(path)
    }
}

/// `misc.txt` → `misc (restored 2026-12-02T18.57.03).txt`: the extension
/// stays last so the copy opens with the same program (issue 10.8). A
/// name with no extension, or a dot file (`.bashrc`), gets the suffix at
/// the end.
pub(super) fn restored_name(file: &[u8], stamp: &str) -> Vec<u8> {
    let tag = format!(" (restored {stamp})");
    match file.iter().rposition(|&b| b == b'.') {
        Some(i) if i > 0 && i + 1 < file.len() => [&file[..i], tag.as_bytes(), &file[i..]].concat(),
        _ => [file, tag.as_bytes()].concat(),
    }
}

impl Trash {
    /// Trash entries whose deletion another computer's edit undid (issue
    /// 18): the note was deleted here and edited there while apart; the
    /// sync tool kept the edited note at its path (an edit wins over a
    /// deletion) and also carried this computer's trash entry over. The
    /// entry's file is the same note (the same file ID) and its saved
    /// content is in the note's history, so the entry goes, logged and
    /// audited. Returns how many.
    pub fn drop_overridden_deletions(&self, tree: &Tree) -> io::Result<usize> {
        tree.writable_check()?;
        let mut n = 0;
        for e in self.trash_entries(tree)? {
            if !e.has_content || e.reason != Reason::Deleted {
                continue;
            }
            let Ok(eh) = self.entry_handle(tree, &e.id) else {
                continue;
            };
            let Some(trashed) = tree.file_id_at_any(&eh, OsStr::new(CONTENT)) else {
                continue;
            };
            let live = tree.resolve(&e.path).ok().and_then(|(dir, name)| {
                let host = tree.host_name(&dir, &name).ok()?;
                tree.file_id_at_any(dir.handle().ok()?, OsStr::new(host.host()))
            });
            if live != Some(trashed) {
                continue;
            }
            self.remove_entry(tree, &e.id)?;
            let path = String::from_utf8_lossy(&e.path).into_owned();
            log::warn!(
                "'{path}' was deleted on this computer and edited on another while they were apart: the edit won, so its trash entry is dropped (its versions are in the note's history)"
            );
            self.events.audit(
                crate::format::audit::Event::Restore,
                &e.path,
                &e.path,
                0,
                "deleted here, edited on another computer: the edit won",
            );
            n += 1;
        }
        Ok(n)
    }
}
