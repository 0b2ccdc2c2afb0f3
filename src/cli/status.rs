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

/// (notes expiring within 30 days, expired notes in the trash), asked of a
/// live daemon.
fn lifecycle_counts(m: &runtime::MountRecord) -> Option<(usize, usize)> {
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
    let expired = match call(&sock, &Request::TrashList).ok()? {
        Response::Trash { entries } => entries.iter().filter(|e| e.reason == "expired").count(),
        _ => return None,
    };
    Some((soon, expired))
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
                let (soon, expired) = match lifecycle_counts(m) {
                    Some((s, e)) => (s.to_string(), e.to_string()),
                    None => ("null".into(), "null".into()),
                };
                format!(
                    "{{\"mountpoint\":{},\"vault\":{},\"pid\":{},\"since\":{},\"read_only\":{},\"idle_secs\":{},\"expiring_30d\":{soon},\"expired_in_trash\":{expired}}}",
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
        let dead = runtime::is_dead(&m.mountpoint);
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
        if let Some((soon, expired)) = lifecycle_counts(&m) {
            println!("  expiring within 30 days: {soon} (see `quire expiring`)");
            println!("  expired, in the trash: {expired}");
        }
    }
    Ok(())
}
