//! Opening the vault's own files as an attacker may have left them (issue
//! 11.6): never through a symlink, never blocking on a FIFO, nothing but a
//! regular file, and never reading more than the file could legitimately
//! hold. Someone who can write the vault folder can plant a FIFO (which
//! would hang every command, and leave `rm` unkillable) or a 60 GB sparse
//! file (whose read would abort the process); both are refused here with a
//! message that says what is wrong.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Flags every open of a vault file carries.
pub const FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;

/// The largest `quire.conf` (8 slots of 89 bytes and the rest: under 1 KiB).
pub const MAX_CONFIG: u64 = 64 << 10;
/// The largest small record: a directory ID, a long-name sidecar, a
/// lifecycle or trash record, a remembered audit head, a mount record.
pub const MAX_RECORD: u64 = 1 << 20;
/// The largest crash-undo journal: the blocks of the changes in flight
/// (a large punch is journaled 16 MiB at a time).
pub const MAX_JOURNAL: u64 = 1 << 30;
/// The largest audit log read at once (about 4 million events).
pub const MAX_AUDIT: u64 = 512 << 20;
/// The largest daemon log (rotated at 4 MiB) and its predecessor.
pub const MAX_LOG: u64 = 64 << 20;
/// The largest history stream (versions of notes up to 64 MiB each).
pub const MAX_STREAM: u64 = 4 << 30;

fn kind_of(ft: std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "device"
    } else if ft.is_dir() {
        "folder"
    } else if ft.is_symlink() {
        "symlink"
    } else {
        "file"
    }
}

/// Checks that an open vault file is a regular file of at most `max`
/// bytes; returns its length.
pub fn check(f: &File, path: &Path, max: u64) -> io::Result<u64> {
    let m = f.metadata()?;
    if !m.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is a {}, not a file: the vault folder was tampered with; remove it or restore the vault from a backup",
                path.display(),
                kind_of(m.file_type())
            ),
        ));
    }
    if m.len() > max {
        return Err(too_large(path, m.len(), max));
    }
    Ok(m.len())
}

/// The error for a file larger than it could legitimately be.
pub fn too_large(path: &Path, len: u64, max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} is {len} bytes, more than it can be ({max} at most): it is damaged or was tampered with; restore it from a backup",
            path.display()
        ),
    )
}

/// Opens an existing vault file for reading (see the module doc).
pub fn open(path: &Path, max: u64) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(FLAGS)
        .open(path)
        .map_err(|e| symlink_loop(e, path))?;
    check(&f, path, max)?;
    Ok(f)
}

/// Opens a vault file with `options` (write, append, create…), with the
/// same guards.
pub fn open_with(options: &mut OpenOptions, path: &Path, max: u64) -> io::Result<File> {
    let f = options
        .custom_flags(FLAGS)
        .open(path)
        .map_err(|e| symlink_loop(e, path))?;
    check(&f, path, max)?;
    Ok(f)
}

/// Creates a new temporary file in `dir` named `prefix` ‖ 16 random hex
/// digits ‖ `suffix`, mode 0600, with `O_EXCL | O_NOFOLLOW`: a file or
/// symlink planted at a temporary name (by anyone who can write the
/// folder) is never written through (issue 11.2, 17.3). Every temporary
/// file Quire writes outside the mount comes from here.
pub fn create_temp(dir: &Path, prefix: &str, suffix: &str) -> io::Result<(File, PathBuf)> {
    let mut attempt = 0;
    loop {
        let tmp = dir.join(format!("{prefix}{:016x}{suffix}", unpredictable()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(FLAGS)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 8 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// 64 bits from the kernel's random source, for temporary names (not
/// keys: the store knows none).
fn unpredictable() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: writes at most 8 bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 8 {
        // Fall back to something unique to this process and moment; the
        // O_EXCL create still refuses anything planted.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return t ^ u64::from(std::process::id()).rotate_left(32);
    }
    u64::from_le_bytes(b)
}

/// Reads a whole vault file of at most `max` bytes.
pub fn read(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let mut f = open(path, max)?;
    let mut v = Vec::new();
    // A file that grows while read is still capped.
    (&mut f).take(max + 1).read_to_end(&mut v)?;
    if v.len() as u64 > max {
        return Err(too_large(path, v.len() as u64, max));
    }
    Ok(v)
}

fn symlink_loop(e: io::Error, path: &Path) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is a symlink: the vault folder was tampered with; remove it or restore the vault from a backup",
                path.display()
            ),
        )
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_symlinks_and_oversized_files_are_refused_at_once() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Would block forever without O_NONBLOCK.
        let e = read(&fifo, 100).unwrap_err();
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        let file = d.path().join("f");
        std::fs::write(&file, b"hello").unwrap();
        let link = d.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(
            read(&link, 100)
                .unwrap_err()
                .to_string()
                .contains("symlink")
        );
        assert_eq!(read(&file, 5).unwrap(), b"hello");
        let big = d.path().join("big");
        File::create(&big).unwrap().set_len(60 << 30).unwrap();
        let e = read(&big, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("more than it can be"), "{e}");
    }
}
