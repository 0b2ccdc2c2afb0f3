//! People: one named password slot per person (docs/FORMAT.md §2.2), who
//! unlocked (every audit record names that person, §16), and changing or
//! removing a person's password. The break-glass slot is a named slot whose
//! every use is reported.

use super::{Error, UnlockedVault, config_copies, io_err};
use crate::crypto::Password;
use crate::crypto::kdf::Argon2Params;
use crate::format::audit::Event;
use crate::format::config::Slot;
use crate::store::atomic;

pub use crate::format::config::Opener;
/// The name of a Linux account (for records of who read or changed what).
pub use crate::store::host::account_name;

/// One key slot as `quire user list` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SlotInfo {
    /// `password` (unnamed), `person`, `break-glass` or `recovery-key`.
    pub kind: &'static str,
    /// The person's name (named slots only).
    pub name: Option<String>,
    /// Argon2id memory in KiB, passes and lanes (password slots).
    pub argon2: Option<(u32, u32, u32)>,
}

/// The key slots of a config, in file order.
pub fn slots(c: &crate::format::config::Config) -> Vec<SlotInfo> {
    c.slots
        .iter()
        .map(|s| SlotInfo {
            kind: match s {
                Slot::Password { .. } => "password",
                Slot::Recovery { .. } => "recovery-key",
                Slot::Named {
                    break_glass: true, ..
                } => "break-glass",
                Slot::Named { .. } => "person",
            },
            name: s.name().map(str::to_string),
            argon2: s.params().map(|p| (p.m_kib, p.t, p.p)),
        })
        .collect()
}

fn config_error(e: String) -> Error {
    Error::Refused(e)
}

impl UnlockedVault {
    /// Which slot opened this vault.
    pub fn opener(&self) -> &Opener {
        &self.opener
    }

    /// Writes `c` as the vault's config (atomically) and keeps it.
    fn write_config(&mut self, c: crate::format::config::Config) -> Result<(), Error> {
        atomic::write(&self.layout.config(), &c.to_bytes())
            .map_err(io_err("writing quire.conf"))?;
        self.config = c;
        Ok(())
    }

    fn audit_people(&self, event: Event, detail: &str) {
        if let Ok(a) = self.audit_log() {
            a.append(event, b"", b"", 0, detail);
        }
    }

    /// Refuses a password that already opens another slot (so two people
    /// never share one, and every unlock names one person).
    fn refuse_shared(&self, password: &Password, except: Option<usize>) -> Result<(), Error> {
        if let Some(i) = self.config.opens_any(password, except) {
            let whose = match self.config.slots[i].name() {
                Some(n) => format!("{n}'s password"),
                None => "the vault's shared password".into(),
            };
            return Err(config_error(format!(
                "that password is already {whose}: each person needs a password of their own; nothing was changed"
            )));
        }
        Ok(())
    }

    /// Gives the slot that unlocked this vault a new password (fresh salt):
    /// `quire passwd` changes only your own. Unlocked with the recovery
    /// key, `person` says whose (default: the unnamed password, made if
    /// the vault has none and no named slot). O(1): only the master key
    /// is re-wrapped. Conflict copies of the config go (§2.3). Audited.
    pub fn change_password(
        &mut self,
        new: &Password,
        params: Argon2Params,
        person: Option<&str>,
    ) -> Result<(), Error> {
        self.adopt_disk_flags();
        let mine = match (&self.opener, person) {
            (Opener::Person { name, .. }, Some(p))
                if !crate::format::config::same_name(name, p) =>
            {
                return Err(config_error(format!(
                    "you unlocked as {name}: you can change only your own password (unlock with the recovery key to set {p}'s)"
                )));
            }
            (Opener::Password, Some(p)) => {
                return Err(config_error(format!(
                    "you unlocked with the vault's shared password: you can change only that one (unlock with the recovery key to set {p}'s)"
                )));
            }
            (Opener::Person { name, .. }, _) => Some(name.clone()),
            (_, Some(p)) => Some(p.to_string()),
            (_, None) => None,
        };
        let mut c = self.config.clone();
        let target = match &mine {
            Some(n) => Some(c.named(n).ok_or_else(|| Error::NoSuchPerson(n.clone()))?),
            None => c.slots.iter().position(Slot::is_password),
        };
        if target.is_none() && c.slots.iter().any(|s| s.name().is_some()) {
            return Err(config_error(
                "this vault has a password per person: say whose to set with --user NAME".into(),
            ));
        }
        self.refuse_shared(new, target)?;
        match target {
            Some(i) if c.flags & crate::format::config::FLAG_SLOT_MAC != 0 || mine.is_some() => {
                c.rewrap_password_slot(i, &self.master, new, params)
            }
            _ => {
                // An older vault may hold several unnamed password slots:
                // all go, one takes their place (as before named slots).
                c.remove_password_slots();
                c.add_password_slot(&self.master, new, params);
            }
        }
        c.seal_slots(&self.master);
        self.write_config(c)?;
        if let (Opener::Recovery, Some(n)) = (&self.opener, &mine) {
            log::info!("the password of {n} was set with the recovery key");
        }
        // A sync tool's copies of the config from a password changed on
        // two computers at once (§2.3): their passwords stop working now.
        for (name, _) in config_copies(self.layout.root(), &self.config.vault_id) {
            match std::fs::remove_file(self.layout.root().join(&name)) {
                Ok(()) => log::warn!(
                    "removed {name}, a conflicting copy of the config: its password no longer opens the vault"
                ),
                Err(e) => log::warn!("could not remove {name} ({e})"),
            }
        }
        let detail = match &mine {
            Some(n) => format!("password of {n} changed"),
            None => "password slots replaced".into(),
        };
        self.audit_people(Event::PasswordChange, &detail);
        Ok(())
    }

    /// Adds a person with a password of their own (a named slot; with
    /// `break_glass`, the practice's emergency slot). Audited.
    pub fn add_person(
        &mut self,
        name: &str,
        password: &Password,
        params: Argon2Params,
        break_glass: bool,
    ) -> Result<(), Error> {
        self.adopt_disk_flags();
        let mut c = self.config.clone();
        if c.named(name).is_some() {
            return Err(config_error(format!(
                "{name} already has a password for this vault (`quire passwd` changes it)"
            )));
        }
        self.refuse_shared(password, None)?;
        c.add_named_slot(&self.master, name, break_glass, password, params)
            .map_err(config_error)?;
        self.write_config(c)?;
        let what = if break_glass {
            format!("break-glass slot {name} added")
        } else {
            format!("person {name} added")
        };
        self.audit_people(Event::User, &what);
        Ok(())
    }

    /// Removes a person's named slot (or, with `None`, the unnamed shared
    /// password): their password no longer opens the vault. Refused for
    /// the slot this vault was unlocked with, and for the last password.
    /// Audited.
    pub fn remove_person(&mut self, name: Option<&str>) -> Result<(), Error> {
        self.adopt_disk_flags();
        let mut c = self.config.clone();
        let i = match name {
            Some(n) => c
                .named(n)
                .ok_or_else(|| Error::NoSuchPerson(n.to_string()))?,
            None => c.slots.iter().position(Slot::is_password).ok_or_else(|| {
                config_error("this vault has no shared (unnamed) password".into())
            })?,
        };
        if Opener::of(&c.slots[i]) == self.opener {
            return Err(config_error(
                "you cannot remove the password you unlocked with: unlock as another person (or with the recovery key) to remove it".into(),
            ));
        }
        if c.slots.iter().filter(|s| s.takes_password()).count() <= 1 {
            return Err(config_error(
                "it is the vault's last password: add another person first".into(),
            ));
        }
        c.slots.remove(i);
        c.seal_slots(&self.master);
        self.write_config(c)?;
        let what = match name {
            Some(n) => format!("person {n} removed"),
            None => "shared password removed".into(),
        };
        self.audit_people(Event::User, &what);
        Ok(())
    }

    /// After an unlock with the break-glass slot: said on the terminal and
    /// recorded (event `break-glass`), so the practice sees every use.
    pub(crate) fn report_break_glass(&mut self) {
        if let Opener::Person {
            name,
            break_glass: true,
        } = &self.opener
        {
            let name = name.clone();
            self.record_unlock(
                Event::BreakGlass,
                &format!("unlocked with the break-glass password ({name})"),
            );
            self.notices.push(format!(
                "this is the practice's break-glass password ({name}): its use is recorded in the audit log. Once the emergency is over, set a new one (`quire user remove \"{name}\"`, then `quire user add \"{name}\" --break-glass`)."
            ));
        }
    }
}
