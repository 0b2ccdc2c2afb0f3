//! What a read-write open changes in a vault made by an older version:
//! per-device files moved out of the vault folder (issue 18.1), user
//! xattrs moved into sealed attribute files (issue 18.7).

use super::tree::Tree;
use super::{Error, UnlockedVault, io_err, xattrs};
use crate::store::atomic;

impl UnlockedVault {
    /// Moves what older versions kept in the vault folder and is now per
    /// device (docs/FORMAT.md §18) out of it, on a read-write open: a
    /// crash journal left there is replayed first (as those versions
    /// would have), the daemon log moves to this device's folder as its
    /// previous log, the search index is dropped (the mount rebuilds it
    /// here) and the old lock file goes. A read-only open touches
    /// nothing and only warns about a journal.
    pub(super) fn migrate_device_files(
        &self,
        read_only: bool,
        block_layout: crate::format::content::Layout,
    ) -> Result<(), Error> {
        let old_undo = self.layout.old_shared(crate::store::UNDO);
        if std::fs::symlink_metadata(&old_undo).is_ok() {
            self.open_journal(old_undo, read_only, block_layout)?;
        }
        if read_only {
            return Ok(());
        }
        // The old log becomes this device's previous log (if it has none
        // yet; across file systems, or when it has one, it is dropped).
        let previous = self.layout.local().join("quire.log.1");
        for name in [crate::store::LOG, "quire.log.1"] {
            let from = self.layout.old_shared(name);
            if std::fs::symlink_metadata(&from).is_err() {
                continue;
            }
            let moved = std::fs::symlink_metadata(&previous).is_err()
                && std::fs::rename(&from, &previous).is_ok();
            if !moved {
                let _ = std::fs::remove_file(&from);
            }
        }
        let old_index = self.layout.old_shared(crate::store::INDEX);
        if std::fs::symlink_metadata(&old_index).is_ok_and(|m| m.is_dir()) {
            match std::fs::remove_dir_all(&old_index) {
                Ok(()) => log::warn!(
                    "the search index moved out of the vault folder (it is per device); it is rebuilt here"
                ),
                Err(e) => log::warn!("{}: could not remove ({e})", old_index.display()),
            }
        }
        let _ = std::fs::remove_file(self.layout.old_lock());
        Ok(())
    }

    /// Moves the vault's user xattrs from host xattrs into sealed attribute
    /// files and adds `SEALED_XATTRS` to `quire.conf` (issue 18.7, see
    /// `vault::xattrs`): once, at the first read-write open of a vault made
    /// before it.
    pub(super) fn seal_xattrs(&self, t: &Tree) -> Result<(), Error> {
        use crate::format::config::FLAG_SEALED_XATTRS;
        let moved = xattrs::move_host_xattrs(t).map_err(io_err(
            "moving extended attributes into sealed attribute files",
        ))?;
        let mut c = self.config.clone();
        if !c.add_mac_only_flag(FLAG_SEALED_XATTRS, &self.master) {
            return Ok(());
        }
        atomic::write(&self.layout.config(), &c.to_bytes())
            .map_err(io_err("writing quire.conf"))?;
        t.sealed_xattrs
            .store(true, std::sync::atomic::Ordering::Release);
        xattrs::drop_host_xattrs(&moved);
        log::info!(
            "this vault now keeps extended attributes in sealed files that sync tools carry: {} moved from host xattrs",
            moved.attrs
        );
        Ok(())
    }
}
