//! The vault lock: one mount (or one offline command that writes) per vault
//! at a time. An advisory exclusive lock on `quire.lock`, released by the
//! kernel when the holder exits, even by SIGKILL.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::OpenOptionsExt;

use super::Layout;

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
    /// Takes the lock without waiting.
    pub fn try_acquire(layout: &Layout) -> Result<VaultLock, LockError> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(super::safe::FLAGS)
            .open(layout.lock())
            .map_err(LockError::Io)?;
        super::safe::check(&f, &layout.lock(), u64::MAX).map_err(LockError::Io)?;
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
        let l = Layout::new(d.path());
        let a = VaultLock::try_acquire(&l).unwrap();
        assert!(matches!(VaultLock::try_acquire(&l), Err(LockError::Busy)));
        drop(a);
        VaultLock::try_acquire(&l).unwrap();
    }
}
