//! Moving a vault's user xattrs out of host xattrs into sealed attribute
//! files (issue 18.7, docs/FORMAT.md §7.1), at the first read-write mount
//! of a vault made before `SEALED_XATTRS`: sync tools, tar and zip drop
//! host xattrs, so they were lost as soon as the vault was copied.
//!
//! Crash-safe in three steps: (1) every host attribute is sealed into its
//! owner's attribute file (merged over one an interrupted run left); (2)
//! the flag is added to `quire.conf` (atomically; from then on the files
//! are what counts); (3) the host attributes are removed. A crash before
//! (2) repeats the move; one after it leaves host attributes nothing reads.

use std::ffi::OsStr;
use std::io;
use std::sync::Arc;

use super::node::{Kind, Node};
use super::tree::Tree;
use crate::format::records;

/// What [`move_host_xattrs`] found: the files and folders that had host
/// attributes, and how many attributes moved.
pub(crate) struct Moved {
    nodes: Vec<Node>,
    /// Attributes sealed into attribute files.
    pub attrs: usize,
}

/// Step (1): seals every host attribute of every file and folder (the
/// trash's notes too) into its owner's attribute file.
pub(crate) fn move_host_xattrs(tree: &Tree) -> io::Result<Moved> {
    let mut moved = Moved {
        nodes: Vec::new(),
        attrs: 0,
    };
    let mut stack = vec![(tree.root(), 0u32)];
    while let Some((d, depth)) = stack.pop() {
        move_one(tree, &d, &mut moved)?;
        if depth > 256 {
            continue;
        }
        for e in tree.read_dir(&d)? {
            let Ok((n, _)) = tree.lookup_entry(&d, &e) else {
                continue;
            };
            match e.kind {
                Kind::Dir => stack.push((Arc::new(n), depth + 1)),
                Kind::File => move_one(tree, &n, &mut moved)?,
                _ => {}
            }
        }
    }
    // Notes in the trash keep their file and its attributes.
    let root = tree.root();
    let trash = match root.handle()?.lookup(OsStr::new(super::trash::FOLDER)) {
        Ok(t) => Some(t),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
        Err(e) => return Err(e),
    };
    if let Some(t) = trash {
        for id in t.read_names()? {
            let Ok(entry) = t.lookup(&id) else { continue };
            let c = OsStr::new("c");
            let Ok(st) = entry.stat_child(c) else {
                continue;
            };
            if Kind::from_mode(st.st_mode) != Kind::File {
                continue;
            }
            let n = Node::detached(entry.lookup(c)?, st.st_ino);
            move_one(tree, &n, &mut moved)?;
        }
    }
    Ok(moved)
}

fn move_one(tree: &Tree, node: &Node, moved: &mut Moved) -> io::Result<()> {
    let h = node.handle()?;
    let hosts: Vec<Vec<u8>> = h
        .list_xattr()?
        .into_iter()
        .filter(|n| n.starts_with(records::XATTR_HOST_PREFIX.as_bytes()))
        .collect();
    if hosts.is_empty() {
        return Ok(());
    }
    let Some(owner) = tree.xattr_owner(node)? else {
        return Ok(());
    };
    let mut set = tree.load_xattrs(&owner).unwrap_or_default();
    let mut n = 0;
    for host in &hosts {
        let name = match records::xattr_plain_name(&tree.keys.xattr_name, host) {
            Some(Ok(name)) => name,
            _ => {
                log::error!(
                    "an extended attribute of {} failed authentication: not moved",
                    tree.describe(node)
                );
                continue;
            }
        };
        let Some(sealed) = h.get_xattr(&String::from_utf8_lossy(host))? else {
            continue;
        };
        match records::open_xattr_value(&tree.keys.xattr_value, Some(&owner), &name, &sealed) {
            Ok(v) => {
                set.insert(name, zeroize::Zeroizing::new(v));
                n += 1;
            }
            Err(_) => log::error!(
                "an extended attribute of {} failed authentication: not moved",
                tree.describe(node)
            ),
        }
    }
    tree.store_xattrs(&owner, &set)?;
    moved.attrs += n;
    moved
        .nodes
        .push(Node::detached(h.clone_handle()?, node.ino));
    Ok(())
}

/// Step (3): removes the host attributes step (1) moved.
pub(crate) fn drop_host_xattrs(moved: &Moved) {
    for node in &moved.nodes {
        let Ok(h) = node.handle() else { continue };
        for host in h.list_xattr().unwrap_or_default() {
            if host.starts_with(records::XATTR_HOST_PREFIX.as_bytes())
                && let Err(e) = h.remove_xattr(&String::from_utf8_lossy(&host))
            {
                log::warn!(
                    "a moved host attribute could not be removed ({e}): it is no longer read"
                );
            }
        }
    }
}
