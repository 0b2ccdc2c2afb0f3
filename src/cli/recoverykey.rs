//! `quire recovery-key --new [VAULT]` (issue 20.5): replaces the recovery
//! key after it was used or may have been seen. The old key stops opening
//! the vault at once; the new one is shown once (or written to a file).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

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
    // The file first: a new key that could not be written must not
    // replace the old one.
    let mut out = match &a.recovery_key_out {
        Some(f) => Some((
            super::init::recovery_key_file(f, "the recovery key was not changed")?,
            f.as_path(),
        )),
        None => None,
    };
    let forget = |out: &Option<(std::fs::File, &std::path::Path)>| {
        if let Some((_, f)) = out {
            let _ = std::fs::remove_file(f);
        }
    };
    let mut v = match password::unlock(&path, &a.current, "Password: ") {
        Ok(v) => v,
        Err(e) => {
            forget(&out);
            return Err(e);
        }
    };
    paths::remember_audit_head(&mut v);
    let rk = match v.replace_recovery_key() {
        Ok(rk) => rk,
        Err(e) => {
            forget(&out);
            return Err(e.into());
        }
    };
    paths::remember_config(&v);
    super::init::show_recovery_key(
        out.as_mut().map(|(o, f)| (o, *f)),
        rk.expose(),
        "Recovery key replaced: the old one no longer opens the vault.",
        "Destroy the old one. The new one opens the vault if the password is forgotten: `quire passwd --recovery-key`.",
    );
    Ok(())
}
