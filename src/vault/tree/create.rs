//! Making entries: files (with their header from the start), special
//! files, folders (with their own directory ID) and hard links.

use std::ffi::OsStr;
use std::io;
use std::sync::Arc;

use super::{NEW_PREFIX, Owner, Tree, errno, hex};
use crate::crypto::random;
use crate::format::dirid;
use crate::vault::node::{Attr, Kind, Node};

impl Tree {
    /// Creates a regular file with a fresh header; returns it opened for I/O.
    pub fn create(
        &self,
        dir: &Arc<Node>,
        name: &OsStr,
        mode: u32,
        excl: bool,
        owner: Option<Owner>,
    ) -> io::Result<(Node, Attr, std::fs::File)> {
        self.writable()?;
        let hn = self.host_name(dir, name)?;
        self.write_sidecar(dir, &hn)?;
        let flags = libc::O_RDWR | libc::O_CREAT | if excl { libc::O_EXCL } else { 0 };
        // The header must be written, so a mode without owner write is set
        // only afterwards.
        let perm = mode & 0o7777;
        let initial = if perm & 0o200 != 0 { perm } else { 0o600 };
        let host = OsStr::new(hn.host());
        let (f, new_id) = if self.bound {
            self.create_with_header(dir, host, excl, initial)?
        } else {
            let f = dir.handle()?.open_child(host, flags, initial)?;
            if f.metadata()?.len() == 0 {
                let (h, id) = self.content.new_file_header();
                std::os::unix::fs::FileExt::write_all_at(&f, &h, 0)?;
                (f, Some(id))
            } else {
                (f, None)
            }
        };
        let fresh = new_id.is_some();
        if fresh {
            // The daemon's umask (0077) applied to the create: set the
            // mode exactly.
            if initial != perm || perm & 0o077 != 0 {
                let p: std::fs::Permissions = std::os::unix::fs::PermissionsExt::from_mode(perm);
                f.set_permissions(p)?;
            }
        }
        let (n, a) = self.finish_new(dir, hn.host(), if fresh { owner } else { None })?;
        if fresh {
            let _ = n.created.set(std::time::Instant::now());
            self.hooks.created(self, dir, name, host, false);
        }
        if let Some(id) = new_id {
            let _ = n.file_key.set(crate::vault::node::FileKey {
                id,
                key: self.keys.file_key(&id),
            });
            self.content.mac_new_file(&n, &f);
        }
        Ok((n, a, f))
    }

    /// Creates `host` in `dir` with its header already written (FORMAT §4,
    /// `BOUND`): made under a hidden temporary name and renamed into place,
    /// so a crash never leaves a file without its header. An existing
    /// file is opened instead unless `excl`. Returns the file and, if it
    /// is new, its file ID.
    pub(crate) fn create_with_header(
        &self,
        dir: &Node,
        host: &OsStr,
        excl: bool,
        mode: u32,
    ) -> io::Result<(std::fs::File, Option<[u8; 16]>)> {
        let d = dir.handle()?;
        loop {
            if !excl {
                match d.open_child(host, libc::O_RDWR, 0) {
                    Ok(f) => return Ok((f, None)),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) => return Err(e),
                }
            }
            let tmp = format!("{NEW_PREFIX}{}", hex(&random::bytes::<8>()));
            let tmp = OsStr::new(&tmp);
            let f = d.open_child(tmp, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, mode)?;
            let (h, id) = self.content.new_file_header();
            let placed = std::os::unix::fs::FileExt::write_all_at(&f, &h, 0)
                .and_then(|_| d.rename_child(tmp, d, host, libc::RENAME_NOREPLACE));
            match placed {
                Ok(()) => return Ok((f, Some(id))),
                Err(e) => {
                    let _ = d.unlink_child(tmp);
                    if excl || e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Creates a special file (FIFO, socket, device) or an empty regular file.
    pub fn mknod(
        &self,
        dir: &Arc<Node>,
        name: &OsStr,
        mode: u32,
        rdev: u64,
        owner: Option<Owner>,
    ) -> io::Result<(Node, Attr)> {
        self.writable()?;
        if mode & libc::S_IFMT == libc::S_IFREG || mode & libc::S_IFMT == 0 {
            return self
                .create(dir, name, mode & 0o7777, true, owner)
                .map(|(n, a, _)| (n, a));
        }
        let hn = self.host_name(dir, name)?;
        self.write_sidecar(dir, &hn)?;
        dir.handle()?
            .mknod_child(OsStr::new(hn.host()), mode, rdev)?;
        if mode & 0o077 != 0 {
            // Past the daemon's umask (0077).
            dir.handle()?
                .lookup(OsStr::new(hn.host()))?
                .chmod(mode & 0o7777)?;
        }
        self.finish_new(dir, hn.host(), owner)
    }

    /// Creates a directory with its own random directory ID. The directory is
    /// prepared under a hidden temporary name and renamed into place, so a
    /// crash never leaves a directory without its ID.
    pub fn mkdir(
        &self,
        dir: &Arc<Node>,
        name: &OsStr,
        mode: u32,
        owner: Option<Owner>,
    ) -> io::Result<(Node, Attr)> {
        self.writable()?;
        let hn = self.host_name(dir, name)?;
        let tmp = format!(".quire-mkdir-{}", hex(&random::bytes::<8>()));
        dir.handle()?.mkdir_child(OsStr::new(&tmp), 0o700)?;
        let prepared = (|| {
            let t = dir.handle()?.lookup(OsStr::new(&tmp))?;
            t.create_child_with(OsStr::new(dirid::FILE_NAME), &random::bytes::<16>(), 0o400)?;
            t.chmod(mode & 0o7777)?;
            self.write_sidecar(dir, &hn)?;
            dir.handle()?.rename_child(
                OsStr::new(&tmp),
                dir.handle()?,
                OsStr::new(hn.host()),
                libc::RENAME_NOREPLACE,
            )
        })();
        if let Err(e) = prepared {
            if let Ok(t) = dir.handle()?.lookup(OsStr::new(&tmp)) {
                let _ = t.chmod(0o700);
                let _ = t.unlink_child(OsStr::new(dirid::FILE_NAME));
            }
            let _ = dir.handle()?.rmdir_child(OsStr::new(&tmp));
            return Err(e);
        }
        self.hooks
            .created(self, dir, name, OsStr::new(hn.host()), true);
        self.finish_new(dir, hn.host(), owner)
    }

    /// Adds a hard link to `node` as `name` in `dir`.
    pub fn link(&self, node: &Node, dir: &Node, name: &OsStr) -> io::Result<Attr> {
        self.writable()?;
        if node.kind == Kind::Dir {
            return Err(errno(libc::EPERM));
        }
        let hn = self.host_name(dir, name)?;
        let host = OsStr::new(hn.host());
        // A new name of a symlink gets its own binding record (§6.1), for
        // the target it verifiably has (EIO if it does not verify).
        let bound = if self.bound_symlinks && node.kind == Kind::Symlink {
            let targets = [self.checked_target(node)?.1];
            match dir.handle()?.stat_child(host) {
                Ok(_) => return Err(errno(libc::EEXIST)),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
            self.write_binding(dir, host, &targets)?;
            true
        } else {
            false
        };
        self.write_sidecar(dir, &hn)?;
        if let Err(e) = node.handle()?.link_into(dir.handle()?, host) {
            if bound {
                self.drop_binding(dir, host);
            }
            return Err(e);
        }
        self.content.host_settled(node);
        self.getattr(node)
    }
}
