//! `quire user add|list|remove` (issue 20.1): a password per person. Each
//! person's password opens the vault as that person, so every audit record
//! names them; removing a person removes their slot.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::exit::{Code, fail};
use super::init::KdfArgs;
use super::password::PasswordArgs;
use super::{password, paths};

/// Arguments of `quire user`.
#[derive(Args, Debug)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Give NAME a password of their own (asked on the terminal, or read
    /// with --new-password-file). You unlock with yours (or the recovery key).
    Add {
        /// The person's name, as the audit log shows it ("Dr Ana Reyes").
        name: String,
        /// Vault folder (default: ~/.local/share/quire/vault).
        #[arg(long)]
        vault: Option<PathBuf>,
        /// Read NAME's password from the first line of FILE.
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
        /// Run CMD and use the first line it prints as NAME's password.
        #[arg(long, value_name = "CMD")]
        new_password_command: Option<String>,
        /// Make it the practice's break-glass password (emergency access:
        /// every use is recorded and reported; see the README).
        #[arg(long)]
        break_glass: bool,
        #[command(flatten)]
        kdf: KdfArgs,
        #[command(flatten)]
        current: PasswordArgs,
    },
    /// List who holds a password for the vault (no password needed).
    List {
        /// Vault folder (default: ~/.local/share/quire/vault).
        vault: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove NAME's password: it no longer opens the vault. A copy of the
    /// vault's key they may have kept still opens what it opened before
    /// (see the README's "Several people, one vault").
    Remove {
        /// The person's name (as `quire user list` shows it).
        #[arg(required_unless_present = "shared")]
        name: Option<String>,
        /// Remove the vault's shared (unnamed) password instead, once every
        /// person has their own.
        #[arg(long, conflicts_with = "name")]
        shared: bool,
        /// Vault folder (default: ~/.local/share/quire/vault).
        #[arg(long)]
        vault: Option<PathBuf>,
        #[command(flatten)]
        current: PasswordArgs,
    },
}

fn vault_path(v: &Option<PathBuf>) -> PathBuf {
    paths::absolute(&v.clone().unwrap_or_else(paths::default_vault))
}

pub fn run(a: UserArgs) -> Result<()> {
    match a.command {
        UserCommand::List { vault, json } => list(&vault_path(&vault), json),
        UserCommand::Add {
            name,
            vault,
            new_password_file,
            new_password_command,
            break_glass,
            kdf,
            current,
        } => {
            let path = vault_path(&vault);
            if !crate::format::config::valid_name(&name) {
                return Err(fail(
                    Code::Usage,
                    format!(
                        "{name:?} cannot name a person: use 1 to 64 bytes, no control characters, no spaces at either end, not only digits"
                    ),
                ));
            }
            let params = kdf.params()?;
            let mut v = password::unlock(&path, &current, "Your password: ")?;
            paths::remember_audit_head(&mut v);
            let new = password::new_password(
                new_password_file.as_deref(),
                new_password_command.as_deref(),
                &format!("Password for {name}"),
            )?;
            v.add_person(&name, &new, params, break_glass)
                .map_err(|e| refused(e, "nobody was added"))?;
            paths::remember_config(&v);
            if break_glass {
                eprintln!(
                    "Break-glass password {name:?} added. Seal it in an envelope kept where the practice keeps emergency keys; every use is recorded."
                );
            } else {
                eprintln!(
                    "{name} can now unlock the vault with their own password (`quire mount --as {}`); the audit log names them.",
                    shell_word(&name)
                );
            }
            Ok(())
        }
        UserCommand::Remove {
            name,
            shared,
            vault,
            current,
        } => {
            let path = vault_path(&vault);
            let mut v = password::unlock(&path, &current, "Your password: ")?;
            paths::remember_audit_head(&mut v);
            let who = if shared { None } else { name.as_deref() };
            v.remove_person(who)
                .map_err(|e| refused(e, "nothing was removed"))?;
            paths::remember_config(&v);
            match who {
                Some(n) => eprintln!(
                    "{n}'s password no longer opens the vault. If they may have kept a copy of the vault and its key, see \"Several people, one vault\" in the README."
                ),
                None => eprintln!("The shared password no longer opens the vault."),
            }
            Ok(())
        }
    }
}

/// A refusal of the vault layer, with what did not happen.
fn refused(e: crate::vault::Error, what: &str) -> anyhow::Error {
    match e {
        crate::vault::Error::Refused(why) => fail(Code::Refused, format!("{why}; {what}")),
        e => e.into(),
    }
}

/// `name` quoted for a shell when it needs it.
fn shell_word(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        name.to_string()
    } else {
        format!("'{}'", name.replace('\'', "'\\''"))
    }
}

fn list(path: &std::path::Path, json: bool) -> Result<()> {
    let locked = crate::vault::LockedVault::open(path)?;
    let slots = crate::vault::people::slots(locked.config());
    if json {
        println!("{}", serde_json::to_string_pretty(&slots)?);
        return Ok(());
    }
    println!("{:<32} {:<13} ARGON2", "WHO", "KIND");
    for s in &slots {
        let who = match (&s.name, s.kind) {
            (Some(n), _) => n.clone(),
            (None, "password") => "(shared password)".into(),
            (None, _) => "(recovery key)".into(),
        };
        let cost = s
            .argon2
            .map(|(m, t, p)| format!("{} MiB, {t} passes, {p} lanes", m / 1024))
            .unwrap_or_default();
        println!("{who:<32} {:<13} {cost}", s.kind);
    }
    eprintln!(
        "(read from quire.conf without the password; an unlock checks that this list was not changed)"
    );
    Ok(())
}
