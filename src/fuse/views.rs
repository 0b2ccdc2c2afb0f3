//! The read-only virtual folders at the mount root: `.history/` mirrors the
//! tree, each note shown as a folder of its versions named by local save
//! time (`2026-11-25T14.03.07`), so `ls`, `cat`, `diff` and `grep` work on
//! old versions. It is reachable by name only: the root's listing never
//! shows it, so `grep -r` and backups of the mount do not walk it.
//!
//! Virtual inode numbers have bit 62 set (host inode numbers never reach
//! it in practice); they are never forgotten (a browse creates a few).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fuser::{FileAttr, FileType, INodeNo};
use zeroize::Zeroizing;

use crate::vault::{Kind, Node, Notebook};

/// Name of the history folder at the root.
pub const HISTORY: &str = ".history";
/// Name of the trash folder at the root.
pub const TRASH: &str = ".trash";
const VIRT: u64 = 1 << 62;

/// Whether a FUSE inode number is a virtual one.
pub fn is_virtual(ino: u64) -> bool {
    ino & VIRT != 0
}

#[derive(Clone)]
enum V {
    HistRoot,
    HistDir(Arc<Node>),
    HistFile(Arc<Node>, OsString),
    Version {
        dir: Arc<Node>,
        name: OsString,
        number: usize,
        time: SystemTime,
        size: u64,
    },
    TrashDir(Vec<u8>),
    TrashFile {
        id: String,
        time: SystemTime,
        size: u64,
        /// The deleted note's owner and mode.
        owner: (u32, u32, u16),
    },
}

#[derive(Hash, PartialEq, Eq)]
enum Key {
    HistRoot,
    HistDir(u64),
    HistFile(u64, OsString),
    Version(u64, OsString, usize),
    TrashDir(Vec<u8>),
    TrashFile(String),
}

/// The children of the trash folder `prefix`: sub-folders and entries,
/// the newest entry of a path under its own name, older ones as
/// `name (deleted <time>)`.
fn trash_children(tree: &Notebook, prefix: &[u8]) -> io::Result<Vec<(OsString, V)>> {
    let mut entries = tree.trash_entries()?;
    entries.retain(|e| e.has_content);
    entries.sort_by_key(|e| std::cmp::Reverse(e.deleted));
    let mut out: Vec<(OsString, V)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        let rest: &[u8] = if prefix.is_empty() {
            &e.path
        } else if e.path.len() > prefix.len()
            && e.path.starts_with(prefix)
            && e.path[prefix.len()] == b'/'
        {
            &e.path[prefix.len() + 1..]
        } else {
            continue;
        };
        use std::os::unix::ffi::OsStrExt;
        if let Some(i) = rest.iter().position(|&b| b == b'/') {
            let name = OsStr::from_bytes(&rest[..i]).to_owned();
            if seen.insert(name.clone()) {
                let mut p = prefix.to_vec();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(&rest[..i]);
                out.push((name, V::TrashDir(p)));
            }
            continue;
        }
        let mut name = OsStr::from_bytes(rest).to_owned();
        if !seen.insert(name.clone()) {
            name.push(format!(
                " (deleted {})",
                crate::vault::history::stamp(e.deleted)
            ));
            seen.insert(name.clone());
        }
        out.push((
            name,
            V::TrashFile {
                id: e.id.clone(),
                time: e.deleted,
                size: e.size,
                owner: e.owner,
            },
        ));
    }
    Ok(out)
}

/// One listed entry of a virtual folder.
pub struct VEntry {
    /// Inode number.
    pub ino: u64,
    /// Kind.
    pub kind: FileType,
    /// Name.
    pub name: OsString,
    /// Attributes.
    pub attr: FileAttr,
}

type Listing = (Vec<crate::vault::history::VersionInfo>, Vec<String>);
type Recent = HashMap<(u64, OsString), (std::time::Instant, Arc<Listing>)>;

/// The table of virtual inodes.
#[derive(Default)]
pub struct Views {
    table: Mutex<(Vec<V>, HashMap<Key, usize>)>,
    /// Recent version listings: `ls -l` looks up every entry just listed,
    /// and each would otherwise read the stream again.
    recent: Mutex<Recent>,
}

fn enoent() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOENT)
}

use crate::vault::history::stamps as labels;

impl Views {
    fn intern(&self, key: Key, v: V) -> u64 {
        let mut t = self.table.lock().unwrap();
        if let Some(&i) = t.1.get(&key) {
            t.0[i] = v;
            return VIRT | i as u64;
        }
        let i = t.0.len();
        t.0.push(v);
        t.1.insert(key, i);
        VIRT | i as u64
    }

    fn listing(&self, tree: &Notebook, dir: &Node, file: &OsStr) -> io::Result<Arc<Listing>> {
        let key = (tree.getattr(dir)?.ino, file.to_owned());
        let mut r = self.recent.lock().unwrap();
        if let Some((t, l)) = r.get(&key)
            && t.elapsed() < VTTL
        {
            return Ok(l.clone());
        }
        let versions = tree.versions(dir, file)?;
        let times: Vec<_> = versions.iter().map(|v| v.time).collect();
        let l = Arc::new((versions, labels(&times)));
        r.retain(|_, (t, _)| t.elapsed() < VTTL);
        r.insert(key, (std::time::Instant::now(), l.clone()));
        Ok(l)
    }

    fn get(&self, ino: u64) -> io::Result<V> {
        let t = self.table.lock().unwrap();
        t.0.get((ino & !VIRT) as usize).cloned().ok_or_else(enoent)
    }

    /// The `.trash` folder itself.
    pub fn trash_root(&self, tree: &Notebook, uid: u32, gid: u32) -> io::Result<FileAttr> {
        let v = V::TrashDir(Vec::new());
        let ino = self.intern(Key::TrashDir(Vec::new()), v.clone());
        self.attr_of(tree, ino, &v, uid, gid)
    }

    fn intern_v(&self, v: V) -> u64 {
        let key = match &v {
            V::TrashDir(p) => Key::TrashDir(p.clone()),
            V::TrashFile { id, .. } => Key::TrashFile(id.clone()),
            _ => unreachable!("only trash entries are interned by value"),
        };
        self.intern(key, v)
    }

    /// The `.history` folder itself.
    pub fn history_root(&self, tree: &Notebook, uid: u32, gid: u32) -> io::Result<FileAttr> {
        let ino = self.intern(Key::HistRoot, V::HistRoot);
        self.attr_of(tree, ino, &V::HistRoot, uid, gid)
    }

    fn dir_attr(ino: u64, t: SystemTime, uid: u32, gid: u32) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind: FileType::Directory,
            perm: 0o555,
            nlink: 2,
            uid,
            gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// Attributes of a virtual inode. Each carries the owner and the read
    /// permission of what it shows (issue 11.3): a folder's history its
    /// folder's, a note's versions the note's (a 0600 note's versions are
    /// 0400, its version folder 0500), a trash entry the deleted note's
    /// last owner and mode. The trash's folders are the vault owner's
    /// alone (`uid`, `gid`: the mount root's owner), as their names are
    /// deleted notes' names. The kernel checks them (default_permissions).
    fn attr_of(
        &self,
        tree: &Notebook,
        ino: u64,
        v: &V,
        uid: u32,
        gid: u32,
    ) -> io::Result<FileAttr> {
        let folder = |a: &crate::vault::Attr, t: SystemTime| FileAttr {
            perm: a.perm & 0o555,
            ..Self::dir_attr(ino, t, a.uid, a.gid)
        };
        let file = |time: SystemTime, size: u64, (u, g, perm): (u32, u32, u16)| FileAttr {
            size,
            blocks: size.div_ceil(512),
            kind: FileType::RegularFile,
            perm: perm & 0o444,
            nlink: 1,
            ..Self::dir_attr(ino, time, u, g)
        };
        Ok(match v {
            V::HistRoot => {
                let a = tree.getattr(&tree.root())?;
                folder(&a, a.mtime)
            }
            V::HistDir(d) => {
                let a = tree.getattr(d)?;
                folder(&a, a.mtime)
            }
            V::HistFile(dir, name) => {
                let (_, a) = tree.lookup(dir, name)?;
                // Read bits become read and search bits.
                let r = a.perm & 0o444;
                FileAttr {
                    perm: r | (r >> 2),
                    ..Self::dir_attr(ino, SystemTime::now(), a.uid, a.gid)
                }
            }
            V::TrashDir(_) => FileAttr {
                perm: 0o500,
                ..Self::dir_attr(ino, SystemTime::now(), uid, gid)
            },
            V::Version {
                dir,
                name,
                time,
                size,
                ..
            } => {
                // The note as it is now (a version of a note that is gone
                // is not reachable: its folder in `.history` is gone too).
                let (_, a) = tree.lookup(dir, name)?;
                file(*time, *size, (a.uid, a.gid, a.perm))
            }
            V::TrashFile {
                time, size, owner, ..
            } => file(*time, *size, *owner),
        })
    }

    /// Attributes of a virtual inode.
    pub fn getattr(&self, tree: &Notebook, ino: u64, uid: u32, gid: u32) -> io::Result<FileAttr> {
        let v = self.get(ino)?;
        self.attr_of(tree, ino, &v, uid, gid)
    }

    fn dir_of(&self, tree: &Notebook, v: &V) -> Option<Arc<Node>> {
        match v {
            V::HistRoot => Some(tree.root()),
            V::HistDir(d) => Some(d.clone()),
            _ => None,
        }
    }

    fn child(&self, tree: &Notebook, v: &V, name: &OsStr) -> io::Result<(u64, V)> {
        if let V::TrashDir(prefix) = v {
            let (_, c) = trash_children(tree, prefix)?
                .into_iter()
                .find(|(n, _)| n == name)
                .ok_or_else(enoent)?;
            return Ok((self.intern_v(c.clone()), c));
        }
        if let Some(dir) = self.dir_of(tree, v) {
            let (node, attr) = tree.lookup(&dir, name)?;
            return match attr.kind {
                Kind::Dir if crate::vault::debris::is_excluded_folder(name.as_encoded_bytes()) => {
                    Err(enoent())
                }
                Kind::File if !tree.keeps_history_of(&dir, name) => Err(enoent()),
                Kind::Dir => {
                    let ino = attr.ino;
                    let v = V::HistDir(Arc::new(node));
                    Ok((self.intern(Key::HistDir(ino), v.clone()), v))
                }
                Kind::File => {
                    let v = V::HistFile(dir.clone(), name.to_owned());
                    let key = Key::HistFile(tree.getattr(&dir)?.ino, name.to_owned());
                    Ok((self.intern(key, v.clone()), v))
                }
                _ => Err(enoent()),
            };
        }
        if let V::HistFile(dir, file) = v {
            let l = self.listing(tree, dir, file)?;
            let (versions, labels) = (&l.0, &l.1);
            let i = labels
                .iter()
                .position(|l| OsStr::new(l) == name)
                .ok_or_else(enoent)?;
            let ver = &versions[i];
            let v = V::Version {
                dir: dir.clone(),
                name: file.clone(),
                number: ver.number,
                time: ver.time,
                size: ver.size,
            };
            let key = Key::Version(tree.getattr(dir)?.ino, file.clone(), ver.number);
            return Ok((self.intern(key, v.clone()), v));
        }
        Err(io::Error::from_raw_os_error(libc::ENOTDIR))
    }

    /// Looks `name` up in the virtual folder `parent`.
    pub fn lookup(
        &self,
        tree: &Notebook,
        parent: u64,
        name: &OsStr,
        uid: u32,
        gid: u32,
    ) -> io::Result<FileAttr> {
        let v = self.get(parent)?;
        let (ino, c) = self.child(tree, &v, name)?;
        self.attr_of(tree, ino, &c, uid, gid)
    }

    /// Lists a virtual folder (without `.` and `..`).
    pub fn list(&self, tree: &Notebook, ino: u64, uid: u32, gid: u32) -> io::Result<Vec<VEntry>> {
        let v = self.get(ino)?;
        let mut out = Vec::new();
        if let Some(dir) = self.dir_of(tree, &v) {
            for e in tree.read_dir(&dir)? {
                let shown = match e.kind {
                    Kind::Dir => {
                        !crate::vault::debris::is_excluded_folder(e.name.as_encoded_bytes())
                    }
                    Kind::File => tree.keeps_history_of(&dir, &e.name),
                    _ => false,
                };
                if !shown {
                    continue;
                }
                if let Ok((ino, c)) = self.child(tree, &v, &e.name) {
                    let attr = self.attr_of(tree, ino, &c, uid, gid)?;
                    out.push(VEntry {
                        ino,
                        kind: FileType::Directory,
                        name: e.name,
                        attr,
                    });
                }
            }
            return Ok(out);
        }
        if let V::TrashDir(prefix) = &v {
            for (name, c) in trash_children(tree, prefix)? {
                let ino = self.intern_v(c.clone());
                let attr = self.attr_of(tree, ino, &c, uid, gid)?;
                out.push(VEntry {
                    ino,
                    kind: attr.kind,
                    name,
                    attr,
                });
            }
            return Ok(out);
        }
        if let V::HistFile(dir, file) = &v {
            let l = self.listing(tree, dir, file)?;
            let dir_ino = tree.getattr(dir)?.ino;
            for (ver, l) in l.0.iter().zip(l.1.iter()) {
                let c = V::Version {
                    dir: dir.clone(),
                    name: file.clone(),
                    number: ver.number,
                    time: ver.time,
                    size: ver.size,
                };
                let ino = self.intern(Key::Version(dir_ino, file.clone(), ver.number), c.clone());
                let attr = self.attr_of(tree, ino, &c, uid, gid)?;
                out.push(VEntry {
                    ino,
                    kind: FileType::RegularFile,
                    name: l.into(),
                    attr,
                });
            }
            return Ok(out);
        }
        Err(io::Error::from_raw_os_error(libc::ENOTDIR))
    }

    /// The trash entry a virtual file inode shows, if it is one.
    pub fn trash_entry(&self, ino: u64) -> Option<String> {
        match self.get(ino).ok()? {
            V::TrashFile { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The content of a version inode.
    /// The note and number of a version's inode (for the audit of reads
    /// by other accounts).
    pub fn version_of(&self, ino: u64) -> Option<(Arc<Node>, OsString, usize)> {
        match self.get(ino).ok()? {
            V::Version {
                dir, name, number, ..
            } => Some((dir, name, number)),
            _ => None,
        }
    }

    pub fn content(&self, tree: &Notebook, ino: u64) -> io::Result<Zeroizing<Vec<u8>>> {
        match self.get(ino)? {
            V::Version {
                dir, name, number, ..
            } => tree.version_content(&dir, &name, number),
            V::TrashFile { id, .. } => tree.trash_content(&id),
            _ => Err(io::Error::from_raw_os_error(libc::EISDIR)),
        }
    }
}

/// Attribute lifetime of virtual entries: short, versions come and go.
pub const VTTL: Duration = Duration::from_secs(1);
