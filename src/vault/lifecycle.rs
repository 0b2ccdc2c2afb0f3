//! Expiry and retention (docs/FORMAT.md §15). A note's dates live in a
//! sealed record `<host name>.ql` next to it and follow its path the way
//! its history does. They are set with `quire expire`/`quire retain`, the
//! xattrs `user.quire.expires` / `user.quire.retain-until`, or a Markdown
//! front matter block (`expires:` / `retain-until:`).
//!
//! Rules (each checked where the change is made, and tested with fixed
//! clocks): a retention date forbids deleting, expiring or purging the note
//! before it, and cannot be shortened or removed while it lasts; an expiry
//! before the retention date is refused. When its expiry passes a note goes
//! to the trash ("expired"), and is purged with the trash's window.
//! Planning is a pure function of (notes, trash, policy, now): [`plan`].

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::dates::{Date, DateError};
use super::node::{Kind, Node};
use super::trash::{Entry, Policy};
use super::tree::{Tree, eio};
use crate::format::audit::Event;
use crate::format::lifecycle::{self as fmt_lc, Dates, RecordError};

/// The xattr that shows and sets a note's expiry.
pub const XATTR_EXPIRES: &str = "user.quire.expires";
/// The xattr that shows and sets a note's retention date.
pub const XATTR_RETAIN: &str = "user.quire.retain-until";

/// A requested change of a note's dates: `None` leaves a date alone,
/// `Some(None)` clears it, `Some(Some(text))` sets it (as the user wrote it).
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// Expiry.
    pub expires: Option<Option<String>>,
    /// Retention.
    pub retain_until: Option<Option<String>>,
}

/// Why a change or a deletion was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The date text did not parse.
    BadDate(DateError),
    /// The note is retained until this date.
    Retained(String),
    /// The expiry would come before the retention date.
    ExpiryBeforeRetention {
        /// Expiry asked for.
        expires: String,
        /// Retention in force.
        retain_until: String,
    },
    /// Dates are for notes (regular files) only.
    NotANote,
    /// The vault predates expiry and retention (no flag 0x20).
    NotSupported,
}

impl Refusal {
    /// The errno a filesystem call reports for it.
    pub fn errno(&self) -> i32 {
        match self {
            Refusal::BadDate(_) | Refusal::NotANote => libc::EINVAL,
            Refusal::NotSupported => libc::EOPNOTSUPP,
            Refusal::Retained(_) | Refusal::ExpiryBeforeRetention { .. } => libc::EPERM,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::BadDate(e) => write!(f, "{e}"),
            Refusal::Retained(d) => write!(
                f,
                "the note is retained until {d}: it cannot be deleted, expired or purged before then, and its retention cannot be shortened"
            ),
            Refusal::ExpiryBeforeRetention {
                expires,
                retain_until,
            } => write!(
                f,
                "an expiry of {expires} comes before the note's retention date {retain_until}; retention wins (choose an expiry on or after {retain_until})"
            ),
            Refusal::NotANote => write!(f, "expiry and retention dates are for notes (files) only"),
            Refusal::NotSupported => write!(
                f,
                "this vault was created by an earlier Quire, before expiry and retention existed; copy its notes into a new vault (`quire init`) to use them"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// A lifecycle operation's failure.
#[derive(Debug)]
pub enum Error {
    /// A rule said no.
    Refused(Refusal),
    /// The filesystem failed.
    Io(io::Error),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Error::Refused(r)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            Error::Refused(r) => io::Error::from_raw_os_error(r.errno()),
        }
    }
}

/// When a stored (canonical) date begins.
pub(crate) fn instant(text: &str) -> Option<SystemTime> {
    // Stored texts are canonical; a day starts at local midnight.
    Date::parse(text, SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.instant())
}

/// The retention date in force at `now`, if any.
pub fn retained(d: &Dates, now: SystemTime) -> Option<&str> {
    d.retain_until
        .as_deref()
        .filter(|t| instant(t).is_some_and(|i| i > now))
}

/// Applies a change to a note's dates under the rules (pure).
pub fn apply_change(old: &Dates, change: &Change, now: SystemTime) -> Result<Dates, Refusal> {
    let canon = |t: &Option<String>| -> Result<Option<String>, Refusal> {
        t.as_deref()
            .map(|s| {
                Date::parse(s, now)
                    .map(|d| d.to_string())
                    .map_err(Refusal::BadDate)
            })
            .transpose()
    };
    let mut new = old.clone();
    if let Some(e) = &change.expires {
        new.expires = canon(e)?;
    }
    if let Some(r) = &change.retain_until {
        new.retain_until = canon(r)?;
    }
    if let Some(until) = retained(old, now) {
        let shortened = match new.retain_until.as_deref() {
            None => true,
            Some(t) => instant(t) < instant(until),
        };
        if shortened {
            return Err(Refusal::Retained(until.to_string()));
        }
    }
    if let (Some(e), Some(r)) = (&new.expires, &new.retain_until)
        && instant(e) < instant(r)
    {
        return Err(Refusal::ExpiryBeforeRetention {
            expires: e.clone(),
            retain_until: r.clone(),
        });
    }
    Ok(new)
}

/// A note with dates, as a scan found it.
#[derive(Debug, Clone)]
pub struct Dated {
    /// Path in the vault.
    pub path: Vec<u8>,
    /// Its dates.
    pub dates: Dates,
}

impl Dated {
    /// When it expires.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.dates.expires.as_deref().and_then(instant)
    }
}

/// What the lifecycle will do at a moment.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Notes whose expiry has passed: to the trash.
    pub expire: Vec<Dated>,
    /// Notes whose expiry has passed but which are retained (kept).
    pub held: Vec<Dated>,
    /// Trash entries past the window: purged.
    pub purge: Vec<Entry>,
    /// Trash entries past the window but retained (kept).
    pub kept: Vec<Entry>,
    /// The next moment something becomes due (for the daemon's timer).
    pub next_due: Option<SystemTime>,
}

/// Plans expiry and purge at `now` (pure: tests give a fixed clock).
pub fn plan(notes: &[Dated], trash: &[Entry], policy: Policy, now: SystemTime) -> Plan {
    let mut p = Plan::default();
    let mut due = |t: SystemTime| {
        if t > now {
            p.next_due = Some(p.next_due.map_or(t, |n: SystemTime| n.min(t)));
        }
    };
    let mut expire = Vec::new();
    let mut held = Vec::new();
    for n in notes {
        let Some(at) = n.expires_at() else { continue };
        if at > now {
            due(at);
        } else if let Some(r) = retained(&n.dates, now) {
            if let Some(i) = instant(r) {
                due(i);
            }
            held.push(n.clone());
        } else {
            expire.push(n.clone());
        }
    }
    let mut purge = Vec::new();
    let mut kept = Vec::new();
    for e in trash {
        let at = e.deleted + policy.keep;
        if at > now {
            due(at);
        } else if let Some(r) = e.retain_until.filter(|r| *r > now) {
            due(r);
            kept.push(e.clone());
        } else {
            purge.push(e.clone());
        }
    }
    expire.sort_by_key(|n| n.expires_at());
    purge.sort_by_key(|e| e.deleted);
    p.expire = expire;
    p.held = held;
    p.purge = purge;
    p.kept = kept;
    p
}

/// The dates of a note that replaces another by a rename: the later
/// retention wins, and an expiry that would come before it is dropped.
pub fn merge(kept: &Dates, moved: &Dates) -> Dates {
    let later = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(x), Some(y)) => Some(if instant(y) > instant(x) { y } else { x }.clone()),
        (x, y) => x.clone().or(y.clone()),
    };
    let retain_until = later(&kept.retain_until, &moved.retain_until);
    let expires = kept.expires.clone().or(moved.expires.clone()).filter(|e| {
        retain_until
            .as_deref()
            .is_none_or(|r| instant(e) >= instant(r))
    });
    Dates {
        expires,
        retain_until,
    }
}

/// Notes that expire within `within` of `now` (not yet expired), soonest first.
pub fn expiring(notes: &[Dated], now: SystemTime, within: Duration) -> Vec<Dated> {
    let mut v: Vec<Dated> = notes
        .iter()
        .filter(|n| n.expires_at().is_some_and(|t| t > now && t <= now + within))
        .cloned()
        .collect();
    v.sort_by_key(|n| n.expires_at());
    v
}

/// Every dated note, soonest first: by expiry, then the notes with only a
/// retention date, by it, then by path (`quire expiring --all`).
pub fn soonest_first(mut v: Vec<Dated>) -> Vec<Dated> {
    v.sort_by(|a, b| {
        let key = |n: &Dated| {
            (
                n.expires_at().is_none(),
                n.expires_at(),
                n.dates.retain_until.as_deref().and_then(instant),
            )
        };
        key(a).cmp(&key(b)).then_with(|| a.path.cmp(&b.path))
    });
    v
}

/// Host name of the lifecycle record of the entry `host`.
pub(crate) fn record_name(host: &OsStr) -> OsString {
    let mut s = host.to_owned();
    s.push(fmt_lc::SUFFIX);
    s
}

/// What applying a plan did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Notes moved to the trash: (host inode of the folder, name), so the
    /// mount can drop them from the kernel's cache at once.
    pub expired: Vec<(u64, OsString)>,
    /// Trash entries purged.
    pub purged: usize,
}

/// Front matter keys, as (expires, retain-until), from the start of a
/// Markdown note: a block between two `---` lines at the very top.
pub fn front_matter(text: &[u8]) -> (Option<String>, Option<String>) {
    let s = String::from_utf8_lossy(&text[..text.len().min(8192)]);
    let mut lines = s.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return (None, None);
    }
    let (mut e, mut r) = (None, None);
    for l in lines {
        let l = l.trim_end();
        if l == "---" || l == "..." {
            return (e, r);
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim().trim_matches(['"', '\'']).to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "expires" => e = Some(v),
                "retain-until" | "retain_until" => r = Some(v),
                _ => {}
            }
        }
    }
    // No closing line: not front matter.
    (None, None)
}

impl Tree {
    /// Whom a lifecycle record belongs to (§15): the folder (or trash
    /// entry) ID and, with `BOUND`, the note's host name.
    pub(crate) fn lc_owner<'a>(&self, dir_id: &'a [u8; 16], host: &'a OsStr) -> fmt_lc::Owner<'a> {
        use std::os::unix::ffi::OsStrExt;
        fmt_lc::Owner {
            dir_id,
            host: self.bound.then_some(host.as_bytes()),
        }
    }

    /// The dates of entry `host` of `dir` (none if it has no record). A
    /// record that fails authentication is logged and reported as EIO.
    pub(crate) fn dates_at(&self, dir: &Node, host: &OsStr) -> io::Result<Dates> {
        let b = match dir.handle()?.read_child(&record_name(host)) {
            Ok(b) => b,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Dates::default()),
            Err(e) => return Err(e),
        };
        let id = self.dir_id(dir)?;
        fmt_lc::open(&self.keys.lifecycle, &self.lc_owner(&id, host), &b).map_err(|e| {
            match e {
                RecordError::UnknownVersion(v) => log::error!(
                    "a lifecycle record in {} has layout version {v}, newer than this Quire",
                    self.describe(dir)
                ),
                _ => log::error!(
                    "a lifecycle record in {} failed authentication",
                    self.describe(dir)
                ),
            }
            eio()
        })
    }

    /// Writes (or, for no dates, removes) the record of `host` in `dir`.
    pub(crate) fn write_dates_at(&self, dir: &Node, host: &OsStr, d: &Dates) -> io::Result<()> {
        let name = record_name(host);
        let h = dir.handle()?;
        if d.is_empty() {
            return match h.unlink_child(&name) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => Err(e),
                _ => Ok(()),
            };
        }
        let id = self.dir_id(dir)?;
        let sealed = fmt_lc::seal(&self.keys.lifecycle, &self.lc_owner(&id, host), d);
        super::tree::replace_record(h, &name, &sealed, true)
    }

    /// The dates of a note.
    pub fn dates(&self, node: &Node) -> io::Result<Dates> {
        let (dir, host) = node.location().ok_or_else(eio)?;
        self.dates_at(&dir, &host)
    }

    /// Changes a note's dates under the rules; records it in the audit log.
    pub fn change_dates(
        &self,
        node: &Node,
        change: &Change,
        now: SystemTime,
    ) -> Result<Dates, Error> {
        self.writable()?;
        if !self.lifecycle {
            return Err(Refusal::NotSupported.into());
        }
        if node.kind != Kind::File {
            return Err(Refusal::NotANote.into());
        }
        let (dir, host) = node.location().ok_or_else(eio)?;
        let old = self.dates_at(&dir, &host)?;
        let new = apply_change(&old, change, now)?;
        if new != old {
            self.write_dates_at(&dir, &host, &new)?;
            let detail = format!(
                "expires {}, retain until {}",
                new.expires.as_deref().unwrap_or("-"),
                new.retain_until.as_deref().unwrap_or("-")
            );
            if let Some(name) = self.plain_name(&dir, &host) {
                self.audit_name(Event::Dates, &dir, OsStr::from_bytes(&name), 0, &detail);
            }
            self.lifecycle_changed();
        }
        Ok(new)
    }

    /// Refuses to remove the entry `host` of `dir` while it is retained.
    /// Returns the entry's dates.
    pub(crate) fn check_not_retained(&self, dir: &Node, host: &OsStr) -> io::Result<Dates> {
        // A damaged record is an error (EIO), so damage cannot be used to
        // delete a retained note.
        let d = self.dates_at(dir, host)?;
        if let Some(until) = retained(&d, SystemTime::now()) {
            log::info!(
                "refused to delete a note in {} retained until {until}",
                self.describe(dir)
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
        node: &Node,
        dir: &Arc<Node>,
        host: &OsStr,
        name: &[u8],
    ) {
        // Known not to start with `---` (its first block was written by
        // this mount): nothing to read.
        if node.front_matter.load(std::sync::atomic::Ordering::Relaxed) == 2 || !self.lifecycle {
            return;
        }
        let lower = name.to_ascii_lowercase();
        if !(lower.ends_with(b".md") || lower.ends_with(b".markdown")) || self.read_only() {
            return;
        }
        let Ok(text) = self.plain_prefix(node, 8192) else {
            return;
        };
        let (e, r) = front_matter(&text);
        if e.is_none() && r.is_none() {
            return;
        }
        let Ok(old) = self.dates_at(dir, host) else {
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
        if let Err(err) = self.change_dates(node, &change, now) {
            match err {
                Error::Refused(r) => log::warn!(
                    "the front matter of a note in {} was not applied: {r}",
                    self.describe(dir)
                ),
                Error::Io(e) => log::error!("front matter dates not saved: {e}"),
            }
        }
    }

    /// Every note with dates, by walking the vault (folders excluded from
    /// history, like `.git`, are skipped).
    pub fn scan_dates(&self) -> io::Result<Vec<Dated>> {
        let mut out = Vec::new();
        // Records exist in few folders: read a folder's names once to know.
        let mut has_records: std::collections::HashMap<u64, bool> = Default::default();
        self.walk_files(&mut |dir, e, p| {
            let any = *has_records.entry(dir.ino).or_insert_with(|| {
                dir.handle()
                    .and_then(|h| h.read_names())
                    .map(|v| {
                        v.iter()
                            .any(|n| n.as_bytes().ends_with(fmt_lc::SUFFIX.as_bytes()))
                    })
                    .unwrap_or(false)
            });
            if !any {
                return;
            }
            if let Ok(d) = self.dates_at(dir, e.host())
                && !d.is_empty()
            {
                out.push(Dated {
                    path: p.to_vec(),
                    dates: d,
                });
            }
        })?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The plan at `now` for this vault.
    pub fn plan_lifecycle(&self, now: SystemTime) -> io::Result<Plan> {
        let notes = self.scan_dates()?;
        let trash = self.trash_entries()?;
        Ok(plan(&notes, &trash, self.trash_policy(), now))
    }

    /// Applies a plan: each note is checked again (its dates may have
    /// changed since planning) and moved to the trash as expired; each
    /// trash entry is purged. `known` maps a host inode number to the node
    /// the mount still holds for it.
    pub fn apply_lifecycle(
        &self,
        p: &Plan,
        now: SystemTime,
        known: &dyn Fn(u64) -> Option<Arc<Node>>,
    ) -> io::Result<Applied> {
        self.writable()?;
        let mut done = Applied::default();
        for n in &p.expire {
            match self.expire_one(&n.path, now, known) {
                Ok(Some(x)) => done.expired.push(x),
                Ok(None) => {}
                Err(e) => log::error!("expiring a note failed: {e}"),
            }
        }
        done.purged = self.purge(&p.purge)?;
        Ok(done)
    }

    fn expire_one(
        &self,
        path: &[u8],
        now: SystemTime,
        known: &dyn Fn(u64) -> Option<Arc<Node>>,
    ) -> io::Result<Option<(u64, OsString)>> {
        let (dir, name) = self.resolve(path)?;
        let hn = self.host_name(&dir, &name)?;
        let host = OsStr::new(hn.host());
        let d = self.dates_at(&dir, host)?;
        let due = d
            .expires
            .as_deref()
            .and_then(instant)
            .is_some_and(|t| t <= now);
        // Retention is judged by the real clock, whatever moment the plan
        // was made for (`quire purge --now`): no clock a caller gives can
        // move a retained note before its date (issue 11.4).
        if !due || retained(&d, now).is_some() || retained(&d, SystemTime::now()).is_some() {
            return Ok(None);
        }
        let st = dir.handle()?.stat_child(host)?;
        if let Some(n) = known(st.st_ino)
            && n.writers.load(std::sync::atomic::Ordering::Acquire) > 0
        {
            // Open for writing: it expires at the next sweep after the save.
            return Ok(None);
        }
        self.remove_file(&dir, &name, hn, &d, known, super::trash::Reason::Expired)?;
        Ok(Some((dir.ino, name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    // 2026-11-25T12:00:00Z
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_608_000)
    }
    fn day(n: i64) -> Duration {
        Duration::from_secs(n.unsigned_abs() * 86_400)
    }
    fn at(t: SystemTime) -> String {
        let s = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        Date::At(s).to_string()
    }
    fn dated(path: &str, expires: Option<SystemTime>, retain: Option<SystemTime>) -> Dated {
        Dated {
            path: path.as_bytes().to_vec(),
            dates: Dates {
                expires: expires.map(at),
                retain_until: retain.map(at),
            },
        }
    }
    fn set(e: Option<&str>, r: Option<&str>) -> Change {
        Change {
            expires: e.map(|s| (!s.is_empty()).then(|| s.to_string())),
            retain_until: r.map(|s| (!s.is_empty()).then(|| s.to_string())),
        }
    }

    #[test]
    fn setting_dates_follows_the_rules() {
        let none = Dates::default();
        // A plain expiry, canonicalized.
        let d = apply_change(&none, &set(Some("2027-03-01T10:00Z"), None), now()).unwrap();
        assert_eq!(d.expires.as_deref(), Some("2027-03-01T10:00:00Z"));
        // Bad dates are refused with the accepted forms.
        let e = apply_change(&none, &set(Some("next tuesday"), None), now()).unwrap_err();
        assert!(matches!(e, Refusal::BadDate(_)));
        assert_eq!(e.errno(), libc::EINVAL);
        // Retention until 2030; an expiry before it is refused, after it is fine.
        let r = apply_change(&none, &set(None, Some("2030-01-01T00:00Z")), now()).unwrap();
        let e = apply_change(&r, &set(Some("2029-12-31T00:00Z"), None), now()).unwrap_err();
        assert!(matches!(e, Refusal::ExpiryBeforeRetention { .. }));
        assert_eq!(e.errno(), libc::EPERM);
        let both = apply_change(&r, &set(Some("2030-01-01T00:00Z"), None), now()).unwrap();
        assert_eq!(both.expires.as_deref(), Some("2030-01-01T00:00:00Z"));
        // Retention cannot be shortened or cleared while it lasts…
        for c in [set(None, Some("2029-01-01T00:00Z")), set(None, Some(""))] {
            let e = apply_change(&r, &c, now()).unwrap_err();
            assert_eq!(e, Refusal::Retained("2030-01-01T00:00:00Z".into()));
        }
        // …but can be extended, and cleared once it has passed.
        assert!(apply_change(&r, &set(None, Some("2031-01-01T00:00Z")), now()).is_ok());
        let later = UNIX_EPOCH + Duration::from_secs(1_900_000_000); // 2030-03-17
        assert_eq!(
            apply_change(&r, &set(None, Some("")), later).unwrap(),
            Dates::default()
        );
        // Clearing an expiry is always allowed.
        assert_eq!(apply_change(&both, &set(Some(""), None), now()).unwrap(), r);
        // A relative span counts from today.
        let d = apply_change(&none, &set(Some("+90d"), None), now()).unwrap();
        assert!(d.expires.unwrap().len() == 10);
    }

    #[test]
    fn plan_with_a_fixed_clock() {
        let t = now();
        let notes = vec![
            dated("a.md", Some(t - day(1)), None),              // due
            dated("b.md", Some(t + day(1)), None),              // tomorrow
            dated("c.md", Some(t - day(3)), Some(t + day(10))), // held by retention
            dated("d.md", None, Some(t + day(400))),            // retention only
            dated("e.md", Some(t), None),                       // due exactly now
        ];
        let entry = |id: &str, ago: i64, retain: Option<SystemTime>| Entry {
            id: id.into(),
            path: format!("{id}.md").into_bytes(),
            deleted: t - day(ago),
            reason: super::super::trash::Reason::Expired,
            size: 1,
            has_content: true,
            retain_until: retain,
            owner: (0, 0, 0o600),
        };
        let trash = vec![
            entry("x", 61, None),
            entry("y", 59, None),
            entry("z", 70, Some(t + day(5))),
        ];
        let p = plan(&notes, &trash, Policy::default(), t);
        let paths = |v: &[Dated]| {
            v.iter()
                .map(|n| String::from_utf8_lossy(&n.path).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(paths(&p.expire), ["a.md", "e.md"]);
        assert_eq!(paths(&p.held), ["c.md"]);
        assert_eq!(
            p.purge.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["x"]
        );
        assert_eq!(
            p.kept.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["z"]
        );
        // The next thing due: y's window ends in one day, b expires in one day.
        assert_eq!(p.next_due, Some(t + day(1)));
        // Two days later b is due too, and y is purged.
        let p2 = plan(&notes, &trash, Policy::default(), t + day(2));
        // Soonest expiry first.
        assert_eq!(paths(&p2.expire), ["a.md", "e.md", "b.md"]);
        assert_eq!(p2.purge.len(), 2);
        // Sixty days after expiring, an expired note's entry is purged: the
        // window runs from when it went to the trash.
        let p3 = plan(&[], &[entry("w", 0, None)], Policy::default(), t + day(60));
        assert_eq!(p3.purge.len(), 1);
        assert!(
            plan(&[], &[entry("w", 0, None)], Policy::default(), t + day(59))
                .purge
                .is_empty()
        );
        // Expiring soon.
        let soon = expiring(&notes, t, day(30));
        assert_eq!(paths(&soon), ["b.md"]);
        assert!(expiring(&notes, t, Duration::from_secs(3600)).is_empty());
    }

    #[test]
    fn front_matter_is_read_only_at_the_top() {
        let fm = b"---\ntitle: x\nexpires: 2027-03-01\nretain-until: \"2026-12-31\"\n---\nbody\n";
        assert_eq!(
            front_matter(fm),
            (Some("2027-03-01".into()), Some("2026-12-31".into()))
        );
        assert_eq!(
            front_matter(b"body\n---\nexpires: 2027-03-01\n---\n"),
            (None, None)
        );
        assert_eq!(front_matter(b"---\nexpires: 2027-03-01\n"), (None, None));
        assert_eq!(
            front_matter(b"---\r\nExpires: +30d\r\n---\r\n"),
            (Some("+30d".into()), None)
        );
    }
}
