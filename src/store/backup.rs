//! A backup folder on disk (docs/FORMAT.md §19): the marker naming its
//! vault and key, signed snapshot manifests, and the objects (host files
//! of the vault folder, stored once by their SHA-256). Copies ciphertext
//! only: knows no keys and no plaintext.
//!
//! ```text
//! DEST/quire-backup            marker
//! DEST/snapshots/<ID>          one manifest per snapshot
//! DEST/objects/<hh>/<sha256>   the bytes of a host file
//! DEST/tmp/                    files being written (left by a crash only)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The marker file's name.
pub const MARKER: &str = "quire-backup";
const SNAPSHOTS: &str = "snapshots";
const OBJECTS: &str = "objects";
const TMP: &str = "tmp";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// fsyncs a folder so a rename in it is durable. A file system that
/// cannot fsync a folder (some network shares answer EINVAL) is taken as
/// it is: the files themselves were fsync'd.
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|f| f.sync_all()) {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP)
            ) =>
        {
            Ok(())
        }
        r => r,
    }
}

/// Writes `bytes` to `path` whole: a temporary file in `tmp`, fsync'd,
/// renamed into place.
fn write_whole(tmp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (mut f, t) = super::safe::create_temp(tmp, "meta-", "")?;
    let r = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&t, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if r.is_err() {
        let _ = fs::remove_file(&t);
    }
    r
}

/// A lock on a backup folder (an `flock` of the folder itself): one
/// backup or thinning at a time, never while another reads it.
pub struct Locked(#[allow(dead_code)] File);

/// An opened backup folder.
pub struct Repo {
    root: PathBuf,
}

/// How an object failed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    Missing,
    WrongSize(u64),
    WrongHash,
}

impl Repo {
    /// The backup folder at `root` (not created).
    pub fn at(root: &Path) -> Repo {
        Repo {
            root: root.to_owned(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the folder for writing: refused at once ("busy") when another
    /// process has it.
    pub fn lock_write(&self) -> io::Result<Locked> {
        let f = File::open(&self.root)?;
        match f.try_lock() {
            Ok(()) => Ok(Locked(f)),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "another backup into {} is running: try again when it is done",
                    self.root.display()
                ),
            )),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Takes the folder for reading (waits for a backup in progress).
    pub fn lock_read(&self) -> io::Result<Locked> {
        let f = File::open(&self.root)?;
        f.lock_shared()?;
        Ok(Locked(f))
    }

    /// The marker's bytes, if the folder has one.
    pub fn marker(&self) -> io::Result<Option<Vec<u8>>> {
        match super::safe::read(&self.root.join(MARKER), 4096) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes the folder's structure (each part 0700) and writes `marker`.
    /// A crash's leftovers in `tmp/` are removed.
    pub fn create(&self, marker: &[u8]) -> io::Result<()> {
        for d in [SNAPSHOTS, OBJECTS, TMP] {
            super::atomic::private_dir(&self.root.join(d))?;
        }
        for e in fs::read_dir(self.root.join(TMP))? {
            let _ = fs::remove_file(e?.path());
        }
        if self.marker()?.as_deref() != Some(marker) {
            write_whole(&self.root.join(TMP), &self.root.join(MARKER), marker)?;
        }
        Ok(())
    }

    /// Snapshot IDs, oldest first (IDs sort by time).
    pub fn snapshots(&self) -> io::Result<Vec<String>> {
        let mut v = Vec::new();
        let rd = match fs::read_dir(self.root.join(SNAPSHOTS)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(v),
            Err(e) => return Err(e),
        };
        for e in rd {
            let n = e?.file_name();
            if let Some(n) = n.to_str().filter(|n| is_snapshot_id(n)) {
                v.push(n.to_owned());
            }
        }
        // By time, then by the number of a second one in that second
        // (`-10` after `-9`).
        v.sort_by_key(|id| {
            let (t, n) = id.split_once('-').unwrap_or((id, "1"));
            (t.to_owned(), n.parse::<u64>().unwrap_or(0))
        });
        Ok(v)
    }

    /// A manifest's bytes (at most `max`).
    pub fn read_manifest(&self, id: &str, max: u64) -> io::Result<Vec<u8>> {
        if !is_snapshot_id(id) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{id} is not a snapshot ID (they look like 20261205T170000Z)"),
            ));
        }
        super::safe::read(&self.root.join(SNAPSHOTS).join(id), max)
    }

    /// Writes a manifest under a new ID; its objects must be stored
    /// already (so a manifest never names a missing object).
    pub fn write_manifest(&self, id: &str, bytes: &[u8]) -> io::Result<()> {
        let p = self.root.join(SNAPSHOTS).join(id);
        if p.exists() {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        write_whole(&self.root.join(TMP), &p, bytes)
    }

    pub fn remove_snapshot(&self, id: &str) -> io::Result<()> {
        fs::remove_file(self.root.join(SNAPSHOTS).join(id))?;
        sync_dir(&self.root.join(SNAPSHOTS))
    }

    pub fn object_path(&self, hash: &[u8; 32]) -> PathBuf {
        let h = hex(hash);
        self.root.join(OBJECTS).join(&h[..2]).join(h)
    }

    /// Whether the object is there with `size` bytes (not re-hashed).
    pub fn has(&self, hash: &[u8; 32], size: u64) -> bool {
        fs::symlink_metadata(self.object_path(hash)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Copies `src` (read from its start to its end) into the folder as an
    /// object; returns its hash and size. Written to `tmp/` and renamed
    /// into place (durable after [`Repo::sync`]); an object already there
    /// is kept.
    pub fn store(&self, src: &mut dyn Read) -> io::Result<([u8; 32], u64)> {
        let (mut f, tmp) = super::safe::create_temp(&self.root.join(TMP), "obj-", "")?;
        let r = (|| {
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            let mut n = 0u64;
            loop {
                let k = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                h.update(&buf[..k]);
                f.write_all(&buf[..k])?;
                n += k as u64;
            }
            let hash: [u8; 32] = h.finalize().into();
            if self.has(&hash, n) {
                return Ok((hash, n));
            }
            // Not fsync'd one by one: [`Repo::sync`] makes every object
            // durable at once before a manifest names them.
            let dst = self.object_path(&hash);
            let dir = dst.parent().expect("objects/<hh>");
            super::atomic::private_dir(dir)?;
            fs::rename(&tmp, &dst)?;
            Ok((hash, n))
        })();
        let _ = fs::remove_file(&tmp);
        r
    }

    /// Makes everything written to the folder's file system durable (one
    /// `syncfs`, instead of an fsync per object and folder): called before
    /// a manifest is written, so a manifest never names an object a power
    /// cut could lose.
    pub fn sync(&self) -> io::Result<()> {
        super::atomic::sync_fs(&self.root)
    }

    /// A private scratch copy of `src` in `tmp/`, open for reading and
    /// writing (a file whose uncommitted change a backup undoes in the
    /// copy). The caller removes it.
    pub fn scratch(&self, src: &mut dyn Read) -> io::Result<(File, PathBuf)> {
        let (f, tmp) = super::safe::create_temp(&self.root.join(TMP), "scratch-", "")?;
        drop(f);
        let r = (|| {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            io::copy(src, &mut f)?;
            Ok(f)
        })();
        match r {
            Ok(f) => Ok((f, tmp)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Re-reads an object and checks its size and hash.
    pub fn check(&self, hash: &[u8; 32], size: u64) -> Result<(), Damage> {
        let Ok(mut f) = self.open_object(hash) else {
            return Err(Damage::Missing);
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len != size {
            return Err(Damage::WrongSize(len));
        }
        let mut h = Sha256::new();
        if io::copy(&mut f, &mut h).is_err() || <[u8; 32]>::from(h.finalize()) != *hash {
            return Err(Damage::WrongHash);
        }
        Ok(())
    }

    /// An object, opened for reading (never through a symlink).
    pub fn open_object(&self, hash: &[u8; 32]) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(self.object_path(hash))
    }

    /// Every object's hash (for collecting the unused ones).
    pub fn objects(&self) -> io::Result<Vec<[u8; 32]>> {
        let mut v = Vec::new();
        for d in fs::read_dir(self.root.join(OBJECTS))? {
            let d = d?;
            if !d.file_type()?.is_dir() {
                continue;
            }
            for e in fs::read_dir(d.path())? {
                let n = e?.file_name();
                if let Some(h) = n.to_str().and_then(unhex32) {
                    v.push(h);
                }
            }
        }
        Ok(v)
    }

    pub fn remove_object(&self, hash: &[u8; 32]) -> io::Result<()> {
        fs::remove_file(self.object_path(hash))
    }
}

/// `YYYYMMDDTHHMMSSZ`, optionally `-N` (two in one second).
pub fn is_snapshot_id(s: &str) -> bool {
    let (t, n) = s.split_once('-').unwrap_or((s, "1"));
    t.len() == 16
        && t.as_bytes()[8] == b'T'
        && t.as_bytes()[15] == b'Z'
        && t.bytes()
            .enumerate()
            .all(|(i, c)| i == 8 || i == 15 || c.is_ascii_digit())
        && !n.is_empty()
        && n.bytes().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_stored_once_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let r = Repo::at(d.path());
        r.create(b"m").unwrap();
        let (h, n) = r.store(&mut &b"hello"[..]).unwrap();
        assert_eq!(n, 5);
        assert_eq!(r.store(&mut &b"hello"[..]).unwrap(), (h, 5));
        assert_eq!(r.objects().unwrap(), vec![h]);
        assert_eq!(r.check(&h, 5), Ok(()));
        std::fs::write(r.object_path(&h), b"hellp").unwrap();
        assert_eq!(r.check(&h, 5), Err(Damage::WrongHash));
        std::fs::write(r.object_path(&h), b"hell").unwrap();
        assert_eq!(r.check(&h, 5), Err(Damage::WrongSize(4)));
        r.remove_object(&h).unwrap();
        assert_eq!(r.check(&h, 5), Err(Damage::Missing));
        assert_eq!(std::fs::read_dir(d.path().join(TMP)).unwrap().count(), 0);
    }

    #[test]
    fn one_writer_at_a_time() {
        let d = tempfile::tempdir().unwrap();
        let r = Repo::at(d.path());
        r.create(b"m").unwrap();
        let first = r.lock_write().unwrap();
        let e = r.lock_write().err().expect("a second writer");
        assert_eq!(e.kind(), io::ErrorKind::ResourceBusy);
        drop(first);
        let _read = r.lock_read().unwrap();
        assert!(r.lock_write().is_err(), "written while read");
    }

    #[test]
    fn snapshot_ids() {
        assert!(is_snapshot_id("20261205T170000Z"));
        assert!(is_snapshot_id("20261205T170000Z-2"));
        for bad in [
            "2026",
            "20261205X170000Z",
            "../x",
            "20261205T170000Z-",
            "20261205T17000aZ",
        ] {
            assert!(!is_snapshot_id(bad), "{bad}");
        }
    }
}
