//! `quire expire`, `quire retain`, `quire expiring` and `quire purge`:
//! a note's expiry and retention dates, and the plan that expires notes
//! and purges the trash (docs/FORMAT.md §15).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Args;

use super::exit::{Code, fail};
use super::target::{Conn, TargetArgs, connect};
use crate::control::{DatedOut, Request, Response, TrashOut};
use crate::vault::history::stamp;
use crate::vault::lifecycle::dates::Date;

/// `quire expire`.
#[derive(Args, Debug)]
pub struct ExpireArgs {
    /// The note, as a path in the mount (or in the vault with --vault).
    path: PathBuf,
    /// When it expires: a day (2027-03-01, starting at local midnight), a
    /// time (2027-03-01T14:00, local, or with Z / +01:00), or a span from
    /// today (+90d, +12w, +6m, +7y). Without DATE: show the note's dates.
    #[arg(conflicts_with = "clear")]
    date: Option<String>,
    /// Remove the expiry.
    #[arg(long)]
    clear: bool,
    /// A DATE that has passed sends the note to the trash at once: do it
    /// without asking (on a terminal it asks; elsewhere it is refused).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// `quire retain`.
#[derive(Args, Debug)]
pub struct RetainArgs {
    /// The note, as a path in the mount (or in the vault with --vault).
    path: PathBuf,
    /// Keep it until this date (same forms as `quire expire`). It cannot be
    /// deleted, expired or purged before, and the date can only be moved later.
    #[arg(conflicts_with = "clear")]
    date: Option<String>,
    /// Remove a retention date that has passed.
    #[arg(long)]
    clear: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// `30d` → "30 days", `12w` → "12 weeks", `48h` → "48 hours".
fn show_span(s: &str) -> String {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let word = match unit {
        "d" => "day",
        "w" => "week",
        "h" => "hour",
        "m" => "month",
        "y" => "year",
        _ => return s.to_string(),
    };
    format!("{n} {word}{}", if n == "1" { "" } else { "s" })
}

/// `quire expiring`.
#[derive(Args, Debug)]
pub struct ExpiringArgs {
    /// Only notes expiring within this span: 30d, 12w, 48h (default 30d).
    #[arg(
        long,
        value_name = "SPAN",
        default_value = "30d",
        conflicts_with = "all"
    )]
    within: String,
    /// Every note with an expiry or retention date.
    #[arg(long)]
    all: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// `quire purge`.
#[derive(Args, Debug)]
pub struct PurgeArgs {
    /// Only show what would be done.
    #[arg(long)]
    dry_run: bool,
    /// Plan as if it were TIME (same forms as `quire expire`; for checking
    /// what a later date will do, and for tests).
    #[arg(long, value_name = "TIME", hide = true)]
    now: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// Parses `30d`, `12w`, `48h` (a bare number is days).
pub fn parse_span(s: &str) -> Result<Duration> {
    let bad = || {
        fail(
            Code::Usage,
            format!("`{s}` is not a span: use days, weeks or hours, like 30d, 12w, 48h"),
        )
    };
    let s = s.trim();
    let (n, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 'd'),
    };
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs)
        .filter(|s| *s < 400 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

fn show_dates(r: Response, path: &str, json: bool) -> Result<()> {
    let Response::Dates {
        expires,
        retain_until,
    } = r
    else {
        return Err(fail(Code::Io, "unexpected answer from the daemon"));
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"path": path, "expires": expires, "retain_until": retain_until})
        );
        return Ok(());
    }
    println!("{path}");
    println!("  expires:      {}", expires.as_deref().unwrap_or("never"));
    println!("  retain until: {}", retain_until.as_deref().unwrap_or("-"));
    Ok(())
}

fn dates_request(
    c: &Conn,
    path: &str,
    expiry: bool,
    date: Option<String>,
    clear: bool,
) -> Result<Response> {
    let (mut expires, mut retain_until) = (None, None);
    if let Some(d) = date {
        // Checked here too, for a clear message before any round trip.
        Date::parse(&d, SystemTime::now()).map_err(|e| fail(Code::Usage, e.to_string()))?;
        if expiry {
            expires = Some(d);
        } else {
            retain_until = Some(d);
        }
    }
    c.call(Request::Dates {
        path: path.to_string(),
        expires,
        retain_until,
        clear_expires: expiry && clear,
        clear_retain: !expiry && clear,
    })
}

/// `quire expire`.
pub fn expire(a: ExpireArgs) -> Result<()> {
    let (c, path) = connect(&a.target, Some(&a.path))?;
    // A date in the past expires the note at once: a typo (2025 for 2026)
    // must not send a note to the trash unasked (issue 10.8).
    if let Some(d) = &a.date
        && let Ok(date) = Date::parse(d, SystemTime::now())
        && date.instant() <= SystemTime::now()
        && !a.yes
    {
        let q = format!(
            "{d} has passed: {} would go to the trash within a minute. Go on?",
            a.path.display()
        );
        if !super::password::confirm(&q) {
            return Err(fail(
                Code::Usage,
                format!(
                    "{d} has passed, so {} would be expired at once; nothing was changed (add --yes to do it)",
                    a.path.display()
                ),
            ));
        }
    }
    let changing = a.date.is_some() || a.clear;
    let r = dates_request(&c, &path, true, a.date, a.clear)?;
    if changing
        && !a.json
        && let Response::Dates {
            expires: Some(e), ..
        } = &r
        && Date::parse(e, SystemTime::now()).is_ok_and(|d| d.instant() <= SystemTime::now())
    {
        eprintln!("That date has passed: the note goes to the trash within a minute.");
    }
    show_dates(r, &path, a.json)
}

/// `quire retain`.
pub fn retain(a: RetainArgs) -> Result<()> {
    let (c, path) = connect(&a.target, Some(&a.path))?;
    let r = dates_request(&c, &path, false, a.date, a.clear)?;
    show_dates(r, &path, a.json)
}

fn when(ns: Option<i64>) -> String {
    ns.map(|n| stamp(UNIX_EPOCH + Duration::from_nanos(n.max(0) as u64)))
        .unwrap_or_else(|| "-".into())
}

fn print_notes(out: &mut impl Write, notes: &[DatedOut]) -> std::io::Result<()> {
    for n in notes {
        let retain = n
            .retain_until
            .as_deref()
            .map(|r| format!("  (retain until {r})"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:<20}  {}{retain}",
            n.expires.as_deref().unwrap_or("-"),
            n.path
        )?;
    }
    Ok(())
}

fn print_entries(out: &mut impl Write, entries: &[TrashOut]) -> std::io::Result<()> {
    for e in entries {
        writeln!(
            out,
            "  {:<20}  {:<8}  {}",
            when(Some(e.deleted_ns)),
            e.reason,
            e.path
        )?;
    }
    Ok(())
}

/// `quire expiring`.
pub fn expiring(a: ExpiringArgs) -> Result<()> {
    let within = if a.all {
        None
    } else {
        Some(parse_span(&a.within)?)
    };
    let (c, _) = connect(&a.target, None)?;
    let Response::Dated { notes } = c.call(Request::Expiring {
        within_secs: within.map(|d| d.as_secs()),
    })?
    else {
        return Err(fail(Code::Io, "unexpected answer from the daemon"));
    };
    if a.json {
        println!("{}", serde_json::to_string(&notes)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "Vault: {}", c.describe())?;
    if notes.is_empty() {
        writeln!(
            out,
            "{}",
            if a.all {
                "No note has an expiry or retention date.".to_string()
            } else {
                // The span asked for, or the default (issue 16.7).
                format!(
                    "Nothing expires within {} (`--within SPAN` looks further, `--all` lists every date).",
                    show_span(&a.within)
                )
            }
        )?;
        return Ok(());
    }
    writeln!(out, "  {:<20}  path", "expires")?;
    print_notes(&mut out, &notes)?;
    Ok(())
}

/// `quire purge`.
pub fn purge(a: PurgeArgs) -> Result<()> {
    let now_ns = match &a.now {
        Some(t) => {
            let d =
                Date::parse(t, SystemTime::now()).map_err(|e| fail(Code::Usage, e.to_string()))?;
            Some(
                d.instant()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as i64)
                    .unwrap_or(0),
            )
        }
        None => None,
    };
    let (c, _) = connect(&a.target, None)?;
    let r = c.call(Request::Lifecycle {
        dry_run: a.dry_run,
        now_ns,
    })?;
    let Response::Plan {
        expire,
        held,
        purge,
        kept,
        applied,
    } = r
    else {
        return Err(fail(Code::Io, "unexpected answer from the daemon"));
    };
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "expire": expire, "held": held, "purge": purge, "kept": kept, "applied": applied
            })
        );
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if !expire.is_empty() {
        writeln!(out, "Expired, to the trash:")?;
        print_notes(&mut out, &expire)?;
    }
    if !held.is_empty() {
        writeln!(out, "Expired but kept by their retention date:")?;
        print_notes(&mut out, &held)?;
    }
    if !purge.is_empty() {
        writeln!(
            out,
            "Past the trash window, deleted for good (with every version):"
        )?;
        print_entries(&mut out, &purge)?;
    }
    if !kept.is_empty() {
        writeln!(out, "Past the trash window but retained:")?;
        print_entries(&mut out, &kept)?;
    }
    drop(out);
    eprintln!(
        "{} {} note(s), {} {} trash entr{}.",
        if applied { "Expired" } else { "Would expire" },
        expire.len(),
        if applied { "purged" } else { "would purge" },
        purge.len(),
        if purge.len() == 1 { "y" } else { "ies" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(parse_span("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_span("30").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_span("2w").unwrap(), Duration::from_secs(14 * 86_400));
        assert_eq!(parse_span("48h").unwrap(), Duration::from_secs(48 * 3600));
        for bad in ["", "d", "3x", "-1d", "99999999999999d"] {
            assert!(parse_span(bad).is_err(), "{bad}");
        }
    }
}
