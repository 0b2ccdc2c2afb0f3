//! `quire unmount [MOUNTPOINT]`: seals a mounted vault and waits until the
//! daemon has wiped its keys and exited.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;

use super::exit::{Code, fail};
use super::{daemon, paths, runtime};

/// Arguments of `quire unmount`.
#[derive(Args, Debug)]
pub struct UnmountArgs {
    /// Mount point (default: the only mounted vault, else ~/Notes).
    mountpoint: Option<PathBuf>,
}

pub fn run(a: UnmountArgs) -> Result<()> {
    let mp = match a.mountpoint {
        Some(p) => paths::absolute(&p),
        None => {
            let all = runtime::mounts();
            if all.len() == 1 {
                all[0].mountpoint.clone()
            } else {
                paths::default_mountpoint()
            }
        }
    };
    let Some(rec) = runtime::find(&mp) else {
        return Err(fail(
            Code::NotMounted,
            format!("no vault is mounted at {}", mp.display()),
        ));
    };
    // A program that looks at the mount for a moment (a `df`, a file
    // manager, `quire status` in another terminal) makes the kernel answer
    // "busy": tried again for two seconds before the user is told.
    let mut tried = daemon::unmount_cmd(&mp, false);
    let deadline = Instant::now() + Duration::from_secs(2);
    while tried.as_ref().is_err_and(|e| e.contains("busy")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        tried = daemon::unmount_cmd(&mp, false);
    }
    if let Err(e) = tried {
        if e.contains("busy") {
            return Err(fail(
                Code::UnmountBusy,
                format!(
                    "files in {} are still in use: close them (and leave the folder in every terminal), then try again. `fuser -vm {}` lists the programs.",
                    mp.display(),
                    mp.display()
                ),
            ));
        }
        return Err(fail(
            Code::Other,
            format!("unmount of {} failed: {e}", mp.display()),
        ));
    }
    // Wait for the daemon to finish sealing.
    if let Some(pid) = rec.pid.filter(|&p| runtime::is_own_process(p)) {
        let deadline = Instant::now() + Duration::from_secs(60);
        // SAFETY: kill with signal 0 only checks for existence.
        while unsafe { libc::kill(pid, 0) } == 0 {
            if Instant::now() >= deadline {
                return Err(fail(
                    Code::Other,
                    format!(
                        "{} is unmounted, but the daemon (pid {pid}) has not finished sealing after 60 s; see `quire logs`",
                        mp.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    eprintln!("Sealed {}.", mp.display());
    Ok(())
}
