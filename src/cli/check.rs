//! `quire check`: verifies a whole vault and reports problems by path.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::exit::{Code, fail};
use super::target::{Conn, TargetArgs, connect};
use crate::control::{Request, Response};

/// `quire check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The vault folder (default: the mounted vault, else the default vault).
    #[arg(id = "vault_dir", value_name = "VAULT")]
    vault: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// `quire check`.
pub fn run(mut a: CheckArgs) -> Result<()> {
    if let Some(v) = a.vault.take() {
        // A vault given by folder: the mounted one's daemon if it is
        // mounted, else opened here.
        let v = super::paths::absolute(&v);
        let mounted = super::runtime::mounts()
            .into_iter()
            .find(|m| m.vault.as_deref() == Some(v.as_path()));
        match mounted {
            Some(m) => a.target.mountpoint = Some(m.mountpoint),
            None => a.target.vault = Some(v),
        }
    }
    let (c, _) = connect(&a.target, None)?;
    let report = match &c {
        Conn::Local { tree, .. } => {
            let total = tree.check_size().max(1);
            let tty = std::io::stderr().is_terminal() && !a.json;
            let mut last = 0;
            let r = tree.check(&mut |done| {
                if tty && (done == 0 || done - last >= 50) {
                    last = done;
                    let pct = (done * 100 / total).min(100);
                    let bar = "#".repeat((pct / 4) as usize);
                    eprint!("\rchecking [{bar:<25}] {pct:>3}% ({done} items)");
                    let _ = std::io::stderr().flush();
                }
            })?;
            if tty {
                eprintln!("\rchecking [{}] 100%              ", "#".repeat(25));
            }
            r
        }
        Conn::Remote { .. } => {
            eprintln!("Checking the mounted vault through its daemon…");
            match c.call(Request::Check)? {
                Response::Check { report } => report,
                _ => return Err(fail(Code::Io, "unexpected answer from the daemon")),
            }
        }
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} files, {} folders, {} versions, {} trash entries, {} bytes verified",
            report.files, report.folders, report.versions, report.trash_entries, report.bytes
        );
        for p in &report.problems {
            println!("PROBLEM  {}: {}", p.path, p.problem);
        }
        for p in &report.conflicts {
            println!("CONFLICT {}: {}", p.path, p.problem);
        }
    }
    if report.problems.is_empty() && !report.conflicts.is_empty() {
        Err(fail(
            Code::Conflicts,
            format!(
                "no damage, but {} conflict cop{} made by a sync tool: see `quire conflicts`",
                report.conflicts.len(),
                if report.conflicts.len() == 1 {
                    "y"
                } else {
                    "ies"
                }
            ),
        ))
    } else if report.problems.is_empty() {
        if !a.json {
            println!("No problems found.");
        }
        Ok(())
    } else {
        Err(fail(
            Code::CheckFailed,
            format!(
                "{} problem(s) found: restore the damaged notes from a backup of the vault folder, or from their history",
                report.problems.len()
            ),
        ))
    }
}
