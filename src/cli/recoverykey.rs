//! `quire recovery-key --new [VAULT]` (issue 20.5): replaces the recovery
//! key after it was used or may have been seen. The old key stops opening
//! the vault at once; the new one is shown once (or written to a file).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::exit::{Code, fail};
use super::password::PasswordArgs;
use super::{password, paths};

/// Arguments of `quire recovery-key`.
#[derive(Args, Debug)]
pub struct RecoveryKeyArgs {
    /// Vault folder (default: ~/.local/share/quire/vault).
    vault: Option<PathBuf>,
    /// Make a new recovery key; the old one stops working.
    #[arg(long, required = true)]
    new: bool,
    /// Write the new key to FILE (created, 0600) instead of showing it.
    #[arg(long, value_name = "FILE")]
    recovery_key_out: Option<PathBuf>,
    #[command(flatten)]
    current: PasswordArgs,
}

pub fn run(a: RecoveryKeyArgs) -> Result<()> {
    let path = paths::absolute(&a.vault.clone().unwrap_or_else(paths::default_vault));
    // The file first (O_EXCL): a new key that could not be written must
    // not replace the old one.
    let mut out = match &a.recovery_key_out {
        Some(f) => Some((
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(f)
                .map_err(|e| {
                    fail(
                        Code::Io,
                        format!(
                            "cannot create {} ({e}); the recovery key was not changed",
                            f.display()
                        ),
                    )
                })?,
            f.clone(),
        )),
        None => None,
    };
    let unlocked = password::unlock(&path, &a.current, "Password: ");
    let mut v = match unlocked {
        Ok(v) => v,
        Err(e) => {
            if let Some((_, f)) = &out {
                let _ = std::fs::remove_file(f);
            }
            return Err(e);
        }
    };
    paths::remember_audit_head(&mut v);
    let rk = match v.replace_recovery_key() {
        Ok(rk) => rk,
        Err(e) => {
            if let Some((_, f)) = &out {
                let _ = std::fs::remove_file(f);
            }
            return Err(e.into());
        }
    };
    paths::remember_config(&v);
    match out.as_mut() {
        Some((o, f)) => {
            let written = writeln!(o, "{}", rk.expose()).and_then(|()| o.sync_all());
            if let Err(e) = written {
                eprintln!(
                    "quire: could not write the new recovery key to {} ({e}); here it is, shown only this once:",
                    f.display()
                );
                println!("    {}", rk.expose());
                return Ok(());
            }
            eprintln!(
                "Recovery key replaced: the old one no longer opens the vault. The new one was written to {}.",
                f.display()
            );
        }
        None => {
            eprintln!("Recovery key replaced: the old one no longer opens the vault.");
            eprintln!();
            eprintln!("Your new recovery key (shown only this once):");
            eprintln!();
            println!("    {}", rk.expose());
            eprintln!();
            eprintln!(
                "Write it down and keep it somewhere safe, away from this computer; destroy the old one."
            );
        }
    }
    Ok(())
}
