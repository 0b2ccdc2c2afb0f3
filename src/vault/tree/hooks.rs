//! The one interface through which features (history, dates, the trash,
//! the audit log, the search index's events) follow the namespace and
//! content core: the core calls these at its commit points, and knows
//! nothing else of them. The features' implementation is
//! `vault::features::Features`; a tree opened without features uses
//! [`NoHooks`]. Every method has a default that does nothing, so a core
//! operation's behaviour without features is the plain filesystem's.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::sync::Arc;

use super::Tree;
use crate::store::host::Handle;
use crate::vault::content::OpenFile;
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

/// What features do at the core's commit points.
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

/// No features: a plain encrypted filesystem.
pub struct NoHooks;

impl Hooks for NoHooks {}
