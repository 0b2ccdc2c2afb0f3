//! Symlinks (docs/FORMAT.md §6): the target is sealed into the host
//! symlink's own target text. With the `BOUND_SYMLINKS` flag (§6.1) every
//! name of a symlink also has a small sealed binding record
//! `<host name>.qs` next to it, bound to the folder ID and host name and
//! holding the hash of the host target text that name may hold, so a
//! target copied from another symlink, or a record moved from another
//! name, fails. A host symlink cannot be rewritten in place (re-creating it
//! would change its inode number, which `rename` must keep), so it is the
//! record, a regular file, that is rewritten when a name changes.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use super::{Owner, Tree, eio, errno, hex};
use crate::crypto::random;
use crate::format::records;
use crate::vault::node::{Attr, Kind, Node};

/// What a symlink name's binding record says of its host target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binding {
    /// It accepts the target, whose hash this is.
    Holds([u8; 32]),
    /// The name has no record.
    NoRecord,
    /// The record fails authentication for this folder and name.
    BadRecord,
    /// The record is genuine but names other targets.
    OtherTarget,
}

/// Host name of the binding record of the symlink named `host`.
pub(crate) fn binding_name(host: &OsStr) -> OsString {
    let mut s = host.to_owned();
    s.push(records::BINDING_SUFFIX);
    s
}

impl Tree {
    /// Creates a symlink; the target is sealed (docs/FORMAT.md §6) and,
    /// with `BOUND_SYMLINKS`, its binding record written first (§6.1).
    pub fn symlink(
        &self,
        dir: &Arc<Node>,
        name: &OsStr,
        target: &OsStr,
        owner: Option<Owner>,
    ) -> io::Result<(Node, Attr)> {
        self.writable()?;
        let long = target.len() > records::MAX_SYMLINK;
        if long && (!self.long_symlinks || target.len() > records::MAX_LONG_SYMLINK) {
            return Err(errno(libc::ENAMETOOLONG));
        }
        let hn = self.host_name(dir, name)?;
        let host = OsStr::new(hn.host());
        // A long target is sealed into a file of its own first (§6.2); the
        // host symlink names it. A crash leaves at most an unnamed file.
        let (sealed, long_id) = if long {
            let id = random::bytes::<16>();
            let d = self.long_dir(true)?;
            d.create_child_with(
                OsStr::new(&hex(&id)),
                &records::seal_long_target(&self.keys.symlink, &id, target.as_bytes()),
                0o600,
            )?;
            (records::long_host_target(&id, target.len()), Some(id))
        } else {
            (
                records::seal_symlink(&self.keys.symlink, target.as_bytes()),
                None,
            )
        };
        let r = self.symlink_sealed(dir, &hn, host, &sealed, owner);
        if r.is_err()
            && let Some(id) = long_id
            && let Ok(d) = self.long_dir(false)
        {
            let _ = d.unlink_child(OsStr::new(&hex(&id)));
        }
        r
    }

    /// The folder of long symlink targets (§6.2), made on first use.
    fn long_dir(&self, create: bool) -> io::Result<crate::store::host::Handle> {
        let root = self.root();
        let name = OsStr::new(records::LONG_SYMLINK_DIR);
        match root.handle()?.lookup(name) {
            Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => {
                match root.handle()?.mkdir_child(name, 0o700) {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
                    _ => {}
                }
                root.handle()?.lookup(name)
            }
            r => r,
        }
    }

    /// Removes the target file `id` of a long symlink whose last name is
    /// gone (§6.2).
    pub(crate) fn drop_long_target(&self, id: &[u8; 16]) {
        if let Ok(d) = self.long_dir(false)
            && let Err(e) = d.unlink_child(OsStr::new(&hex(id)))
            && e.raw_os_error() != Some(libc::ENOENT)
        {
            log::warn!("a removed symlink's target file stays ({e})");
        }
    }

    /// The plaintext of a host target text: sealed in it, or (a long
    /// target, §6.2) in the file it names.
    pub(crate) fn open_target(&self, host: &[u8]) -> io::Result<Vec<u8>> {
        if let Some((id, len)) = records::parse_long_host_target(host) {
            if !self.long_symlinks {
                return Err(eio());
            }
            let sealed = self.long_dir(false)?.read_child(OsStr::new(&hex(&id)))?;
            return records::open_long_target(&self.keys.symlink, &id, len, &sealed)
                .map_err(|_| eio());
        }
        records::open_symlink(&self.keys.symlink, host).map_err(|_| eio())
    }

    /// Makes the symlink `host` with the host target text `sealed`.
    fn symlink_sealed(
        &self,
        dir: &Arc<Node>,
        hn: &crate::format::names::HostName,
        host: &OsStr,
        sealed: &str,
        owner: Option<Owner>,
    ) -> io::Result<(Node, Attr)> {
        if self.bound_symlinks {
            // The record is written before the symlink (a crash leaves at
            // most a record without a symlink, which nothing reads), so the
            // name must be free first: the kernel holds the folder's lock,
            // so no other creation through the mount races this one.
            match dir.handle()?.stat_child(host) {
                Ok(_) => return Err(errno(libc::EEXIST)),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
            self.write_binding(dir, host, &[records::target_hash(sealed.as_bytes())])?;
        }
        self.write_sidecar(dir, hn)?;
        if let Err(e) = dir.handle()?.symlink_child(OsStr::new(&sealed), host) {
            if self.bound_symlinks {
                self.drop_binding(dir, host);
            }
            return Err(e);
        }
        self.finish_new(dir, hn.host(), owner)
    }

    /// Reads a symlink's plaintext target.
    pub fn readlink(&self, node: &Node) -> io::Result<Vec<u8>> {
        let (host, _) = self.checked_target(node)?;
        self.open_target(&host).inspect_err(|_| {
            log::error!("symlink {} failed authentication", self.describe(node));
        })
    }

    /// A symlink's host target text and its hash. With `BOUND_SYMLINKS`
    /// the target must be one the binding record of the name it was looked
    /// up by accepts (checked at lookup: after another name of a
    /// hard-linked symlink is removed, its node's recorded name may be the
    /// gone one), else the record of its recorded name; EIO otherwise.
    pub(crate) fn checked_target(&self, node: &Node) -> io::Result<(Vec<u8>, [u8; 32])> {
        let host = node.handle()?.readlink()?;
        let h = records::target_hash(&host);
        if self.bound_symlinks {
            let seen = *node.link_ok.lock().unwrap_or_else(|e| e.into_inner());
            if seen != Some(h) {
                let (dir, name) = node.location().ok_or_else(eio)?;
                if self.binding_of(&dir, &name, &host)? != Binding::Holds(h) {
                    return Err(eio());
                }
                *node.link_ok.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
            }
        }
        Ok((host, h))
    }

    /// The hash of the host target of the symlink `host` in `dir` if its
    /// binding record accepts it (failures are logged).
    pub(crate) fn verify_binding(&self, dir: &Node, host: &OsStr) -> Option<[u8; 32]> {
        let target = dir.handle().ok()?.readlink_child(host).ok()?;
        match self.binding_of(dir, host, &target).ok()? {
            Binding::Holds(h) => Some(h),
            _ => None,
        }
    }

    /// What the binding record of the symlink `host` in `dir` says of the
    /// host target text `target`. Every outcome but `Holds` is logged
    /// here (host paths only).
    pub(crate) fn binding_of(
        &self,
        dir: &Node,
        host: &OsStr,
        target: &[u8],
    ) -> io::Result<Binding> {
        let rec = binding_name(host);
        let at = || format!("{}/{}", self.describe(dir), host.to_string_lossy());
        let b = match dir.handle()?.read_child(&rec) {
            Ok(b) => b,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                log::error!(
                    "symlink {} has no binding record (removed, or the symlink was planted)",
                    at()
                );
                return Ok(Binding::NoRecord);
            }
            Err(e) => return Err(e),
        };
        let id = self.dir_id(dir)?;
        let Ok(accepted) = records::open_binding(&self.keys.symlink, &id, host.as_bytes(), &b)
        else {
            log::error!(
                "the binding record of symlink {} failed authentication (tampered, or moved from another symlink)",
                at()
            );
            return Ok(Binding::BadRecord);
        };
        let h = records::target_hash(target);
        if accepted.contains(&h) {
            return Ok(Binding::Holds(h));
        }
        log::error!(
            "symlink {} does not match its binding record (its target was replaced, or copied from another symlink)",
            at()
        );
        Ok(Binding::OtherTarget)
    }

    /// Writes (atomically: a new file renamed over the old) the binding
    /// record of the symlink name `host` in `dir`.
    pub(crate) fn write_binding(
        &self,
        dir: &Node,
        host: &OsStr,
        targets: &[[u8; 32]],
    ) -> io::Result<()> {
        let mut t: Vec<[u8; 32]> = Vec::with_capacity(targets.len());
        for h in targets {
            if !t.contains(h) {
                t.push(*h);
            }
        }
        t.truncate(records::MAX_BOUND_TARGETS);
        if t.is_empty() {
            self.drop_binding(dir, host);
            return Ok(());
        }
        let id = self.dir_id(dir)?;
        let sealed = records::seal_binding(&self.keys.symlink, &id, host.as_bytes(), &t);
        // Not fsync'd, like a new file's header: a killed daemon loses
        // nothing (the host kernel has the bytes); power loss is the
        // journal's accepted limit (THREAT_MODEL.md).
        super::replace_record(dir.handle()?, &binding_name(host), &sealed, false)
    }

    /// Removes the binding record of the name `host` in `dir`, if any
    /// (best effort: a record left behind binds a name that holds no
    /// symlink, and is removed with its folder).
    pub(crate) fn drop_binding(&self, dir: &Node, host: &OsStr) {
        if let Ok(h) = dir.handle()
            && let Err(e) = h.unlink_child(&binding_name(host))
            && e.raw_os_error() != Some(libc::ENOENT)
        {
            log::warn!(
                "the binding record of {}/{} was not removed: {e}",
                self.describe(dir),
                host.to_string_lossy()
            );
        }
    }

    /// What the name `host` in `dir` holds, as binding targets: the hash
    /// of its host target if it is a symlink its record accepts (so extra
    /// hashes a crash left in a record are dropped at its next rename),
    /// nothing otherwise (not a symlink, or one that does not verify: it
    /// stays unreadable wherever it goes).
    pub(crate) fn bound_targets(
        &self,
        dir: &Node,
        host: &OsStr,
        st: Option<&libc::stat>,
    ) -> Vec<[u8; 32]> {
        match st {
            Some(st) if self.bound_symlinks && Kind::from_mode(st.st_mode) == Kind::Symlink => {
                self.verify_binding(dir, host).into_iter().collect()
            }
            _ => Vec::new(),
        }
    }
}
