//! The inode table: FUSE inode numbers are host inode numbers (the root is
//! swapped with 1, as FUSE requires). A node stays in the table, holding its
//! host handle, until the kernel forgets it, so a host inode number cannot
//! be reused while the kernel still knows it.
//!
//! Each remembered node holds one host descriptor. To stay under the
//! open-file limit, the table also records where each node was last seen
//! (parent and name) and when it was last used, so that under pressure the
//! least recently used entries can be handed back to the kernel
//! ([`Inodes::victims`]), which then forgets them.

use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::vault::Node;

struct Entry {
    node: Arc<Node>,
    lookups: u64,
    parent: u64,
    name: OsString,
    used: u64,
}

pub(crate) struct Inodes {
    root_host: u64,
    map: Mutex<HashMap<u64, Entry>>,
    tick: AtomicU64,
    /// Size above which the pressure thread is woken at once.
    pub(crate) high_water: AtomicU64,
    wake: (Mutex<bool>, Condvar),
}

impl Inodes {
    pub(crate) fn new(root: Arc<Node>, root_host: u64) -> Inodes {
        let mut m = HashMap::new();
        m.insert(
            1,
            Entry {
                node: root,
                lookups: 1,
                parent: 1,
                name: OsString::new(),
                used: u64::MAX,
            },
        );
        Inodes {
            root_host,
            map: Mutex::new(m),
            tick: AtomicU64::new(0),
            high_water: AtomicU64::new(u64::MAX),
            wake: (Mutex::new(false), Condvar::new()),
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

    fn now(&self) -> u64 {
        self.tick.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn get(&self, ino: u64) -> Option<Arc<Node>> {
        let t = self.now();
        let mut m = self.map.lock().unwrap();
        let e = m.get_mut(&ino)?;
        if ino != 1 {
            e.used = t;
        }
        Some(e.node.clone())
    }

    /// Records one more kernel lookup of `node`, seen as `name` in `parent`;
    /// returns the node the table holds for that inode (an existing one wins
    /// over the new handle).
    pub(crate) fn remember(
        &self,
        node: Node,
        host: u64,
        parent: u64,
        name: &std::ffi::OsStr,
    ) -> Arc<Node> {
        let ino = self.fuse_ino(host);
        let t = self.now();
        let mut m = self.map.lock().unwrap();
        let e = match m.entry(ino) {
            std::collections::hash_map::Entry::Occupied(o) => {
                let e = o.into_mut();
                if e.node.is_dead() {
                    // The host reused a deleted file's inode number: this is
                    // another file (regression test: crash.rs found it).
                    e.node = Arc::new(node);
                } else {
                    // Seen again, perhaps by another name: a lazy node follows.
                    e.node.adopt_location(&node);
                }
                e
            }
            std::collections::hash_map::Entry::Vacant(v) => v.insert(Entry {
                node: Arc::new(node),
                lookups: 0,
                parent,
                name: OsString::new(),
                used: t,
            }),
        };
        e.lookups += 1;
        if ino != 1 {
            e.parent = parent;
            e.name = name.to_owned();
            e.used = t;
        }
        let node = e.node.clone();
        if crate::vault::open_handles() as u64 > self.high_water.load(Ordering::Relaxed) {
            drop(m);
            self.wake();
        }
        node
    }

    /// Wakes the pressure thread.
    pub(crate) fn wake(&self) {
        *self.wake.0.lock().unwrap() = true;
        self.wake.1.notify_one();
    }

    /// Waits until woken or `timeout` passes.
    pub(crate) fn wait(&self, timeout: Duration) {
        let g = self.wake.0.lock().unwrap();
        let (mut g, _) = self
            .wake
            .1
            .wait_timeout_while(g, timeout, |woken| !*woken)
            .unwrap();
        *g = false;
    }

    pub(crate) fn add_lookup(&self, ino: u64, parent: u64, name: &std::ffi::OsStr) {
        if let Some(e) = self.map.lock().unwrap().get_mut(&ino) {
            e.lookups += 1;
            e.parent = parent;
            e.name = name.to_owned();
        }
    }

    /// Drops `n` kernel lookups of `ino`; returns the node once the
    /// kernel no longer knows it.
    pub(crate) fn forget(&self, ino: u64, n: u64) -> Option<Arc<Node>> {
        if ino == 1 {
            return None;
        }
        let mut m = self.map.lock().unwrap();
        let e = m.get_mut(&ino)?;
        e.lookups = e.lookups.saturating_sub(n);
        if e.lookups == 0 {
            return m.remove(&ino).map(|e| e.node);
        }
        None
    }

    /// Every entry the kernel holds, by (parent, name) as it last looked it
    /// up: its inode number.
    pub(crate) fn named(&self) -> HashMap<(u64, OsString), u64> {
        let m = self.map.lock().unwrap();
        m.iter()
            .filter(|(ino, e)| **ino != 1 && !e.name.is_empty())
            .map(|(ino, e)| ((e.parent, e.name.clone()), *ino))
            .collect()
    }

    /// The `count` least recently used entries (files before folders), as
    /// (parent, name) for the kernel to drop from its cache.
    pub(crate) fn victims(&self, count: usize) -> Vec<(u64, OsString)> {
        let m = self.map.lock().unwrap();
        let mut v: Vec<(bool, u64, u64, &OsString)> = m
            .iter()
            .filter(|(ino, e)| **ino != 1 && !e.name.is_empty() && e.node.holds_handle())
            .map(|(_, e)| {
                (
                    e.node.kind() == crate::vault::Kind::Dir,
                    e.used,
                    e.parent,
                    &e.name,
                )
            })
            .collect();
        v.sort_unstable_by_key(|x| (x.0, x.1));
        v.into_iter()
            .take(count)
            .map(|(_, _, p, n)| (p, n.clone()))
            .collect()
    }
}
