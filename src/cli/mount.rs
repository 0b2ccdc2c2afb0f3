//! `quire mount [VAULT] [MOUNTPOINT]`: unlock, then serve the vault in the
//! background (or the foreground) until it is unmounted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::exit::{Code, fail};
use super::init::KdfArgs;
use super::password::PasswordArgs;
use super::{daemon, password, paths, runtime};
use crate::vault::{self, LockedVault};

/// Arguments of `quire mount`.
#[derive(Args, Debug)]
pub struct MountArgs {
    /// Vault folder (default: ~/.local/share/quire/vault).
    pub vault: Option<PathBuf>,
    /// Where to show the notes (default: ~/Notes; created if missing).
    pub mountpoint: Option<PathBuf>,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Stay attached to the terminal and log to stderr.
    #[arg(long, short = 'f')]
    pub foreground: bool,
    /// Mount read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Let other users (and root) reach the mount. Needs `user_allow_other`
    /// in /etc/fuse.conf unless run as root. Off by default.
    #[arg(long)]
    pub allow_other: bool,
    /// Seal the vault after this long without file activity (e.g. 30m, 2h).
    /// Never while a file is open or a program is inside the folder.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle: Option<Duration>,
    /// FUSE worker threads.
    #[arg(long, default_value_t = 4, hide = true)]
    pub threads: usize,
    /// Do not index notes this session (for measurements: search is off
    /// until the next mount, which catches the index up).
    #[arg(long, hide = true)]
    pub no_index: bool,
    #[command(flatten)]
    kdf: KdfArgs,
}

/// Parses `90s`, `30m`, `2h`, `1d`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut total = 0u64;
    let mut num = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration like 30m or 2h"))?;
        let mult = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "`{s}` is not a duration like 30m or 2h (units: s, m, h, d)"
                ));
            }
        };
        total += n * mult;
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any || total == 0 {
        return Err(format!(
            "`{s}` is not a duration like 30m or 2h (units: s, m, h, d)"
        ));
    }
    Ok(Duration::from_secs(total))
}

fn check_fuse() -> Result<()> {
    if !Path::new("/dev/fuse").exists() {
        return Err(fail(
            Code::NoFuse,
            "/dev/fuse is missing: FUSE is not available on this machine",
        ));
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("fusermount3").is_file()))
        .unwrap_or(false);
    if !found && !root {
        return Err(fail(
            Code::NoFuse,
            "fusermount3 is not installed: install the fuse3 package (sudo apt-get install fuse3)",
        ));
    }
    Ok(())
}

/// Prepares the mount point; returns the names it holds (none: empty).
fn prepare_mountpoint(mp: &Path, is_default: bool) -> Result<Vec<std::ffi::OsString>> {
    // Before the password is asked: a runtime folder another user holds
    // is refused (issue 11.1).
    runtime::ensure_dir().map_err(|e| fail(Code::Io, e.to_string()))?;
    if runtime::find(mp).is_some() && runtime::is_dead(mp) {
        // A daemon that was killed leaves its mount behind ("transport
        // endpoint is not connected"): clean it up instead of refusing.
        let _ = super::daemon::unmount_cmd(mp, true);
        runtime::remove(mp);
    }
    if runtime::find(mp).is_some() {
        return Err(fail(
            Code::Busy,
            format!(
                "a vault is already mounted at {}; see `quire status`",
                mp.display()
            ),
        ));
    }
    match std::fs::metadata(mp) {
        Ok(m) if !m.is_dir() => Err(fail(
            Code::MountPoint,
            format!("{} is not a folder", mp.display()),
        )),
        Ok(_) => {
            let it = std::fs::read_dir(mp).map_err(|e| {
                fail(
                    Code::MountPoint,
                    format!("cannot read {}: {e}", mp.display()),
                )
            })?;
            let mut names: Vec<_> = it.flatten().map(|e| e.file_name()).collect();
            names.sort();
            Ok(names)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !is_default && !mp.parent().map(|p| p.is_dir()).unwrap_or(false) {
                return Err(fail(
                    Code::MountPoint,
                    format!("the folder containing {} does not exist", mp.display()),
                ));
            }
            std::fs::create_dir_all(mp)
                .map_err(|e| {
                    fail(
                        Code::MountPoint,
                        format!("cannot create {}: {e}", mp.display()),
                    )
                })
                .map(|()| Vec::new())
        }
        Err(e) => Err(fail(
            Code::MountPoint,
            format!("cannot use {}: {e}", mp.display()),
        )),
    }
}

/// A vault that is in use: says where it is mounted, when it is (issue
/// 10.8), rather than only that it is busy.
fn already_mounted(e: vault::Error, vault_path: &Path) -> anyhow::Error {
    if !matches!(e, vault::Error::Busy(_)) {
        return e.into();
    }
    match runtime::mounts()
        .into_iter()
        .find(|m| m.vault.as_deref() == Some(vault_path))
    {
        Some(m) => fail(
            Code::Busy,
            format!(
                "the vault at {} is already mounted at {}: your notes are there (`quire unmount {}` seals it)",
                vault_path.display(),
                m.mountpoint.display(),
                m.mountpoint.display()
            ),
        ),
        None => e.into(),
    }
}

/// The error for a mount point holding files: they are plaintext that a
/// program saved there while the vault was sealed (or someone's files),
/// named as such, with the command that moves them in (issue 16.1).
fn unencrypted(mp: &Path, names: &[std::ffi::OsString], a: &MountArgs) -> anyhow::Error {
    let mut cmd = "quire import".to_string();
    for p in [&a.vault, &a.mountpoint].into_iter().flatten() {
        cmd.push(' ');
        cmd.push_str(&p.display().to_string());
    }
    fail(
        Code::MountPoint,
        format!(
            "{} is not empty: {}. Nothing was mounted. Run `{cmd}` to move them into the vault (they are encrypted, and the plaintext is overwritten and removed), or move them somewhere else yourself.",
            mp.display(),
            stray_list(names)
        ),
    )
}

/// "it holds 7 item(s) that are NOT encrypted: a, b, c, d, e and 2 more.
/// A program probably saved them there while the vault was sealed"
fn stray_list(names: &[std::ffi::OsString]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(5)
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let more = if names.len() > shown.len() {
        format!(" and {} more", names.len() - shown.len())
    } else {
        String::new()
    };
    format!(
        "it holds {} item(s) that are NOT encrypted: {}{more}. A program probably saved them there while the vault was sealed",
        names.len(),
        shown.join(", ")
    )
}

/// Names the unencrypted files found in the mount point on a terminal
/// and asks whether to move them into the vault now (`quire import`).
fn offer_import(mp: &Path, names: &[std::ffi::OsString]) -> bool {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprintln!("{}: {}.", mp.display(), stray_list(names));
    password::confirm(
        "Move them into the vault now (they are encrypted, and the plain copies overwritten and removed)?",
    )
}

/// `quire mount`.
pub fn run(a: MountArgs) -> Result<()> {
    run_with(a, false)
}

/// Arguments of `quire import`: those of `quire mount`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub mount: MountArgs,
}

/// `quire import`: `quire mount` over a mount point holding unencrypted
/// files, which are then moved into the vault (`cli::import`).
pub fn run_import(a: ImportArgs) -> Result<()> {
    run_with(a.mount, true)
}

/// `quire mount`, or with `import`, `quire import` (see `cli::import`).
pub fn run_with(a: MountArgs, import: bool) -> Result<()> {
    let mut import = import;
    let vault_path = paths::absolute(&a.vault.clone().unwrap_or_else(paths::default_vault));
    let is_default_mp = a.mountpoint.is_none();
    let mp = paths::absolute(
        &a.mountpoint
            .clone()
            .unwrap_or_else(paths::default_mountpoint),
    );
    check_fuse()?;

    let unlocked = match LockedVault::open(&vault_path) {
        Ok(locked) => {
            let lock = vault::lock(&vault_path).map_err(|e| already_mounted(e, &vault_path))?;
            drop(locked);
            let stray = prepare_mountpoint(&mp, is_default_mp)?;
            if !stray.is_empty() && !import {
                // On a terminal the import is offered at once.
                if !a.foreground && !a.read_only && offer_import(&mp, &stray) {
                    import = true;
                } else {
                    return Err(unencrypted(&mp, &stray, &a));
                }
            }
            (
                password::unlock(&vault_path, &a.password, "Password: ")?,
                lock,
            )
        }
        Err(vault::Error::NoVault(_)) => {
            if !password::confirm(&format!(
                "There is no vault at {}. Create one now?",
                vault_path.display()
            )) {
                return Err(fail(
                    Code::NoVault,
                    format!(
                        "there is no vault at {}: create one with `quire init`",
                        vault_path.display()
                    ),
                ));
            }
            let v = super::init::create(
                &vault_path,
                a.kdf.params()?,
                a.password.password_file.as_deref(),
                a.password.password_command.as_deref(),
                None,
                true,
            )?;
            let lock = vault::lock(&vault_path)?;
            let stray = prepare_mountpoint(&mp, is_default_mp)?;
            if !stray.is_empty() && !import {
                return Err(unencrypted(&mp, &stray, &a));
            }
            (v, lock)
        }
        Err(e) => return Err(e.into()),
    };
    let (mut v, lock) = unlocked;
    paths::remember_audit_head(&mut v);
    if let Some(w) = super::status::low_space(&vault_path) {
        eprintln!("quire: {w}");
    }
    // A broken or rolled-back audit log stays an alarm at every mount
    // until it is reviewed and accepted (issue 17.1, 16.8).
    if let Some(b) = v.audit_alarm() {
        eprintln!(
            "quire: warning: the audit log is BROKEN: {b}.\n       Review it with `quire audit` (and `quire audit --verify`); if what it shows is right (say, a backup you restored on purpose), accept it with `quire audit --accept`."
        );
    }
    // Another device with the vault open (or killed with it open): what it
    // writes reaches this one only through the sync tool (issue 18.1).
    if let Ok(d) = v.devices() {
        for o in d.others_unsealed() {
            if let Ok(r) = &o.record {
                eprintln!(
                    "quire: note: {} ({}) has had this vault mounted since {} (or was stopped without unmounting it). Its changes reach this computer only through your sync tool: edit each note on one computer at a time, and unmount there when you are done.",
                    r.name,
                    crate::format::devices::short(&o.id),
                    super::runtime::format_time((r.since.max(0) / 1_000_000_000) as u64)
                );
            }
        }
    }
    if a.read_only
        && [v.layout().undo(), v.layout().old_shared(crate::store::UNDO)]
            .iter()
            .any(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0))
    {
        // A read-only mount does not roll back (it writes nothing).
        eprintln!(
            "quire: a crash interrupted changes in this vault; in a read-only mount the files they touched show the interrupted change (or read as I/O errors). Mount it once without --read-only to roll them back to their last saved content."
        );
    }
    let opts = daemon::Options {
        mountpoint: mp.clone(),
        read_only: a.read_only,
        allow_other: a.allow_other,
        idle: a.idle,
        threads: a.threads.max(1),
        no_index: a.no_index,
    };
    if a.foreground {
        if import {
            return Err(fail(
                Code::Usage,
                "quire import mounts in the background: leave out --foreground",
            ));
        }
        return daemon::run_foreground(v, lock, opts);
    }
    if !import {
        return daemon::run_background(v, lock, opts);
    }
    // The covered folder, reached under the mount through this handle.
    let covered = crate::store::host::Handle::open_path(&mp).map_err(|e| {
        fail(
            Code::MountPoint,
            format!("cannot open {}: {e}", mp.display()),
        )
    })?;
    let read_only = a.read_only;
    daemon::run_background(v, lock, opts)?;
    if read_only {
        eprintln!("quire: mounted read-only: nothing was imported (mount read-write to import)");
        return Ok(());
    }
    let r = super::import::import(&covered, &mp);
    for (from, to) in &r.renamed {
        eprintln!("  {from} -> {to} (the vault already had that name)");
    }
    eprintln!(
        "Imported {} item(s) ({} bytes) into the vault; their unencrypted copies were overwritten and removed.",
        r.files, r.bytes
    );
    if !r.left.is_empty() {
        for l in &r.left {
            eprintln!("  not imported: {l}");
        }
        return Err(fail(
            Code::Io,
            format!(
                "{} item(s) were not imported and are still unencrypted under the mount (see above); the vault is mounted",
                r.left.len()
            ),
        ));
    }
    Ok(())
}
