//! The inode table: FUSE inode numbers are host inode numbers (the root is
//! swapped with 1, as FUSE requires). A node stays in the table, holding its
//! host handle, until the kernel forgets it, so a host inode number cannot
//! be reused while the kernel still knows it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::vault::Node;

struct Entry {
    node: Arc<Node>,
    lookups: u64,
}

pub(crate) struct Inodes {
    root_host: u64,
    map: Mutex<HashMap<u64, Entry>>,
}

impl Inodes {
    pub(crate) fn new(root: Arc<Node>, root_host: u64) -> Inodes {
        let mut m = HashMap::new();
        m.insert(
            1,
            Entry {
                node: root,
                lookups: 1,
            },
        );
        Inodes {
            root_host,
            map: Mutex::new(m),
        }
    }

    /// FUSE inode number of a host inode number.
    pub(crate) fn fuse_ino(&self, host: u64) -> u64 {
        if host == self.root_host {
            1
        } else if host == 1 {
            self.root_host
        } else {
            host
        }
    }

    pub(crate) fn get(&self, ino: u64) -> Option<Arc<Node>> {
        self.map.lock().unwrap().get(&ino).map(|e| e.node.clone())
    }

    /// Records one more kernel lookup of `node`; returns the node the table
    /// holds for that inode (an existing one wins over the new handle).
    pub(crate) fn remember(&self, node: Node, host: u64) -> Arc<Node> {
        let ino = self.fuse_ino(host);
        let mut m = self.map.lock().unwrap();
        let e = m.entry(ino).or_insert_with(|| Entry {
            node: Arc::new(node),
            lookups: 0,
        });
        e.lookups += 1;
        e.node.clone()
    }

    pub(crate) fn add_lookup(&self, ino: u64) {
        if let Some(e) = self.map.lock().unwrap().get_mut(&ino) {
            e.lookups += 1;
        }
    }

    pub(crate) fn forget(&self, ino: u64, n: u64) {
        if ino == 1 {
            return;
        }
        let mut m = self.map.lock().unwrap();
        if let Some(e) = m.get_mut(&ino) {
            e.lookups = e.lookups.saturating_sub(n);
            if e.lookups == 0 {
                m.remove(&ino);
            }
        }
    }
}
