//! What is mounted where: the kernel's mount table (authoritative) joined
//! with a small record each daemon writes in the runtime folder (pid, vault,
//! start time). Records hold paths of the vault and mount point only, never
//! anything from inside the vault.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One mounted Quire vault.
#[derive(Debug, Clone)]
pub struct MountRecord {
    /// Mount point.
    pub mountpoint: PathBuf,
    /// Vault folder, when the daemon's record is present.
    pub vault: Option<PathBuf>,
    /// Daemon pid.
    pub pid: Option<i32>,
    /// Unix time the mount started.
    pub since: Option<u64>,
    /// Read-only mount.
    pub read_only: bool,
    /// The `--idle` setting in seconds (0: never), from the daemon's record.
    pub idle: Option<u64>,
}

/// The runtime folder: `$XDG_RUNTIME_DIR/quire`, else `/tmp/quire-<uid>`.
pub fn dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("quire"),
        // SAFETY: getuid has no preconditions.
        None => PathBuf::from(format!("/tmp/quire-{}", unsafe { libc::getuid() })),
    }
}

fn record_path(mountpoint: &Path) -> PathBuf {
    use sha2::Digest;
    let h = sha2::Sha256::digest(mountpoint.as_os_str().as_encoded_bytes());
    let name: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
    dir().join(format!("{name}.mount"))
}

/// The control socket of the daemon mounted at `mountpoint`.
pub fn socket_path(mountpoint: &Path) -> PathBuf {
    record_path(mountpoint).with_extension("sock")
}

/// Creates the runtime folder, or checks the one that exists: it must be
/// a real folder (not a symlink), ours, and closed to everyone else (mode
/// 0700). In `/tmp` another user could have made it first to swap in a
/// socket of their own; we then refuse to serve or connect (issue 11.1).
pub fn ensure_dir() -> std::io::Result<PathBuf> {
    let d = dir();
    if let Some(parent) = d.parent() {
        // `$XDG_RUNTIME_DIR` itself (the session manager makes it; a test
        // or a bare login may not have).
        if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|v| !v.is_empty()) {
            crate::store::atomic::private_dir(parent)?;
        }
    }
    match std::fs::create_dir(&d) {
        Ok(()) => {
            std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    check_dir(&d)?;
    Ok(d)
}

/// Checks that `d` is a folder of ours that no one else can enter.
pub fn check_dir(d: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(d)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let bad = |why: String| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "the runtime folder {} {why}; it could let another user read or forge what Quire shows. Remove it (or set XDG_RUNTIME_DIR to a private folder) and try again",
                d.display()
            ),
        )
    };
    if m.file_type().is_symlink() {
        return Err(bad("is a symlink".into()));
    }
    if !m.is_dir() {
        return Err(bad("is not a folder".into()));
    }
    if m.uid() != me {
        return Err(bad(format!("belongs to another user (uid {})", m.uid())));
    }
    if m.mode() & 0o077 != 0 {
        return Err(bad(format!(
            "is open to others (mode {:o})",
            m.mode() & 0o777
        )));
    }
    Ok(())
}

/// Writes this daemon's record.
pub fn write(mountpoint: &Path, vault: &Path, idle: Option<Duration>) -> std::io::Result<()> {
    ensure_dir()?;
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let text = format!(
        "pid={}\nsince={}\nidle={}\nvault={}\nmountpoint={}\n",
        std::process::id(),
        since,
        idle.map(|d| d.as_secs()).unwrap_or(0),
        vault.display(),
        mountpoint.display()
    );
    crate::store::atomic::write(&record_path(mountpoint), text.as_bytes())
}

/// Removes this daemon's record.
pub fn remove(mountpoint: &Path) {
    let _ = std::fs::remove_file(record_path(mountpoint));
    let _ = std::fs::remove_file(socket_path(mountpoint));
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every Quire mount visible to this process.
pub fn mounts() -> Vec<MountRecord> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // Records are read only from a runtime folder that passes the same
    // checks as at mount (ours, private, not a symlink), and only files
    // of ours: a record forged by another user is never believed (issue
    // 17.8: a forged pid made `unmount` wait on someone else's process).
    let trusted = check_dir(&dir()).is_ok();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        // fusermount3 records the subtype ("fuse.quire"); a mount made
        // directly by root shows "fuse" with the fsname "quire" as source.
        let ours = r.first() == Some(&"fuse.quire")
            || (r.first() == Some(&"fuse") && r.get(1) == Some(&"quire"));
        if l.len() < 6 || !ours {
            continue;
        }
        // Only this user's mounts (all of them for root).
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let owner = r
            .get(2)
            .and_then(|o| o.split(',').find_map(|kv| kv.strip_prefix("user_id=")))
            .and_then(|v| v.parse::<u32>().ok());
        if uid != 0 && owner.is_some_and(|o| o != uid) {
            continue;
        }
        let mountpoint = PathBuf::from(unescape(l[4]));
        let read_only = l[5].split(',').any(|o| o == "ro");
        let mut rec = MountRecord {
            mountpoint: mountpoint.clone(),
            vault: None,
            pid: None,
            since: None,
            read_only,
            idle: None,
        };
        if let Some(t) = trusted
            .then(|| read_own(&record_path(&mountpoint)))
            .flatten()
        {
            for kv in t.lines() {
                match kv.split_once('=') {
                    Some(("pid", v)) => rec.pid = v.parse().ok(),
                    Some(("since", v)) => rec.since = v.parse().ok(),
                    Some(("idle", v)) => rec.idle = v.parse().ok(),
                    Some(("vault", v)) => rec.vault = Some(PathBuf::from(v)),
                    _ => {}
                }
            }
        }
        out.push(rec);
    }
    out
}

/// A record file of this user's (none if someone else's, or unreadable).
fn read_own(p: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let mut f = crate::store::safe::open(p, crate::store::safe::MAX_RECORD).ok()?;
    // SAFETY: geteuid has no preconditions.
    if f.metadata().ok()?.uid() != unsafe { libc::geteuid() } {
        return None;
    }
    let mut b = Vec::new();
    f.read_to_end(&mut b).ok()?;
    Some(String::from_utf8_lossy(&b).into_owned())
}

/// Whether `pid` is a process of this user's (a daemon `unmount` may wait
/// for), from its /proc entry's owner.
pub fn is_own_process(pid: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    pid > 1
        && std::fs::metadata(format!("/proc/{pid}"))
            .map(|m| m.uid() == me)
            .unwrap_or(false)
}

/// Whether the mount at `p` has lost its daemon (ENOTCONN).
pub fn is_dead(p: &Path) -> bool {
    // statfs, not stat: the kernel answers a stat of the mount point from
    // its attribute cache for a while after the daemon died; statfs always
    // asks the daemon, so a dead one gives ENOTCONN at once.
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // A daemon that is alive but stuck would block the call for ever: it
    // runs on a thread of its own and counts as alive after 2 s.
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("quire-statfs".into())
        .spawn(move || {
            // SAFETY: a NUL-terminated path and a statfs buffer we own.
            let mut st: libc::statfs = unsafe { std::mem::zeroed() };
            let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
            let dead =
                r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOTCONN);
            let _ = tx.send(dead);
        });
    spawned.is_ok() && rx.recv_timeout(std::time::Duration::from_secs(2)) == Ok(true)
}

/// Whether `p` is currently a Quire mount point.
pub fn find(p: &Path) -> Option<MountRecord> {
    mounts().into_iter().find(|m| m.mountpoint == p)
}

/// Formats a Unix time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_time(secs: u64) -> String {
    let tm = crate::vault::history::local_tm(secs.min(i64::MAX as u64) as libc::time_t);
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null tm_zone is a static C string of libc's.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    let off = tm.tm_gmtoff;
    let zone = if zone.is_empty() || zone.starts_with(['+', '-']) {
        format!(
            "{}{:02}:{:02}",
            if off < 0 { '-' } else { '+' },
            off.abs() / 3600,
            off.abs() % 3600 / 60
        )
    } else {
        zone
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {zone}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_and_escapes() {
        // Local time with the zone: the day within one of UTC's, the
        // minutes those of UTC (every zone in use is whole quarter hours
        // off, and 06:40 stays 40 past in all but the 45-minute ones).
        let t = super::format_time(1_795_000_000);
        assert!(
            ["2026-11-17", "2026-11-18", "2026-11-19"].contains(&&t[..10]),
            "{t}"
        );
        assert_eq!(&t[10..11], " ");
        assert_eq!(&t[13..14], ":");
        assert!(t.len() > 20, "{t}");
        assert_eq!(super::unescape(r"/a\040b"), "/a b");
    }
}
