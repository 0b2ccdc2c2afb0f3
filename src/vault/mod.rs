//! Layer 2: the vault domain. A [`LockedVault`] is a vault folder with a
//! parsed config; unlocking it with a password or the recovery key gives an
//! [`UnlockedVault`] holding the subkeys, from which the [`Tree`] (the
//! decrypted namespace) is opened.
//!
//! Error policy: every failure a user can cause or fix is a distinct
//! [`Error`] variant; `cli` alone turns them into messages and exit codes.

pub mod audit;
pub mod backup;
pub mod check;
pub mod content;
pub mod debris;
pub mod devices;
mod error;
pub mod events;
pub mod expiry;
pub mod failures;
pub mod features;
mod folders;
pub mod gate;
pub mod history;
mod init;
pub mod journal;
pub mod lifecycle;
pub mod logfile;
pub mod node;
pub mod notebook;
pub mod people;
pub mod recovery;
pub mod rekey;
pub mod trash;
pub mod tree;
mod upgrade;
pub(crate) mod util;
mod xattrs;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::format::audit::{Event as AuditEvent, Record as AuditRecord};
pub use crate::format::lifecycle::Dates;
pub use crate::store::host::Time;
pub use content::OpenFile;
pub use error::Error;
pub use init::{Created, init};
pub use node::{Attr, Kind, Node, open_handles};
pub use notebook::Notebook;
pub use tree::{DirEntry, Owner, Tree};

use crate::crypto::{Key32, MasterKey, Password, SubKeys};
use crate::format::config::{Config, Unlock};
use crate::format::dirid;
use crate::store::Layout;
use crate::store::host::Handle;
use crate::store::lock::{LockError, VaultLock};

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io {
        context: context.into(),
        source,
    }
}

/// What a vault is opened with.
pub enum Secret {
    /// The password.
    Password(Password),
    /// The recovery key.
    Recovery(Key32),
}

/// A vault folder with a valid config, not yet unlocked.
pub struct LockedVault {
    layout: Layout,
    config: Config,
}

impl LockedVault {
    /// Opens the vault folder at `path` and parses its config.
    pub fn open(path: &Path) -> Result<LockedVault, Error> {
        let config_path = path.join(crate::store::CONFIG);
        if !path.exists() {
            return Err(Error::NoVault(path.to_owned()));
        }
        let bytes = match crate::store::safe::read(&config_path, crate::store::safe::MAX_CONFIG) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotAVault(path.to_owned()));
            }
            Err(e) => return Err(io_err(format!("reading {}", config_path.display()))(e)),
        };
        let config = Config::from_bytes(&bytes).map_err(|source| Error::Format {
            path: config_path.clone(),
            source,
        })?;
        let layout = Layout::new(
            path,
            crate::store::device_dir(&tree::hex(&config.vault_id), path),
        );
        if !layout.data().join(dirid::FILE_NAME).is_file() {
            return Err(Error::Damaged(format!(
                "{} is missing",
                layout.data().join(dirid::FILE_NAME).display()
            )));
        }
        Ok(LockedVault { layout, config })
    }

    /// The vault folder.
    pub fn path(&self) -> &Path {
        self.layout.root()
    }

    /// The parsed (not yet authenticated) config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The vault ID in hex.
    pub fn id_hex(&self) -> String {
        tree::hex(&self.config.vault_id)
    }

    /// Sync tools' conflict copies of `quire.conf` in the vault folder
    /// (`quire.sync-conflict-….conf`, `quire (conflicted copy ….conf`, …)
    /// that are configs of this vault: (file name, config).
    fn config_copies(&self) -> Vec<(String, Config)> {
        config_copies(self.layout.root(), &self.config.vault_id)
    }

    /// The master key from a conflict copy of the config that `secret`
    /// opens, if the current config holds the same key.
    fn master_from_config_copies(&self, secret: &Secret) -> Option<(MasterKey, String)> {
        self.config_copies().into_iter().find_map(|(name, c)| {
            let u = match secret {
                Secret::Password(p) => Unlock::Password(p),
                Secret::Recovery(k) => Unlock::Recovery(k),
            };
            let m = c.unlock(u).ok()?;
            if !self.config.holds(&m) {
                log::warn!("{name} opens with this secret but holds another master key: not used");
                return None;
            }
            Some((m, name))
        })
    }

    /// Unlocks with a password or the recovery key.
    pub fn unlock(self, secret: &Secret) -> Result<UnlockedVault, Error> {
        self.unlock_as(secret, None)
    }

    /// Unlocks with a password (with `person`, only that person's named
    /// slot is tried) or the recovery key.
    pub fn unlock_as(self, secret: &Secret, person: Option<&str>) -> Result<UnlockedVault, Error> {
        let (unlock, err) = match secret {
            Secret::Password(p) => (Unlock::Password(p), Error::WrongPassword),
            Secret::Recovery(k) => (Unlock::Recovery(k), Error::WrongRecoveryKey),
        };
        let mut notices = Vec::new();
        let mut opener = crate::format::config::Opener::Recovery;
        let master = match self.config.unlock_as(unlock, person) {
            Ok((m, i)) => {
                opener = crate::format::config::Opener::of(&self.config.slots[i]);
                m
            }
            Err(crate::format::config::UnlockError::NoSuchPerson(p)) => {
                return Err(Error::NoSuchPerson(p));
            }
            Err(crate::format::config::UnlockError::Modified(what)) => {
                return Err(Error::ConfigModified(what));
            }
            Err(crate::format::config::UnlockError::Wrong) => {
                // The password may have been changed on two computers
                // while they were apart: the sync tool kept the other
                // change as `quire.conf` and this one as a conflict copy
                // (issue 18.6).
                if matches!(secret, Secret::Password(_)) {
                    opener = crate::format::config::Opener::Password;
                }
                let Some((m, copy)) = self.master_from_config_copies(secret) else {
                    self.note_failed_unlock(matches!(secret, Secret::Recovery(_)));
                    return Err(err);
                };
                notices.push(format!(
                    "this password opened {copy}, a copy of the vault's config a sync tool kept when the password was changed on two computers at the same time; the other computer's password is the vault's now. Run `quire passwd` to choose the password from now on (that removes the copy)."
                ));
                m
            }
        };
        let keys = Arc::new(master.subkeys(&self.config.vault_id));
        self.layout.ensure_local().map_err(io_err(format!(
            "creating this device's folder for the vault, {}",
            self.layout.local().display()
        )))?;
        let from_copy = !notices.is_empty();
        match devices::adopt_machine(&self.layout) {
            Ok(false) => {}
            Ok(true) => {
                let msg = "this computer's folder for the vault was copied from another computer (a restored home folder?): this computer is now a device of its own, with a new ID (see `quire devices`)".to_string();
                log::warn!("{msg}");
                notices.push(msg);
            }
            Err(e) => log::warn!("could not check which machine made this device's ID ({e})"),
        }
        let mut v = UnlockedVault {
            layout: self.layout,
            config: self.config,
            master,
            keys,
            audit: std::sync::OnceLock::new(),
            notices,
            opener,
        };
        v.report_failed_unlocks();
        v.report_break_glass();
        // Recorded whatever is done next (docs/FORMAT.md §16).
        if from_copy {
            v.record_unlock(
                crate::format::audit::Event::PasswordChange,
                "unlocked with a password from a conflicting copy of quire.conf",
            );
        }
        if matches!(secret, Secret::Recovery(_)) {
            v.record_unlock(
                crate::format::audit::Event::RecoveryKey,
                "unlocked with the recovery key",
            );
        }
        Ok(v)
    }
}

/// An unlocked vault: the master key and subkeys live here and are wiped
/// when it (and every [`Tree`] opened from it) is dropped.
pub struct UnlockedVault {
    layout: Layout,
    config: Config,
    master: MasterKey,
    keys: Arc<SubKeys>,
    audit: std::sync::OnceLock<Arc<audit::AuditLog>>,
    /// What the user should be told about this unlock.
    notices: Vec<String>,
    /// Which kind of slot opened it (and whose, for a named slot).
    opener: crate::format::config::Opener,
}

/// Conflict copies of `quire.conf` in `root` that are configs of the vault
/// `id` (docs/FORMAT.md §2.3).
fn config_copies(root: &Path, id: &[u8; 16]) -> Vec<(String, Config)> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Config)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name == crate::store::CONFIG
                || !name.starts_with("quire")
                || !name.ends_with(".conf")
            {
                return None;
            }
            let b = crate::store::safe::read(&e.path(), 64 << 10).ok()?;
            let c = Config::from_bytes(&b).ok()?;
            (c.vault_id == *id).then_some((name, c))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Takes the vault lock, mapping a held lock to [`Error::Busy`].
/// A daemon that was just killed can hold the lock for a moment while the
/// kernel tears it down, so a busy lock is retried briefly.
pub fn lock(root: &Path) -> Result<VaultLock, Error> {
    // Only a vault folder is locked (issue 16.6: `quire check ~/Notes`
    // once made a `quire.lock` note in the mounted vault).
    match std::fs::symlink_metadata(root.join(crate::store::CONFIG)) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(Error::NotAVault(root.to_owned())),
        Err(_) if !root.exists() => return Err(Error::NoVault(root.to_owned())),
        Err(_) => return Err(Error::NotAVault(root.to_owned())),
    }
    lock_new(root)
}

/// Takes the lock of a vault being made (`init`: no config yet).
pub(crate) fn lock_new(root: &Path) -> Result<VaultLock, Error> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    loop {
        match VaultLock::try_acquire(root) {
            Ok(l) => return Ok(l),
            Err(LockError::Busy) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(LockError::Busy) => return Err(Error::Busy(root.to_owned())),
            Err(LockError::Io(e)) => {
                return Err(io_err(format!("locking {}", root.display()))(e));
            }
        }
    }
}

impl UnlockedVault {
    /// The vault folder.
    pub fn path(&self) -> &Path {
        self.layout.root()
    }

    /// The vault's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The layout of the vault folder.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A flag added since the unlock (a read-write open adds
    /// `SEALED_XATTRS`, §2.1) is kept when the config is rewritten: the
    /// config on disk, if it is this vault's and holds this master key, is
    /// the base.
    pub(crate) fn adopt_disk_flags(&mut self) {
        if let Ok(b) = std::fs::read(self.layout.config())
            && let Ok(disk) = Config::from_bytes(&b)
            && disk.vault_id == self.config.vault_id
            && disk.flags & self.config.flags == self.config.flags
            && disk.holds(&self.master)
        {
            self.config.flags = disk.flags;
        }
    }

    /// Writes what the audit log has queued and remembers its head (the
    /// daemon calls this before it exits, whichever thread holds the log).
    pub fn close_audit(&self) {
        if let Some(a) = self.audit.get() {
            a.save_head();
        }
    }

    /// The search index's folder and key: the daemon and the CLI hand them
    /// to the index, which gets no other key.
    pub fn index_access(&self) -> (PathBuf, crate::crypto::AeadKey) {
        (
            self.layout.index(),
            self.master.index_key(&self.config.vault_id),
        )
    }

    /// Appends one record about the unlock itself to this device's audit
    /// chain, opened without a flusher thread (`mount` may fork next).
    pub(crate) fn record_unlock(&self, event: crate::format::audit::Event, detail: &str) {
        match devices::this_device(&self.layout)
            .and_then(|me| audit::AuditLog::open(&self.layout, me, self.keys.clone(), None, false))
        {
            Ok(a) => {
                a.set_person(self.opener.person());
                a.append(event, b"", b"", 0, detail)
            }
            Err(e) => log::warn!("the audit log cannot record the unlock ({e})"),
        }
    }

    /// What the user should be told about this unlock (a password from a
    /// conflicting copy of the config, say).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The vault's ID, in hex (names the remembered audit head).
    pub fn id_hex(&self) -> String {
        tree::hex(&self.config.vault_id)
    }

    /// The heads of the audit chains this device remembers (docs/FORMAT.md
    /// §16), in its own folder outside the vault.
    pub fn audit_heads(&self) -> audit::Heads {
        audit::Heads::new(self.layout.audit_heads())
    }

    /// Takes over the audit head file of an older version (one chain,
    /// `quire.audit`) as the head of that chain, once, if this device
    /// remembers no heads yet. With `if_agrees`, only if the log verifies
    /// against it (a head keyed by the vault ID alone may be another
    /// copy's, and would raise a false alarm here).
    pub fn take_over_audit_head(&self, old: &Path, if_agrees: bool) {
        let heads = self.audit_heads();
        if heads.exists() {
            return;
        }
        if if_agrees {
            let b = crate::store::safe::read(&self.layout.audit(), crate::store::safe::MAX_AUDIT)
                .unwrap_or_default();
            let head = audit::heads::read_old_head(old);
            let (_, v) = audit::read_chain(&self.keys, audit::ChainId::Legacy, &b, head);
            if head.is_none() || v.broken.is_some() {
                return;
            }
        }
        if let Err(e) = heads.import_old(old) {
            log::warn!("could not take over the audit head of an older version ({e})");
        }
    }

    /// This device's audit chain.
    fn audit_chain(&self) -> Option<audit::ChainId> {
        devices::this_device(&self.layout)
            .ok()
            .map(audit::ChainId::Device)
    }

    /// What is wrong with the audit chains (checked against the
    /// remembered heads), if anything: a mount says so on the terminal.
    pub fn audit_alarm(&self) -> Option<String> {
        match audit::read_all(
            &self.keys,
            &self.layout,
            Some(&self.audit_heads()),
            self.audit_chain(),
        ) {
            Ok((_, v)) => v.broken,
            Err(e) => Some(format!("the audit log cannot be read ({e})")),
        }
    }

    /// This device's audit chain, opened once for appending.
    pub fn audit_log(&self) -> Result<Arc<audit::AuditLog>, Error> {
        if let Some(a) = self.audit.get() {
            return Ok(a.clone());
        }
        let me = devices::this_device(&self.layout).map_err(io_err("reading this device's ID"))?;
        let a = audit::AuditLog::open(
            &self.layout,
            me,
            self.keys.clone(),
            Some(self.audit_heads()),
            true,
        )
        .map_err(io_err("opening this device's audit chain"))?;
        a.set_person(self.opener.person());
        Ok(self.audit.get_or_init(|| a).clone())
    }

    /// Opens the decrypted namespace with its features.
    pub fn tree(&self, read_only: bool) -> Result<Notebook, Error> {
        self.open_tree(read_only, false)
    }

    /// [`UnlockedVault::tree`]; `bare`: the features record nothing in the
    /// audit log and do not follow the tree's changes (re-keying copies a
    /// vault's versions, trash and dates itself).
    pub(crate) fn open_tree(&self, read_only: bool, bare: bool) -> Result<Notebook, Error> {
        use crate::format::config::{
            FLAG_BLOCK_MAC, FLAG_BOUND, FLAG_BOUND_SYMLINKS, FLAG_HISTORY, FLAG_LIFECYCLE,
            FLAG_LONG_SYMLINKS, FLAG_SPARSE,
        };
        let root =
            Handle::open_path(&self.layout.data()).map_err(io_err("opening the data folder"))?;
        let flags = self.config.flags;
        let block_layout = if flags & FLAG_BLOCK_MAC != 0 {
            crate::format::content::Layout::MAC
        } else {
            crate::format::content::Layout::PLAIN
        };
        self.migrate_device_files(read_only, block_layout)?;
        let journal = Arc::new(self.open_journal(self.layout.undo(), read_only, block_layout)?);
        let audit = if read_only || bare {
            None
        } else {
            Some(self.audit_log()?)
        };
        if let Some(a) = &audit {
            a.set_journal(Arc::downgrade(&journal));
        }
        let events = Arc::new(events::Events {
            audit,
            audit_read: (self.layout.clone(), self.audit_heads(), self.audit_chain()),
            listener: Default::default(),
            lifecycle_wake: Default::default(),
        });
        let lifecycle = Arc::new(lifecycle::records::Lifecycle {
            enabled: flags & FLAG_LIFECYCLE != 0,
            events: events.clone(),
        });
        let devices = match self.devices() {
            Ok(d) => Some(Arc::new(d)),
            Err(e) => {
                log::warn!("{e}");
                None
            }
        };
        let history = Arc::new(history::History {
            chunker: (flags & FLAG_HISTORY != 0)
                .then(|| history::chunker::Chunker::new(&self.keys.chunk_hash)),
            restores: Default::default(),
            events: events.clone(),
            lifecycle: lifecycle.clone(),
            device: devices.as_ref().map(|d| d.me()),
        });
        let trash = Arc::new(trash::Trash {
            events: events.clone(),
            lifecycle: lifecycle.clone(),
            history: history.clone(),
        });
        let features = Arc::new(features::Features {
            expiry: expiry::Expiry {
                lifecycle: lifecycle.clone(),
                trash: trash.clone(),
            },
            events,
            lifecycle,
            history,
            trash,
            log_path: self.layout.log(),
            devices: devices.clone(),
            root: self.layout.root().to_owned(),
            vault_id: self.config.vault_id,
            gate: Default::default(),
        });
        let setup = tree::Setup {
            read_only,
            sparse: flags & FLAG_SPARSE != 0,
            bound: flags & FLAG_BOUND != 0,
            block_mac: flags & FLAG_BLOCK_MAC != 0,
            bound_symlinks: flags & FLAG_BOUND_SYMLINKS != 0,
            long_symlinks: flags & FLAG_LONG_SYMLINKS != 0 && flags & FLAG_BOUND_SYMLINKS != 0,
            sealed_xattrs: flags & crate::format::config::FLAG_SEALED_XATTRS != 0,
        };
        let hooks: Arc<dyn tree::Hooks> = if bare {
            Arc::new(tree::NoHooks)
        } else {
            features.clone()
        };
        let t = Tree::new(self.keys.clone(), root, journal, setup, hooks)
            .map_err(|e| Error::Damaged(format!("the root directory ID cannot be read ({e})")))?;
        if !read_only
            && flags & crate::format::config::FLAG_SEALED_XATTRS == 0
            && flags & FLAG_BOUND != 0
            && flags & crate::format::config::FLAG_SLOT_MAC != 0
        {
            self.seal_xattrs(&t)?;
        }
        t.content.keep_sums_in(self.layout.mac_sums());
        if let Some(d) = devices {
            let _ = t.content.device_tag.set(devices::short(&d.me()));
            let _ = t
                .content
                .explain
                .set(Box::new(move || d.explain_unreadable()));
        }
        Ok(Notebook::new(t, features))
    }

    /// Opens the crash journal at `path`, first rolling back what a crash
    /// left in it (read-write only).
    fn open_journal(
        &self,
        path: PathBuf,
        read_only: bool,
        block_layout: crate::format::content::Layout,
    ) -> Result<journal::Journal, Error> {
        let (journal, recovered) = journal::Journal::open(
            path,
            &self.layout.data(),
            self.keys.clone(),
            read_only,
            block_layout,
        )
        .map_err(io_err("rolling back changes interrupted by a crash"))?;
        if recovered.files > 0 {
            log::warn!(
                "{} file(s) interrupted by a crash were rolled back to their last saved content",
                recovered.files
            );
        }
        Ok(journal)
    }

    /// This device and the vault's device records (§18).
    pub fn devices(&self) -> Result<devices::Devices, Error> {
        devices::Devices::new(&self.layout, self.keys.clone()).map_err(io_err(format!(
            "reading this device's ID in {}",
            self.layout.local().display()
        )))
    }

    /// Locks the master key and subkeys in memory again (after fork).
    pub fn relock_keys(&self) {
        self.master.relock();
        self.keys.relock();
    }
}
