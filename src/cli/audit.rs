//! `quire audit`: the vault's audit log — who changed what, and when — and
//! `--verify`, which checks its hash chain (docs/FORMAT.md §16;
//! docs/THREAT_MODEL.md says what a clean chain proves).

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use clap::Args;

use super::exit::{Code, fail};
use super::target::{TargetArgs, connect};
use crate::control::{Request, Response};
use crate::vault::history::stamp;

/// `quire audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only records from this local date/time on (2026-11-25, "2026-11-25 14:03").
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only records about this path (a note, or a folder and what is in it).
    #[arg(long, value_name = "PATH")]
    path: Option<std::path::PathBuf>,
    /// Check every device's chain: every record authentic, in order, none
    /// missing, none removed since this computer last saw it.
    /// Exit code 24 if it is broken.
    #[arg(long, conflicts_with = "accept")]
    verify: bool,
    /// After reviewing the log (`quire audit`), accept it as it is: its end
    /// becomes the head remembered on this machine, so a log that was
    /// restored from a backup or is shorter than the head stops being
    /// reported. The acceptance is itself an audit record. Records that
    /// fail authentication stay reported.
    #[arg(long)]
    accept: bool,
    /// Only records of this person (the name of their password, see
    /// `quire user`) or of this Linux account (a name or a uid).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// Whether record `r` is by `who`: the person whose password unlocked, or
/// the Linux account (by name or uid) that made the change.
fn by(r: &crate::control::AuditOut, who: &str, accounts: &mut Accounts) -> bool {
    crate::format::config::same_name(&r.person, who)
        || who.parse::<u32>().is_ok_and(|u| u == r.uid)
        || accounts.name(r.uid).is_some_and(|n| n == who)
}

/// Linux account names by uid, looked up once each.
#[derive(Default)]
struct Accounts(std::collections::HashMap<u32, Option<String>>);

impl Accounts {
    fn name(&mut self, uid: u32) -> Option<&str> {
        self.0
            .entry(uid)
            .or_insert_with(|| crate::store::host::account_name(uid))
            .as_deref()
    }
}

/// Whether `p` is `name` or inside the folder `name` (`""`: everything).
fn under(p: &str, name: &str) -> bool {
    name.is_empty() || p == name || p.strip_prefix(name).is_some_and(|r| r.starts_with('/'))
}

/// Which records are about `rel` under any name it had, as `git log
/// --follow` does (issue 16.7): walking back from the newest, a rename
/// onto the subject (or into it) adds the name it had before.
fn following_renames(records: &[crate::control::AuditOut], rel: &str) -> Vec<bool> {
    let mut names = vec![rel.to_string()];
    let mut keep = vec![false; records.len()];
    for (i, r) in records.iter().enumerate().rev() {
        let moved_us = r.event == "rename" && names.iter().any(|n| under(n, &r.to));
        if moved_us || names.iter().any(|n| under(&r.path, n) || under(&r.to, n)) {
            keep[i] = true;
        }
        if r.event != "rename" || r.to.is_empty() || r.path.is_empty() {
            continue;
        }
        let mut before = Vec::new();
        for n in &names {
            if under(n, &r.to) && !n.is_empty() {
                // The subject (or a folder holding it) was renamed here.
                before.push(format!("{}{}", r.path, &n[r.to.len()..]));
            } else if under(&r.to, n) && r.to != *n {
                // Something moved into the subject folder.
                before.push(r.path.clone());
            }
        }
        for b in before {
            if !names.contains(&b) {
                names.push(b);
            }
        }
    }
    keep
}

/// Device names by short ID, from the records listed.
fn device_names(records: &[crate::control::AuditOut]) -> std::collections::HashMap<&str, &str> {
    records
        .iter()
        .filter(|r| !r.device_name.is_empty())
        .map(|r| (r.device.as_str(), r.device_name.as_str()))
        .collect()
}

/// `quire audit`.
pub fn run(a: AuditArgs) -> Result<()> {
    let since = a
        .since
        .as_deref()
        .map(super::history::parse_start)
        .transpose()?;
    let (c, rel) = connect(&a.target, a.path.as_deref())?;
    let req = if a.accept {
        Request::AuditAccept
    } else {
        Request::Audit
    };
    let Response::Audit { records, verdict } = c.call(req)? else {
        return Err(fail(Code::Io, "unexpected answer from the daemon"));
    };
    // `clients/` means the folder `clients` (issue 10.7).
    let rel = rel.trim_end_matches('/').to_string();
    let about = if a.path.is_some() {
        following_renames(&records, &rel)
    } else {
        vec![true; records.len()]
    };
    let mut accounts = Accounts::default();
    let shown: Vec<_> = records
        .iter()
        .zip(about)
        .filter(|(_, keep)| *keep)
        .map(|(r, _)| r)
        .filter(|r| a.user.as_deref().is_none_or(|u| by(r, u, &mut accounts)))
        .filter(|r| {
            since.is_none_or(|s| UNIX_EPOCH + Duration::from_nanos(r.time_ns.max(0) as u64) >= s)
        })
        .collect();
    if a.json {
        if a.verify {
            println!("{}", serde_json::to_string(&verdict)?);
        } else {
            println!("{}", serde_json::to_string(&shown)?);
        }
    } else if a.accept {
        c.header();
        match &verdict.broken {
            None => println!(
                "Accepted: the audit log as it is now ({} records) is this machine's head, and the acceptance is recorded. {}.",
                verdict.records, verdict.head
            ),
            Some(b) => println!(
                "The acceptance is recorded, but the log is still BROKEN: {b}. Accepting moves the head; it cannot make altered records authentic."
            ),
        }
    } else if a.verify {
        c.header();
        let names = device_names(&records);
        for ch in &verdict.chains {
            let who = match ch.chain.as_str() {
                "legacy" => "log of older versions (quire.audit)".to_string(),
                hex => {
                    let short = &hex[..7.min(hex.len())];
                    match names.get(short) {
                        Some(n) => format!("device {short} ({n})"),
                        None => format!("device {short}"),
                    }
                }
            };
            let seen = ch
                .remembered
                .map(|s| format!("; seen here up to record {s}"))
                .unwrap_or_default();
            match &ch.broken {
                None => println!("  {who}: {} records, intact{seen}", ch.records),
                Some(b) => println!("  {who}: BROKEN: {b}{seen}"),
            }
        }
        for f in &verdict.other_files {
            println!("  audit/{f}: not a device's chain (a sync tool's conflict copy?); not read");
        }
        match &verdict.broken {
            None => println!(
                "The audit log is intact: {} records in {} chain(s), each authentic and chained to the one before. {}.\nThis device's last link: {} (write it down with its count, off this machine, to anchor the log).",
                verdict.records,
                verdict.chains.len(),
                verdict.head,
                verdict.last_link
            ),
            Some(b) => println!(
                "The audit log is BROKEN: {b}. {} record(s) authenticate and chain. {}.",
                verdict.records, verdict.head
            ),
        }
        if verdict.torn_tail {
            println!("(A chain's last record was cut short, as by a crash while writing it.)");
        }
    } else {
        c.header();
        let mut out = std::io::stdout().lock();
        for r in &shown {
            let t = UNIX_EPOCH + Duration::from_nanos(r.time_ns.max(0) as u64);
            let who = if r.device_name.is_empty() {
                r.device.clone()
            } else {
                r.device_name.chars().take(16).collect()
            };
            let account = match accounts.name(r.uid) {
                Some(n) => n.chars().take(12).collect(),
                None => format!("uid {}", r.uid),
            };
            let person = if r.person.is_empty() {
                "-".to_string()
            } else {
                r.person.chars().take(16).collect()
            };
            let mut line = format!(
                "{:>6}  {}  {:<16}  {:<16}  {:<12}  {:<15}",
                r.seq,
                stamp(t),
                who,
                person,
                account,
                r.event
            );
            if !r.path.is_empty() {
                line.push_str(&format!("  {}", r.path));
            }
            if !r.to.is_empty() {
                line.push_str(&format!(" -> {}", r.to));
            }
            if r.version > 0 {
                line.push_str(&format!("  (version {})", r.version));
            }
            if !r.detail.is_empty() {
                line.push_str(&format!("  [{}]", r.detail));
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        if let Some(b) = &verdict.broken {
            drop(out);
            eprintln!("warning: the audit log is broken: {b} (run `quire audit --verify`)");
        }
    }
    if (a.verify || a.accept) && verdict.broken.is_some() {
        return Err(fail(Code::AuditBroken, "the audit log's chain is broken"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::AuditOut;

    fn rec(event: &str, path: &str, to: &str) -> AuditOut {
        AuditOut {
            seq: 0,
            time_ns: 0,
            event: event.into(),
            uid: 0,
            version: 0,
            path: path.into(),
            to: to.into(),
            detail: String::new(),
            device: String::new(),
            device_name: String::new(),
            person: String::new(),
        }
    }

    #[test]
    fn a_path_is_followed_through_its_renames_and_its_folders() {
        let r = [
            rec("create", "old/a.md", ""),   // 0: a.md under its first name
            rec("save", "other.md", ""),     // 1: unrelated
            rec("rename", "old", "clients"), // 2: the folder renamed
            rec("save", "clients/a.md", ""), // 3
            rec("rename", "clients/a.md", "clients/x.md"), // 4
            rec("save", "clients/x.md", ""), // 5
            rec("create", "clients/a.md", ""), // 6: a new note, not x's past
        ];
        let keep = following_renames(&r, "clients/x.md");
        assert_eq!(keep, [true, false, true, true, true, true, false]);
        // A folder: everything that was ever inside it under any name.
        let keep = following_renames(&r, "clients");
        assert_eq!(keep, [true, false, true, true, true, true, true]);
    }
}
