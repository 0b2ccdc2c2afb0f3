//! Which vault a history, trash or check command works on: the mounted one
//! (through its daemon's control socket), or a sealed one opened here with
//! the password. Also turns a path as the user typed it into a vault path.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use clap::Args;

use super::exit::{Code, fail};
use super::password::PasswordArgs;
use super::{password, paths, runtime};
use crate::control::{self, Request, Response};
use crate::store::lock::VaultLock;
use crate::vault::{Notebook, UnlockedVault};

/// Options shared by the commands that work on notes of a vault.
#[derive(Args, Debug, Clone, Default)]
pub struct TargetArgs {
    /// Work on the sealed vault at VAULT (asks for the password); PATH is
    /// then a path inside the vault.
    #[arg(long, value_name = "VAULT", global = true)]
    pub vault: Option<PathBuf>,
    /// With several vaults mounted: the one mounted at DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "vault", global = true)]
    pub mountpoint: Option<PathBuf>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// A connection to a vault.
pub enum Conn {
    /// A mounted vault's daemon.
    Remote {
        /// Its control socket.
        socket: PathBuf,
        /// Where it is mounted.
        mountpoint: PathBuf,
        /// The vault folder, from the daemon's record.
        vault: Option<PathBuf>,
    },
    /// A sealed vault opened by this process (fields drop in order: the
    /// tree and its keys, then the vault, then the lock).
    Local {
        /// The vault folder.
        path: PathBuf,
        /// The tree.
        tree: Box<Notebook>,
        /// Keys.
        _vault: Box<UnlockedVault>,
        /// Held while working.
        _lock: VaultLock,
        /// The changes this command made, for the sealed search index.
        changes: Changes,
    },
}

/// Changes a sealed vault's tree reported (its listener's log).
type Changes = Arc<std::sync::Mutex<Vec<crate::vault::events::Change>>>;

impl Drop for Conn {
    /// A sealed vault's index takes in the command's changes before the
    /// tree and its keys go (issue 16.2).
    fn drop(&mut self) {
        if let Conn::Local {
            tree,
            _vault,
            changes,
            ..
        } = self
        {
            let c = std::mem::take(&mut *changes.lock().unwrap_or_else(|e| e.into_inner()));
            super::indexer::sync_sealed(tree, _vault, c);
        }
    }
}

impl Conn {
    /// Sends a request; an error response becomes a CLI error.
    pub fn call(&self, req: Request) -> Result<Response> {
        let r = match self {
            Conn::Remote { socket, .. } => control::call(socket, &req).map_err(|e| {
                fail(
                    Code::Io,
                    format!("cannot reach the daemon of this vault ({e}); is it still mounted?"),
                )
            })?,
            Conn::Local { tree, .. } => control::handle(tree, req, std::time::SystemTime::now()),
        };
        match r {
            Response::Error { errno, message } => Err(match errno {
                libc::ENOENT => fail(Code::NotFound, "no such note, version or trash entry"),
                libc::EISDIR if message.contains("is a folder") => fail(Code::NotFound, message),
                libc::EISDIR => fail(Code::NotFound, "that is a folder, not a note"),
                libc::EROFS => fail(Code::Io, "the vault is mounted read-only"),
                libc::EFBIG => fail(
                    Code::Refused,
                    "that note is larger than 64 MiB: read it through the mount (it keeps no versions either)",
                ),
                libc::EPERM | libc::EOPNOTSUPP => fail(Code::Refused, message),
                libc::EINVAL => fail(Code::Usage, message),
                libc::EIO => fail(
                    Code::Io,
                    format!(
                        "{message}: the data does not authenticate (damaged or tampered); run `quire check`"
                    ),
                ),
                _ => fail(Code::Io, message),
            }),
            r => Ok(r),
        }
    }

    /// The unlocked vault, for a sealed one opened here.
    pub fn sealed(&self) -> Option<(&Notebook, &UnlockedVault)> {
        match self {
            Conn::Local { tree, _vault, .. } => Some((tree, _vault)),
            Conn::Remote { .. } => None,
        }
    }

    /// Which vault this is, for the header of a listing: "~/Notes (vault
    /// ~/.local/share/quire/vault)" or "the sealed vault ~/x".
    pub fn describe(&self) -> String {
        match self {
            Conn::Remote {
                mountpoint, vault, ..
            } => match vault {
                Some(v) => format!("{} (vault {})", show_path(mountpoint), show_path(v)),
                None => show_path(mountpoint),
            },
            Conn::Local { path, .. } => format!("the sealed vault {}", show_path(path)),
        }
    }

    /// Prints the header line naming the vault (human output only).
    pub fn header(&self) {
        println!("Vault: {}", self.describe());
    }

    /// The mount point, for a mounted vault.
    pub fn mountpoint(&self) -> Option<&Path> {
        match self {
            Conn::Remote { mountpoint, .. } => Some(mountpoint),
            Conn::Local { .. } => None,
        }
    }
}

/// Lexically normalised absolute path (the file may not exist).
fn normalise(p: &Path) -> PathBuf {
    let abs = paths::absolute(p);
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// `p` with its nearest existing ancestor's symlinks resolved (the rest,
/// which does not exist, appended as it is).
fn resolve_existing(p: &Path) -> PathBuf {
    let mut base = p.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&base) {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return out;
        }
        match (base.file_name().map(|n| n.to_owned()), base.parent()) {
            (Some(n), Some(parent)) => {
                rest.push(n);
                base = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

pub(crate) fn open_sealed(vault: &Path, pw: &PasswordArgs) -> Result<Conn> {
    let vault = paths::absolute(vault);
    let lock = crate::vault::lock(&vault)
        .map_err(|e| match e {
            crate::vault::Error::Busy(_) => fail(
                Code::Busy,
                format!(
                    "the vault at {} is mounted: run this without --vault (it talks to the mounted vault)",
                    vault.display()
                ),
            ),
            e => e.into(),
        })?;
    let mut v = password::unlock(&vault, pw, "Password: ")?;
    paths::remember_audit_head(&mut v);
    let tree = v.tree(false)?;
    let changes: Changes = Arc::default();
    {
        let changes = changes.clone();
        tree.set_listener(Box::new(move |c| {
            changes.lock().unwrap_or_else(|e| e.into_inner()).push(c);
        }));
    }
    Ok(Conn::Local {
        path: vault.clone(),
        tree: Box::new(tree),
        _vault: Box::new(v),
        _lock: lock,
        changes,
    })
}

fn remote(m: &runtime::MountRecord) -> Conn {
    Conn::Remote {
        socket: runtime::socket_path(&m.mountpoint),
        mountpoint: m.mountpoint.clone(),
        vault: m.vault.clone(),
    }
}

/// `~/…` for paths in the home folder.
pub fn show_path(p: &Path) -> String {
    let home = paths::home();
    match p.strip_prefix(&home) {
        Ok(r) if !home.as_os_str().is_empty() && home != Path::new("/") => {
            format!("~/{}", r.display())
        }
        _ => p.display().to_string(),
    }
}

/// The vaults a command could have meant, for the message that asks the
/// user to choose.
fn choices(mounts: &[runtime::MountRecord], default_sealed: Option<&Path>) -> String {
    let mut lines = Vec::new();
    if let Some(d) = default_sealed {
        lines.push(format!("  {} (the default vault, sealed)", show_path(d)));
    }
    for m in mounts {
        lines.push(format!(
            "  {} mounted at {}",
            m.vault
                .as_deref()
                .map(show_path)
                .unwrap_or_else(|| "a vault".into()),
            show_path(&m.mountpoint)
        ));
    }
    lines.join("\n")
}

/// The path inside the mount at `mp` of `abs`, or an error saying that it
/// is outside the vault.
fn inside(abs: &Path, mp: &Path, typed: &Path) -> Result<String> {
    match abs.strip_prefix(mp) {
        Ok(r) => Ok(r.to_string_lossy().into_owned()),
        Err(_) => Err(fail(
            Code::NotFound,
            format!(
                "{} is outside the vault mounted at {}",
                typed.display(),
                show_path(mp)
            ),
        )),
    }
}

/// Connects to the vault a command means, and turns `path` (as typed)
/// into a path inside the vault. Like git finding its repository (issue
/// 10.4): `--vault` or `--mountpoint` if given; else the mount that holds
/// the path or the current folder; else the default vault (through its
/// mount if mounted); never, silently, another vault.
pub fn connect(t: &TargetArgs, path: Option<&Path>) -> Result<(Conn, String)> {
    let as_vault_path = |p: &Path| p.to_string_lossy().trim_matches('/').to_string();
    if let Some(v) = &t.vault {
        return Ok((
            open_sealed(v, &t.password)?,
            path.map(as_vault_path).unwrap_or_default(),
        ));
    }
    let mounts: Vec<_> = runtime::mounts()
        .into_iter()
        .filter(|m| m.pid.is_some() && !runtime::is_dead(&m.mountpoint))
        .collect();
    if let Some(mp) = &t.mountpoint {
        let mp = normalise(mp);
        let m = mounts.iter().find(|m| m.mountpoint == mp).ok_or_else(|| {
            fail(
                Code::NotMounted,
                format!("no vault is mounted at {}", mp.display()),
            )
        })?;
        let rel = match path {
            Some(p) if p.is_absolute() => inside(&normalise(p), &m.mountpoint, p)?,
            Some(p) => match normalise(p).strip_prefix(&m.mountpoint) {
                Ok(r) => r.to_string_lossy().into_owned(),
                Err(_) => as_vault_path(p),
            },
            None => String::new(),
        };
        return Ok((remote(m), rel));
    }
    // The mount holding the path, or the current folder.
    let cwd = std::env::current_dir().ok().map(|d| normalise(&d));
    let holding = |p: &Path| {
        mounts
            .iter()
            .filter(|m| p.starts_with(&m.mountpoint))
            .max_by_key(|m| m.mountpoint.as_os_str().len())
    };
    if let Some(p) = path {
        // As typed, then through its nearest existing folder with links
        // resolved (a note in the trash no longer exists; ~ may be a link).
        for q in [normalise(p), resolve_existing(&normalise(p))] {
            if let Some(m) = holding(&q) {
                return Ok((remote(m), inside(&q, &m.mountpoint, p)?));
            }
        }
    }
    if let Some(m) = cwd.as_deref().and_then(holding) {
        let rel = match path {
            // `..` out of the mount: outside the vault.
            Some(p) => inside(&normalise(p), &m.mountpoint, p)?,
            None => String::new(),
        };
        return Ok((remote(m), rel));
    }
    let rel = |m: Option<&runtime::MountRecord>| -> Result<String> {
        Ok(match (path, m) {
            (Some(p), Some(m)) if p.is_absolute() => inside(&normalise(p), &m.mountpoint, p)?,
            (Some(p), None) if p.is_absolute() => {
                return Err(fail(
                    Code::NotFound,
                    format!(
                        "{} is not inside a mounted vault: give a path inside the mount, or a path inside the vault with --vault DIR",
                        p.display()
                    ),
                ));
            }
            (Some(p), _) => as_vault_path(p),
            (None, _) => String::new(),
        })
    };
    // The default vault, mounted or sealed.
    let default = paths::default_vault();
    if let Some(m) = mounts
        .iter()
        .find(|m| m.vault.as_deref() == Some(default.as_path()))
    {
        return Ok((remote(m), rel(Some(m))?));
    }
    let default_exists = default.join("quire.conf").exists();
    match (default_exists, mounts.len()) {
        (true, 0) => Ok((open_sealed(&default, &t.password)?, rel(None)?)),
        // The only vault there is.
        (false, 1) => Ok((remote(&mounts[0]), rel(Some(&mounts[0]))?)),
        (false, 0) => Err(fail(
            Code::NoVault,
            format!(
                "no vault is mounted and there is no vault at {}: mount one (`quire mount`), or name one with --vault DIR",
                show_path(&default)
            ),
        )),
        (d, _) => Err(fail(
            Code::Usage,
            format!(
                "which vault? Run this inside a mount, or name one with --mountpoint DIR or --vault DIR:\n{}",
                choices(&mounts, d.then_some(default.as_path()))
            ),
        )),
    }
}
