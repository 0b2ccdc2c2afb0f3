//! A node of an unlocked vault's tree, and its plaintext attributes.

use std::sync::{OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::crypto::AeadKey;
use crate::format::content;
use crate::store::host::Handle;

/// The kind of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Character device.
    CharDev,
    /// Block device.
    BlockDev,
}

impl Kind {
    pub(crate) fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::CharDev,
            libc::S_IFBLK => Kind::BlockDev,
            _ => Kind::File,
        }
    }
}

/// Plaintext attributes of a node, as `stat` should show them.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    /// Host inode number: stable while the node is known, shared by hard links.
    pub ino: u64,
    /// Kind.
    pub kind: Kind,
    /// Plaintext size.
    pub size: u64,
    /// 512-byte blocks used on the host.
    pub blocks: u64,
    /// Access time.
    pub atime: SystemTime,
    /// Modification time.
    pub mtime: SystemTime,
    /// Status change time.
    pub ctime: SystemTime,
    /// Permission bits (including setuid/setgid/sticky).
    pub perm: u16,
    /// Hard link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for device nodes.
    pub rdev: u32,
}

fn time(s: i64, ns: i64) -> SystemTime {
    if s >= 0 {
        UNIX_EPOCH + Duration::new(s as u64, ns as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(s.unsigned_abs()) + Duration::from_nanos(ns as u64)
    }
}

impl Attr {
    pub(crate) fn from_host(st: &libc::stat) -> Attr {
        let kind = Kind::from_mode(st.st_mode);
        let size = match kind {
            // A torn tail reports the readable prefix; reads of the tail fail.
            Kind::File => content::plain_size(st.st_size as u64).unwrap_or_else(|| {
                let body = (st.st_size as u64).saturating_sub(content::HEADER_LEN);
                body / content::CBLOCK * content::BLOCK
            }),
            // A symlink's size is its plaintext target length; the host holds
            // base64url(nonce ‖ target ‖ tag).
            Kind::Symlink => ((st.st_size as u64) * 3 / 4).saturating_sub(28),
            _ => st.st_size as u64,
        };
        Attr {
            ino: st.st_ino,
            kind,
            size,
            blocks: st.st_blocks as u64,
            atime: time(st.st_atime, st.st_atime_nsec),
            mtime: time(st.st_mtime, st.st_mtime_nsec),
            ctime: time(st.st_ctime, st.st_ctime_nsec),
            perm: (st.st_mode & 0o7777) as u16,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev as u32,
        }
    }
}

/// Per-file key material, read once from the file's header.
pub(crate) struct FileKey {
    pub(crate) id: [u8; 16],
    pub(crate) key: AeadKey,
}

/// One node of the tree. Shared by every name (hard link) and open handle of
/// the same host inode, so the content lock covers them all.
pub struct Node {
    pub(crate) handle: Handle,
    pub(crate) kind: Kind,
    pub(crate) dir_id: OnceLock<[u8; 16]>,
    /// Serialises writers against readers of the content blocks.
    pub(crate) io: RwLock<()>,
    pub(crate) file_key: OnceLock<FileKey>,
}

impl Node {
    pub(crate) fn new(handle: Handle, kind: Kind) -> Node {
        Node {
            handle,
            kind,
            dir_id: OnceLock::new(),
            io: RwLock::new(()),
            file_key: OnceLock::new(),
        }
    }

    /// The node's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }
}
