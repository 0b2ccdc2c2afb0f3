//! `quire passwd [VAULT]`: re-wraps the master key under a new password.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::init::KdfArgs;
use super::password::PasswordArgs;
use super::{password, paths};

/// Arguments of `quire passwd`.
#[derive(Args, Debug)]
pub struct PasswdArgs {
    /// Vault folder (default: ~/.local/share/quire/vault).
    vault: Option<PathBuf>,
    #[command(flatten)]
    current: PasswordArgs,
    /// Read the new password from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    new_password_file: Option<PathBuf>,
    /// Run CMD and use the first line it prints as the new password.
    #[arg(long, value_name = "CMD")]
    new_password_command: Option<String>,
    #[command(flatten)]
    kdf: KdfArgs,
    /// With the recovery key: set NAME's password (a vault with a
    /// password per person). Unlocked with a password, you change your own.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
}

pub fn run(a: PasswdArgs) -> Result<()> {
    let path = paths::absolute(&a.vault.clone().unwrap_or_else(paths::default_vault));
    let mut v = password::unlock(&path, &a.current, "Current password: ")?;
    paths::remember_audit_head(&mut v);
    let new = password::new_password(
        a.new_password_file.as_deref(),
        a.new_password_command.as_deref(),
        &match (v.opener().person(), a.user.as_deref()) {
            (Some(me), _) => format!("New password for {me}"),
            (None, Some(n)) => format!("New password for {n}"),
            (None, None) => "New password".to_string(),
        },
    )?;
    v.change_password(&new, a.kdf.params()?, a.user.as_deref())?;
    paths::remember_config(&v);
    if a.current.uses_recovery_key() {
        eprintln!(
            "Password changed. The recovery key you used still opens the vault: once it has been out of its safe place, replace it with `quire recovery-key --new`."
        );
    } else {
        eprintln!("Password changed. The recovery key is unchanged.");
    }
    Ok(())
}
