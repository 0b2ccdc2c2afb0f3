//! User extended attributes, stored as host xattrs with encrypted names and
//! values (docs/FORMAT.md §7). Only the `user.` namespace is offered, as on
//! most local filesystems mounted without ACL support.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;

use super::hooks::XattrOp;
use super::{Tree, eio};
use crate::format::records;
use crate::vault::node::{Kind, Node};

/// The attribute names Quire reserves for itself (docs/FORMAT.md §15).
pub(crate) const RESERVED: &[u8] = b"user.quire.";

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl Tree {
    /// What an xattr value is bound to (FORMAT §7): with `BOUND`, a file's
    /// file ID or a folder's directory ID.
    fn xattr_owner(&self, node: &Node) -> io::Result<Option<[u8; 16]>> {
        if !self.bound {
            return Ok(None);
        }
        match node.kind {
            Kind::Dir => self.dir_id(node).map(Some),
            _ => self.content.file_id(node).map(Some),
        }
    }

    fn xattr_host(&self, node: &Node, name: &OsStr) -> io::Result<String> {
        let b = name.as_bytes();
        if !b.starts_with(b"user.") {
            return Err(errno(libc::EOPNOTSUPP));
        }
        if node.kind != Kind::File && node.kind != Kind::Dir {
            return Err(errno(libc::EPERM));
        }
        if b.len() > records::MAX_XATTR_NAME {
            return Err(errno(libc::ERANGE));
        }
        Ok(records::xattr_host_name(&self.keys.xattr_name, b))
    }

    /// An attribute a feature answers (`user.quire.expires`, …): its
    /// answer, or `None`. Other `user.quire.` names are reserved (EINVAL).
    fn feature_attr(
        &self,
        node: &Node,
        name: &OsStr,
        op: XattrOp,
    ) -> Option<io::Result<Option<Vec<u8>>>> {
        if let Some(r) = self.hooks().xattr(self, node, name, op) {
            return Some(r);
        }
        name.as_bytes()
            .starts_with(RESERVED)
            .then(|| Err(errno(libc::EINVAL)))
    }

    /// Sets an attribute (`flags`: XATTR_CREATE / XATTR_REPLACE).
    pub fn set_xattr(&self, node: &Node, name: &OsStr, value: &[u8], flags: i32) -> io::Result<()> {
        if self.read_only() {
            return Err(errno(libc::EROFS));
        }
        if let Some(r) = self.feature_attr(node, name, XattrOp::Set(value, flags)) {
            return r.map(|_| ());
        }
        let host = self.xattr_host(node, name)?;
        let owner = self.xattr_owner(node)?;
        let sealed = records::seal_xattr_value(
            &self.keys.xattr_value,
            owner.as_ref(),
            name.as_bytes(),
            value,
        );
        node.handle()?.set_xattr(&host, &sealed, flags)?;
        self.content.host_settled(node);
        Ok(())
    }

    /// Gets an attribute's value.
    pub fn get_xattr(&self, node: &Node, name: &OsStr) -> io::Result<Vec<u8>> {
        if let Some(r) = self.feature_attr(node, name, XattrOp::Get) {
            return match r {
                Ok(v) => v.ok_or_else(|| errno(libc::ENODATA)),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(errno(libc::ENODATA)),
                Err(e) => Err(e),
            };
        }
        let host = match self.xattr_host(node, name) {
            Ok(h) => h,
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                return Err(errno(libc::ENODATA));
            }
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Err(errno(libc::ENODATA)),
            Err(e) => return Err(e),
        };
        let sealed = node
            .handle()?
            .get_xattr(&host)?
            .ok_or_else(|| errno(libc::ENODATA))?;
        let owner = self.xattr_owner(node)?;
        records::open_xattr_value(
            &self.keys.xattr_value,
            owner.as_ref(),
            name.as_bytes(),
            &sealed,
        )
        .map_err(|_| {
            log::error!(
                "an extended attribute of {} failed authentication (tampered, or copied from another file)",
                self.describe(node)
            );
            eio()
        })
    }

    /// Lists attribute names.
    pub fn list_xattr(&self, node: &Node) -> io::Result<Vec<Vec<u8>>> {
        if node.kind != Kind::File && node.kind != Kind::Dir {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        self.hooks().xattr_names(self, node, &mut out);
        for host in node.handle()?.list_xattr()? {
            match records::xattr_plain_name(&self.keys.xattr_name, &host) {
                None => {}
                Some(Ok(n)) => out.push(n),
                Some(Err(_)) => {
                    log::error!(
                        "an extended attribute name of {} failed authentication",
                        self.describe(node)
                    );
                }
            }
        }
        Ok(out)
    }

    /// `quire check`: opens every stored attribute of `node`; the number
    /// that fail authentication (tampered, or copied from another file).
    pub(crate) fn verify_xattrs(&self, node: &Node) -> io::Result<usize> {
        let mut bad = 0;
        for host in node.handle()?.list_xattr()? {
            let Some(name) = records::xattr_plain_name(&self.keys.xattr_name, &host) else {
                continue;
            };
            let ok = name.is_ok_and(|n| self.get_xattr(node, OsStr::from_bytes(&n)).is_ok());
            bad += usize::from(!ok);
        }
        Ok(bad)
    }

    /// Removes an attribute.
    pub fn remove_xattr(&self, node: &Node, name: &OsStr) -> io::Result<()> {
        if self.read_only() {
            return Err(errno(libc::EROFS));
        }
        if let Some(r) = self.feature_attr(node, name, XattrOp::Remove) {
            return r.map(|_| ());
        }
        let host = self.xattr_host(node, name)?;
        node.handle()?.remove_xattr(&host)?;
        self.content.host_settled(node);
        Ok(())
    }
}
