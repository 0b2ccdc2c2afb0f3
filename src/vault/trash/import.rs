//! Trash entries carried into a re-keyed vault (issue 20.1): each keeps
//! its entry ID, deletion time, reason and path, its content file (made
//! anew under the new keys by the caller), its history and its dates.

use std::ffi::OsStr;
use std::io;

use super::{CONTENT, Entry, META, Trash, encode_meta, entry_key, meta_aad};
use crate::format::history as fmt;
use crate::format::lifecycle;
use crate::store::host::Handle;
use crate::vault::history::stream_name;
use crate::vault::lifecycle::record_name;
use crate::vault::tree::Tree;

impl Trash {
    /// Makes entry `e` of `from`'s trash (in `old`) in this trash (in
    /// `tree`): `content`, the new content file (folder, host name) made
    /// by the caller, moves in as its `c`. Returns the versions copied.
    pub(crate) fn import_entry(
        &self,
        tree: &Tree,
        from: &Trash,
        old: &Tree,
        e: &Entry,
        content: Option<(&Handle, &OsStr)>,
    ) -> io::Result<usize> {
        let t = self
            .trash_dir(tree, true)?
            .ok_or_else(crate::vault::util::eio)?;
        let tmp = format!("{}.tmp", e.id);
        t.mkdir_child(OsStr::new(&tmp), 0o700)?;
        let eh = t.lookup(OsStr::new(&tmp))?;
        let sealed = tree
            .keys
            .trash
            .seal(&meta_aad(&e.id), &encode_meta(e.deleted, e.reason, &e.path));
        eh.create_child_with(OsStr::new(META), &sealed, 0o600)?;
        let c = OsStr::new(CONTENT);
        if let Some((dir, host)) = content {
            dir.rename_child(host, &eh, c, libc::RENAME_NOREPLACE)?;
        }
        let old_eh = from.entry_handle(old, &e.id)?;
        let dates = from.entry_dates(old, &old_eh, &e.id);
        let ek = entry_key(&e.id);
        if !dates.is_empty() {
            let owner = self.lifecycle.lc_owner(tree, &ek, c);
            let sealed = lifecycle::seal(&tree.keys.lifecycle, &owner, &dates);
            eh.create_child_with(&record_name(c), &sealed, 0o600)?;
        }
        let side = stream_name(c);
        let mut versions = 0;
        match old_eh.open_child(&side, libc::O_RDONLY, 0) {
            Ok(f) => {
                if let Some(s) = from.history.open_stream(old, f, false)? {
                    let owner = tree.bound.then(|| fmt::owner_body(&ek, CONTENT.as_bytes()));
                    versions = self.history.copy_stream(
                        tree,
                        &from.history,
                        &s,
                        &eh,
                        &side,
                        owner.as_deref(),
                    )?;
                }
            }
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
            Err(err) => return Err(err),
        }
        t.rename_child(
            OsStr::new(&tmp),
            &t,
            OsStr::new(&e.id),
            libc::RENAME_NOREPLACE,
        )?;
        Ok(versions)
    }
}
