//! `quire trash`: list, restore, purge and empty the trash.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use clap::{Args, Subcommand};

use super::exit::{Code, fail};
use super::target::{Conn, TargetArgs, connect};
use crate::control::{Request, Response, TrashOut};
use crate::vault::history::stamp;

/// `quire trash`.
#[derive(Args, Debug)]
pub struct TrashArgs {
    #[command(subcommand)]
    action: Option<Action>,
    /// Print JSON (listing).
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Put a deleted note back (at its old path, or beside it if taken).
    Restore {
        /// The note's path when it was deleted (the newest such entry), or
        /// an entry ID from `quire trash --json`.
        path: PathBuf,
    },
    /// Delete for good what was deleted longer ago than the trash window (never a note before its retention date).
    Purge {
        /// Only show what would be purged.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete everything in the trash for good.
    Empty {
        /// Only show what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask.
        #[arg(long, short)]
        yes: bool,
    },
    /// Set how many days deleted notes are kept (default 60).
    Keep {
        /// Days.
        days: u32,
    },
}

fn entries(r: Response) -> Result<Vec<TrashOut>> {
    match r {
        Response::Trash { entries } => Ok(entries),
        _ => Err(fail(Code::Io, "unexpected answer from the daemon")),
    }
}

fn print(entries: &[TrashOut], json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(entries)?)?;
        return Ok(());
    }
    if entries.is_empty() {
        writeln!(out, "The trash is empty.")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<19}  {:<8}  {:>10}  path",
        "deleted", "reason", "bytes"
    )?;
    for e in entries {
        let t = UNIX_EPOCH + Duration::from_nanos(e.deleted_ns.max(0) as u64);
        writeln!(
            out,
            "{:<19}  {:<8}  {:>10}  {}",
            stamp(t),
            e.reason,
            e.size,
            e.path
        )?;
    }
    Ok(())
}

/// `quire trash`.
pub fn run(a: TrashArgs) -> Result<()> {
    // A path to restore picks the vault whose mount holds it, though it
    // no longer exists there (issue 16.5: two mounts made it ambiguous).
    let hint = match &a.action {
        Some(Action::Restore { path }) => Some(path.as_path()),
        _ => None,
    };
    let (c, _) = connect(&a.target, hint).or_else(|e| match hint {
        // An entry ID or a vault path: the vault as without a path.
        Some(_) => connect(&a.target, None),
        None => Err(e),
    })?;
    match a.action {
        None => {
            if !a.json {
                c.header();
            }
            print(&entries(c.call(Request::TrashList)?)?, a.json)
        }
        Some(Action::Restore { path }) => restore(&c, &a.target, &path),
        Some(Action::Purge { dry_run }) => {
            let done = entries(c.call(Request::Purge {
                dry_run,
                all: false,
            })?)?;
            let held = if done.is_empty() && !a.json {
                entries(c.call(Request::TrashList)?)?.len()
            } else {
                0
            };
            if held > 0 {
                // Not "the trash is empty" when it is not (issue 16.7).
                println!(
                    "Nothing is due: the {held} entr{} in the trash {} kept until the trash window has passed since deletion (`quire trash` lists them; `quire trash keep DAYS` sets the window), or until a retention date.",
                    if held == 1 { "y" } else { "ies" },
                    if held == 1 { "is" } else { "are" }
                );
            } else {
                print(&done, a.json)?;
            }
            eprintln!(
                "{} {} entr{}",
                if dry_run { "Would purge" } else { "Purged" },
                done.len(),
                if done.len() == 1 { "y" } else { "ies" }
            );
            Ok(())
        }
        Some(Action::Empty { dry_run, yes }) => {
            if !dry_run && !yes {
                let n = entries(c.call(Request::TrashList)?)?.len();
                if n == 0 {
                    eprintln!("The trash is empty.");
                    return Ok(());
                }
                if !std::io::stdin().is_terminal() {
                    return Err(fail(
                        Code::Cancelled,
                        format!(
                            "nothing was deleted: emptying the trash ({n} entr{}) asks for confirmation on a terminal; add --yes to confirm from a script",
                            if n == 1 { "y" } else { "ies" }
                        ),
                    ));
                }
                if !super::password::confirm(&format!(
                    "Delete {n} trashed note(s) and their history for good?"
                )) {
                    return Err(fail(Code::Cancelled, "nothing was deleted"));
                }
            }
            let done = entries(c.call(Request::Purge { dry_run, all: true })?)?;
            eprintln!(
                "{} {} entr{}",
                if dry_run { "Would delete" } else { "Deleted" },
                done.len(),
                if done.len() == 1 { "y" } else { "ies" }
            );
            Ok(())
        }
        Some(Action::Keep { days }) => {
            if days == 0 {
                return Err(fail(Code::Usage, "keep at least 1 day"));
            }
            c.call(Request::SetTrashDays { days })?;
            eprintln!("Deleted notes are now kept {days} days.");
            Ok(())
        }
    }
}

fn restore(c: &Conn, t: &TargetArgs, path: &std::path::Path) -> Result<()> {
    let all = entries(c.call(Request::TrashList)?)?;
    let typed = path.to_string_lossy().to_string();
    // A path in the mount, as typed, or a vault path, or an entry ID.
    let (_, rel) = connect(t, Some(path)).unwrap_or_else(|_| {
        (
            Conn::Remote {
                socket: PathBuf::new(),
                mountpoint: PathBuf::new(),
                vault: None,
            },
            typed.clone(),
        )
    });
    let e = all
        .iter()
        .rev()
        .find(|e| e.path == rel || e.path == typed.trim_start_matches('/'))
        .or_else(|| {
            all.iter()
                .find(|e| e.id.starts_with(&typed) && typed.len() >= 6)
        })
        .ok_or_else(|| {
            fail(
                Code::NotFound,
                format!("nothing named {typed} is in the trash"),
            )
        })?;
    match c.call(Request::TrashRestore { id: e.id.clone() })? {
        Response::Restored { path } => {
            eprintln!("Restored {} as {path}", e.path);
            Ok(())
        }
        _ => Err(fail(Code::Io, "unexpected answer from the daemon")),
    }
}
