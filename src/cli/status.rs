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
fn human_bytes(b: u64) -> String {
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
                format!(
                    "{{\"mountpoint\":{},\"vault\":{},\"pid\":{},\"since\":{},\"read_only\":{},\"idle_secs\":{},\"expiring_30d\":{soon},\"expired_in_trash\":{expired},\"trash_entries\":{trashed},\"trash_bytes\":{trash_bytes}}}",
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
    }
    Ok(())
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
