//! `quire log`, `show`, `diff` and `restore`: a note's versions, through
//! the mounted vault's daemon or on a sealed vault.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clap::Args;
use zeroize::Zeroizing;

use super::exit::{Code, fail};
use super::target::{Conn, TargetArgs, connect};
use crate::control::{Purpose, Request, Response, VersionOut};
use crate::vault::history::stamp;

/// `quire log`.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// The note, as a path in the mount (or in the vault with --vault).
    path: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// Which version.
#[derive(Args, Debug, Clone, Default)]
pub struct Which {
    /// The version current at TIME (local): `2026-11-25`, `2026-11-25T14.03`,
    /// `2026-11-25 14:03:07`.
    #[arg(long, value_name = "TIME", conflicts_with = "version")]
    at: Option<String>,
    /// Version number N (1 = oldest; see `quire log`).
    #[arg(long, value_name = "N")]
    version: Option<usize>,
}

/// `quire show`.
#[derive(Args, Debug)]
#[command(disable_version_flag = true)]
pub struct ShowArgs {
    /// The note.
    path: PathBuf,
    #[command(flatten)]
    which: Which,
    #[command(flatten)]
    target: TargetArgs,
}

/// `quire diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The note.
    path: PathBuf,
    /// Older version number (default: the one before the latest).
    a: Option<usize>,
    /// Newer version number (default: the note as it is now).
    b: Option<usize>,
    #[command(flatten)]
    target: TargetArgs,
}

/// `quire restore`.
#[derive(Args, Debug)]
#[command(disable_version_flag = true)]
pub struct RestoreArgs {
    /// The note.
    path: PathBuf,
    #[command(flatten)]
    which: Which,
    #[command(flatten)]
    target: TargetArgs,
}

fn versions(c: &Conn, path: &str) -> Result<Vec<VersionOut>> {
    match c.call(Request::Log { path: path.into() })? {
        Response::Versions { versions } => Ok(versions),
        _ => Err(fail(Code::Io, "unexpected answer from the daemon")),
    }
}

fn content(c: &Conn, req: Request) -> Result<Zeroizing<Vec<u8>>> {
    match c.call(req)? {
        Response::Content { data } => {
            let data = Zeroizing::new(data);
            Ok(Zeroizing::new(
                B64.decode(data.as_bytes())
                    .map_err(|_| fail(Code::Io, "garbled answer"))?,
            ))
        }
        _ => Err(fail(Code::Io, "unexpected answer from the daemon")),
    }
}

fn time_of(v: &VersionOut) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(v.time_ns.max(0) as u64)
}

/// Parses a local date/time; returns the last instant it covers.
pub fn parse_time(s: &str) -> Result<SystemTime> {
    let bad = || {
        fail(
            Code::Usage,
            format!(
                "`{s}` is not a date: use 2026-11-25, 2026-11-25T14.03 or \"2026-11-25 14:03:07\""
            ),
        )
    };
    let t = s.trim().replace('T', " ");
    let (date, time) = t.split_once(' ').unwrap_or((&t, ""));
    let d: Vec<i32> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let hms: Vec<i32> = if time.is_empty() {
        Vec::new()
    } else {
        time.split([':', '.'])
            .map(|x| x.parse().map_err(|_| bad()))
            .collect::<Result<_>>()?
    };
    if d.len() != 3 || hms.len() > 3 || !(1..=12).contains(&d[1]) || !(1..=31).contains(&d[2]) {
        return Err(bad());
    }
    let (h, m, sec) = (
        hms.first().copied(),
        hms.get(1).copied(),
        hms.get(2).copied(),
    );
    if h.is_some_and(|h| !(0..24).contains(&h))
        || m.is_some_and(|m| !(0..60).contains(&m))
        || sec.is_some_and(|x| !(0..61).contains(&x))
    {
        return Err(bad());
    }
    // The end of what was given: a day means its last second.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = d[0] - 1900;
    tm.tm_mon = d[1] - 1;
    tm.tm_mday = d[2];
    tm.tm_hour = h.unwrap_or(23);
    tm.tm_min = m.unwrap_or(59);
    tm.tm_sec = sec.unwrap_or(59);
    tm.tm_isdst = -1;
    // SAFETY: valid tm.
    let secs = unsafe { libc::mktime(&mut tm) };
    if secs == -1 || tm.tm_mday != d[2] {
        return Err(bad());
    }
    Ok(UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_nanos(999_999_999))
}

/// Parses a local date/time; returns the first instant it covers (the
/// start of a day, hour, minute or second, as given).
pub fn parse_start(s: &str) -> Result<SystemTime> {
    let end = parse_time(s)?;
    let span = match s.matches([':', '.']).count() {
        0 if !s.trim().contains(['T', ' ']) => Duration::from_secs(86_400),
        0 => Duration::from_secs(3600),
        1 => Duration::from_secs(60),
        _ => Duration::from_secs(1),
    };
    Ok(end + Duration::from_nanos(1) - span)
}

fn pick(vs: &[VersionOut], w: &Which) -> Result<usize> {
    if vs.is_empty() {
        return Err(fail(Code::NotFound, "this note has no saved versions"));
    }
    if let Some(n) = w.version {
        if n == 0 || n > vs.len() {
            return Err(fail(
                Code::NotFound,
                format!(
                    "there is no version {n}: this note has versions 1 to {}",
                    vs.len()
                ),
            ));
        }
        return Ok(n);
    }
    if let Some(at) = &w.at {
        let t = parse_time(at)?;
        return vs
            .iter()
            .rev()
            .find(|v| time_of(v) <= t)
            .map(|v| v.number)
            .ok_or_else(|| {
                fail(
                    Code::NotFound,
                    format!("the note had no saved version yet at {at}"),
                )
            });
    }
    Ok(vs.len())
}

/// `quire log`.
pub fn log(a: LogArgs) -> Result<()> {
    let (c, path) = connect(&a.target, Some(&a.path))?;
    let vs = versions(&c, &path)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&vs)?)?;
        return Ok(());
    }
    writeln!(out, "Vault: {}", c.describe())?;
    if vs.is_empty() {
        writeln!(out, "{path}: no saved versions")?;
        return Ok(());
    }
    // The device column only once a version names one (vaults used on
    // several computers, issue 18.3).
    let devices = vs.iter().any(|v| !v.device.is_empty());
    if devices {
        writeln!(
            out,
            "{:>4}  {:<19}  {:>10}  {:<10}  device",
            "#", "saved", "bytes", "origin"
        )?;
    } else {
        writeln!(out, "{:>4}  {:<19}  {:>10}  origin", "#", "saved", "bytes")?;
    }
    for v in &vs {
        let line = format!(
            "{:>4}  {:<19}  {:>10}  ",
            v.number,
            stamp(time_of(v)),
            v.size
        );
        if devices {
            let who = match (v.device.as_str(), v.device_name.as_str()) {
                ("", _) => "-".to_string(),
                (d, "") => d.to_string(),
                (d, n) => format!("{n} ({d})"),
            };
            writeln!(out, "{line}{:<10}  {who}", v.origin)?;
        } else {
            writeln!(out, "{line}{}", v.origin)?;
        }
    }
    Ok(())
}

/// `quire show`.
pub fn show(a: ShowArgs) -> Result<()> {
    let (c, path) = connect(&a.target, Some(&a.path))?;
    let vs = versions(&c, &path)?;
    let n = pick(&vs, &a.which)?;
    let data = content(
        &c,
        Request::Show {
            path,
            version: n,
            purpose: Purpose::Export,
        },
    )?;
    std::io::stdout().lock().write_all(&data)?;
    Ok(())
}

/// `quire diff`.
pub fn diff(a: DiffArgs) -> Result<()> {
    let (c, path) = connect(&a.target, Some(&a.path))?;
    let vs = versions(&c, &path)?;
    let count = vs.len();
    let check = |n: usize| {
        if n == 0 || n > count {
            Err(fail(
                Code::NotFound,
                format!("there is no version {n}: this note has versions 1 to {count}"),
            ))
        } else {
            Ok(n)
        }
    };
    let old_n = match a.a {
        Some(n) => check(n)?,
        None if count >= 2 => count - 1,
        None if count == 1 => 1,
        None => return Err(fail(Code::NotFound, "this note has no saved versions")),
    };
    let old = content(
        &c,
        Request::Show {
            path: path.clone(),
            version: old_n,
            purpose: Purpose::Compare,
        },
    )?;
    let (new, new_label) = match a.b {
        Some(n) => (
            content(
                &c,
                Request::Show {
                    path: path.clone(),
                    version: check(n)?,
                    purpose: Purpose::Compare,
                },
            )?,
            format!("{path} (version {n})"),
        ),
        None => (
            content(&c, Request::Read { path: path.clone() })?,
            format!("{path} (now)"),
        ),
    };
    let old_s = String::from_utf8_lossy(&old);
    let new_s = String::from_utf8_lossy(&new);
    let d = similar::TextDiff::from_lines(old_s.as_ref(), new_s.as_ref());
    let text = d
        .unified_diff()
        .context_radius(3)
        .header(&format!("{path} (version {old_n})"), &new_label)
        .to_string();
    std::io::stdout().lock().write_all(text.as_bytes())?;
    if !text.is_empty() {
        // As diff(1): 1 when the inputs differ.
        std::process::exit(1);
    }
    Ok(())
}

/// `quire restore`.
pub fn restore(a: RestoreArgs) -> Result<()> {
    let (c, path) = connect(&a.target, Some(&a.path))?;
    let vs = versions(&c, &path)?;
    let n = pick(&vs, &a.which)?;
    match c.mountpoint() {
        // Through the mount, so the kernel's caches see the change and the
        // save is recorded as any other.
        Some(mp) => {
            let data = content(
                &c,
                Request::Show {
                    path: path.clone(),
                    version: n,
                    purpose: Purpose::Restore,
                },
            )?;
            let p = mp.join(&path);
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&p)?;
                f.write_all(&data)?;
                f.sync_all()
            };
            write().map_err(|e| match e.raw_os_error() {
                Some(libc::EROFS) => fail(
                    Code::Io,
                    "the vault is mounted read-only: remount it read-write to restore",
                ),
                _ => fail(Code::Io, format!("writing {}: {e}", p.display())),
            })?;
        }
        None => {
            c.call(Request::Restore {
                path: path.clone(),
                version: n,
            })?;
        }
    }
    eprintln!(
        "{path}: version {n} ({}) is the current content again; the previous content stays in the history",
        stamp(time_of(&vs[n - 1]))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times() {
        assert!(parse_time("2026-11-25").is_ok());
        assert!(parse_time("2026-11-25T14.03.07").is_ok());
        assert!(parse_time("2026-11-25 14:03").is_ok());
        assert!(parse_time("2026-11-25T14.03.07").unwrap() < parse_time("2026-11-25").unwrap());
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-11-25 25:00",
            "2026-11",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
