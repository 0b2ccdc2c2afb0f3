//! `quire devices`: the computers that use this vault (docs/FORMAT.md §18),
//! which one this is, and whether each has it mounted; `--rename` names
//! this one.

use anyhow::Result;
use clap::Args;

use super::exit::{Code, fail};
use super::target::{TargetArgs, connect};
use crate::control::{Request, Response};

/// `quire devices`.
#[derive(Args, Debug)]
pub struct DevicesArgs {
    /// Give this computer a new name (shown to the others in `quire
    /// devices`, in warnings and in the audit log). By default a device is
    /// named after its host name at its first mount.
    #[arg(long, value_name = "NAME")]
    rename: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// `quire devices`.
pub fn run(a: DevicesArgs) -> Result<()> {
    let (c, _) = connect(&a.target, None)?;
    let devices = match c.call(Request::Devices { rename: a.rename })? {
        Response::Devices { devices } => devices,
        _ => return Err(fail(Code::Io, "unexpected answer from the daemon")),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(());
    }
    c.header();
    if devices.is_empty() {
        println!("No device has mounted this vault yet (a device is recorded at its first mount).");
        return Ok(());
    }
    for d in devices {
        let me = if d.this_device {
            "  (this computer)"
        } else {
            ""
        };
        match &d.problem {
            Some(p) => println!("{}  ?  {p}{me}", &d.id[..7]),
            None => println!(
                "{}  {:<24} {} since {}{me}",
                &d.id[..7],
                d.name,
                d.state,
                super::runtime::format_time((d.since_ns.max(0) / 1_000_000_000) as u64)
            ),
        }
    }
    Ok(())
}
