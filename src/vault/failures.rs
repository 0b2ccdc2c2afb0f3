//! Failed unlocks (issue 20.4) and replacing the recovery key (20.5).
//!
//! A wrong password or recovery key is counted in this device's folder
//! (`unlock.failures`, docs/FORMAT.md §1): nothing can be sealed without
//! the key. The next successful unlock tells the user, writes one audit
//! record ("3 failed attempts since …") and removes the file.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Error, LockedVault, UnlockedVault, io_err, recovery};
use crate::format::audit::Event;
use crate::store::atomic;

/// The file's name in this device's folder.
pub const FILE: &str = "unlock.failures";
const MAGIC: &str = "QUIRE-FAILED-UNLOCKS 1";

/// Attempts counted since the last successful unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    pub passwords: u64,
    pub recovery_keys: u64,
    /// First and last attempt, ns since the epoch.
    pub first_ns: i64,
    pub last_ns: i64,
}

impl Failures {
    fn parse(text: &str) -> Option<Failures> {
        let mut l = text.lines();
        if l.next()? != MAGIC {
            return None;
        }
        let v: Vec<i64> = l
            .next()?
            .split(' ')
            .map(|w| w.parse().ok())
            .collect::<Option<_>>()?;
        let [p, r, first, last] = v[..] else {
            return None;
        };
        Some(Failures {
            passwords: u64::try_from(p).ok()?,
            recovery_keys: u64::try_from(r).ok()?,
            first_ns: first,
            last_ns: last,
        })
    }

    fn encode(&self) -> String {
        format!(
            "{MAGIC}\n{} {} {} {}\n",
            self.passwords, self.recovery_keys, self.first_ns, self.last_ns
        )
    }

    /// "3 failed attempts to unlock (2 passwords, 1 recovery key) on this
    /// computer since FIRST, the last at LAST" (UTC times).
    pub fn describe(&self) -> String {
        let n = self.passwords + self.recovery_keys;
        format!(
            "{n} failed attempt{} to unlock the vault on this computer ({} wrong password{}, {} wrong recovery key{}) since {}, the last at {}",
            if n == 1 { "" } else { "s" },
            self.passwords,
            if self.passwords == 1 { "" } else { "s" },
            self.recovery_keys,
            if self.recovery_keys == 1 { "" } else { "s" },
            utc(self.first_ns),
            utc(self.last_ns)
        )
    }
}

fn utc(ns: i64) -> String {
    let s = ns.div_euclid(1_000_000_000);
    let (y, m, d) = super::util::civil_from_days(s.div_euclid(86_400));
    let t = s.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        t / 3600,
        t % 3600 / 60,
        t % 60
    )
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl LockedVault {
    /// Counts a wrong password (or recovery key) in this device's folder.
    /// A failure to count is logged, never in the way of the answer.
    pub(crate) fn note_failed_unlock(&self, recovery: bool) {
        let path = self.layout.local().join(FILE);
        let mut f = crate::store::safe::read(&path, 4096)
            .ok()
            .and_then(|b| Failures::parse(&String::from_utf8_lossy(&b)))
            .unwrap_or_default();
        let now = now_ns();
        if f.passwords + f.recovery_keys == 0 {
            f.first_ns = now;
        }
        f.last_ns = now;
        if recovery {
            f.recovery_keys += 1;
        } else {
            f.passwords += 1;
        }
        let r = self
            .layout
            .ensure_local()
            .and_then(|()| atomic::write(&path, f.encode().as_bytes()));
        if let Err(e) = r {
            log::warn!(
                "could not count a failed unlock in {} ({e})",
                path.display()
            );
        }
    }
}

impl UnlockedVault {
    /// After a successful unlock: failed attempts counted since the last
    /// one are told (a notice), recorded in the audit log, and forgotten.
    pub(crate) fn report_failed_unlocks(&mut self) {
        let path = self.layout.local().join(FILE);
        let Ok(b) = crate::store::safe::read(&path, 4096) else {
            return;
        };
        let Some(f) = Failures::parse(&String::from_utf8_lossy(&b)) else {
            let _ = std::fs::remove_file(&path);
            return;
        };
        let text = f.describe();
        self.record_unlock(Event::FailedUnlocks, &text);
        self.notices.push(format!(
            "warning: {text}. If that was not you, someone tried to open it: see `quire audit`."
        ));
        let _ = std::fs::remove_file(&path);
    }

    /// Replaces the recovery key: a new random one is wrapped in a new
    /// recovery slot and the old slot goes, so the old key stops opening
    /// the vault. Returns the new key, to be shown once. Audited.
    pub fn replace_recovery_key(&mut self) -> Result<recovery::RecoveryText, Error> {
        self.adopt_disk_flags();
        let rk = crate::crypto::Key32::random();
        let mut c = self.config.clone();
        c.remove_recovery_slots();
        c.add_recovery_slot(&self.master, &rk);
        c.seal_slots(&self.master);
        atomic::write(&self.layout.config(), &c.to_bytes())
            .map_err(io_err("writing quire.conf"))?;
        self.config = c;
        if let Ok(a) = self.audit_log() {
            a.append(
                Event::RecoveryKey,
                b"",
                b"",
                0,
                "recovery key replaced: the old one no longer opens the vault",
            );
        }
        Ok(recovery::encode(&rk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_file_round_trips_and_reads_as_people_do() {
        let f = Failures {
            passwords: 2,
            recovery_keys: 1,
            first_ns: 1_764_000_000_000_000_000,
            last_ns: 1_764_000_060_000_000_000,
        };
        assert_eq!(
            f.encode(),
            "QUIRE-FAILED-UNLOCKS 1\n2 1 1764000000000000000 1764000060000000000\n"
        );
        assert_eq!(Failures::parse(&f.encode()), Some(f));
        assert_eq!(Failures::parse("QUIRE-FAILED-UNLOCKS 2\n1 0 0 0\n"), None);
        assert_eq!(Failures::parse("QUIRE-FAILED-UNLOCKS 1\n-1 0 0 0\n"), None);
        assert_eq!(
            f.describe(),
            "3 failed attempts to unlock the vault on this computer (2 wrong passwords, 1 wrong recovery key) since 2025-11-24 16:00:00 UTC, the last at 2025-11-24 16:01:00 UTC"
        );
    }
}
