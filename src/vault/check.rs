//! `quire check`: verifies every name, block, history stream and trash
//! entry of a vault, and reports problems by path (plaintext where the
//! path still decrypts, else the host path).

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::features::Features;
use super::history::stream_name;
use super::node::{Kind, Node};
use super::tree::Tree;
use crate::format::{dirid, history, names};

/// One problem found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problem {
    /// Where (vault path, or host path for undecryptable names).
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// What a check found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Notes and other files verified.
    pub files: u64,
    /// Folders walked.
    pub folders: u64,
    /// Versions verified.
    pub versions: u64,
    /// Trash entries verified.
    pub trash_entries: u64,
    /// Plaintext bytes verified.
    pub bytes: u64,
    /// Problems, in walk order.
    pub problems: Vec<Problem>,
    /// Sync tools' conflict copies (issue 18.4): not damage, but versions
    /// of a note the user has to look at.
    #[serde(default)]
    pub conflicts: Vec<Problem>,
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

impl Features {
    /// Verifies the whole vault; `progress` gets the number of items done.
    pub fn check(&self, tree: &Tree, progress: &mut dyn FnMut(u64)) -> io::Result<Report> {
        let mut r = Report::default();
        self.check_dir(tree, &tree.root(), "", &mut r, progress)?;
        self.check_trash(tree, &mut r)?;
        // The vault's own files beside the tree: each, if present, a
        // regular file no larger than it can be (a FIFO or a 60 GB sparse
        // file planted there is tampering, issue 17.10).
        let root = self.log_path.parent().map(|p| p.to_path_buf());
        if let Some(root) = root {
            use crate::store::safe;
            for (name, max) in [
                (crate::store::LOG, safe::MAX_LOG),
                ("quire.log.1", safe::MAX_LOG),
                (crate::store::UNDO, safe::MAX_JOURNAL),
            ] {
                match safe::open(&root.join(name), max) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => r.problems.push(Problem {
                        path: name.into(),
                        problem: e.to_string(),
                    }),
                }
            }
        }
        // The audit chains, one per device (FORMAT §16).
        match self.events.read_audit(tree) {
            Ok((_, v)) => {
                for c in &v.chains {
                    if let Some(b) = &c.broken {
                        let (path, what) = match c.chain.as_str() {
                            "legacy" => (crate::store::AUDIT.to_string(), "the audit log".into()),
                            hex => (
                                format!("{}/{hex}", crate::store::AUDIT_DIR),
                                format!("device {}'s audit chain", &hex[..7]),
                            ),
                        };
                        r.problems.push(Problem {
                            path,
                            problem: format!("{what} is broken: {b}"),
                        });
                    }
                }
                for f in &v.other_files {
                    r.problems.push(Problem {
                        path: format!("{}/{f}", crate::store::AUDIT_DIR),
                        problem: "is not a device's audit chain (a sync tool's conflict copy, or a stray file): it is not read".into(),
                    });
                }
            }
            Err(e) => r.problems.push(Problem {
                path: crate::store::AUDIT_DIR.into(),
                problem: format!("cannot be read: {e}"),
            }),
        }
        Ok(r)
    }

    /// Number of host entries to verify (for a progress bar's total).
    pub fn check_size(&self, tree: &Tree) -> u64 {
        fn count(p: &std::path::Path) -> u64 {
            let Ok(rd) = std::fs::read_dir(p) else {
                return 0;
            };
            rd.flatten()
                .map(|e| {
                    1 + if e.file_type().is_ok_and(|t| t.is_dir()) {
                        count(&e.path())
                    } else {
                        0
                    }
                })
                .sum()
        }
        count(
            &tree
                .root()
                .handle()
                .map(|h| h.proc_path_buf())
                .unwrap_or_default(),
        )
    }

    fn check_dir(
        &self,
        tree: &Tree,
        dir: &Arc<Node>,
        path: &str,
        r: &mut Report,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<()> {
        r.folders += 1;
        let host_dir = dir.handle()?.host_path();
        let names_here = dir.handle()?.read_names()?;
        for host in names_here {
            progress(r.files + r.folders + r.versions);
            let Some(h) = host.to_str() else { continue };
            if h == dirid::FILE_NAME || h.ends_with(names::SIDECAR_SUFFIX) {
                continue;
            }
            if path.is_empty() && h == super::trash::FOLDER {
                continue;
            }
            if let Some(stem) = h.strip_suffix(history::SUFFIX) {
                let who = tree
                    .plain_name(dir, OsStr::new(stem))
                    .map(|n| join(path, &String::from_utf8_lossy(&n)))
                    .unwrap_or_else(|| format!("{host_dir}/{h}"));
                self.check_stream(tree, dir, OsStr::new(stem), &who, r);
                // A copy of the history alone (issue 18.3): versions saved
                // on another computer, not yet in the note's history.
                if let Some(c) = tree.copy_of(dir, OsStr::new(stem))
                    && dir.handle()?.stat_child(OsStr::new(stem)).is_err()
                    && let Some(orig) = tree.plain_name(dir, &c.original)
                {
                    r.conflicts.push(Problem {
                        path: join(path, &String::from_utf8_lossy(&orig)),
                        problem: format!(
                            "the sync tool ({}) kept another computer's history of this note beside its own; the next read-write mount merges its versions into the note's history",
                            c.conflict.tool.name()
                        ),
                    });
                }
                continue;
            }
            if let Some(stem) = h.strip_suffix(crate::format::lifecycle::SUFFIX) {
                if self
                    .lifecycle
                    .dates_at(tree, dir, OsStr::new(stem))
                    .is_err()
                {
                    let who = tree
                        .plain_name(dir, OsStr::new(stem))
                        .map(|n| join(path, &String::from_utf8_lossy(&n)))
                        .unwrap_or_else(|| format!("{host_dir}/{h}"));
                    r.problems.push(Problem {
                        path: who,
                        problem: "its expiry/retention record failed authentication (tampered, or moved from another note)".into(),
                    });
                }
                continue;
            }
            let copy = tree.copy_of(dir, &host);
            if copy.is_none() && names::classify(h) == names::Entry::Hidden {
                continue;
            }
            let Some(plain) = tree.plain_name(dir, &host) else {
                // Made in the other computer's copy of a folder both
                // created at once (two folder IDs): a conflict, not
                // tampering (issue 18.4).
                if let Some((name, file)) = tree.name_in_other_folder(dir, &host) {
                    r.conflicts.push(Problem {
                        path: join(path, &String::from_utf8_lossy(&name)),
                        problem: format!(
                            "made in this folder on another computer while both computers created the folder; the sync tool kept that computer's folder ID as {file}, so this note is hidden here (nothing is lost: the next read-write mount merges it into the folder)",
                            file = file.to_string_lossy()
                        ),
                    });
                    continue;
                }
                r.problems.push(Problem {
                    path: format!("{host_dir}/{h}"),
                    problem: "the name failed authentication (tampered or foreign)".into(),
                });
                continue;
            };
            let p = join(path, &String::from_utf8_lossy(&plain));
            if let Some(c) = &copy {
                r.conflicts.push(Problem {
                    path: p.clone(),
                    problem: format!(
                        "a conflict copy of {} kept by {:?}{}: keep what you need in the note, then delete the copy",
                        join(path, &String::from_utf8_lossy(&c.plain)),
                        c.conflict.tool,
                        c.conflict
                            .when
                            .as_ref()
                            .map(|w| format!(" on {w}"))
                            .unwrap_or_default()
                    ),
                });
            }
            let st = match dir.handle()?.stat_child(&host) {
                Ok(st) => st,
                Err(e) => {
                    r.problems.push(Problem {
                        path: p,
                        problem: format!("cannot be read: {e}"),
                    });
                    continue;
                }
            };
            match Kind::from_mode(st.st_mode) {
                Kind::Dir => match tree.lookup(dir, OsStr::from_bytes(&plain)) {
                    Ok((n, _)) => {
                        self.check_xattrs(tree, &n, &p, r);
                        self.check_dir(tree, &Arc::new(n), &p, r, progress)?
                    }
                    Err(e) => r.problems.push(Problem {
                        path: p,
                        problem: format!("folder cannot be opened: {e}"),
                    }),
                },
                Kind::File => {
                    r.files += 1;
                    let res = (|| {
                        let (n, _) = tree.lookup(dir, OsStr::from_bytes(&plain))?;
                        self.check_xattrs(tree, &n, &p, r);
                        tree.content.verify_content(&n)
                    })();
                    match res {
                        Ok(b) => r.bytes += b,
                        Err(e) => r.problems.push(Problem {
                            path: p,
                            problem: format!("content does not authenticate ({e})"),
                        }),
                    }
                }
                Kind::Symlink => {
                    r.files += 1;
                    if let Some(problem) = self.symlink_problem(tree, dir, &host) {
                        r.problems.push(Problem { path: p, problem });
                    }
                }
                _ => r.files += 1,
            }
        }
        Ok(())
    }

    /// What is wrong with the symlink `host` of `dir`, if anything (FORMAT
    /// §6, §6.1): its binding record, then its sealed target.
    fn symlink_problem(&self, tree: &Tree, dir: &Node, host: &OsStr) -> Option<String> {
        use super::tree::symlink::Binding;
        let target = match dir.handle().and_then(|h| h.readlink_child(host)) {
            Ok(t) => t,
            Err(e) => return Some(format!("symlink cannot be read: {e}")),
        };
        if tree.bound_symlinks {
            let why = match tree.binding_of(dir, host, &target) {
                Ok(Binding::Holds(_)) => None,
                Ok(Binding::NoRecord) => Some("symlink has no binding record (removed, or the symlink was put there from outside Quire)".to_string()),
                Ok(Binding::BadRecord) => Some("symlink's binding record fails authentication (tampered, or copied from another symlink)".to_string()),
                Ok(Binding::OtherTarget) => Some("symlink's target is not the one its binding record names (replaced, or copied from another symlink)".to_string()),
                Err(e) => Some(format!("symlink's binding record cannot be read: {e}")),
            };
            if why.is_some() {
                return why;
            }
        }
        tree.open_target(&target)
            .err()
            .map(|_| "symlink target does not authenticate (tampered)".to_string())
    }

    fn check_xattrs(&self, tree: &Tree, node: &Node, who: &str, r: &mut Report) {
        match tree.verify_xattrs(node) {
            Ok(0) => {}
            Ok(n) => r.problems.push(Problem {
                path: who.to_string(),
                problem: format!(
                    "{n} extended attribute(s) fail authentication (tampered, or copied from another file)"
                ),
            }),
            Err(e) => r.problems.push(Problem {
                path: who.to_string(),
                problem: format!("extended attributes cannot be read: {e}"),
            }),
        }
    }

    fn check_stream(&self, tree: &Tree, dir: &Node, host: &OsStr, who: &str, r: &mut Report) {
        if let Some(whose) = self.history.stream_misplaced(tree, dir, host) {
            r.problems.push(Problem {
                path: who.to_string(),
                problem: format!(
                    "its history stream belongs to another note, {whose} (moved or swapped on the host)"
                ),
            });
            return;
        }
        match self.history.versions_at(tree, dir, host) {
            Ok(vs) => {
                for v in vs {
                    r.versions += 1;
                    if let Err(e) = self.history.version_content_at(tree, dir, host, v.number) {
                        r.problems.push(Problem {
                            path: who.to_string(),
                            problem: format!("version {} does not authenticate ({e})", v.number),
                        });
                    }
                }
                if let Ok(n) = self.history.stream_tail(tree, dir, host)
                    && n > 0
                {
                    r.problems.push(Problem {
                        path: who.to_string(),
                        problem: format!(
                            "its history stream has {n} bytes past its last record that no interrupted save explains (tampered)"
                        ),
                    });
                }
            }
            Err(e) => r.problems.push(Problem {
                path: who.to_string(),
                problem: format!("history stream does not authenticate ({e})"),
            }),
        }
    }

    fn check_trash(&self, tree: &Tree, r: &mut Report) -> io::Result<()> {
        let root = tree.root();
        let Ok(t) = root.handle()?.lookup(OsStr::new(super::trash::FOLDER)) else {
            return Ok(());
        };
        let entries = self.trash.trash_entries(tree)?;
        for id in t.read_names()? {
            let Some(ids) = id.to_str() else { continue };
            // An entry with a record and something in it, not listed: its
            // record failed. (Empty ones are crash leftovers, tidied away.)
            let has_record = t.lookup(&id).is_ok_and(|e| {
                e.stat_child(OsStr::new("m")).is_ok()
                    && (e.stat_child(OsStr::new("c")).is_ok()
                        || e.stat_child(&stream_name(OsStr::new("c"))).is_ok())
            });
            if ids.len() == 32 && has_record && !entries.iter().any(|e| e.id == ids) {
                r.problems.push(Problem {
                    path: format!(".trash entry {ids}"),
                    problem: "its record is missing or does not authenticate".into(),
                });
            }
        }
        for e in entries {
            r.trash_entries += 1;
            let who = format!(".trash/{}", String::from_utf8_lossy(&e.path));
            if e.has_content
                && let Err(err) = self.trash.verify_trash_entry(tree, &e.id)
            {
                r.problems.push(Problem {
                    path: who.clone(),
                    problem: format!("content does not authenticate ({err})"),
                });
            }
            if let Ok(h) = t.lookup(OsStr::new(&e.id)) {
                let ino = h.stat()?.st_ino;
                let n = Node::new(h, Kind::Dir, ino);
                // A trash entry's streams belong to its ID (FORMAT §12, §13).
                let _ = n.dir_id.set(super::trash::entry_key(&e.id));
                if n.handle()?
                    .stat_child(&stream_name(OsStr::new("c")))
                    .is_ok()
                {
                    self.check_stream(tree, &n, OsStr::new("c"), &who, r);
                }
            }
        }
        Ok(())
    }
}
