//! The vault lock: one mount (or one offline command that writes) per vault
//! folder at a time on this machine. An advisory exclusive `flock` on the
//! vault folder itself (docs/FORMAT.md §9), released by the kernel when the
//! holder exits, even by SIGKILL. No file is written for it: a lock file
//! would be copied by sync tools and fork between devices (issue 18.1).

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A held vault lock; released on drop.
#[derive(Debug)]
pub struct VaultLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it.
    Busy,
    /// The lock file could not be opened.
    Io(io::Error),
}

impl VaultLock {
    /// Takes the lock of the vault folder `root` without waiting.
    pub fn try_acquire(root: &Path) -> Result<VaultLock, LockError> {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(root)
            .map_err(LockError::Io)?;
        match f.try_lock() {
            Ok(()) => Ok(VaultLock { _file: f }),
            Err(TryLockError::WouldBlock) => Err(LockError::Busy),
            Err(TryLockError::Error(e)) => Err(LockError::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_first_drops() {
        let d = tempfile::tempdir().unwrap();
        let a = VaultLock::try_acquire(d.path()).unwrap();
        assert!(matches!(
            VaultLock::try_acquire(d.path()),
            Err(LockError::Busy)
        ));
        drop(a);
        VaultLock::try_acquire(d.path()).unwrap();
        // Nothing was written into the folder.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
