//! Reads by other Linux accounts (issue 20.3). On a mount with
//! `--allow-other`, another account may open a note its permissions allow;
//! each such open is audited (who, when, which note or version). The
//! owner's own reads are not, to keep the log small; the same reader
//! opening the same note again within a minute is one record.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const AGAIN_AFTER: Duration = Duration::from_secs(60);

/// Which reads are recorded.
pub struct Readers {
    owner: u32,
    seen: Mutex<HashMap<(u32, u64, usize), Instant>>,
}

impl Default for Readers {
    fn default() -> Self {
        Readers {
            // SAFETY: getuid has no preconditions.
            owner: unsafe { libc::getuid() },
            seen: Mutex::new(HashMap::new()),
        }
    }
}

impl Readers {
    /// Whether the open of `ino` (version `version`, 0 for the note) by
    /// `uid` is to be recorded now.
    pub fn due(&self, uid: u32, ino: u64, version: usize) -> bool {
        if uid == self.owner {
            return false;
        }
        let now = Instant::now();
        let mut s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() > 10_000 {
            s.retain(|_, t| now.duration_since(*t) < AGAIN_AFTER);
        }
        match s.get(&(uid, ino, version)) {
            Some(t) if now.duration_since(*t) < AGAIN_AFTER => false,
            _ => {
                s.insert((uid, ino, version), now);
                true
            }
        }
    }
}

/// `name (uid N)` for an account, or `uid N` when it has no name.
pub fn account(uid: u32) -> String {
    match crate::vault::people::account_name(uid) {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_accounts_once_a_minute_never_the_owner() {
        let r = Readers::default();
        assert!(!r.due(r.owner, 5, 0));
        let other = r.owner.wrapping_add(1);
        assert!(r.due(other, 5, 0));
        assert!(!r.due(other, 5, 0));
        assert!(r.due(other, 5, 2), "another version is another read");
        assert!(r.due(other, 6, 0));
        assert_eq!(account(0), "root (uid 0)");
        assert!(account(4_000_000_000).starts_with("uid "));
    }
}
