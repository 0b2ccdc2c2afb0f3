//! What `quire import [VAULT] [MOUNTPOINT]` does once `cli::mount` has
//! mounted the vault over a mount point that holds unencrypted files (saved
//! there by a program while the vault was sealed, issue 16.1): it moves
//! them into the vault: each file is
//! copied in through the mount (so it is encrypted), then its plaintext is
//! overwritten with zeros, synced and removed.
//!
//! The files are reached through a descriptor of the covered folder taken
//! before the mount, so no plaintext is copied anywhere else on the disk.
//! A name the vault already has gets ` (unencrypted copy <time>)` before
//! its extension: nothing in the vault is overwritten.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Result;

use crate::store::host::Handle;
use crate::vault::Kind;

/// What an import did.
#[derive(Default)]
pub struct Report {
    /// Files (and symlinks) now in the vault.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Those that went in under another name, as (left, in the vault).
    pub renamed: Vec<(String, String)>,
    /// What was left where it was, and why.
    pub left: Vec<String>,
}

/// Moves everything in the covered folder `covered` into the mounted
/// vault at `mp`.
pub fn import(covered: &Handle, mp: &Path) -> Report {
    let mut r = Report::default();
    // The covered folder is read-only while sealed (0500): writable for
    // the moment its entries are removed.
    let _ = covered.chmod(0o700);
    move_in(covered, mp, "", &mut r);
    let _ = covered.chmod(super::daemon::SEALED_MODE);
    r
}

fn move_in(src: &Handle, dst: &Path, rel: &str, r: &mut Report) {
    let names = match src.read_names() {
        Ok(n) => n,
        Err(e) => {
            r.left
                .push(format!("{}: cannot be listed ({e})", show(rel)));
            return;
        }
    };
    for name in names {
        let path = if rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        if let Err(e) = move_one(src, &name, dst, &path, r) {
            r.left.push(format!("{path}: {e}"));
        }
    }
}

fn show(rel: &str) -> &str {
    if rel.is_empty() {
        "the mount point"
    } else {
        rel
    }
}

fn move_one(src: &Handle, name: &OsStr, dst: &Path, path: &str, r: &mut Report) -> Result<()> {
    let st = src.stat_child(name)?;
    match Kind::from_mode(st.st_mode) {
        Kind::Dir => {
            let target = dst.join(name);
            let into = match std::fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => target,
                Ok(_) => {
                    let other = dst.join(free_name(dst, name));
                    std::fs::create_dir(&other)?;
                    r.renamed.push((path.to_string(), rel_of(&other, path)));
                    other
                }
                Err(_) => {
                    std::fs::create_dir(&target)?;
                    target
                }
            };
            let sub = src.lookup(name)?;
            let _ = sub.chmod((st.st_mode & 0o7777) | 0o700);
            move_in(&sub, &into, path, r);
            src.rmdir_child(name)?;
        }
        Kind::File => {
            let target = free_target(dst, name, path, r);
            let mut from = src.open_child(name, libc::O_RDONLY, 0)?;
            let mut to = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(st.st_mode & 0o7777)
                .open(&target)?;
            let n = std::io::copy(&mut from, &mut to)?;
            to.sync_all()?;
            let mtime = std::fs::FileTimes::new().set_modified(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(st.st_mtime.max(0) as u64),
            );
            let _ = to.set_times(mtime);
            drop(to);
            // The copy is safe in the vault: now the plaintext goes.
            overwrite(src, name, st.st_size as u64)?;
            src.unlink_child(name)?;
            r.files += 1;
            r.bytes += n;
        }
        Kind::Symlink => {
            let target = free_target(dst, name, path, r);
            let t = src.readlink_child(name)?;
            std::os::unix::fs::symlink(OsStr::from_bytes(&t), &target)?;
            src.unlink_child(name)?;
            r.files += 1;
        }
        _ => anyhow::bail!("not a file, folder or symlink: left where it is"),
    }
    Ok(())
}

/// Where a file goes: its own name, or a free one beside it.
fn free_target(dst: &Path, name: &OsStr, path: &str, r: &mut Report) -> std::path::PathBuf {
    if std::fs::symlink_metadata(dst.join(name)).is_err() {
        return dst.join(name);
    }
    let other = dst.join(free_name(dst, name));
    r.renamed.push((path.to_string(), rel_of(&other, path)));
    other
}

/// The vault path of `other`, a sibling of the file at `path`.
fn rel_of(other: &Path, path: &str) -> String {
    Path::new(path)
        .parent()
        .unwrap_or(Path::new(""))
        .join(other.file_name().unwrap_or_default())
        .to_string_lossy()
        .into_owned()
}

/// `misc.md` → `misc (unencrypted copy 2026-12-04T14.03.07).md` (the
/// extension stays last), numbered if even that is taken.
fn free_name(dst: &Path, name: &OsStr) -> OsString {
    let stamp = crate::vault::history::stamp(std::time::SystemTime::now());
    let b = name.as_bytes();
    for n in 1.. {
        let tag = if n == 1 {
            format!(" (unencrypted copy {stamp})")
        } else {
            format!(" (unencrypted copy {stamp} {n})")
        };
        let v = match b.iter().rposition(|&c| c == b'.') {
            Some(i) if i > 0 && i + 1 < b.len() => [&b[..i], tag.as_bytes(), &b[i..]].concat(),
            _ => [b, tag.as_bytes()].concat(),
        };
        let v = OsString::from(OsStr::from_bytes(&v));
        if std::fs::symlink_metadata(dst.join(&v)).is_err() {
            return v;
        }
    }
    unreachable!("some name is free")
}

/// Overwrites a file's bytes with zeros in place and syncs it, before it
/// is unlinked. (On SSDs and copy-on-write file systems the old blocks may
/// survive elsewhere: docs/THREAT_MODEL.md.)
fn overwrite(dir: &Handle, name: &OsStr, len: u64) -> std::io::Result<()> {
    let mut f = match dir.open_child(name, libc::O_WRONLY, 0) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            // A read-only file (0400): its owner may still make it writable.
            let h = dir.lookup(name)?;
            h.chmod(0o600)?;
            dir.open_child(name, libc::O_WRONLY, 0)?
        }
        Err(e) => return Err(e),
    };
    let zeros = vec![0u8; 64 << 10];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}
