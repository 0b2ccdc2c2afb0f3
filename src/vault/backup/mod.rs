//! `quire backup` (issue 19.2, docs/FORMAT.md §19): a consistent snapshot
//! of the vault folder, taken while mounted, into a backup folder that
//! never sees a key or a plaintext byte.
//!
//! A snapshot is taken in two passes. The first copies every host file
//! that changed since the last snapshot (same size and modification time:
//! reused, as rsync decides) with the vault in use. The second closes the
//! commit gate (no change half made; new ones wait), looks at every file
//! again, copies the few that changed meanwhile, and stores each file
//! with a change not yet committed (a writer between two writes) as it
//! was at its last commit, undone in a copy from the crash journal. The
//! gate is held for a walk of the folder and those copies only.

pub mod keep;
pub mod verify;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::crypto::sign;
use crate::format::backup::{self as fmt, Entry, Kind, Manifest};
use crate::store::backup::Repo;

use super::notebook::Notebook;

/// What a backup did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The new snapshot's ID.
    pub id: String,
    /// Host files in it, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Files read and stored this time (the rest were unchanged), and
    /// their bytes.
    pub copied: u64,
    pub copied_bytes: u64,
    /// Files stored as at their last commit (a change was in progress).
    pub undone: u64,
    /// How long changes waited for the snapshot, in milliseconds.
    pub held_ms: u64,
    /// Snapshots the retention rule removed, and objects no longer used.
    pub removed: Vec<String>,
    pub objects_removed: u64,
    /// The signing key's fingerprint.
    pub fingerprint: String,
}

/// A host file as first seen: its identity and the entry made of it.
struct Seen {
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    /// The copy was made while the file changed: made again in pass 2.
    torn: bool,
    kind: Kind,
}

fn ns(sec: i64, nsec: i64) -> i64 {
    sec.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// Names a sync tool writes while a transfer is in progress: not part of
/// the vault (the finished file gets its real name).
fn in_transfer(name: &[u8]) -> bool {
    (name.starts_with(b".syncthing.") || name.starts_with(b"~syncthing~"))
        && name.ends_with(b".tmp")
}

/// Every path under `root` with its metadata, parents first (symlinks
/// not followed; other kinds than folders, files and symlinks skipped).
pub(crate) fn walk(root: &Path) -> io::Result<Vec<(Vec<u8>, std::fs::Metadata)>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let rd = match std::fs::read_dir(root.join(&rel)) {
            Ok(rd) => rd,
            // A folder removed between the listing and now.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in rd {
            let e = e?;
            let name = e.file_name();
            if in_transfer(name.as_bytes()) {
                continue;
            }
            let r = rel.join(&name);
            let m = match std::fs::symlink_metadata(root.join(&r)) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let ft = m.file_type();
            if ft.is_dir() {
                stack.push(r.clone());
            } else if !ft.is_file() && !ft.is_symlink() {
                log::warn!(
                    "backup: {} is not a file, folder or symlink; skipped",
                    r.display()
                );
                continue;
            }
            out.push((r.as_os_str().as_bytes().to_vec(), m));
        }
    }
    Ok(out)
}

fn open_host(p: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(p)
}

/// The entry for `rel`, copying a file's bytes into `repo` unless the
/// last snapshot had it with the same size, times and inode.
fn take(
    repo: &Repo,
    root: &Path,
    rel: &[u8],
    m: &std::fs::Metadata,
    prev: &HashMap<Vec<u8>, Kind>,
    r: &mut Report,
) -> io::Result<Seen> {
    let p = root.join(std::ffi::OsStr::from_bytes(rel));
    let mtime_ns = ns(m.mtime(), m.mtime_nsec());
    let mut seen = Seen {
        ino: m.ino(),
        size: m.len(),
        mtime_ns,
        ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        torn: false,
        kind: Kind::Dir {
            mode: m.mode() & 0o7777,
        },
    };
    let ft = m.file_type();
    if ft.is_symlink() {
        seen.kind = Kind::Symlink {
            target: std::fs::read_link(&p)?.as_os_str().as_bytes().to_vec(),
        };
    } else if ft.is_file() {
        if let Some(Kind::File {
            size,
            mtime_ns: t,
            ctime_ns: c,
            ino,
            hash,
            ..
        }) = prev.get(rel)
            && (*size, *t, *c, *ino) == (m.len(), mtime_ns, seen.ctime_ns, m.ino())
            && repo.has(hash, *size)
        {
            seen.kind = Kind::File {
                mode: m.mode() & 0o7777,
                size: *size,
                mtime_ns,
                ctime_ns: seen.ctime_ns,
                ino: seen.ino,
                hash: *hash,
            };
            return Ok(seen);
        }
        let mut f = open_host(&p)?;
        let (hash, size) = repo.store(&mut f)?;
        let after = f.metadata()?;
        seen.torn = size != after.len()
            || ns(after.mtime(), after.mtime_nsec()) != mtime_ns
            || ns(after.ctime(), after.ctime_nsec()) != seen.ctime_ns;
        seen.kind = Kind::File {
            mode: m.mode() & 0o7777,
            size,
            mtime_ns,
            ctime_ns: seen.ctime_ns,
            ino: seen.ino,
            hash,
        };
        r.copied += 1;
        r.copied_bytes += size;
    }
    Ok(seen)
}

/// The snapshot ID for `t`: `YYYYMMDDTHHMMSSZ` (UTC), `-N` after it if
/// one of that second exists.
fn snapshot_id(t: u64, taken: &[String]) -> String {
    let (y, m, d) = crate::vault::util::civil_from_days((t / 86_400) as i64);
    let s = t % 86_400;
    let base = format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    );
    let mut id = base.clone();
    let mut n = 2;
    while taken.contains(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

impl Notebook {
    /// The vault's ID.
    pub fn vault_id(&self) -> [u8; 16] {
        self.features().vault_id
    }

    /// The public key that signs this vault's backup manifests.
    pub fn backup_key(&self) -> [u8; 32] {
        sign::public(&self.keys.backup_sign)
    }

    /// Takes a snapshot of the vault folder into the backup folder `dest`
    /// (made if missing), then applies `keep` (if given) to the snapshots
    /// there. `progress` gets (files looked at, files in all) now and then.
    pub fn backup(
        &self,
        dest: &Path,
        keep: Option<&[keep::Keep]>,
        now: SystemTime,
        progress: &dyn Fn(u64, u64),
    ) -> io::Result<Report> {
        self.take_backup(dest, keep, now, progress).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOSPC) {
                io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!(
                        "the disk of {} is full: this snapshot was not written, the ones already there are whole. Free space there, or thin old snapshots with --keep",
                        dest.display()
                    ),
                )
            } else {
                e
            }
        })
    }

    fn take_backup(
        &self,
        dest: &Path,
        keep: Option<&[keep::Keep]>,
        now: SystemTime,
        progress: &dyn Fn(u64, u64),
    ) -> io::Result<Report> {
        let f = self.features();
        let root = f.root.clone();
        let key = self.backup_key();
        let repo = Repo::at(dest);
        verify::claim(&repo, &f.vault_id, &key)?;
        // One backup (and its thinning) at a time in one folder.
        let _locked = repo.lock_write()?;
        let mut r = Report {
            fingerprint: fmt::fingerprint(&key),
            ..Report::default()
        };
        // The newest snapshot's files, for the quick check.
        let ids = repo.snapshots()?;
        let mut prev: HashMap<Vec<u8>, Kind> = HashMap::new();
        if let Some(last) = ids.last()
            && let Ok(m) = verify::manifest(&repo, last, &key)
        {
            prev = m.entries.into_iter().map(|e| (e.path, e.kind)).collect();
        }
        // Pass 1: the vault in use.
        let first = walk(&root)?;
        let total = first.len() as u64;
        let mut seen: HashMap<Vec<u8>, Seen> = HashMap::with_capacity(first.len());
        for (i, (rel, m)) in first.iter().enumerate() {
            match take(&repo, &root, rel, m, &prev, &mut r) {
                Ok(s) => {
                    seen.insert(rel.clone(), s);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if i % 256 == 0 {
                progress(i as u64, total);
            }
        }
        // Pass 2: the gate closed.
        let closed = f.gate.close()?;
        // The audit chain is written by a thread of its own: held too.
        let quiet = f.events.quiet_audit();
        let held = Instant::now();
        let mut entries = Vec::new();
        let second = walk(&root)?;
        for (rel, m) in &second {
            let same = seen.get(rel).is_some_and(|s| {
                !s.torn
                    && s.ino == m.ino()
                    && s.size == m.len()
                    && s.mtime_ns == ns(m.mtime(), m.mtime_nsec())
                    && s.ctime_ns == ns(m.ctime(), m.ctime_nsec())
            });
            if !same {
                let s = take(&repo, &root, rel, m, &HashMap::new(), &mut r)?;
                seen.insert(rel.clone(), s);
            }
            let s = &seen[rel];
            let kind = match &s.kind {
                // A folder's mode as it is now.
                Kind::Dir { .. } => Kind::Dir {
                    mode: m.mode() & 0o7777,
                },
                k => k.clone(),
            };
            entries.push((rel.clone(), kind, s.ino));
        }
        // Changes in progress: stored as at their last commit.
        let changes = self.content.journal.open_changes()?;
        for c in &changes {
            let Ok(rel) = c.host.strip_prefix(&root) else {
                continue;
            };
            let rel = rel.as_os_str().as_bytes();
            let Some(e) = entries.iter_mut().find(|e| e.0 == rel) else {
                continue;
            };
            let (Kind::File { mode, .. }, true) = (&e.1, c.is_of(e.2)) else {
                continue;
            };
            let mode = *mode;
            let mut src = open_host(&c.host)?;
            let (copy, tmp) = repo.scratch(&mut src)?;
            let stored = (|| {
                if !c.undo_in(&copy, self.content.layout)? {
                    return Ok(None);
                }
                let mut rd = &copy;
                io::Seek::seek(&mut rd, io::SeekFrom::Start(0))?;
                let m = copy.metadata()?;
                Ok::<_, io::Error>(Some((repo.store(&mut rd)?, m)))
            })();
            let _ = std::fs::remove_file(&tmp);
            if let Some(((hash, size), m)) = stored? {
                e.1 = Kind::File {
                    mode,
                    size,
                    // The copy's times and inode, not the host file's:
                    // the next backup reads the file again.
                    mtime_ns: ns(m.mtime(), m.mtime_nsec()),
                    ctime_ns: ns(m.ctime(), m.ctime_nsec()),
                    ino: m.ino(),
                    hash,
                };
                r.undone += 1;
            }
        }
        drop(quiet);
        drop(closed);
        r.held_ms = held.elapsed().as_millis() as u64;
        progress(total, total);
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        // Hard links (a note with two names): the first name in path order
        // is the file, the others link to it, so a restore keeps one file.
        let mut first_name: HashMap<u64, Vec<u8>> = HashMap::new();
        for (rel, kind, ino) in entries.iter_mut() {
            if matches!(kind, Kind::File { .. }) {
                match first_name.get(ino) {
                    Some(t) => {
                        *kind = Kind::Link { target: t.clone() };
                    }
                    None => {
                        first_name.insert(*ino, rel.clone());
                    }
                }
            }
        }
        for (_, k, _) in &entries {
            if let Kind::File { size, .. } = k {
                r.files += 1;
                r.bytes += size;
            }
        }
        let time = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let manifest = Manifest {
            vault: f.vault_id,
            device: f.devices.as_ref().map(|d| d.me()).unwrap_or([0; 16]),
            time,
            key,
            entries: entries
                .into_iter()
                .map(|(path, kind, _)| Entry { path, kind })
                .collect(),
        };
        r.id = snapshot_id(time, &ids);
        repo.sync()?;
        repo.write_manifest(&r.id, &manifest.encode(&self.keys.backup_sign))?;
        self.audit(
            crate::format::audit::Event::Backup,
            b"",
            b"",
            0,
            &serde_json::json!({
                "backup": dest.to_string_lossy(),
                "snapshot": r.id,
                "files": r.files,
                "bytes": r.bytes,
                "copied": r.copied,
                "undone": r.undone,
            })
            .to_string(),
        );
        if let Some(rule) = keep {
            let (removed, objects) = verify::forget(&repo, &key, rule)?;
            r.removed = removed;
            r.objects_removed = objects;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn snapshot_ids_are_utc_times() {
        // 2026-12-05 17:00:09 UTC.
        let t = 1_796_490_009;
        assert_eq!(super::snapshot_id(t, &[]), "20261205T170009Z");
        let taken = vec!["20261205T170009Z".to_string()];
        assert_eq!(super::snapshot_id(t, &taken), "20261205T170009Z-2");
        assert_eq!(super::snapshot_id(0, &[]), "19700101T000000Z");
        assert_eq!(super::snapshot_id(951_782_400, &[]), "20000229T000000Z");
    }
}
