//! What the core tells features at its commit points: the arguments of
//! [`super::Hooks`], the one interface through which features (history,
//! dates, the trash, the audit log, the search index's events) follow the
//! namespace and content core. The core knows nothing else of them; the
//! features' implementation is `vault::features::Features`.

use std::ffi::OsStr;
use std::sync::Arc;

use crate::vault::node::Node;

/// Why a name is removed (and why a note is in the trash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Deleted by a user or program.
    Deleted = 0,
    /// Its expiry date passed.
    Expired = 1,
    /// History of a path whose note was gone when its folder was removed.
    History = 2,
}

impl Reason {
    /// A word for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Deleted => "deleted",
            Reason::Expired => "expired",
            Reason::History => "history",
        }
    }
}

/// A commit point of a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// An fsync made the content durable.
    Synced,
    /// A descriptor was closed; `save`: its content changed since it was
    /// last recorded.
    Closed {
        /// The close is a save.
        save: bool,
    },
    /// A handle was released; `save`: a change of its own (a truncate
    /// without a write) is not yet recorded.
    Released {
        /// The release is a save.
        save: bool,
    },
}

/// A name being removed (unlink, the lifecycle's expiry, rmdir).
pub struct Removal<'a> {
    /// Its folder.
    pub dir: &'a Arc<Node>,
    /// Its plaintext name.
    pub name: &'a OsStr,
    /// Its host name.
    pub host: &'a OsStr,
    /// The host entry, as found.
    pub st: &'a libc::stat,
    /// The node the kernel still holds for it, if any.
    pub node: Option<&'a Node>,
    /// Why.
    pub reason: Reason,
}

/// A rename (or exchange) of `name` in `dir` to `to_name` in `to`.
pub struct Rename<'a> {
    /// Source folder.
    pub dir: &'a Arc<Node>,
    /// Source name.
    pub name: &'a OsStr,
    /// Source host name.
    pub ah: &'a OsStr,
    /// Target folder.
    pub to: &'a Arc<Node>,
    /// Target name.
    pub to_name: &'a OsStr,
    /// Target host name.
    pub bh: &'a OsStr,
    /// The source's host entry.
    pub src: &'a libc::stat,
    /// The target's host entry, if it existed.
    pub dst: Option<&'a libc::stat>,
    /// `RENAME_EXCHANGE`.
    pub exchange: bool,
    /// Whether each name is a note's (not debris, not under `.git`).
    pub src_note: bool,
    /// See `src_note`.
    pub dst_note: bool,
    /// The moved entry's node, if the kernel holds it.
    pub moved: Option<&'a Arc<Node>>,
    /// The replaced entry's node, if the kernel holds it.
    pub replaced: Option<&'a Arc<Node>>,
}

/// An attribute request the core hands to features first.
pub enum XattrOp<'a> {
    /// getxattr.
    Get,
    /// setxattr with a value and `XATTR_CREATE` / `XATTR_REPLACE` flags.
    Set(&'a [u8], i32),
    /// removexattr.
    Remove,
}
