//! `quire status`: what is mounted where, since when.

use anyhow::Result;
use clap::Args;

use super::runtime;

/// Arguments of `quire status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print JSON (an array of mounts) for scripts.
    #[arg(long)]
    json: bool,
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// What a live daemon says of its notes' dates and trash.
struct Counts {
    /// Notes expiring within 30 days.
    soon: usize,
    /// Expired notes in the trash.
    expired: usize,
    /// Trash entries.
    trashed: usize,
    /// Their plaintext bytes.
    trash_bytes: u64,
}

fn lifecycle_counts(m: &runtime::MountRecord) -> Option<Counts> {
    use crate::control::{Request, Response, call};
    if m.pid.is_none() || runtime::is_dead(&m.mountpoint) {
        return None;
    }
    let sock = runtime::socket_path(&m.mountpoint);
    let soon = match call(
        &sock,
        &Request::Expiring {
            within_secs: Some(30 * 86_400),
        },
    )
    .ok()?
    {
        Response::Dated { notes } => notes.len(),
        _ => return None,
    };
    let entries = match call(&sock, &Request::TrashList).ok()? {
        Response::Trash { entries } => entries,
        _ => return None,
    };
    Some(Counts {
        soon,
        expired: entries.iter().filter(|e| e.reason == "expired").count(),
        trashed: entries.len(),
        trash_bytes: entries.iter().map(|e| e.size).sum(),
    })
}

/// "4.2 GiB", "120 KiB".
pub(crate) fn human_bytes(b: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// "30 minutes", "2 hours", "90 seconds".
fn human_span(s: u64) -> String {
    let (n, unit) = if s.is_multiple_of(3600) {
        (s / 3600, "hour")
    } else if s.is_multiple_of(60) {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

pub fn run(a: StatusArgs) -> Result<()> {
    let mounts = runtime::mounts();
    if a.json {
        let items: Vec<String> = mounts
            .iter()
            .map(|m| {
                let (soon, expired, trashed, trash_bytes) = match lifecycle_counts(m) {
                    Some(c) => (
                        c.soon.to_string(),
                        c.expired.to_string(),
                        c.trashed.to_string(),
                        c.trash_bytes.to_string(),
                    ),
                    None => ("null".into(), "null".into(), "null".into(), "null".into()),
                };
                let (last_backup_ns, last_drill_ns, last_drill_passed) =
                    match m.pid.and_then(|_| last_backup(&m.mountpoint)) {
                        Some((b, d)) => (
                            b.map(|b| b.time_ns.to_string()).unwrap_or("null".into()),
                            d.as_ref().map(|d| d.time_ns.to_string()).unwrap_or("null".into()),
                            d.map(|d| d.detail.contains("\"passed\":true").to_string())
                                .unwrap_or("null".into()),
                        ),
                        None => ("null".into(), "null".into(), "null".into()),
                    };
                format!(
                    "{{\"mountpoint\":{},\"vault\":{},\"pid\":{},\"since\":{},\"read_only\":{},\"idle_secs\":{},\"expiring_30d\":{soon},\"expired_in_trash\":{expired},\"trash_entries\":{trashed},\"trash_bytes\":{trash_bytes},\"last_backup_ns\":{last_backup_ns},\"last_drill_ns\":{last_drill_ns},\"last_drill_passed\":{last_drill_passed}}}",
                    json_str(&m.mountpoint.display().to_string()),
                    m.vault
                        .as_ref()
                        .map(|v| json_str(&v.display().to_string()))
                        .unwrap_or("null".into()),
                    m.pid.map(|p| p.to_string()).unwrap_or("null".into()),
                    m.since.map(|s| s.to_string()).unwrap_or("null".into()),
                    m.read_only,
                    m.idle.map(|s| s.to_string()).unwrap_or("null".into())
                )
            })
            .collect();
        println!("[{}]", items.join(","));
        return Ok(());
    }
    if mounts.is_empty() {
        println!("No vault is mounted.");
        return Ok(());
    }
    for m in mounts {
        // Only mounts of this session are asked (a mount without a record
        // is another session's or user's: root sees them all, and a
        // statfs of theirs would hold them busy for a moment).
        let dead = m.pid.is_some() && runtime::is_dead(&m.mountpoint);
        println!(
            "{}{}{}",
            m.mountpoint.display(),
            if m.read_only { " (read-only)" } else { "" },
            if dead {
                " (daemon gone: run `quire unmount` to clean up)"
            } else {
                ""
            }
        );
        if let Some(v) = &m.vault {
            println!("  vault: {}", v.display());
        }
        if let Some(s) = m.since {
            println!("  since: {}", runtime::format_time(s));
        }
        match m.idle {
            Some(0) => println!(
                "  seals when idle: never (mount with --idle 30m to seal after 30 idle minutes)"
            ),
            Some(s) => println!("  seals when idle: after {}", human_span(s)),
            None => {}
        }
        if let Some(p) = m.pid {
            println!("  daemon pid: {p}");
        }
        if let Some(c) = lifecycle_counts(&m) {
            println!(
                "  expiring within 30 days: {} (see `quire expiring`)",
                c.soon
            );
            println!("  expired, in the trash: {}", c.expired);
            println!(
                "  trash: {} entries, {} (see `quire trash`; when the disk runs low, entries older than a week give way first)",
                c.trashed,
                human_bytes(c.trash_bytes)
            );
        }
        if let Some(w) = m.vault.as_deref().and_then(low_space) {
            println!("  {w}");
        }
        if m.pid.is_some() && !dead {
            for l in backup_lines(&m.mountpoint) {
                println!("  {l}");
            }
            super::export::warn_overdue_at(&m.mountpoint);
        }
    }
    Ok(())
}

type LastPair = (
    Option<crate::control::backup::Last>,
    Option<crate::control::backup::Last>,
);

/// The newest backup and drill records of the vault mounted at `mp`.
fn last_backup(mp: &std::path::Path) -> Option<LastPair> {
    use crate::control::{Request, Response, call};
    match call(&runtime::socket_path(mp), &Request::LastBackup) {
        Ok(Response::LastBackup { backup, drill }) => Some((backup, drill)),
        _ => None,
    }
}

/// A backup older than this is warned about.
const BACKUP_OLD: u64 = 7 * 86_400;
/// A restore drill older than this (a quarter) is warned about.
const DRILL_OLD: u64 = 92 * 86_400;

/// The last backup and restore drill of the vault mounted at `mp`, with a
/// warning when either is missing, old or failed (issue 19.2).
fn backup_lines(mp: &std::path::Path) -> Vec<String> {
    let Some((backup, drill)) = last_backup(mp) else {
        return Vec::new();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let secs = |ns: i64| (ns.max(0) / 1_000_000_000) as u64;
    let field = |detail: &str, k: &str| {
        serde_json::from_str::<serde_json::Value>(detail)
            .ok()
            .and_then(|v| v.get(k).cloned())
    };
    let mut out = Vec::new();
    match &backup {
        Some(b) => {
            let t = secs(b.time_ns);
            out.push(format!(
                "last backup: {} (snapshot {} in {})",
                runtime::format_time(t),
                field(&b.detail, "snapshot").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                field(&b.detail, "backup").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            ));
            if now.saturating_sub(t) > BACKUP_OLD {
                out.push(format!(
                    "warning: the last backup is {} old: run `quire backup DEST` (README \"Backups and restore drills\")",
                    human_span(now - t)
                ));
            }
        }
        None => out.push(
            "last backup: never. warning: this vault has no backup: run `quire backup DEST` (README \"Backups and restore drills\")".into(),
        ),
    }
    match &drill {
        Some(d) => {
            let t = secs(d.time_ns);
            let passed = field(&d.detail, "passed").and_then(|v| v.as_bool()) == Some(true);
            out.push(format!(
                "last restore drill: {} ({})",
                runtime::format_time(t),
                if passed { "passed" } else { "FAILED" }
            ));
            if !passed {
                out.push("warning: the last restore drill failed: run `quire backup drill DEST` again and look into what it lists".into());
            } else if now.saturating_sub(t) > DRILL_OLD {
                out.push(format!(
                    "warning: the last restore drill is {} old: run `quire backup drill DEST`",
                    human_span(now - t)
                ));
            }
        }
        None if backup.is_some() => out.push(
            "last restore drill: never. warning: no restore of a backup was ever tried: run `quire backup drill DEST`".into(),
        ),
        None => {}
    }
    out
}

/// A warning when the disk holding `vault` is low on space (less free
/// than 5 % of it or 1 GiB): the trash gives way only in part (issue
/// 17.6), so the user must know.
pub fn low_space(vault: &std::path::Path) -> Option<String> {
    let st = crate::store::host::Handle::open_path(vault)
        .and_then(|h| h.statvfs())
        .ok()?;
    let free = st.f_bavail * st.f_frsize;
    (crate::vault::trash::space_deficit(&st) > 0).then(|| {
        format!(
            "warning: the disk holding the vault has only {} free. Free space on it: the trash is purged for space only when entries older than a week can free enough (`quire trash empty` frees it all).",
            human_bytes(free)
        )
    })
}
