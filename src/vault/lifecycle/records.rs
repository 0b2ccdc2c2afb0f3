//! A note's dates as records beside it (docs/FORMAT.md §15): reading,
//! writing and changing them under the rules of [`super`], and front
//! matter dates taken from a saved note.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::SystemTime;

use super::dates::Date;
use super::{Change, Error, Refusal, apply_change, front_matter, record_name, retained};
use crate::format::audit::Event;
use crate::format::lifecycle::{self as fmt_lc, Dates, RecordError};
use crate::vault::events::Events;
use crate::vault::node::{Kind, Node};
use crate::vault::tree::Tree;
use crate::vault::util::eio;

/// The dates feature: whether the vault lets notes carry dates (flag 0x20).
pub struct Lifecycle {
    pub(crate) enabled: bool,
    pub(crate) events: Arc<Events>,
}

impl Lifecycle {
    /// Whom a lifecycle record belongs to (§15): the folder (or trash
    /// entry) ID and, with `BOUND`, the note's host name.
    pub(crate) fn lc_owner<'a>(
        &self,
        tree: &Tree,
        dir_id: &'a [u8; 16],
        host: &'a OsStr,
    ) -> fmt_lc::Owner<'a> {
        use std::os::unix::ffi::OsStrExt;
        fmt_lc::Owner {
            dir_id,
            host: tree.bound.then_some(host.as_bytes()),
        }
    }

    /// The dates of entry `host` of `dir` (none if it has no record). A
    /// record that fails authentication is logged and reported as EIO.
    pub(crate) fn dates_at(&self, tree: &Tree, dir: &Node, host: &OsStr) -> io::Result<Dates> {
        let b = match dir.handle()?.read_child(&record_name(host)) {
            Ok(b) => b,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Dates::default()),
            Err(e) => return Err(e),
        };
        let id = tree.dir_id(dir)?;
        let opened = fmt_lc::open(&tree.keys.lifecycle, &self.lc_owner(tree, &id, host), &b);
        // A sync tool's conflict copy carries the original's record as it
        // was copied (§5.5).
        let opened = match opened {
            Err(RecordError::Auth) if tree.bound => tree
                .bound_names(dir, host)
                .iter()
                .skip(1)
                .find_map(|h| {
                    fmt_lc::open(&tree.keys.lifecycle, &self.lc_owner(tree, &id, h), &b).ok()
                })
                .ok_or(RecordError::Auth),
            r => r,
        };
        opened.map_err(|e| {
            match e {
                RecordError::UnknownVersion(v) => log::error!(
                    "a lifecycle record in {} has layout version {v}, newer than this Quire",
                    tree.describe(dir)
                ),
                _ => log::error!(
                    "a lifecycle record in {} failed authentication",
                    tree.describe(dir)
                ),
            }
            eio()
        })
    }

    /// Writes (or, for no dates, removes) the record of `host` in `dir`.
    pub(crate) fn write_dates_at(
        &self,
        tree: &Tree,
        dir: &Node,
        host: &OsStr,
        d: &Dates,
    ) -> io::Result<()> {
        let name = record_name(host);
        let h = dir.handle()?;
        if d.is_empty() {
            return match h.unlink_child(&name) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => Err(e),
                _ => Ok(()),
            };
        }
        let id = tree.dir_id(dir)?;
        let sealed = fmt_lc::seal(&tree.keys.lifecycle, &self.lc_owner(tree, &id, host), d);
        crate::vault::tree::replace_record(h, &name, &sealed, true)
    }

    /// Moves the dates record of `from` (folder ID, host name) in `dir` to
    /// `to`, sealed anew for its new owner (a note moved to the folder's
    /// own ID, issue 18.4). Nothing to do without a record.
    pub(crate) fn move_dates(
        &self,
        tree: &Tree,
        dir: &Node,
        from: (&[u8; 16], &OsStr),
        to: (&[u8; 16], &OsStr),
    ) -> io::Result<()> {
        let h = dir.handle()?;
        let old = record_name(from.1);
        let b = match h.read_child(&old) {
            Ok(b) => b,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => return Err(e),
        };
        let d = fmt_lc::open(
            &tree.keys.lifecycle,
            &self.lc_owner(tree, from.0, from.1),
            &b,
        )
        .map_err(|_| eio())?;
        let sealed = fmt_lc::seal(&tree.keys.lifecycle, &self.lc_owner(tree, to.0, to.1), &d);
        crate::vault::tree::replace_record(h, &record_name(to.1), &sealed, true)?;
        h.unlink_child(&old)
    }

    /// The dates of a note.
    pub fn dates(&self, tree: &Tree, node: &Node) -> io::Result<Dates> {
        let (dir, host) = node.location().ok_or_else(eio)?;
        self.dates_at(tree, &dir, &host)
    }

    /// Changes a note's dates under the rules; records it in the audit log.
    pub fn change_dates(
        &self,
        tree: &Tree,
        node: &Node,
        change: &Change,
        now: SystemTime,
    ) -> Result<Dates, Error> {
        tree.writable()?;
        if !self.enabled {
            return Err(Refusal::NotSupported.into());
        }
        if node.kind != Kind::File {
            return Err(Refusal::NotANote.into());
        }
        let (dir, host) = node.location().ok_or_else(eio)?;
        let old = self.dates_at(tree, &dir, &host)?;
        let new = apply_change(&old, change, now)?;
        if new != old {
            self.write_dates_at(tree, &dir, &host, &new)?;
            let detail = format!(
                "expires {}, retain until {}",
                new.expires.as_deref().unwrap_or("-"),
                new.retain_until.as_deref().unwrap_or("-")
            );
            if let Some(name) = tree.plain_name(&dir, &host) {
                self.events.audit_name(
                    tree,
                    Event::Dates,
                    &dir,
                    OsStr::from_bytes(&name),
                    0,
                    &detail,
                );
            }
            self.events.lifecycle_changed();
        }
        Ok(new)
    }

    /// Refuses to remove the entry `host` of `dir` while it is retained.
    /// Returns the entry's dates.
    pub(crate) fn check_not_retained(
        &self,
        tree: &Tree,
        dir: &Node,
        host: &OsStr,
    ) -> io::Result<Dates> {
        // A damaged record is an error (EIO), so damage cannot be used to
        // delete a retained note.
        let d = self.dates_at(tree, dir, host)?;
        if let Some(until) = retained(&d, SystemTime::now()) {
            log::info!(
                "refused to delete a note in {} retained until {until}",
                tree.describe(dir)
            );
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        Ok(d)
    }

    /// Applies a saved note's front matter dates (Markdown notes only).
    /// Called after a save; a refused or bad date is logged, never an error
    /// for the program that saved.
    /// `name` is the plaintext of `host`, the note's name in `dir`.
    pub(crate) fn apply_front_matter(
        &self,
        tree: &Tree,
        node: &Node,
        dir: &Arc<Node>,
        host: &OsStr,
        name: &[u8],
    ) {
        // Known not to start with `---` (its first block was written by
        // this mount): nothing to read.
        if node.front_matter.load(std::sync::atomic::Ordering::Relaxed) == 2 || !self.enabled {
            return;
        }
        let lower = name.to_ascii_lowercase();
        if !(lower.ends_with(b".md") || lower.ends_with(b".markdown")) || tree.read_only() {
            return;
        }
        let Ok(text) = tree.content.plain_prefix(node, 8192) else {
            return;
        };
        let (e, r) = front_matter(&text);
        if e.is_none() && r.is_none() {
            return;
        }
        let Ok(old) = self.dates_at(tree, dir, host) else {
            return;
        };
        let now = SystemTime::now();
        let same = |new: &Option<String>, cur: &Option<String>| match new {
            None => true,
            Some(t) => Date::parse(t, now).ok().map(|d| d.to_string()) == *cur,
        };
        if same(&e, &old.expires) && same(&r, &old.retain_until) {
            return;
        }
        let change = Change {
            expires: e.map(Some),
            retain_until: r.map(Some),
        };
        if let Err(err) = self.change_dates(tree, node, &change, now) {
            match err {
                Error::Refused(r) => log::warn!(
                    "the front matter of a note in {} was not applied: {r}",
                    tree.describe(dir)
                ),
                Error::Io(e) => log::error!("front matter dates not saved: {e}"),
            }
        }
    }
}
