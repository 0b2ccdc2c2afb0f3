//! `quire conflicts`: the copies a sync tool made of notes that two
//! computers changed before either change reached the other (issue 18.4,
//! docs/FORMAT.md §5.5). Each is shown in the mount beside its note as
//! `name (conflict <when> <who>).ext`; resolving one means keeping what is
//! needed in the note, then deleting the copy (it goes to the trash).

use anyhow::Result;
use clap::Args;

use super::exit::{Code, fail};
use super::target::{TargetArgs, connect};
use crate::control::{Request, Response};

/// `quire conflicts`.
#[derive(Args, Debug)]
pub struct ConflictsArgs {
    /// Print JSON (`path`, `original`, `tool`, `when`, `device` of each).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// `quire conflicts`.
pub fn run(a: ConflictsArgs) -> Result<()> {
    let (c, _) = connect(&a.target, None)?;
    let conflicts = match c.call(Request::Conflicts)? {
        Response::Conflicts { conflicts } => conflicts,
        _ => return Err(fail(Code::Io, "unexpected answer from the daemon")),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&conflicts)?);
        return Ok(());
    }
    c.header();
    if conflicts.is_empty() {
        println!("No conflict copies: every note has one version on every computer.");
        return Ok(());
    }
    for x in &conflicts {
        let made = [x.when.as_deref(), x.device.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        println!("{}", x.path);
        println!(
            "    a copy of {} kept by {}{}",
            x.original,
            x.tool,
            if made.is_empty() {
                String::new()
            } else {
                format!(" ({made})")
            }
        );
    }
    println!(
        "\n{} conflict cop{}. Each holds a version of its note that another computer saved while this one changed it too. Compare them (`diff`), keep what you need in the note, then delete the copy (it goes to the trash, with its history).",
        conflicts.len(),
        if conflicts.len() == 1 { "y" } else { "ies" }
    );
    Ok(())
}
