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
//! The sweep that applies them is `vault::expiry`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::time::{Duration, SystemTime};

pub mod dates;
pub mod records;

use crate::format::lifecycle::{self as fmt_lc, Dates};
use dates::{Date, DateError};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    // 2026-11-25T12:00:00Z
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_608_000)
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
