//! User extended attributes (docs/FORMAT.md §7): in vaults with
//! `SEALED_XATTRS`, every attribute of a file or folder is kept in one
//! sealed attribute file, `d/quire.xattrs/<owner ID>` (§7.1), which sync
//! tools, tar and zip carry like any file; in older vaults, as host xattrs
//! with encrypted names and values. Only the `user.` namespace is offered,
//! as on most local filesystems mounted without ACL support.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;

use std::sync::atomic::Ordering;

use super::hooks::XattrOp;
use super::{Tree, eio};
use crate::format::records::{self, XattrSet};
use crate::store::host::Handle;
use crate::vault::node::{Kind, Node};

/// The attribute names Quire reserves for itself (docs/FORMAT.md §15).
pub(crate) const RESERVED: &[u8] = b"user.quire.";

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl Tree {
    /// What an xattr value is bound to (FORMAT §7): with `BOUND`, a file's
    /// file ID or a folder's directory ID.
    pub(crate) fn xattr_owner(&self, node: &Node) -> io::Result<Option<[u8; 16]>> {
        if !self.bound {
            return Ok(None);
        }
        match node.kind {
            Kind::Dir => self.dir_id(node).map(Some),
            _ => self.content.file_id(node).map(Some),
        }
    }

    /// Whether `name` may be an attribute of `node`: `user.` names only,
    /// on files and folders, of at most 170 bytes.
    fn xattr_name_ok(&self, node: &Node, name: &OsStr) -> io::Result<()> {
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
        Ok(())
    }

    fn xattr_host(&self, node: &Node, name: &OsStr) -> io::Result<String> {
        self.xattr_name_ok(node, name)?;
        Ok(records::xattr_host_name(
            &self.keys.xattr_name,
            name.as_bytes(),
        ))
    }

    /// Whether attributes live in sealed attribute files (§7.1).
    pub(crate) fn sealed_xattrs(&self) -> bool {
        self.sealed_xattrs.load(Ordering::Acquire)
    }

    /// The folder of attribute files; made on first use with `create`.
    fn xattr_folder(&self, create: bool) -> io::Result<Option<Handle>> {
        let node = self.root();
        let root = node.handle()?;
        let name = OsStr::new(records::XATTR_FOLDER);
        match root.lookup(name) {
            Ok(h) => Ok(Some(h)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                match root.mkdir_child(name, 0o700) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                root.lookup(name).map(Some)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The owner ID of `node`'s attribute file (a file's ID, a folder's).
    fn sealed_owner(&self, node: &Node) -> io::Result<[u8; 16]> {
        self.xattr_owner(node)?.ok_or_else(eio)
    }

    /// Every attribute of `owner` (none without a file). A file that does
    /// not open (tampered, moved from another owner) is an I/O error.
    pub(crate) fn load_xattrs(&self, owner: &[u8; 16]) -> io::Result<XattrSet> {
        let Some(dir) = self.xattr_folder(false)? else {
            return Ok(XattrSet::new());
        };
        let sealed = match dir.read_child(OsStr::new(&records::xattr_file_name(owner))) {
            Ok(b) => b,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(XattrSet::new()),
            Err(e) => return Err(e),
        };
        records::open_xattr_set(&self.keys.xattr_value, owner, &sealed).map_err(|_| {
            log::error!(
                "the attribute file {} failed authentication (tampered, or moved from another file)",
                records::xattr_file_name(owner)
            );
            eio()
        })
    }

    /// Replaces `owner`'s attribute file (atomically, fsync'd), or removes
    /// it when `set` is empty.
    pub(crate) fn store_xattrs(&self, owner: &[u8; 16], set: &XattrSet) -> io::Result<()> {
        let name = records::xattr_file_name(owner);
        if set.is_empty() {
            self.drop_xattrs(owner);
            return Ok(());
        }
        let dir = self.xattr_folder(true)?.ok_or_else(eio)?;
        let sealed = records::seal_xattr_set(&self.keys.xattr_value, owner, set);
        super::replace_record(&dir, OsStr::new(&name), &sealed, true)
    }

    /// Removes `owner`'s attribute file, if any (its file or folder is gone
    /// for good).
    pub(crate) fn drop_xattrs(&self, owner: &[u8; 16]) {
        if let Ok(Some(dir)) = self.xattr_folder(false) {
            match dir.unlink_child(OsStr::new(&records::xattr_file_name(owner))) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => {
                    log::warn!("an attribute file could not be removed: {e}")
                }
                _ => {}
            }
        }
    }

    /// Merges a sync tool's conflict copies of attribute files (the
    /// attributes of one file changed on two computers while apart) into
    /// the file they copy: every attribute of both, the file's own value
    /// where both have one; the copy then goes. A copy that does not open
    /// is left (and logged). Returns how many were merged.
    pub(crate) fn merge_xattr_copies(&self) -> io::Result<usize> {
        if !self.sealed_xattrs() || self.read_only() {
            return Ok(0);
        }
        let Some(dir) = self.xattr_folder(false)? else {
            return Ok(0);
        };
        let mut n = 0;
        for name in dir.read_names()? {
            let Some(text) = name.to_str() else { continue };
            let owner = crate::format::conflicts::readings(text)
                .into_iter()
                .find_map(|c| parse_owner(&c.original));
            let Some(owner) = owner else { continue };
            if parse_owner(text).is_some() {
                continue; // an attribute file itself
            }
            let theirs = match dir
                .read_child(&name)
                .ok()
                .and_then(|b| records::open_xattr_set(&self.keys.xattr_value, &owner, &b).ok())
            {
                Some(t) => t,
                None => {
                    log::error!("{text} in the attribute folder does not open: left as it is");
                    continue;
                }
            };
            let _g = self.xattr_lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut set = self.load_xattrs(&owner)?;
            for (k, v) in theirs {
                set.entry(k).or_insert(v);
            }
            self.store_xattrs(&owner, &set)?;
            dir.unlink_child(&name)?;
            log::warn!("attributes set on two computers at once were merged ({text})");
            n += 1;
        }
        Ok(n)
    }

    /// Removes attribute files a crash left half-replaced (`.quire-new-*`
    /// at least a minute old) from the folder of attribute files; returns
    /// how many.
    pub(crate) fn tidy_xattrs(&self) -> usize {
        let Ok(Some(dir)) = self.xattr_folder(false) else {
            return 0;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut n = 0;
        for name in dir.read_names().unwrap_or_default() {
            if name.as_bytes().starts_with(super::NEW_PREFIX.as_bytes())
                && dir.stat_child(&name).is_ok_and(|st| now - st.st_mtime > 60)
                && dir.unlink_child(&name).is_ok()
            {
                n += 1;
            }
        }
        n
    }

    /// Whether a regular file of `dir` has the file ID `id` among `host`
    /// (unless `except_host`), the note it is a sync tool's conflict copy
    /// of, and that note's other copies: a copy is a byte copy, header
    /// and file ID included, so they share one attribute file (§7.1).
    /// Unsure (a folder that cannot be read) counts as in use.
    pub(crate) fn id_in_use_near(
        &self,
        dir: &Node,
        host: &OsStr,
        id: &[u8; 16],
        except_host: bool,
    ) -> bool {
        let original = self
            .copy_of(dir, host)
            .map(|c| c.original)
            .unwrap_or_else(|| host.to_owned());
        let Ok(h) = dir.handle() else { return true };
        let Ok(names) = h.read_names() else {
            return true;
        };
        names
            .iter()
            .filter(|n| !(except_host && n.as_os_str() == host))
            .filter(|n| {
                **n == original || self.copy_of(dir, n).is_some_and(|c| c.original == original)
            })
            .any(|n| self.file_id_at(h, n) == Some(*id))
    }

    /// The file ID of the regular file `host` of `dir` (to drop its
    /// attribute file when it goes for good).
    pub(crate) fn file_id_at(&self, dir: &Handle, host: &OsStr) -> Option<[u8; 16]> {
        // No attribute file anywhere (most vaults): nothing to drop, and
        // no header to read on every unlink.
        if !self.sealed_xattrs() || !matches!(self.xattr_folder(false), Ok(Some(_))) {
            return None;
        }
        self.file_id_at_any(dir, host)
    }

    /// The file ID of the regular file `host` of `dir`, if it has one.
    pub(crate) fn file_id_at_any(&self, dir: &Handle, host: &OsStr) -> Option<[u8; 16]> {
        let st = dir.stat_child(host).ok()?;
        if Kind::from_mode(st.st_mode) != Kind::File {
            return None;
        }
        let node = Node::detached(dir.lookup(host).ok()?, st.st_ino);
        self.content.file_id(&node).ok()
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
        if self.sealed_xattrs() {
            self.xattr_name_ok(node, name)?;
            if value.len() > records::MAX_XATTR_VALUE {
                return Err(errno(libc::E2BIG));
            }
            let owner = self.sealed_owner(node)?;
            let _g = self.xattr_lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut set = self.load_xattrs(&owner)?;
            let key = name.as_bytes().to_vec();
            let exists = set.contains_key(&key);
            if flags & libc::XATTR_CREATE != 0 && exists {
                return Err(errno(libc::EEXIST));
            }
            if flags & libc::XATTR_REPLACE != 0 && !exists {
                return Err(errno(libc::ENODATA));
            }
            set.insert(key, zeroize::Zeroizing::new(value.to_vec()));
            let size: usize = set.iter().map(|(n, v)| 5 + n.len() + v.len()).sum();
            if size > records::MAX_XATTR_SET {
                return Err(errno(libc::ENOSPC));
            }
            self.store_xattrs(&owner, &set)?;
            self.content.host_settled(node);
            return Ok(());
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
        if self.sealed_xattrs() {
            match self.xattr_name_ok(node, name) {
                Ok(()) => {}
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP) | Some(libc::EPERM)) =>
                {
                    return Err(errno(libc::ENODATA));
                }
                Err(e) => return Err(e),
            }
            let set = self.load_xattrs(&self.sealed_owner(node)?)?;
            return set
                .get(name.as_bytes())
                .map(|v| v.to_vec())
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
        self.hooks().xattr_names(self, node, &mut out);
        if self.sealed_xattrs() {
            out.extend(self.load_xattrs(&self.sealed_owner(node)?)?.into_keys());
            return Ok(out);
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
        if self.sealed_xattrs() && matches!(node.kind, Kind::File | Kind::Dir) {
            return Ok(usize::from(
                self.load_xattrs(&self.sealed_owner(node)?).is_err(),
            ));
        }
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
        if self.sealed_xattrs() {
            self.xattr_name_ok(node, name)?;
            let owner = self.sealed_owner(node)?;
            let _g = self.xattr_lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut set = self.load_xattrs(&owner)?;
            if set.remove(name.as_bytes()).is_none() {
                return Err(errno(libc::ENODATA));
            }
            self.store_xattrs(&owner, &set)?;
            self.content.host_settled(node);
            return Ok(());
        }
        let host = self.xattr_host(node, name)?;
        node.handle()?.remove_xattr(&host)?;
        self.content.host_settled(node);
        Ok(())
    }
}

/// The owner ID an attribute file's name gives (32 lowercase hex digits).
fn parse_owner(name: &str) -> Option<[u8; 16]> {
    if name.len() != 32
        || !name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&name[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(id)
}
