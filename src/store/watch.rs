//! Watching folders of the ciphertext tree for changes made by other
//! programs (issue 18.5): a sync tool bringing another computer's
//! version, a restored backup. Linux inotify, one watch per folder, added
//! through the folder's open handle (`/proc/self/fd/N`), so no path is
//! resolved twice. Knows no keys and no plaintext.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Names this process changed itself lately (while a watcher runs): the
/// events they cause are not other programs' changes. Keyed by host name
/// alone (encrypted names are unique in practice; a collision only delays
/// one invalidation); each entry counts the changes not yet seen as
/// events and expires after [`OWN_FOR`].
static OWN: Mutex<Option<HashMap<OsString, (u32, Instant)>>> = Mutex::new(None);
static ACTIVE: AtomicBool = AtomicBool::new(false);
const OWN_FOR: Duration = Duration::from_secs(10);

/// Notes that this process changed `name` (created, removed, renamed it)
/// in a folder that may be watched.
pub fn own(name: &OsStr) {
    if !ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    let now = Instant::now();
    let mut g = OWN.lock().unwrap_or_else(|e| e.into_inner());
    let m = g.get_or_insert_with(HashMap::new);
    if m.len() > 100_000 {
        m.retain(|_, (_, t)| now.duration_since(*t) < OWN_FOR);
    }
    let e = m.entry(name.to_owned()).or_insert((0, now));
    e.0 += 1;
    e.1 = now;
}

/// Takes back a note of [`own`] (the change failed: no event comes).
pub fn disown(name: &OsStr) {
    if !ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    let _ = take_own(name);
}

/// Forgets what [`own`] noted of `names`, in a folder that was not watched
/// when they changed (a folder this process just made): their events never
/// come, and a note left behind would hide another program's change of the
/// same name (deleting it, say) for ten seconds.
pub fn forget_own<'a>(names: impl IntoIterator<Item = &'a OsStr>) {
    let mut g = OWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = g.as_mut() {
        for n in names {
            m.remove(n);
        }
    }
}

/// Runs a change of `names`, noted first (so the watcher never reads its
/// event before the note) and taken back if it fails.
pub fn owning<T>(names: &[&OsStr], f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    for n in names {
        own(n);
    }
    let r = f();
    if r.is_err() {
        for n in names {
            disown(n);
        }
    }
    r
}

/// Whether an event on `name` is one of this process's own changes (it
/// is then counted off).
fn take_own(name: &OsStr) -> bool {
    let mut g = OWN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(m) = g.as_mut() else { return false };
    let Some(e) = m.get_mut(name) else {
        return false;
    };
    let fresh = e.1.elapsed() < OWN_FOR;
    e.0 -= 1;
    if e.0 == 0 {
        m.remove(name);
    }
    fresh
}

/// What happened to a name in a watched folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The watched folder's watch (see [`Watcher::watch`]).
    pub watch: i32,
    /// The host name in it.
    pub name: OsString,
    /// A folder was created or moved in under that name.
    pub new_folder: bool,
    /// This process made the change (see [`own`]).
    pub own: bool,
}

/// An inotify instance.
pub struct Watcher {
    fd: OwnedFd,
    watches: Mutex<HashMap<i32, ()>>,
}

/// The events a folder is watched for: names that appear, go or are
/// replaced (a sync tool writes a temporary file and renames it over the
/// name).
const MASK: u32 = libc::IN_CREATE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_DELETE
    | libc::IN_ONLYDIR
    | libc::IN_EXCL_UNLINK;

impl Watcher {
    /// A new watcher.
    pub fn new() -> io::Result<Watcher> {
        // SAFETY: inotify_init1 has no preconditions.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        ACTIVE.store(true, Ordering::Relaxed);
        Ok(Watcher {
            // SAFETY: a descriptor we just opened and own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            watches: Mutex::default(),
        })
    }

    /// Watches the folder at `path` (an open handle's `/proc/self/fd/N`);
    /// returns its watch (the same for the same folder).
    pub fn watch(&self, path: &std::path::Path) -> io::Result<i32> {
        let path = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a valid descriptor and a NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), path.as_ptr(), MASK) };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        self.watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(wd, ());
        Ok(wd)
    }

    /// Whether the watch `wd` is still there (its folder was not removed).
    pub fn has(&self, wd: i32) -> bool {
        self.watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&wd)
    }

    /// Number of folders watched.
    pub fn len(&self) -> usize {
        self.watches.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no folder is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits up to `timeout_ms` for events; returns those that arrived
    /// (empty on a timeout). A watch whose folder is gone is forgotten.
    pub fn read(&self, timeout_ms: i32) -> io::Result<Vec<Event>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(Vec::new())
            } else {
                Err(e)
            };
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; 64 * 1024];
        // SAFETY: reading into a buffer we own, of its length.
        let len = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(self.parse(&buf[..len as usize]))
    }

    fn parse(&self, b: &[u8]) -> Vec<Event> {
        let head = std::mem::size_of::<libc::inotify_event>();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos + head <= b.len() {
            // SAFETY: the kernel wrote whole events; read unaligned.
            let ev: libc::inotify_event =
                unsafe { std::ptr::read_unaligned(b[pos..].as_ptr().cast()) };
            let name_len = ev.len as usize;
            let name = &b[pos + head..(pos + head + name_len).min(b.len())];
            let name = name.split(|&c| c == 0).next().unwrap_or(&[]);
            pos += head + name_len;
            if ev.mask & libc::IN_IGNORED != 0 {
                self.watches
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&ev.wd);
                continue;
            }
            if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                // Events were lost: the caller treats this as "anything
                // may have changed" (watch -1).
                out.push(Event {
                    watch: -1,
                    name: OsString::new(),
                    new_folder: false,
                    own: false,
                });
                continue;
            }
            if name.is_empty() {
                continue;
            }
            out.push(Event {
                watch: ev.wd,
                name: OsString::from_vec(name.to_vec()),
                new_folder: ev.mask & libc::IN_ISDIR != 0
                    && ev.mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0,
                own: take_own(OsStr::from_bytes(name)),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_appear_go_or_are_replaced_are_reported_with_their_folder() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        let w = Watcher::new().unwrap();
        let top = w.watch(d.path()).unwrap();
        let sub = w.watch(&d.path().join("sub")).unwrap();
        assert_ne!(top, sub);
        std::fs::write(d.path().join("sub/.tmp"), b"x").unwrap();
        std::fs::rename(d.path().join("sub/.tmp"), d.path().join("sub/note")).unwrap();
        std::fs::create_dir(d.path().join("new")).unwrap();
        std::fs::remove_file(d.path().join("sub/note")).unwrap();
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.extend(w.read(200).unwrap());
            if seen.len() >= 5 {
                break;
            }
        }
        assert!(seen.iter().all(|e| !e.own));
        let names: Vec<(i32, String, bool)> = seen
            .iter()
            .map(|e| (e.watch, e.name.to_string_lossy().into_owned(), e.new_folder))
            .collect();
        assert!(names.contains(&(sub, "note".into(), false)), "{names:?}");
        assert!(names.contains(&(top, "new".into(), true)), "{names:?}");
        assert_eq!(
            names
                .iter()
                .filter(|(w, n, _)| *w == sub && n == "note")
                .count(),
            2,
            "moved in, then deleted: {names:?}"
        );
        // Nothing more: a timeout gives nothing.
        assert!(w.read(50).unwrap().is_empty());
        // This process's own changes, noted as it makes them, are not
        // reported; another program's change of the same name is.
        std::fs::write(d.path().join("sub/mine-x7"), b"x").unwrap();
        own(OsStr::new("mine-x7"));
        std::thread::sleep(Duration::from_millis(100));
        let seen = w.read(100).unwrap();
        assert!(seen.len() == 1 && seen[0].own, "{seen:?}");
        std::fs::remove_file(d.path().join("sub/mine-x7")).unwrap();
        let seen = w.read(1000).unwrap();
        assert!(seen.len() == 1 && !seen[0].own, "{seen:?}");
    }
}
