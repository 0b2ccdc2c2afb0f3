//! Atomic replacement of small files: write a temporary file in the same
//! folder, fsync it, rename it over the target, fsync the folder. A crash at
//! any point leaves either the old or the new file, never a torn one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Atomically replaces (or creates) `path` with `bytes`, mode 0600.
///
/// The temporary file has an unpredictable name and is created with
/// `O_EXCL | O_NOFOLLOW`, so another user's file or symlink planted in a
/// shared folder is never written through (issue 11.2).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, true)
}

/// [`write()`] without the fsyncs, for caches: a crash may leave the old
/// file, the new one or (on some file systems) an empty one, never a mix.
pub fn write_unsynced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, false)
}

fn replace(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let (mut f, tmp) =
        super::safe::create_temp(dir, &format!(".{}.tmp", name.to_string_lossy()), "")?;
    let res = (|| {
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    drop(f);
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Creates `dir` and any missing parents, each new one mode 0700 (issue
/// 11.2: state folders are private whatever the umask).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// fsyncs a directory so a rename or create in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Makes everything written to the file system holding `path` durable
/// (`syncfs`): one call after writing many files, instead of an fsync each.
pub fn sync_fs(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = File::open(path)?;
    // SAFETY: a valid descriptor we own.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c");
        super::write(&p, b"one").unwrap();
        super::write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
