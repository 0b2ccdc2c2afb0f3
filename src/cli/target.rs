//! Which vault a history, trash or check command works on: the mounted one
//! (through its daemon's control socket), or a sealed one opened here with
//! the password. Also turns a path as the user typed it into a vault path.

use std::path::{Component, Path, PathBuf};

use anyhow::Result;
use clap::Args;

use super::exit::{Code, fail};
use super::{PasswordArgs, password, paths, runtime};
use crate::control::{self, Request, Response};
use crate::store::lock::VaultLock;
use crate::vault::{LockedVault, Tree, UnlockedVault};

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
    },
    /// A sealed vault opened by this process (fields drop in order: the
    /// tree and its keys, then the vault, then the lock).
    Local {
        /// The tree.
        tree: Box<Tree>,
        /// Keys.
        _vault: Box<UnlockedVault>,
        /// Held while working.
        _lock: VaultLock,
    },
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
                libc::EISDIR => fail(Code::NotFound, "that is a folder, not a note"),
                libc::EROFS => fail(Code::Io, "the vault is mounted read-only"),
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
    pub fn sealed(&self) -> Option<(&Tree, &UnlockedVault)> {
        match self {
            Conn::Local { tree, _vault, .. } => Some((tree, _vault)),
            Conn::Remote { .. } => None,
        }
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

fn open_sealed(vault: &Path, pw: &PasswordArgs) -> Result<Conn> {
    let vault = paths::absolute(vault);
    let lock = crate::vault::lock(&crate::vault::open_layout(&vault))
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
    let locked = LockedVault::open(&vault)?;
    let mut v = locked.unlock(&password::unlock_secret(pw)?)?;
    paths::remember_audit_head(&mut v);
    let tree = v.tree(false)?;
    Ok(Conn::Local {
        tree: Box::new(tree),
        _vault: Box::new(v),
        _lock: lock,
    })
}

fn remote(m: &runtime::MountRecord) -> Conn {
    Conn::Remote {
        socket: runtime::socket_path(&m.mountpoint),
        mountpoint: m.mountpoint.clone(),
    }
}

/// Connects to the vault a command means, and turns `path` (as typed)
/// into a path inside the vault.
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
            Some(p) => match normalise(p).strip_prefix(&m.mountpoint) {
                Ok(r) => r.to_string_lossy().into_owned(),
                Err(_) => as_vault_path(p),
            },
            None => String::new(),
        };
        return Ok((remote(m), rel));
    }
    if let Some(p) = path {
        let abs = normalise(p);
        if let Some(m) = mounts.iter().find(|m| abs.starts_with(&m.mountpoint)) {
            let rel = abs
                .strip_prefix(&m.mountpoint)
                .expect("checked")
                .to_string_lossy()
                .into_owned();
            return Ok((remote(m), rel));
        }
    }
    match mounts.len() {
        0 => {
            let v = paths::default_vault();
            Ok((
                open_sealed(&v, &t.password)?,
                path.map(as_vault_path).unwrap_or_default(),
            ))
        }
        1 => Ok((
            remote(&mounts[0]),
            path.map(as_vault_path).unwrap_or_default(),
        )),
        _ => Err(fail(
            Code::Usage,
            "several vaults are mounted: pick one with --mountpoint DIR",
        )),
    }
}
