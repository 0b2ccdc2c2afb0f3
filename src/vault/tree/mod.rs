//! The namespace of an unlocked vault: lookups, directory listings, creating,
//! linking, renaming and removing entries, with names encrypted per
//! directory (docs/FORMAT.md §5).
//!
//! Every operation takes and returns [`Node`]s; plaintext names go in, host
//! names never come out. Failed authentication is logged with the host path
//! (ciphertext only) and reported as `EIO`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

pub mod conflicts;
mod create;
pub mod hooks;
mod io_ops;
pub mod outside;
mod paths;
mod remove;
pub mod rename;
pub mod symlink;
pub mod xattr;

use super::content::{self, Content};
use super::journal::Journal;
use super::node::{Attr, Kind, Node};
use crate::crypto::{SubKeys, random};
use crate::format::names;
use crate::store::host::{Handle, Time};
use crate::vault::content::OpenFile;
use hooks::{Commit, Removal, Rename, XattrOp};
use std::collections::HashSet;
use std::fs::File;

pub(crate) use super::util::{eio, errno, hex, unhex};

/// One visible entry of a directory listing.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// Plaintext name.
    pub name: OsString,
    /// Host inode number.
    pub ino: u64,
    /// Kind.
    pub kind: Kind,
    /// Host name, so a later lookup needs no re-encryption.
    host: OsString,
}

impl DirEntry {
    /// The entry's host name.
    pub(crate) fn host(&self) -> &OsStr {
        &self.host
    }
}

/// Who a new entry belongs to: set when the daemon runs as root on behalf of
/// another user (`allow_other`), as a local filesystem would.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    /// User.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Prefix of a new file being given its header (a hidden name, FORMAT §1).
pub(crate) const NEW_PREFIX: &str = ".quire-new-";

/// What features do at the core's commit points. Every method has a
/// default that does nothing, so a core operation's behaviour without
/// features is the plain filesystem's.
#[allow(unused_variables)]
pub trait Hooks: Send + Sync {
    /// Before the first change to `node` since its last commit, while its
    /// content (readable through `file`) is still intact.
    fn first_change(&self, t: &Tree, node: &Node, file: &File) {}

    /// A commit point of `of`'s content.
    fn committed(&self, t: &Tree, of: &OpenFile, c: Commit) {}

    /// A regular file (fresh: not one that existed) or a folder was made.
    fn created(&self, t: &Tree, dir: &Arc<Node>, name: &OsStr, host: &OsStr, folder: bool) {}

    /// Whether the entry `host` of `dir` may lose its content (unlink,
    /// exchange): `EPERM` while it is retained.
    fn may_remove(&self, t: &Tree, dir: &Arc<Node>, host: &OsStr) -> io::Result<()> {
        Ok(())
    }

    /// Offered a non-folder name being removed: `true` if a feature took
    /// its host file (the trash moved it away); else the core deletes it.
    fn take(&self, t: &Tree, r: &Removal) -> io::Result<bool> {
        Ok(false)
    }

    /// A name was removed (`taken`: by [`Hooks::take`]).
    fn removed(&self, t: &Tree, r: &Removal, taken: bool) {}

    /// A host name in a folder being emptied that the core does not know
    /// (`stem_present`: the name it would sit beside is there): a feature's
    /// own file is removed (`Some(Ok)`), keeps the folder (`Some(Err)`),
    /// or is unknown to every feature (`None`: the folder stays non-empty).
    fn leftover(
        &self,
        t: &Tree,
        dir: &Handle,
        node: Option<&Arc<Node>>,
        name: &OsStr,
        present: &HashSet<&OsStr>,
    ) -> Option<io::Result<()>> {
        None
    }

    /// Before a rename changes anything (content is still where it was).
    fn before_rename(&self, t: &Tree, r: &Rename) {}

    /// After a rename.
    fn renamed(&self, t: &Tree, r: &Rename) {}

    /// An attribute a feature answers itself: `None` when no feature owns
    /// `name`. `Get` returns its value.
    fn xattr(
        &self,
        t: &Tree,
        node: &Node,
        name: &OsStr,
        op: XattrOp,
    ) -> Option<io::Result<Option<Vec<u8>>>> {
        None
    }

    /// Names of the attributes features answer for `node`.
    fn xattr_names(&self, t: &Tree, node: &Node, out: &mut Vec<Vec<u8>>) {}
}

/// No feature follows the core: a tree re-keying writes into (issue 20.1)
/// makes no version, trash entry or audit record of its own.
pub(crate) struct NoHooks;

impl Hooks for NoHooks {}

/// The decrypted view of the ciphertext tree: the namespace, its content
/// engine and the hooks features follow it by. It holds no feature's state.
pub struct Tree {
    pub(crate) keys: Arc<SubKeys>,
    root: Arc<Node>,
    chown_new: bool,
    read_only: bool,
    /// File content: blocks, holes, the block MAC, the crash journal.
    pub(crate) content: Content,
    /// Feature flag 0x100: sealed records bound to their note (§2.1).
    pub(crate) bound: bool,
    /// Feature flag 0x400: symlink names carry binding records (§6.1).
    pub(crate) bound_symlinks: bool,
    /// Feature flag 0x800 (§6.2): targets up to 4095 bytes.
    pub(crate) long_symlinks: bool,
    /// Feature flag 0x1000 (§7.1): user xattrs in sealed attribute files.
    /// Set at a read-write mount once a vault's host xattrs are moved.
    pub(crate) sealed_xattrs: std::sync::atomic::AtomicBool,
    /// One read-modify-write of an attribute file at a time.
    pub(crate) xattr_lock: std::sync::Mutex<()>,
    /// What features do at commit points.
    hooks: Arc<dyn Hooks>,
}

/// The namespace's format flags (docs/FORMAT.md §2.1).
pub(crate) struct Setup {
    pub(crate) read_only: bool,
    /// Feature flag 0x40: files may have holes (docs/FORMAT.md §4).
    pub(crate) sparse: bool,
    /// Feature flag 0x100: sealed records bound to their note.
    pub(crate) bound: bool,
    /// Feature flag 0x200: content headers carry the block MAC.
    pub(crate) block_mac: bool,
    /// Feature flag 0x400: symlink binding records.
    pub(crate) bound_symlinks: bool,
    /// Feature flag 0x800 (§6.2): targets up to 4095 bytes.
    pub(crate) long_symlinks: bool,
    /// Feature flag 0x1000 (§7.1): sealed attribute files.
    pub(crate) sealed_xattrs: bool,
}

impl Tree {
    pub(crate) fn new(
        keys: Arc<SubKeys>,
        root: Handle,
        journal: Arc<Journal>,
        s: Setup,
        hooks: Arc<dyn Hooks>,
    ) -> io::Result<Tree> {
        let ino = root.stat()?.st_ino;
        let root = Arc::new(Node::new(root, Kind::Dir, ino));
        let content = Content::new(
            keys.clone(),
            journal,
            content::Flags {
                read_only: s.read_only,
                bound: s.bound,
                sparse: s.sparse,
                block_mac: s.block_mac,
            },
        );
        let t = Tree {
            root,
            // SAFETY: geteuid has no preconditions.
            chown_new: unsafe { libc::geteuid() } == 0,
            read_only: s.read_only,
            content,
            keys,
            bound: s.bound,
            bound_symlinks: s.bound_symlinks,
            long_symlinks: s.long_symlinks,
            sealed_xattrs: s.sealed_xattrs.into(),
            xattr_lock: Default::default(),
            hooks,
        };
        t.root.dir_id()?;
        Ok(t)
    }

    /// What features do at commit points.
    pub(crate) fn hooks(&self) -> &dyn Hooks {
        &*self.hooks
    }

    /// The root directory.
    pub fn root(&self) -> Arc<Node> {
        self.root.clone()
    }

    /// Whether the tree was opened read-only.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    pub(crate) fn writable_check(&self) -> io::Result<()> {
        self.writable()
    }

    pub(crate) fn writable(&self) -> io::Result<()> {
        if self.read_only {
            Err(errno(libc::EROFS))
        } else {
            Ok(())
        }
    }

    /// A host path for log lines: the ciphertext path, never a plaintext name.
    pub(crate) fn describe(&self, node: &Node) -> String {
        node.describe()
    }

    pub(crate) fn dir_id(&self, dir: &Node) -> io::Result<[u8; 16]> {
        dir.dir_id()
    }

    pub(crate) fn host_name(&self, dir: &Node, name: &OsStr) -> io::Result<names::HostName> {
        let b = name.as_bytes();
        if b.len() > names::MAX_PLAIN {
            return Err(errno(libc::ENAMETOOLONG));
        }
        if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
            return Err(errno(libc::EINVAL));
        }
        // A sync tool's conflict copy is found by the name it is shown
        // under (§5.5).
        if let Some(h) = self.copy_named(dir, b)
            && let Ok(h) = h.into_string()
        {
            return Ok(names::HostName::Copy(h));
        }
        let id = self.dir_id(dir)?;
        Ok(names::encode(&self.keys.names.encrypt(&id, b)))
    }

    /// The host name for a new entry `name` in `dir` (long-name sidecar
    /// written).
    pub(crate) fn host_name_for(&self, dir: &Node, name: &OsStr) -> io::Result<String> {
        let hn = self.host_name(dir, name)?;
        self.write_sidecar(dir, &hn)?;
        Ok(hn.host().to_string())
    }

    /// The host name `name` has in `dir`.
    pub(crate) fn host_name_of(&self, dir: &Node, name: &OsStr) -> io::Result<OsString> {
        Ok(OsString::from(self.host_name(dir, name)?.host()))
    }

    /// Writes the sidecar of a long name (idempotent).
    pub(crate) fn write_sidecar(&self, dir: &Node, hn: &names::HostName) -> io::Result<()> {
        if let names::HostName::Long { sidecar, full, .. } = hn {
            match dir
                .handle()?
                .create_child_with(OsStr::new(sidecar), full.as_bytes(), 0o600)
            {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub(crate) fn remove_sidecar(&self, dir: &Node, hn: &names::HostName) {
        if let names::HostName::Long { sidecar, .. } = hn
            && let Ok(h) = dir.handle()
        {
            let _ = h.unlink_child(OsStr::new(sidecar));
        }
    }

    /// Looks up `name` in `dir`.
    pub fn lookup(&self, dir: &Arc<Node>, name: &OsStr) -> io::Result<(Node, Attr)> {
        let hn = self.host_name(dir, name)?;
        self.node_at(dir, OsStr::new(hn.host()))
    }

    /// A node for the entry `host` of `dir`: folders get their handle now,
    /// everything else lazily (see [`Node`]).
    pub(crate) fn node_at(&self, dir: &Arc<Node>, host: &OsStr) -> io::Result<(Node, Attr)> {
        let st = dir.handle()?.stat_child(host)?;
        let kind = Kind::from_mode(st.st_mode);
        let node = if kind == Kind::Dir {
            let h = dir.handle()?.lookup(host)?;
            let st = h.stat()?;
            let n = Node::new(h, kind, st.st_ino);
            n.relocate(dir.clone(), host.to_owned());
            return Ok((n, Attr::from_host(&st, self.content.layout)));
        } else {
            Node::lazy(dir.clone(), host.to_owned(), kind, st.st_ino)
        };
        if kind == Kind::Symlink && self.bound_symlinks {
            // Checked by name here, where the name is known: a later
            // readlink has only the inode (FORMAT §6.1).
            *node.link_ok.lock().unwrap_or_else(|e| e.into_inner()) =
                self.verify_binding(dir, host);
        }
        let mut a = Attr::from_host(&st, self.content.layout);
        long_size(&mut a, &st, || dir.handle()?.readlink_child(host));
        Ok((node, a))
    }

    /// Current attributes of a node.
    pub fn getattr(&self, node: &Node) -> io::Result<Attr> {
        let st = node.handle()?.stat()?;
        let mut a = Attr::from_host(&st, self.content.layout);
        long_size(&mut a, &st, || node.handle()?.readlink());
        Ok(a)
    }

    /// Lists a directory's visible entries. Entries whose names fail to
    /// authenticate are logged and skipped.
    pub fn read_dir(&self, dir: &Node) -> io::Result<Vec<DirEntry>> {
        let id = self.dir_id(dir)?;
        let mut out = Vec::new();
        for e in dir.handle()?.read_dir()? {
            let e = e?;
            let host = e.file_name();
            let Some(host) = host.to_str() else { continue };
            let encoded = match names::classify(host) {
                names::Entry::Hidden => {
                    if let Some(c) = self.copy_entry(dir, &e) {
                        out.push(c);
                    }
                    continue;
                }
                names::Entry::Direct(s) => s.to_string(),
                names::Entry::Long(h) => {
                    let side = dir.handle()?.read_child(OsStr::new(&names::sidecar_of(h)));
                    match side {
                        Ok(b) if names::sidecar_matches(h, &String::from_utf8_lossy(&b)) => {
                            String::from_utf8_lossy(&b).into_owned()
                        }
                        _ => {
                            log::error!(
                                "long name {host} in {} has a missing or wrong sidecar",
                                self.describe(dir)
                            );
                            continue;
                        }
                    }
                }
            };
            let plain = names::decode(&encoded).and_then(|s| self.keys.names.decrypt(&id, &s).ok());
            let Some(plain) =
                plain.filter(|p| !p.is_empty() && !p.contains(&b'/') && !p.contains(&0))
            else {
                // Not an encrypted name: a sync tool's conflict copy
                // (Nextcloud's, Dropbox's and OneDrive's have no dot)?
                if let Some(c) = self.copy_entry(dir, &e) {
                    out.push(c);
                    continue;
                }
                if let Some((name, file)) = self.name_in_other_folder(dir, OsStr::new(host)) {
                    log::warn!(
                        "'{}' in {} was made on another computer while both created this folder (its folder ID is kept as {}): hidden, not lost",
                        String::from_utf8_lossy(&name),
                        self.describe(dir),
                        file.to_string_lossy()
                    );
                    continue;
                }
                log::error!(
                    "name {host} in {} failed authentication; entry hidden",
                    self.describe(dir)
                );
                continue;
            };
            let ft = e.file_type()?;
            use std::os::unix::fs::{DirEntryExt, FileTypeExt};
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_symlink() {
                Kind::Symlink
            } else if ft.is_fifo() {
                Kind::Fifo
            } else if ft.is_socket() {
                Kind::Socket
            } else if ft.is_char_device() {
                Kind::CharDev
            } else if ft.is_block_device() {
                Kind::BlockDev
            } else {
                Kind::File
            };
            out.push(DirEntry {
                name: OsStr::from_bytes(&plain).to_owned(),
                ino: e.ino(),
                kind,
                host: host.into(),
            });
        }
        Ok(out)
    }

    /// The listing entry of a sync tool's conflict copy of a note, if the
    /// host entry `e` is one (§5.5). Only regular files are shown: a
    /// copied folder would share its folder ID with the original.
    fn copy_entry(&self, dir: &Node, e: &std::fs::DirEntry) -> Option<DirEntry> {
        use std::os::unix::fs::DirEntryExt;
        let host = e.file_name();
        let c = self.copy_of(dir, &host)?;
        if !e.file_type().ok()?.is_file() {
            log::warn!(
                "{} in {} looks like a sync tool's conflict copy of '{}' but is not a file: not shown",
                host.to_string_lossy(),
                self.describe(dir),
                String::from_utf8_lossy(&c.plain)
            );
            return None;
        }
        Some(DirEntry {
            name: OsStr::from_bytes(&c.shown()).to_owned(),
            ino: e.ino(),
            kind: Kind::File,
            host,
        })
    }

    /// Looks up an entry of a listing of `dir` (readdirplus).
    pub fn lookup_entry(&self, dir: &Arc<Node>, e: &DirEntry) -> io::Result<(Node, Attr)> {
        self.node_at(dir, &e.host)
    }

    pub(super) fn finish_new(
        &self,
        dir: &Arc<Node>,
        host: &str,
        owner: Option<Owner>,
    ) -> io::Result<(Node, Attr)> {
        let (node, attr) = self.node_at(dir, OsStr::new(host))?;
        // As root (allow_other), new entries belong to the caller, as on a
        // local disk; a setgid parent's group is kept.
        if self.chown_new
            && let Some(o) = owner
            && (attr.uid != o.uid || attr.gid != o.gid)
        {
            let parent_setgid = dir.handle()?.stat()?.st_mode & libc::S_ISGID != 0;
            let gid = if parent_setgid { u32::MAX } else { o.gid };
            if attr.uid != o.uid || (gid != u32::MAX && attr.gid != gid) {
                node.handle()?.chown(o.uid, gid)?;
                let attr = self.getattr(&node)?;
                return Ok((node, attr));
            }
        }
        Ok((node, attr))
    }

    /// Changes permission bits.
    pub fn chmod(&self, node: &Node, mode: u32) -> io::Result<()> {
        self.writable()?;
        if node.kind == Kind::Symlink {
            return Err(errno(libc::EOPNOTSUPP));
        }
        node.handle()?.chmod(mode & 0o7777)?;
        self.content.host_settled(node);
        Ok(())
    }

    /// Changes owner and/or group (`None` leaves one unchanged).
    pub fn chown(&self, node: &Node, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        self.writable()?;
        node.handle()?
            .chown(uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX))?;
        self.content.host_settled(node);
        Ok(())
    }

    /// Sets access and modification times.
    pub fn utimens(&self, node: &Node, atime: Time, mtime: Time) -> io::Result<()> {
        self.writable()?;
        node.handle()?
            .utimens(atime, mtime, node.kind == Kind::Symlink)?;
        self.content.host_settled(node);
        Ok(())
    }

    /// Host filesystem usage, as `statfs` shows it.
    pub fn statfs(&self) -> io::Result<libc::statvfs> {
        self.root.handle()?.statvfs()
    }

    /// fsyncs a directory.
    pub fn fsync_dir(&self, dir: &Node) -> io::Result<()> {
        dir.handle()?.fsync(false)
    }
}

/// Replaces the small record `name` in the folder `h` with `bytes`: written
/// under a random `.quire-new-<hex>` name (`O_EXCL`, through no symlink),
/// fsync'd if `sync`, then renamed over `name`. The one way Quire rewrites
/// a record beside a note (binding records, dates, trash settings): a
/// crash leaves at most a `.quire-new-*` file, which folder removal and
/// the trash's tidying clear, and nothing planted at a temporary name is
/// ever written through (issue 17.3).
pub(crate) fn replace_record(h: &Handle, name: &OsStr, bytes: &[u8], sync: bool) -> io::Result<()> {
    let tmp = std::ffi::OsString::from(format!("{NEW_PREFIX}{}", hex(&random::bytes::<8>())));
    let written = h
        .open_child(&tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, bytes)?;
            if sync { f.sync_all() } else { Ok(()) }
        })
        .and_then(|()| h.rename_child(&tmp, h, name, 0));
    if written.is_err() {
        let _ = h.unlink_child(&tmp);
    }
    written
}

/// A long symlink's size (§6.2) is the length its host target text names
/// (the host symlink's own size says nothing of it).
fn long_size(a: &mut Attr, st: &libc::stat, target: impl FnOnce() -> io::Result<Vec<u8>>) {
    if a.kind == Kind::Symlink
        && st.st_size as usize == crate::format::records::LONG_HOST_LEN
        && let Ok(t) = target()
        && let Some((_, len)) = crate::format::records::parse_long_host_target(&t)
    {
        a.size = len as u64;
    }
}

/// A node about to lose a name while another link or an open file still
/// reaches it gets its handle now (see [`Node`]).
pub(crate) fn keep_reachable(node: Option<&Node>, links: u64) -> io::Result<()> {
    match node {
        Some(n) if links > 1 || n.is_open() => n.pin(),
        _ => Ok(()),
    }
}
