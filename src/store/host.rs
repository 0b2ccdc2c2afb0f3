//! Handles on host (ciphertext) files and the `*at` system calls on them.
//!
//! A [`Handle`] is an `O_PATH` descriptor: it follows its inode through
//! renames and hard links, so the layers above never rebuild host paths.
//! Names passed here are host names (already encrypted); nothing here sees
//! plaintext or keys.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

static FD_PRESSURE: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>> = std::sync::OnceLock::new();

/// Registers what to do when this process runs out of file descriptors
/// (the daemon asks the kernel to forget cached entries, which frees the
/// handles that the layers above hold for them).
pub fn on_fd_pressure(f: impl Fn() + Send + Sync + 'static) {
    let _ = FD_PRESSURE.set(Box::new(f));
}

/// Runs `f`; on EMFILE/ENFILE, signals the pressure hook and retries for up
/// to a second before giving up.
fn with_fds<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut r = f();
    for _ in 0..100 {
        match &r {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                match FD_PRESSURE.get() {
                    Some(hook) => hook(),
                    None => return r,
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
                r = f();
            }
            _ => break,
        }
    }
    r
}

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// An `O_PATH` handle on a host inode.
#[derive(Debug)]
pub struct Handle(OwnedFd);

/// What to set in [`Handle::utimens`]: `None` leaves a time unchanged.
#[derive(Debug, Clone, Copy)]
pub enum Time {
    /// Leave unchanged.
    Omit,
    /// The current time.
    Now,
    /// Seconds and nanoseconds since the epoch.
    At(i64, i64),
}

impl Time {
    fn spec(self) -> libc::timespec {
        match self {
            Time::Omit => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            Time::Now => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_NOW,
            },
            Time::At(s, n) => libc::timespec {
                tv_sec: s,
                tv_nsec: n,
            },
        }
    }
}

/// `lseek(SEEK_DATA)` (`data`) or `lseek(SEEK_HOLE)` from `offset` of a
/// host file: where the next data (or hole) starts, `None` when there is
/// none (ENXIO: only holes, or `offset` past the end) or on an error.
pub fn seek_extent(file: &std::fs::File, offset: u64, data: bool) -> Option<u64> {
    let whence = if data {
        libc::SEEK_DATA
    } else {
        libc::SEEK_HOLE
    };
    // SAFETY: plain lseek on a valid descriptor.
    let r = unsafe { libc::lseek(file.as_raw_fd(), offset as i64, whence) };
    (r >= 0).then_some(r as u64)
}

impl Handle {
    /// Opens a handle on a host path (the ciphertext root).
    pub fn open_path(path: &Path) -> io::Result<Handle> {
        let c = cstr(path.as_os_str().as_bytes())?;
        // SAFETY: valid C string; the returned fd is owned below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_CLOEXEC | libc::O_DIRECTORY,
            )
        };
        Self::from_fd(fd)
    }

    fn from_fd(fd: RawFd) -> io::Result<Handle> {
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Handle(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// A second handle on the same inode (`dup`).
    pub fn clone_handle(&self) -> io::Result<Handle> {
        Ok(Handle(self.0.try_clone()?))
    }

    /// `/proc/self/fd/N`: reopens the inode with real access modes.
    fn proc_path(&self) -> CString {
        CString::new(format!("/proc/self/fd/{}", self.fd())).expect("no NUL")
    }

    /// `/proc/self/fd/N` as a path, for `std::fs` calls on this inode.
    pub fn proc_path_buf(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("/proc/self/fd/{}", self.fd()))
    }

    /// The host (ciphertext) path of this inode, for log lines.
    pub fn host_path(&self) -> String {
        std::fs::read_link(self.proc_path_buf())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "<unknown host path>".into())
    }

    /// `fstat` of this inode (never follows a symlink).
    pub fn stat(&self) -> io::Result<libc::stat> {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd, empty C string, out-pointer to a stat.
        check(unsafe {
            libc::fstatat(
                self.fd(),
                c"".as_ptr(),
                &mut st,
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        Ok(st)
    }

    /// `lstat` of a child.
    pub fn stat_child(&self, name: &OsStr) -> io::Result<libc::stat> {
        let c = cstr(name.as_bytes())?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and C string.
        check(unsafe { libc::fstatat(self.fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
        Ok(st)
    }

    /// A handle on a child (not following symlinks).
    pub fn lookup(&self, name: &OsStr) -> io::Result<Handle> {
        let c = cstr(name.as_bytes())?;
        with_fds(|| {
            // SAFETY: valid fd and C string.
            let fd = unsafe {
                libc::openat(
                    self.fd(),
                    c.as_ptr(),
                    libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            Self::from_fd(fd)
        })
    }

    /// Opens this inode for I/O (`O_RDONLY`, `O_RDWR`, …).
    pub fn open_file(&self, flags: libc::c_int) -> io::Result<File> {
        let p = self.proc_path();
        with_fds(|| {
            // SAFETY: valid C string.
            let fd = unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NONBLOCK) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fresh fd we own.
            Ok(unsafe { File::from_raw_fd(fd) })
        })
        .and_then(|f| {
            // Only files and folders are opened for I/O: a FIFO swapped in
            // under a note's name must not hang the daemon (issue 11.6).
            let ft = f.metadata()?.file_type();
            if ft.is_file() || ft.is_dir() {
                Ok(f)
            } else {
                log::error!("{} is not a file: refused", self.host_path());
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
        })
    }

    /// Opens (possibly creating) a child for I/O.
    pub fn open_child(&self, name: &OsStr, flags: libc::c_int, mode: u32) -> io::Result<File> {
        let c = cstr(name.as_bytes())?;
        // Noted before the change, so the watcher never sees its event
        // first (issue 18.5).
        if flags & libc::O_CREAT != 0 {
            super::watch::own(name);
        }
        // EMFILE is reported before anything is created, so a retry is safe.
        with_fds(|| {
            // SAFETY: valid fd and C string.
            let fd = unsafe {
                libc::openat(
                    self.fd(),
                    c.as_ptr(),
                    flags | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK,
                    mode,
                )
            };
            if fd < 0 {
                let e = io::Error::last_os_error();
                if flags & libc::O_CREAT != 0 {
                    super::watch::disown(name);
                }
                return Err(e);
            }
            // SAFETY: fresh fd we own.
            Ok(unsafe { File::from_raw_fd(fd) })
        })
        .and_then(|f| {
            // A FIFO or device planted under a vault file's name (issue
            // 11.6): refused, never read or written.
            super::safe::check(&f, Path::new(name), u64::MAX)?;
            Ok(f)
        })
    }

    /// Reads a whole small child file (a record: at most
    /// [`super::safe::MAX_RECORD`] bytes).
    pub fn read_child(&self, name: &OsStr) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let f = self.open_child(name, libc::O_RDONLY, 0)?;
        let max = super::safe::MAX_RECORD;
        super::safe::check(&f, Path::new(name), max)?;
        let mut v = Vec::new();
        f.take(max + 1).read_to_end(&mut v)?;
        if v.len() as u64 > max {
            return Err(super::safe::too_large(Path::new(name), v.len() as u64, max));
        }
        Ok(v)
    }

    /// Creates a child file exclusively with the given content and fsyncs it.
    pub fn create_child_with(&self, name: &OsStr, bytes: &[u8], mode: u32) -> io::Result<()> {
        use std::io::Write;
        let mut f = self.open_child(name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, mode)?;
        f.write_all(bytes)?;
        f.sync_all()
    }

    /// `mkdirat`.
    pub fn mkdir_child(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        let c = cstr(name.as_bytes())?;
        // SAFETY: valid fd and C string.
        super::watch::owning(&[name], || {
            check(unsafe { libc::mkdirat(self.fd(), c.as_ptr(), mode) })
        })
    }

    /// `mknodat`.
    pub fn mknod_child(&self, name: &OsStr, mode: u32, rdev: u64) -> io::Result<()> {
        let c = cstr(name.as_bytes())?;
        // SAFETY: valid fd and C string.
        super::watch::owning(&[name], || {
            check(unsafe { libc::mknodat(self.fd(), c.as_ptr(), mode, rdev) })
        })
    }

    /// `symlinkat` with an (already sealed) target.
    pub fn symlink_child(&self, target: &OsStr, name: &OsStr) -> io::Result<()> {
        let t = cstr(target.as_bytes())?;
        let c = cstr(name.as_bytes())?;
        // SAFETY: valid fd and C strings.
        super::watch::owning(&[name], || {
            check(unsafe { libc::symlinkat(t.as_ptr(), self.fd(), c.as_ptr()) })
        })
    }

    /// `unlinkat` of a non-directory.
    pub fn unlink_child(&self, name: &OsStr) -> io::Result<()> {
        let c = cstr(name.as_bytes())?;
        // SAFETY: valid fd and C string.
        super::watch::owning(&[name], || {
            check(unsafe { libc::unlinkat(self.fd(), c.as_ptr(), 0) })
        })
    }

    /// `unlinkat(AT_REMOVEDIR)`.
    pub fn rmdir_child(&self, name: &OsStr) -> io::Result<()> {
        let c = cstr(name.as_bytes())?;
        // SAFETY: valid fd and C string.
        super::watch::owning(&[name], || {
            check(unsafe { libc::unlinkat(self.fd(), c.as_ptr(), libc::AT_REMOVEDIR) })
        })
    }

    /// `renameat2` with the given flags (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
    pub fn rename_child(
        &self,
        name: &OsStr,
        to: &Handle,
        to_name: &OsStr,
        flags: u32,
    ) -> io::Result<()> {
        let a = cstr(name.as_bytes())?;
        let b = cstr(to_name.as_bytes())?;
        let mut names = vec![name, to_name];
        if flags & libc::RENAME_EXCHANGE != 0 {
            // Both names move: two events each.
            names.extend([name, to_name]);
        }
        // SAFETY: valid fds and C strings.
        super::watch::owning(&names, || {
            check(unsafe {
                libc::renameat2(
                    self.fd(),
                    a.as_ptr(),
                    to.fd(),
                    b.as_ptr(),
                    flags as libc::c_uint,
                )
            })
        })
    }

    /// Hard-links this inode as `to_name` in `to` (the /proc link trick
    /// avoids needing CAP_DAC_READ_SEARCH for AT_EMPTY_PATH).
    pub fn link_into(&self, to: &Handle, to_name: &OsStr) -> io::Result<()> {
        let p = self.proc_path();
        let b = cstr(to_name.as_bytes())?;
        // SAFETY: valid fds and C strings.
        super::watch::owning(&[to_name], || {
            check(unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    p.as_ptr(),
                    to.fd(),
                    b.as_ptr(),
                    libc::AT_SYMLINK_FOLLOW,
                )
            })
        })
    }

    /// `readlinkat` of the child `name` (a symlink).
    pub fn readlink_child(&self, name: &OsStr) -> io::Result<Vec<u8>> {
        self.readlinkat(&cstr(name.as_bytes())?)
    }

    /// `readlinkat` of this (symlink) inode.
    pub fn readlink(&self) -> io::Result<Vec<u8>> {
        self.readlinkat(c"")
    }

    fn readlinkat(&self, name: &std::ffi::CStr) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
        // SAFETY: valid fd and C string, buffer of the given length.
        let n = unsafe {
            libc::readlinkat(self.fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    /// `chmod` (not for symlinks, which have no mode on Linux).
    pub fn chmod(&self, mode: u32) -> io::Result<()> {
        let p = self.proc_path();
        // SAFETY: valid C string.
        check(unsafe { libc::chmod(p.as_ptr(), mode) })
    }

    /// `fchownat(AT_EMPTY_PATH)`; `u32::MAX` leaves an id unchanged.
    pub fn chown(&self, uid: u32, gid: u32) -> io::Result<()> {
        // SAFETY: valid fd and empty C string.
        check(unsafe {
            libc::fchownat(
                self.fd(),
                c"".as_ptr(),
                uid,
                gid,
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        })
    }

    /// Sets access and modification times.
    pub fn utimens(&self, atime: Time, mtime: Time, is_symlink: bool) -> io::Result<()> {
        let ts = [atime.spec(), mtime.spec()];
        // SAFETY: valid fd, C string and two timespecs.
        let r = unsafe {
            libc::utimensat(
                self.fd(),
                c"".as_ptr(),
                ts.as_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) || is_symlink {
            return Err(e);
        }
        // Older kernels lack AT_EMPTY_PATH for utimensat: go through /proc.
        let p = self.proc_path();
        // SAFETY: valid C string and two timespecs.
        check(unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), ts.as_ptr(), 0) })
    }

    /// Iterates this directory's entries.
    pub fn read_dir(&self) -> io::Result<std::fs::ReadDir> {
        let p = self.proc_path_buf();
        with_fds(|| std::fs::read_dir(&p))
    }

    /// Names in this directory (without `.` and `..`).
    pub fn read_names(&self) -> io::Result<Vec<OsString>> {
        let mut v = Vec::new();
        for e in self.read_dir()? {
            v.push(e?.file_name());
        }
        Ok(v)
    }

    /// `fstatvfs` of the host filesystem.
    pub fn statvfs(&self) -> io::Result<libc::statvfs> {
        let p = self.proc_path();
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: valid C string and out-pointer.
        check(unsafe { libc::statvfs(p.as_ptr(), &mut st) })?;
        Ok(st)
    }

    /// fsyncs this inode (files and directories).
    pub fn fsync(&self, datasync: bool) -> io::Result<()> {
        let f = self.open_file(libc::O_RDONLY)?;
        if datasync {
            f.sync_data()
        } else {
            f.sync_all()
        }
    }

    /// `getxattr`; `Ok(None)` when absent.
    pub fn get_xattr(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let p = self.proc_path();
        let n = cstr(name.as_bytes())?;
        loop {
            // SAFETY: valid C strings; a null buffer asks for the size.
            let size = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
            if size < 0 {
                let e = io::Error::last_os_error();
                return if e.raw_os_error() == Some(libc::ENODATA) {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
            let mut buf = vec![0u8; size as usize];
            // SAFETY: buffer of the given length.
            let got = unsafe {
                libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            };
            if got < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::ERANGE) {
                    continue; // grew in between
                }
                return if e.raw_os_error() == Some(libc::ENODATA) {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
            buf.truncate(got as usize);
            return Ok(Some(buf));
        }
    }

    /// `setxattr` with `XATTR_CREATE`/`XATTR_REPLACE` flags.
    pub fn set_xattr(&self, name: &str, value: &[u8], flags: i32) -> io::Result<()> {
        let p = self.proc_path();
        let n = cstr(name.as_bytes())?;
        // SAFETY: valid C strings and buffer.
        check(unsafe {
            libc::setxattr(
                p.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                flags,
            )
        })
    }

    /// `listxattr`, split into names.
    pub fn list_xattr(&self) -> io::Result<Vec<Vec<u8>>> {
        let p = self.proc_path();
        loop {
            // SAFETY: valid C string; null buffer asks for the size.
            let size = unsafe { libc::listxattr(p.as_ptr(), std::ptr::null_mut(), 0) };
            if size < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut buf = vec![0u8; size as usize];
            // SAFETY: buffer of the given length.
            let got = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
            if got < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::ERANGE) {
                    continue;
                }
                return Err(e);
            }
            buf.truncate(got as usize);
            return Ok(buf
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| s.to_vec())
                .collect());
        }
    }

    /// `removexattr`.
    pub fn remove_xattr(&self, name: &str) -> io::Result<()> {
        let p = self.proc_path();
        let n = cstr(name.as_bytes())?;
        // SAFETY: valid C strings.
        check(unsafe { libc::removexattr(p.as_ptr(), n.as_ptr()) })
    }
}

/// The name of the Linux account `uid` (`getpwuid_r`), if it has one.
pub fn account_name(uid: u32) -> Option<String> {
    // SAFETY: an all-zero passwd is a valid value to be filled in.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: valid pointers to a passwd struct, a buffer of its length
    // and a result pointer, as getpwuid_r requires.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r filled pw_name with a NUL-terminated string in buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned())
}
