//! The lifecycle's sweep (docs/FORMAT.md §15): expired notes go to the
//! trash, trash entries past the window are purged. Planning is a pure
//! function of (notes, trash, policy, now): [`plan`]; applying it is
//! [`Expiry::apply_lifecycle`].

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::vault::lifecycle::records::Lifecycle;
use crate::vault::lifecycle::{Dated, instant, retained};
use crate::vault::node::Node;
use crate::vault::trash::{Entry, Policy, Trash};
use crate::vault::tree::Tree;
use crate::vault::tree::hooks::Reason;

/// The sweep, with the features it works through.
pub struct Expiry {
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) trash: Arc<Trash>,
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

/// What applying a plan did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Notes moved to the trash: (host inode of the folder, name), so the
    /// mount can drop them from the kernel's cache at once.
    pub expired: Vec<(u64, OsString)>,
    /// Trash entries purged.
    pub purged: usize,
}

impl Expiry {
    /// Every note with dates, by walking the vault (folders excluded from
    /// history, like `.git`, are skipped).
    pub fn scan_dates(&self, tree: &Tree) -> io::Result<Vec<Dated>> {
        let mut out = Vec::new();
        // Records exist in few folders: read a folder's names once to know.
        let mut has_records: std::collections::HashMap<u64, bool> = Default::default();
        tree.walk_files(&mut |dir, e, p| {
            let any = *has_records.entry(dir.ino).or_insert_with(|| {
                dir.handle()
                    .and_then(|h| h.read_names())
                    .map(|v| {
                        v.iter().any(|n| {
                            n.as_bytes()
                                .ends_with(crate::format::lifecycle::SUFFIX.as_bytes())
                        })
                    })
                    .unwrap_or(false)
            });
            if !any {
                return;
            }
            if let Ok(d) = self.lifecycle.dates_at(tree, dir, e.host())
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
    pub fn plan_lifecycle(&self, tree: &Tree, now: SystemTime) -> io::Result<Plan> {
        let notes = self.scan_dates(tree)?;
        let trash = self.trash.trash_entries(tree)?;
        Ok(plan(&notes, &trash, self.trash.trash_policy(tree), now))
    }

    /// Applies a plan: each note is checked again (its dates may have
    /// changed since planning) and moved to the trash as expired; each
    /// trash entry is purged. `known` maps a host inode number to the node
    /// the mount still holds for it.
    pub fn apply_lifecycle(
        &self,
        tree: &Tree,
        p: &Plan,
        now: SystemTime,
        known: &dyn Fn(u64) -> Option<Arc<Node>>,
    ) -> io::Result<Applied> {
        tree.writable()?;
        let mut done = Applied::default();
        for n in &p.expire {
            match self.expire_one(tree, &n.path, now, known) {
                Ok(Some(x)) => done.expired.push(x),
                Ok(None) => {}
                Err(e) => log::error!("expiring a note failed: {e}"),
            }
        }
        done.purged = self.trash.purge(tree, &p.purge)?;
        Ok(done)
    }

    fn expire_one(
        &self,
        tree: &Tree,
        path: &[u8],
        now: SystemTime,
        known: &dyn Fn(u64) -> Option<Arc<Node>>,
    ) -> io::Result<Option<(u64, OsString)>> {
        let (dir, name) = tree.resolve(path)?;
        let hn = tree.host_name(&dir, &name)?;
        let host = OsStr::new(hn.host());
        let d = self.lifecycle.dates_at(tree, &dir, host)?;
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
        let _ = d;
        tree.remove_file(&dir, &name, hn, known, Reason::Expired)?;
        Ok(Some((dir.ino, name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::lifecycle::Dates;
    use crate::vault::lifecycle::dates::Date;
    use crate::vault::lifecycle::expiring;
    use std::time::{Duration, UNIX_EPOCH};

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
}
