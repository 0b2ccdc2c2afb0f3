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
    /// vault's key they may have kept still opens the vault folder, unless
    /// you also re-key (--rekey; see the README's "Several people, one
    /// vault").
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
        /// Then re-key the vault (see `quire user rekey`), so a copy of
        /// the old key they may have kept opens nothing of it.
        #[arg(long)]
        rekey: bool,
        /// With --rekey: write the new recovery key to FILE (created, 0600)
        /// instead of showing it.
        #[arg(long, value_name = "FILE", requires = "rekey")]
        recovery_key_out: Option<PathBuf>,
        #[command(flatten)]
        current: PasswordArgs,
    },
    /// Re-key the vault: a new master key, every note, version, trash
    /// entry and audit record written again under it, and a new recovery
    /// key. Only your password is kept: everyone else must be added again.
    /// The vault must be unmounted on every computer; it takes about three
    /// times as long as `quire check`.
    Rekey {
        /// Vault folder (default: ~/.local/share/quire/vault).
        vault: Option<PathBuf>,
        /// Write the new recovery key to FILE (created, 0600) instead of
        /// showing it.
        #[arg(long, value_name = "FILE")]
        recovery_key_out: Option<PathBuf>,
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
        UserCommand::Rekey {
            vault,
            recovery_key_out,
            current,
        } => rekey(&vault_path(&vault), &current, recovery_key_out, None),
        UserCommand::Remove {
            name,
            shared,
            vault,
            rekey: true,
            recovery_key_out,
            current,
        } => {
            let who = if shared { None } else { name.as_deref() };
            rekey(&vault_path(&vault), &current, recovery_key_out, Some(who))
        }
        UserCommand::Remove {
            name,
            shared,
            vault,
            current,
            ..
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

/// `quire user rekey`, or `user remove --rekey` (`remove`: whom first;
/// `Some(None)`, the shared password).
fn rekey(
    path: &std::path::Path,
    current: &PasswordArgs,
    out: Option<PathBuf>,
    remove: Option<Option<&str>>,
) -> Result<()> {
    let _lock = crate::vault::lock(path).map_err(|e| match e {
        crate::vault::Error::Busy(_) => fail(
            Code::Busy,
            "the vault is mounted (or another quire command is using it): unmount it on every computer, then re-key",
        ),
        e => e.into(),
    })?;
    // The file first: a key that could not be written must not be made.
    let mut out = match &out {
        Some(f) => Some((
            super::init::recovery_key_file(f, "the vault was not re-keyed")?,
            f.clone(),
        )),
        None => None,
    };
    let forget = |out: &Option<(std::fs::File, PathBuf)>| {
        if let Some((_, f)) = out {
            let _ = std::fs::remove_file(f);
        }
    };
    let res = (|| -> Result<_> {
        let (mut v, secret) = password::unlock_keeping(path, current, "Your password: ")?;
        paths::remember_audit_head(&mut v);
        let crate::vault::Secret::Password(pw) = &secret else {
            return Err(fail(
                Code::Refused,
                "re-keying keeps the password that unlocks it: unlock with your password, not the recovery key",
            ));
        };
        let started = std::time::Instant::now();
        let r = v
            .rekey(pw, remove, &mut |step| eprintln!("quire: {step}…"))
            .map_err(|e| refused(e, "the vault was not re-keyed"))?;
        let fresh = crate::vault::LockedVault::open(path)?
            .unlock_as(&secret, current.as_person.as_deref())?;
        let mut detail = format!(
            "re-keyed: {} files, {} versions, {} trash entries written under a new master key in {:.1} s; new recovery key",
            r.report.files,
            r.report.versions,
            r.report.trash_entries,
            started.elapsed().as_secs_f64()
        );
        if let Some(Some(n)) = remove {
            detail.push_str(&format!("; {n} removed first"));
        }
        if !r.dropped.is_empty() || r.dropped_shared {
            let mut who: Vec<String> = r.dropped.clone();
            if r.dropped_shared {
                who.push("the shared password".into());
            }
            detail.push_str(&format!("; to be added again: {}", who.join(", ")));
        }
        fresh.record_rekey(&detail);
        fresh.close_audit();
        paths::remember_config(&fresh);
        Ok(r)
    })();
    let r = match res {
        Ok(r) => r,
        Err(e) => {
            forget(&out);
            return Err(e);
        }
    };
    super::init::show_recovery_key(
        out.as_mut().map(|(o, f)| (o, f.as_path())),
        r.recovery_key.expose(),
        "Vault re-keyed: the old key, the old recovery key and every removed password open nothing of it.",
        "Destroy the old recovery key. The new one opens the vault if the password is forgotten: `quire passwd --recovery-key`.",
    );
    eprintln!(
        "{} files, {} versions and {} trash entries were written again and checked.",
        r.report.files, r.report.versions, r.report.trash_entries
    );
    for n in &r.dropped {
        eprintln!(
            "{n} must be added again: `quire user add {}` (they choose a new password).",
            shell_word(n)
        );
    }
    if r.dropped_shared {
        eprintln!("The shared password was not kept: everyone now unlocks with their own.");
    }
    eprintln!(
        "Backups: the re-keyed vault is a new vault to `quire backup`; start a new backup folder, and destroy the old backups when their keep period ends. On other computers: let the sync tool finish before mounting."
    );
    Ok(())
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
