//! Checking, thinning and restoring a backup folder (issue 19.2). None of
//! it needs the password: manifests are checked against the folder's
//! public key (and, when the caller has it, the vault's own), objects
//! against their SHA-256.

use std::collections::HashSet;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::format::backup::{self as fmt, Kind, Manifest};
use crate::store::backup::{Damage, Repo};

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Makes `repo` this vault's backup folder, or checks that it is: a folder
/// of another vault or key, or a non-empty folder that is no backup
/// folder, is refused (nothing is written there).
pub fn claim(repo: &Repo, vault: &[u8; 16], key: &[u8; 32]) -> io::Result<()> {
    let marker = fmt::encode_marker(vault, key);
    match repo.marker()? {
        Some(m) => match fmt::parse_marker(&m) {
            Some((v, _)) if &v != vault => {
                return Err(invalid(format!(
                    "{} holds the backups of another vault: give each vault a backup folder of its own",
                    repo.root().display()
                )));
            }
            Some((_, k)) if &k != key => {
                return Err(invalid(format!(
                    "{} is signed by another key than this vault's ({}, not {}): it was changed by someone else; take backups into a new folder and keep this one for inspection",
                    repo.root().display(),
                    fmt::fingerprint(&k),
                    fmt::fingerprint(key)
                )));
            }
            Some(_) => {}
            None => {
                return Err(invalid(format!(
                    "{}: its {} file is not readable (a newer Quire's, or damaged)",
                    repo.root().display(),
                    crate::store::backup::MARKER
                )));
            }
        },
        None => {
            if let Ok(mut rd) = std::fs::read_dir(repo.root())
                && rd.next().is_some()
            {
                return Err(invalid(format!(
                    "{} is not empty and is not a Quire backup folder: give an empty or new folder",
                    repo.root().display()
                )));
            }
            if !repo.root().exists() {
                crate::store::atomic::private_dir(repo.root())?;
            }
        }
    }
    repo.create(&marker)
}

/// The folder's (vault ID, public key).
pub fn identity(repo: &Repo) -> io::Result<([u8; 16], [u8; 32])> {
    let m = repo.marker()?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} is not a Quire backup folder (no {} file)",
                repo.root().display(),
                crate::store::backup::MARKER
            ),
        )
    })?;
    fmt::parse_marker(&m).ok_or_else(|| {
        invalid(format!(
            "{}: its {} file is not readable",
            repo.root().display(),
            crate::store::backup::MARKER
        ))
    })
}

/// Snapshot `id`'s manifest, its signature checked and its key `key`.
pub fn manifest(repo: &Repo, id: &str, key: &[u8; 32]) -> io::Result<Manifest> {
    let b = repo.read_manifest(id, fmt::MAX_MANIFEST)?;
    let m = Manifest::parse(&b).map_err(|e| invalid(format!("snapshot {id}: {e}")))?;
    if &m.key != key {
        return Err(invalid(format!("snapshot {id}: {}", fmt::Error::OtherKey)));
    }
    Ok(m)
}

/// Applies a retention rule: removes the snapshots it does not keep, then
/// the objects no kept snapshot uses. Returns (snapshots removed, objects
/// removed). A snapshot whose manifest does not verify is never removed
/// (nor are objects it may name: nothing is collected then). The caller
/// holds the folder's write lock.
pub fn forget(
    repo: &Repo,
    key: &[u8; 32],
    rule: &[super::keep::Keep],
) -> io::Result<(Vec<String>, u64)> {
    let mut all = Vec::new();
    let mut unreadable = false;
    for id in repo.snapshots()? {
        match manifest(repo, &id, key) {
            Ok(m) => all.push((id, m.time)),
            Err(_) => unreadable = true,
        }
    }
    let gone = super::keep::plan(&all, rule);
    for id in &gone {
        repo.remove_snapshot(id)?;
    }
    let mut removed = 0;
    if !unreadable {
        let mut used = HashSet::new();
        for id in repo.snapshots()? {
            for e in manifest(repo, &id, key)?.entries {
                if let Kind::File { hash, .. } = e.kind {
                    used.insert(hash);
                }
            }
        }
        for h in repo.objects()? {
            if !used.contains(&h) {
                repo.remove_object(&h)?;
                removed += 1;
            }
        }
    }
    Ok((gone, removed))
}

/// One problem `verify` found.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// The snapshot (empty: the folder itself).
    pub snapshot: String,
    /// The host path in the vault folder (empty: the manifest).
    pub path: String,
    pub what: String,
}

/// What `verify` saw.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Checked {
    pub snapshots: Vec<(String, u64, u64)>,
    pub objects: u64,
    pub bytes: u64,
    pub problems: Vec<Problem>,
    pub fingerprint: String,
}

/// Checks every snapshot: its manifest's signature (by the folder's key,
/// which must be `trusted` when given), and every object it names (there,
/// of its size and hash). Each object is read once.
pub fn verify(repo: &Repo, trusted: Option<&[u8; 32]>) -> io::Result<Checked> {
    let (_, key) = identity(repo)?;
    let _locked = repo.lock_read()?;
    let mut c = Checked {
        fingerprint: fmt::fingerprint(&key),
        ..Checked::default()
    };
    if let Some(t) = trusted
        && t != &key
    {
        c.problems.push(Problem {
            snapshot: String::new(),
            path: String::new(),
            what: format!(
                "the folder's key {} is not the vault's {}: its snapshots were signed by someone else",
                fmt::fingerprint(&key),
                fmt::fingerprint(t)
            ),
        });
    }
    let mut done = std::collections::HashMap::new();
    for id in repo.snapshots()? {
        let m = match manifest(repo, &id, &key) {
            Ok(m) => m,
            Err(e) => {
                c.problems.push(Problem {
                    snapshot: id.clone(),
                    path: String::new(),
                    what: e.to_string(),
                });
                continue;
            }
        };
        let mut files = 0;
        for e in &m.entries {
            let Kind::File { size, hash, .. } = &e.kind else {
                continue;
            };
            files += 1;
            let r = done.entry(*hash).or_insert_with(|| {
                c.objects += 1;
                c.bytes += size;
                repo.check(hash, *size)
            });
            if let Err(d) = r {
                c.problems.push(Problem {
                    snapshot: id.clone(),
                    path: String::from_utf8_lossy(&e.path).into_owned(),
                    what: match d {
                        Damage::Missing => "its stored copy is missing".into(),
                        Damage::WrongSize(n) => {
                            format!("its stored copy has {n} bytes, not {size}")
                        }
                        Damage::WrongHash => "its stored copy was changed (SHA-256 differs)".into(),
                    },
                });
            }
        }
        c.snapshots.push((id, m.time, files));
    }
    Ok(c)
}

/// Restores snapshot `id` into `to`, a folder that does not exist or is
/// empty (never over a vault). Every object is checked as it is copied;
/// a damaged one stops the restore and says which. Returns files written.
pub fn restore(repo: &Repo, id: &str, to: &Path, trusted: Option<&[u8; 32]>) -> io::Result<u64> {
    let (_, key) = identity(repo)?;
    let _locked = repo.lock_read()?;
    if let Some(t) = trusted
        && t != &key
    {
        return Err(invalid(format!(
            "the backup folder's key {} is not the vault's {}: not restored",
            fmt::fingerprint(&key),
            fmt::fingerprint(t)
        )));
    }
    let m = manifest(repo, id, &key)?;
    if let Ok(mut rd) = std::fs::read_dir(to)
        && rd.next().is_some()
    {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} is not empty: a snapshot is restored into a new folder, never over a vault",
                to.display()
            ),
        ));
    }
    crate::store::atomic::private_dir(to)?;
    let mut files = 0;
    let mut dirs = Vec::new();
    for e in &m.entries {
        let p = to.join(std::ffi::OsStr::from_bytes(&e.path));
        match &e.kind {
            Kind::Dir { mode } => {
                std::fs::create_dir(&p)?;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))?;
                dirs.push((p, *mode));
            }
            Kind::Symlink { target } => {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &p)?;
            }
            Kind::Link { target } => {
                std::fs::hard_link(to.join(std::ffi::OsStr::from_bytes(target)), &p)?;
            }
            Kind::File {
                mode,
                size,
                hash,
                mtime_ns,
                ..
            } => {
                repo.check(hash, *size).map_err(|d| {
                    invalid(format!(
                        "{}: its stored copy is damaged ({d:?}); `quire backup verify` lists every such file. Try an older snapshot.",
                        String::from_utf8_lossy(&e.path)
                    ))
                })?;
                let mut src = repo.open_object(hash)?;
                let (mut f, tmp) = crate::store::safe::create_temp(
                    p.parent().unwrap_or(to),
                    ".quire-restore-",
                    "",
                )?;
                io::copy(&mut src, &mut f)?;
                f.set_permissions(std::fs::Permissions::from_mode(*mode))?;
                let t = std::time::UNIX_EPOCH
                    + std::time::Duration::from_nanos((*mtime_ns).max(0) as u64);
                f.set_modified(t)?;
                std::fs::rename(&tmp, &p)?;
                files += 1;
            }
        }
    }
    // Modes last (a folder made read-only would refuse its children).
    for (p, mode) in dirs.iter().rev() {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(*mode))?;
    }
    // Everything durable at once.
    crate::store::atomic::sync_fs(to)?;
    Ok(files)
}
