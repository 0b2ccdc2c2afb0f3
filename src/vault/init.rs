//! Making a vault folder: `quire init`, and the new folder re-keying
//! fills (issue 20.1).

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;

use super::{Error, UnlockedVault, io_err, lock_new, recovery, tree};
use crate::crypto::kdf::Argon2Params;
use crate::crypto::{Key32, MasterKey, Password, random};
use crate::format::config::Config;
use crate::format::dirid;
use crate::store::host::Handle;
use crate::store::{Layout, atomic};

/// The result of `init`: the vault and the recovery key to show once.
pub struct Created {
    /// The new, unlocked vault.
    pub vault: UnlockedVault,
    /// The recovery key, formatted for the user.
    pub recovery_key: recovery::RecoveryText,
}

/// Creates a vault at `path` (which must not exist or be empty). `history: false` makes a vault without
/// versions and trash (feature flag 0x10 clear; docs/FORMAT.md §12).
pub fn init(
    path: &Path,
    password: &Password,
    params: Argon2Params,
    history: bool,
) -> Result<Created, Error> {
    let master = MasterKey::generate();
    let rk = Key32::random();
    let mut config = Config::new();
    if !history {
        config.flags &= !crate::format::config::FLAG_HISTORY;
    }
    config.add_password_slot(&master, password, params);
    config.add_recovery_slot(&master, &rk);
    config.seal_slots(&master);
    let vault = init_with(path, config, master, 0o777 & !current_umask())?;
    Ok(Created {
        recovery_key: recovery::encode(&rk),
        vault,
    })
}

/// Makes a vault folder at `path` (which must not exist or be empty) with
/// `config` (its slots sealed, opening `master`) and an empty tree whose
/// root has mode `root_mode`.
pub(crate) fn init_with(
    path: &Path,
    config: Config,
    master: MasterKey,
    root_mode: u32,
) -> Result<UnlockedVault, Error> {
    if path.exists() {
        let empty = std::fs::read_dir(path)
            .map_err(io_err(format!("reading {}", path.display())))?
            .next()
            .is_none();
        if !empty {
            return Err(Error::Exists(path.to_owned()));
        }
    }
    create_private_dir(path)?;
    let _lock = lock_new(path)?;
    let data = path.join(crate::store::DATA);
    create_private_dir(&data)?;
    // The data folder is the mount's root: it gets the mode a new folder
    // would (0777 less the umask, 0755 usually), so `--allow-other` lets
    // other users in (issue 10.9); `chmod` on the mount root changes it.
    // The vault folder around it stays 0700.
    std::fs::set_permissions(
        &data,
        std::os::unix::fs::PermissionsExt::from_mode(root_mode),
    )
    .map_err(io_err("setting the root folder's mode"))?;
    let root = Handle::open_path(&data).map_err(io_err("opening the data folder"))?;
    root.create_child_with(OsStr::new(dirid::FILE_NAME), &random::bytes::<16>(), 0o400)
        .map_err(io_err("writing the root directory ID"))?;
    atomic::sync_dir(&data).map_err(io_err("syncing the data folder"))?;
    let layout = Layout::new(
        path,
        crate::store::device_dir(&tree::hex(&config.vault_id), path),
    );
    atomic::write(&layout.config(), &config.to_bytes()).map_err(io_err("writing quire.conf"))?;
    layout.ensure_local().map_err(io_err(format!(
        "creating this device's folder for the vault, {}",
        layout.local().display()
    )))?;
    let keys = Arc::new(master.subkeys(&config.vault_id));
    Ok(UnlockedVault {
        layout,
        config,
        master,
        keys,
        audit: std::sync::OnceLock::new(),
        notices: Vec::new(),
        opener: crate::format::config::Opener::Password,
    })
}

/// This process's umask, read without changing it (`/proc/self/status`;
/// 0022 if that cannot be read).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

fn create_private_dir(p: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(io_err(format!("creating {}", p.display()))(e)),
    }
}
