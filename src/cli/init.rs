//! `quire init [VAULT]`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::{password, paths};
use crate::crypto::kdf::Argon2Params;
use crate::vault::{self, Created};

/// Arguments of `quire init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Vault folder to create (default: ~/.local/share/quire/vault).
    vault: Option<PathBuf>,
    #[command(flatten)]
    kdf: KdfArgs,
    /// Read the new password from the first line of FILE.
    #[arg(
        long,
        value_name = "FILE",
        env = "QUIRE_PASSWORD_FILE",
        conflicts_with = "password_command"
    )]
    password_file: Option<PathBuf>,
    /// Run CMD with `sh -c` and use the first line it prints as the new password.
    #[arg(long, value_name = "CMD")]
    password_command: Option<String>,
    /// Write the recovery key to FILE (mode 0600) instead of printing it.
    #[arg(long, value_name = "FILE")]
    recovery_key_out: Option<PathBuf>,
    /// Keep no history of saves and no trash (deleting is final).
    #[arg(long)]
    no_history: bool,
}

/// Argon2id cost of the password slot.
#[derive(Args, Debug, Clone)]
pub struct KdfArgs {
    /// Argon2id memory in MiB (at least 8; default 64).
    #[arg(long, value_name = "MIB", default_value_t = 64, hide = true)]
    pub kdf_memory: u32,
    /// Argon2id passes (default 3).
    #[arg(long, value_name = "N", default_value_t = 3, hide = true)]
    pub kdf_passes: u32,
}

impl KdfArgs {
    /// The parameters, validated.
    pub fn params(&self) -> Result<Argon2Params> {
        let p = Argon2Params {
            m_kib: self.kdf_memory.saturating_mul(1024),
            t: self.kdf_passes,
            p: 4,
        };
        if !p.in_bounds() || p.exceeds(&Argon2Params::CEILING) {
            return Err(super::exit::fail(
                super::exit::Code::Usage,
                "Argon2 parameters out of range",
            ));
        }
        Ok(p)
    }
}

pub fn run(a: InitArgs) -> Result<()> {
    let path = paths::absolute(&a.vault.clone().unwrap_or_else(paths::default_vault));
    let params = a.kdf.params()?;
    create(
        &path,
        params,
        a.password_file.as_deref(),
        a.password_command.as_deref(),
        a.recovery_key_out.as_deref(),
        !a.no_history,
    )?;
    Ok(())
}

/// Creates a vault and shows the recovery key; shared with `mount`'s offer.
pub fn create(
    path: &std::path::Path,
    params: Argon2Params,
    pw_file: Option<&std::path::Path>,
    pw_cmd: Option<&str>,
    rk_out: Option<&std::path::Path>,
    history: bool,
) -> Result<vault::UnlockedVault> {
    if path.exists() && std::fs::read_dir(path)?.next().is_some() {
        return Err(vault::Error::Exists(path.to_owned()).into());
    }
    // The recovery key's file is made first (O_EXCL, 0600): a vault whose
    // key could not be written would be a vault without a recovery key
    // (issue 17.9). It is removed again if the vault cannot be made.
    let mut rk_file = match rk_out {
        Some(f) => Some((recovery_key_file(f, "nothing was created")?, f)),
        None => None,
    };
    let forget_rk = |rk: &Option<(std::fs::File, &std::path::Path)>| {
        if let Some((_, f)) = rk {
            let _ = std::fs::remove_file(f);
        }
    };
    eprintln!("Creating a new vault at {}", path.display());
    let made = password::new_password(pw_file, pw_cmd, "New password")
        .and_then(|pw| Ok(vault::init(path, &pw, params, history)?));
    let Created {
        vault,
        recovery_key,
    } = match made {
        Ok(c) => c,
        Err(e) => {
            forget_rk(&rk_file);
            return Err(e);
        }
    };
    show_recovery_key(
        rk_file.as_mut().map(|(o, f)| (o, *f)),
        recovery_key.expose(),
        "Vault created.",
        "It opens the vault if the password is forgotten: `quire passwd --recovery-key`.",
    );
    Ok(vault)
}

/// Creates the file a new recovery key goes to (`O_EXCL`, 0600, never
/// through a symlink) before anything changes: a key that could not be
/// written must not be made (issue 17.9). `unchanged` ends the error
/// ("nothing was created").
pub(super) fn recovery_key_file(f: &std::path::Path, unchanged: &str) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(f)
        .map_err(|e| {
            super::exit::fail(
                super::exit::Code::Io,
                format!(
                    "cannot create the recovery key file {} ({e}); {unchanged}",
                    f.display()
                ),
            )
        })
}

/// Gives the user a new recovery key: written to `out` (and told where),
/// or printed once with how to keep it. If the file cannot be written the
/// key is printed instead: it exists now and must not be lost. `done`
/// says what happened; `use_` what the key is for.
pub(super) fn show_recovery_key(
    out: Option<(&mut std::fs::File, &std::path::Path)>,
    key: &str,
    done: &str,
    use_: &str,
) {
    match out {
        Some((o, f)) => {
            use std::io::Write;
            let written = writeln!(o, "{key}").and_then(|()| o.sync_all());
            if let Err(e) = written {
                eprintln!(
                    "quire: could not write the recovery key to {} ({e}); here it is, shown only this once:",
                    f.display()
                );
                println!("    {key}");
                return;
            }
            eprintln!("{done} The recovery key was written to {}.", f.display());
        }
        None => {
            eprintln!("{done}");
            eprintln!();
            eprintln!("Your recovery key (shown only this once):");
            eprintln!();
            println!("    {key}");
            eprintln!();
            eprintln!("Write it down and keep it somewhere safe, away from this computer.");
            eprintln!("{use_}");
        }
    }
}
