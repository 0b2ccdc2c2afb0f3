//! Changes other programs make to the ciphertext tree while it is mounted
//! (issue 18.5): a sync tool bringing another computer's version of a
//! note renames it over the note's host name, or deletes it. The kernel
//! may still hold the old entry (and the old file's pages); the FUSE layer
//! asks it to forget what no longer matches. A write that still reaches
//! the old file is caught when it is committed (see
//! [`crate::vault::content`]: it is kept as a conflict copy, never lost).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::sync::Arc;

use super::Tree;
use crate::store::watch::Watcher;
use crate::vault::node::{Kind, Node};

/// A name in a folder changed on the host.
pub struct Outside {
    /// The folder.
    pub dir: Arc<Node>,
    /// Its host inode number.
    pub dir_ino: u64,
    /// The plaintext name that changed (or the name a conflict copy is
    /// shown under).
    pub name: OsString,
}

/// Watches every folder of the tree.
pub struct OutsideWatcher {
    w: Watcher,
    /// Most folders watched.
    cap: usize,
    dirs: std::sync::Mutex<HashMap<i32, (Arc<Node>, u64)>>,
    /// Events were lost (the queue overflowed): everything is suspect.
    pub overflowed: std::sync::atomic::AtomicBool,
}

impl Tree {
    /// Starts watching every folder of the tree (not `.git`-like folders'
    /// insides are watched too: the kernel caches them as any other).
    pub fn watch_outside(&self) -> io::Result<OutsideWatcher> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills the struct it is given.
        let limit = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            lim.rlim_cur
        } else {
            1024
        };
        let w = OutsideWatcher {
            cap: (limit / 4).clamp(16, 1 << 20) as usize,
            w: Watcher::new()?,
            dirs: Default::default(),
            overflowed: Default::default(),
        };
        w.add_tree(self, self.root(), false);
        Ok(w)
    }
}

impl OutsideWatcher {
    /// Watches `dir`. `late`: a folder that appeared while mounted; what
    /// this process made in it before its watch existed brings no event,
    /// so the notes of those changes go (see [`crate::store::watch::forget_own`]).
    fn add(&self, dir: &Arc<Node>, late: bool) -> bool {
        // Each watched folder keeps its handle (one descriptor): at most a
        // quarter of the open-file limit goes to them.
        if self.dirs.lock().unwrap_or_else(|e| e.into_inner()).len() >= self.cap {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                log::warn!(
                    "the vault has more folders than can be watched under the open-file limit ({} watched): changes other programs make in the rest show up when the kernel's cache expires (10 s)",
                    self.cap
                )
            });
            return false;
        }
        let Some((h, st)) = dir.handle().and_then(|h| Ok((h, h.stat()?))).ok() else {
            log::warn!("a folder could not be opened to be watched");
            return false;
        };
        match self.w.watch(&h.proc_path_buf()) {
            Ok(wd) => {
                self.dirs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(wd, (dir.clone(), st.st_ino));
                if late && let Ok(names) = h.read_names() {
                    crate::store::watch::forget_own(names.iter().map(|n| n.as_os_str()));
                }
                true
            }
            Err(e) => {
                static ONCE: std::sync::Once = std::sync::Once::new();
                ONCE.call_once(|| {
                    log::warn!(
                        "cannot watch every folder of the vault for changes by other programs ({e}); raise fs.inotify.max_user_watches. Changes a sync tool makes may show late."
                    )
                });
                false
            }
        }
    }

    fn add_tree(&self, t: &Tree, root: Arc<Node>, late: bool) {
        let mut stack = vec![(root, 0u32)];
        while let Some((d, depth)) = stack.pop() {
            if !self.add(&d, late) || depth > 256 {
                continue;
            }
            let Ok(entries) = t.read_dir(&d) else {
                continue;
            };
            for e in entries.into_iter().filter(|e| e.kind == Kind::Dir) {
                if let Ok((n, _)) = t.lookup_entry(&d, &e) {
                    stack.push((Arc::new(n), depth + 1));
                }
            }
        }
    }

    /// Waits up to `timeout_ms` for host events (empty on a timeout).
    pub fn wait(&self, timeout_ms: i32) -> io::Result<Vec<crate::store::watch::Event>> {
        self.w.read(timeout_ms)
    }

    /// The names that changed in `events` (folders that appeared are
    /// watched from now on).
    pub fn translate(&self, t: &Tree, events: Vec<crate::store::watch::Event>) -> Vec<Outside> {
        // Folders removed since: their handles go.
        self.dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|wd, _| self.w.has(*wd));
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for e in events {
            if e.watch < 0 {
                self.overflowed
                    .store(true, std::sync::atomic::Ordering::Release);
                continue;
            }
            let Some((dir, ino)) = self
                .dirs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&e.watch)
                .cloned()
            else {
                continue;
            };
            // A folder that appeared is watched, whoever made it (a new
            // folder of this process's own gets a temporary name first),
            // if it is one the mount shows (not the trash's own folders).
            if e.new_folder && t.plain_name(&dir, &e.name).is_some() {
                match t.node_at(&dir, &e.name) {
                    Ok((n, _)) => self.add_tree(t, Arc::new(n), true),
                    // Gone again already (renamed on, removed): its new
                    // name, if any, brings an event of its own.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => log::warn!(
                        "a new folder could not be watched ({e}): changes other programs make in it show when the kernel's cache expires"
                    ),
                }
            }
            if e.own {
                continue;
            }
            let Some(plain) = t.plain_name(&dir, &e.name) else {
                continue; // a side file (.qh, .ql, …) or a temporary name
            };
            let name = {
                use std::os::unix::ffi::OsStringExt;
                OsString::from_vec(plain)
            };
            if seen.insert((ino, name.clone())) {
                out.push(Outside {
                    dir,
                    dir_ino: ino,
                    name,
                });
            }
        }
        out
    }

    /// The watched folders in which another program changed a name that
    /// `pick` selects (each once).
    pub fn folders_of(
        &self,
        events: &[crate::store::watch::Event],
        pick: impl Fn(&std::ffi::OsStr) -> bool,
    ) -> Vec<Arc<Node>> {
        let dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(u64, Arc<Node>)> = Vec::new();
        for e in events
            .iter()
            .filter(|e| !e.own && e.watch >= 0 && pick(&e.name))
        {
            if let Some((d, ino)) = dirs.get(&e.watch)
                && !out.iter().any(|(i, _)| i == ino)
            {
                out.push((*ino, d.clone()));
            }
        }
        out.into_iter().map(|(_, d)| d).collect()
    }

    /// Watches every folder of the tree again (after lost events: a folder
    /// made meanwhile may be unwatched).
    pub fn rewatch(&self, t: &Tree) {
        self.add_tree(t, t.root(), true);
    }

    /// Folders watched.
    pub fn folders(&self) -> usize {
        self.w.len()
    }
}
