//! User extended attributes, stored as host xattrs with encrypted names and
//! values (docs/FORMAT.md §7). Only the `user.` namespace is offered, as on
//! most local filesystems mounted without ACL support.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;

use std::time::SystemTime;

use super::lifecycle;
use super::node::{Kind, Node};
use super::tree::{Tree, eio};
use crate::format::records;

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
            _ => self.file_id(node).map(Some),
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

    /// The lifecycle date an attribute name stands for (§15): `Some(true)`
    /// expiry, `Some(false)` retention; other `user.quire.` names are
    /// reserved (EINVAL).
    fn lifecycle_attr(name: &OsStr) -> io::Result<Option<bool>> {
        let b = name.as_bytes();
        if b == lifecycle::XATTR_EXPIRES.as_bytes() {
            Ok(Some(true))
        } else if b == lifecycle::XATTR_RETAIN.as_bytes() {
            Ok(Some(false))
        } else if b.starts_with(b"user.quire.") {
            Err(errno(libc::EINVAL))
        } else {
            Ok(None)
        }
    }

    fn change_date(&self, node: &Node, expiry: bool, value: Option<String>) -> io::Result<()> {
        let mut c = lifecycle::Change::default();
        if expiry {
            c.expires = Some(value);
        } else {
            c.retain_until = Some(value);
        }
        match self.change_dates(node, &c, SystemTime::now()) {
            Ok(_) => Ok(()),
            Err(lifecycle::Error::Refused(r)) => {
                log::info!("a date change was refused: {r}");
                Err(errno(r.errno()))
            }
            Err(lifecycle::Error::Io(e)) => Err(e),
        }
    }

    fn date_value(&self, node: &Node, expiry: bool) -> io::Result<Option<String>> {
        if node.kind != Kind::File {
            return Ok(None);
        }
        let d = self.dates(node)?;
        Ok(if expiry { d.expires } else { d.retain_until })
    }

    /// Sets an attribute (`flags`: XATTR_CREATE / XATTR_REPLACE).
    pub fn set_xattr(&self, node: &Node, name: &OsStr, value: &[u8], flags: i32) -> io::Result<()> {
        if self.read_only() {
            return Err(errno(libc::EROFS));
        }
        if let Some(expiry) = Self::lifecycle_attr(name)? {
            let text = std::str::from_utf8(value)
                .map_err(|_| errno(libc::EINVAL))?
                .trim_end_matches(['\0', '\n'])
                .to_string();
            let cur = self.date_value(node, expiry)?;
            if flags & libc::XATTR_CREATE != 0 && cur.is_some() {
                return Err(errno(libc::EEXIST));
            }
            if flags & libc::XATTR_REPLACE != 0 && cur.is_none() {
                return Err(errno(libc::ENODATA));
            }
            return self.change_date(node, expiry, Some(text));
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
        self.host_settled(node);
        Ok(())
    }

    /// Gets an attribute's value.
    pub fn get_xattr(&self, node: &Node, name: &OsStr) -> io::Result<Vec<u8>> {
        if let Some(expiry) = Self::lifecycle_attr(name).map_err(|_| errno(libc::ENODATA))? {
            return self
                .date_value(node, expiry)?
                .map(String::into_bytes)
                .ok_or_else(|| errno(libc::ENODATA));
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
        if node.kind == Kind::File
            && let Ok(d) = self.dates(node)
        {
            if d.expires.is_some() {
                out.push(lifecycle::XATTR_EXPIRES.as_bytes().to_vec());
            }
            if d.retain_until.is_some() {
                out.push(lifecycle::XATTR_RETAIN.as_bytes().to_vec());
            }
        }
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
        if let Some(expiry) = Self::lifecycle_attr(name)? {
            if self.date_value(node, expiry)?.is_none() {
                return Err(errno(libc::ENODATA));
            }
            return self.change_date(node, expiry, None);
        }
        let host = self.xattr_host(node, name)?;
        node.handle()?.remove_xattr(&host)?;
        self.host_settled(node);
        Ok(())
    }
}
