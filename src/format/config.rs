//! The vault config file `quire.conf` (docs/FORMAT.md §2): format version,
//! feature flags, vault ID and the key slots that wrap the master key.
//!
//! Every slot's wrap authenticates the whole header and the slot's own KDF
//! parameters as AAD, so editing the version, a flag or the Argon2 cost in the
//! file makes every slot fail to open (downgrade detection, as EncFS V7 and
//! Cryptomator's version MAC do).

use sha2::{Digest, Sha256};

use super::FormatError;
use crate::crypto::kdf::{self, Argon2Params};
use crate::crypto::{AeadKey, Key32, MasterKey, Password, random};

/// File magic.
pub const MAGIC: &[u8; 8] = b"QUIREVLT";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Oldest version this build reads.
pub const MIN_VERSION: u16 = 1;

/// Feature flag: names are encrypted with AES-SIV bound to the directory ID.
pub const FLAG_SIV_NAMES: u32 = 1 << 0;
/// Feature flag: names too long for the host are shortened with a sidecar.
pub const FLAG_LONG_NAMES: u32 = 1 << 1;
/// Feature flag: content blocks carry the last-block flag in their AAD.
pub const FLAG_LAST_BLOCK_AAD: u32 = 1 << 2;
/// Feature flag: user extended attributes are stored encrypted.
pub const FLAG_XATTRS: u32 = 1 << 3;
/// Feature flag: notes keep history streams and a trash (§12–13). Vaults
/// created before it have no history; readers without it refuse the vault.
pub const FLAG_HISTORY: u32 = 1 << 4;
/// Feature flag: notes may carry expiry and retention dates (§15), which
/// every reader must enforce, so readers without it refuse the vault (an
/// older build would let a retained note be deleted). Vaults created before
/// it cannot carry dates.
pub const FLAG_LIFECYCLE: u32 = 1 << 5;
/// Feature flag: files may have holes, runs of all-zero block slots closed
/// by a sealed hole marker (§4), so sparse files cost only their data.
/// Readers without it refuse the vault (they would take a hole for a
/// forged block); vaults created before it write zeros, as before.
pub const FLAG_SPARSE: u32 = 1 << 6;
/// Feature flag: the key slot list (count, order, every byte) is
/// authenticated by an HMAC under a key derived from the master key, so a
/// slot cannot be added, removed or swapped without it (§2.2). Such a
/// vault has at most one slot of each kind.
pub const FLAG_SLOT_MAC: u32 = 1 << 7;
/// Feature flag: sealed records are bound to their note (§15, §6, §7,
/// §12): a lifecycle record to the folder ID and host name (symlinks:
/// see [`FLAG_BOUND_SYMLINKS`]), an xattr value to its file's or folder's ID (so every regular file
/// has a header, even empty), a history stream to its note by OWNER frames.
/// Readers without it refuse the vault; vaults made before it keep the
/// looser bindings.
pub const FLAG_BOUND: u32 = 1 << 8;
/// Feature flag: every content file's header holds a sealed MAC of all
/// its block slots (§4.2), so an older block spliced back into its place
/// (a block-level rollback) is detected. Readers without it refuse the
/// vault; vaults made before it keep 18-byte headers.
pub const FLAG_BLOCK_MAC: u32 = 1 << 9;
/// Feature flag: every name of a symlink has a sealed binding record
/// `<host name>.qs` (§6.1) holding the hash of its host target, bound to
/// the folder ID and host name, so a target copied from another symlink
/// (or a record moved from another name) is detected. Readers without it
/// refuse the vault; vaults made before it keep unbound targets.
pub const FLAG_BOUND_SYMLINKS: u32 = 1 << 10;
/// Feature flag: a symlink target longer than fits sealed in a host
/// symlink (3000 bytes, up to the 4095 of Linux's PATH_MAX) is kept sealed
/// in `d/quire.symlinks/<ID>`, its host symlink holding `~<ID hex><length>`
/// (§6.2). Needs `BOUND_SYMLINKS`. Readers without it refuse the vault;
/// vaults made before it refuse such targets (ENAMETOOLONG).
pub const FLAG_LONG_SYMLINKS: u32 = 1 << 11;
/// Feature flag: user xattrs are kept in one sealed file per file or
/// folder, `d/quire.xattrs/<owner ID>` (§7.1), not in host xattrs, so sync
/// tools, tar and zip carry them. Needs `BOUND` and `SLOT_MAC`. It is a
/// MAC-only flag: authenticated by the slot MAC, not by the slots' AAD, so
/// a vault whose slots predate it gains it at a read-write mount without
/// re-wrapping any slot (its host xattrs are moved into the files first).
pub const FLAG_SEALED_XATTRS: u32 = 1 << 12;
/// Feature flag: the slot list may hold *named* password slots (kind 3,
/// one per person, §2.2), each name once. Needs `SLOT_MAC`. A MAC-only
/// flag: the first `quire user add` sets it with the master key alone.
pub const FLAG_NAMED_SLOTS: u32 = 1 << 13;
/// Flags the slot MAC authenticates but the slots' AAD leaves out (they
/// read as zero there), so they can be added with the master key alone.
pub const MAC_ONLY_FLAGS: u32 = FLAG_SEALED_XATTRS | FLAG_NAMED_SLOTS;
/// Every flag this build understands.
pub const KNOWN_FLAGS: u32 = FLAG_SIV_NAMES
    | FLAG_LONG_NAMES
    | FLAG_LAST_BLOCK_AAD
    | FLAG_XATTRS
    | FLAG_HISTORY
    | FLAG_LIFECYCLE
    | FLAG_SPARSE
    | FLAG_SLOT_MAC
    | FLAG_BOUND
    | FLAG_BLOCK_MAC
    | FLAG_BOUND_SYMLINKS
    | FLAG_LONG_SYMLINKS
    | FLAG_SEALED_XATTRS
    | FLAG_NAMED_SLOTS;
/// Flags a new vault gets (`NAMED_SLOTS` comes with the first named slot).
pub const NEW_VAULT_FLAGS: u32 = KNOWN_FLAGS & !FLAG_NAMED_SLOTS;
/// Flags every version-1 vault has.
pub const REQUIRED_FLAGS: u32 =
    FLAG_SIV_NAMES | FLAG_LONG_NAMES | FLAG_LAST_BLOCK_AAD | FLAG_XATTRS;

const HEADER_LEN: usize = 8 + 2 + 4 + 16 + 1;
const WRAPPED_LEN: usize = 12 + 32 + 16;
const MAX_SLOTS: usize = 8;
/// With [`FLAG_NAMED_SLOTS`]: room for a dozen people besides the
/// unnamed password and the recovery key.
const MAX_SLOTS_NAMED: usize = 16;
/// Longest person name in a named slot, in bytes.
pub const MAX_NAME: usize = 64;

/// Kind byte of a password slot.
pub const SLOT_PASSWORD: u8 = 1;
/// Kind byte of a recovery-key slot.
pub const SLOT_RECOVERY: u8 = 2;
/// Kind byte of a named password slot (one person's password).
pub const SLOT_NAMED: u8 = 3;
/// Named-slot flag bit: the break-glass slot (emergency access; its every
/// use is reported).
pub const SLOT_BREAK_GLASS: u8 = 1;

/// Whether `name` can name a slot: 1..=64 bytes of UTF-8, no control
/// character, no leading or trailing space, not only digits (so it never
/// reads as a uid).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.trim() == name
        && !name.chars().any(char::is_control)
        && !name.chars().all(|c| c.is_ascii_digit())
}

/// One key slot: how to derive a key-encryption key, and the wrapped master key.
#[derive(Clone, PartialEq, Eq)]
pub enum Slot {
    /// Argon2id(password, salt, params).
    Password {
        /// Cost parameters.
        params: Argon2Params,
        /// Random salt, fresh on every password change.
        salt: [u8; 16],
        /// `nonce ‖ AES-GCM(master key) ‖ tag`.
        wrapped: [u8; WRAPPED_LEN],
    },
    /// HKDF(recovery key, salt).
    Recovery {
        /// Random salt.
        salt: [u8; 16],
        /// `nonce ‖ AES-GCM(master key) ‖ tag`.
        wrapped: [u8; WRAPPED_LEN],
    },
    /// One person's password: Argon2id(password, salt, params), the name
    /// (and the break-glass bit) in the wrap's AAD.
    Named {
        /// The person's name ([`valid_name`]).
        name: String,
        /// The practice's emergency slot ([`SLOT_BREAK_GLASS`]).
        break_glass: bool,
        /// Cost parameters.
        params: Argon2Params,
        /// Random salt, fresh on every password change.
        salt: [u8; 16],
        /// `nonce ‖ AES-GCM(master key) ‖ tag`.
        wrapped: [u8; WRAPPED_LEN],
    },
}

impl Slot {
    /// The slot's bytes before the wrapped key (part of its AAD).
    fn params_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(29);
        match self {
            Slot::Password { params, salt, .. } => {
                v.push(SLOT_PASSWORD);
                v.extend_from_slice(&params.m_kib.to_be_bytes());
                v.extend_from_slice(&params.t.to_be_bytes());
                v.extend_from_slice(&params.p.to_be_bytes());
                v.extend_from_slice(salt);
            }
            Slot::Recovery { salt, .. } => {
                v.push(SLOT_RECOVERY);
                v.extend_from_slice(salt);
            }
            Slot::Named {
                name,
                break_glass,
                params,
                salt,
                ..
            } => {
                v.push(SLOT_NAMED);
                v.push(if *break_glass { SLOT_BREAK_GLASS } else { 0 });
                v.push(name.len() as u8);
                v.extend_from_slice(name.as_bytes());
                v.extend_from_slice(&params.m_kib.to_be_bytes());
                v.extend_from_slice(&params.t.to_be_bytes());
                v.extend_from_slice(&params.p.to_be_bytes());
                v.extend_from_slice(salt);
            }
        }
        v
    }

    fn wrapped(&self) -> &[u8; WRAPPED_LEN] {
        match self {
            Slot::Password { wrapped, .. }
            | Slot::Recovery { wrapped, .. }
            | Slot::Named { wrapped, .. } => wrapped,
        }
    }

    fn wrapped_mut(&mut self) -> &mut [u8; WRAPPED_LEN] {
        match self {
            Slot::Password { wrapped, .. }
            | Slot::Recovery { wrapped, .. }
            | Slot::Named { wrapped, .. } => wrapped,
        }
    }

    /// Whether this is the unnamed password slot (kind 1).
    pub fn is_password(&self) -> bool {
        matches!(self, Slot::Password { .. })
    }

    /// Whether a password opens this slot (kind 1 or 3).
    pub fn takes_password(&self) -> bool {
        self.params().is_some()
    }

    /// The Argon2 cost of a password slot.
    pub fn params(&self) -> Option<Argon2Params> {
        match self {
            Slot::Password { params, .. } | Slot::Named { params, .. } => Some(*params),
            Slot::Recovery { .. } => None,
        }
    }

    /// The person's name of a named slot.
    pub fn name(&self) -> Option<&str> {
        match self {
            Slot::Named { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Whether this is the break-glass slot.
    pub fn is_break_glass(&self) -> bool {
        matches!(
            self,
            Slot::Named {
                break_glass: true,
                ..
            }
        )
    }
}

/// Whether two person names are the same (names are compared without
/// case: "Sam" and "sam" are one person).
pub fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Which kind of key slot opened a vault.
#[derive(Clone, PartialEq, Eq)]
pub enum Opener {
    /// The vault's unnamed password (kind 1).
    Password,
    /// A person's own password (a named slot).
    Person {
        /// The slot's name.
        name: String,
        /// The practice's emergency slot.
        break_glass: bool,
    },
    /// The recovery key.
    Recovery,
}

impl Opener {
    /// The opener of a slot that opened.
    pub fn of(slot: &Slot) -> Opener {
        match slot {
            Slot::Password { .. } => Opener::Password,
            Slot::Recovery { .. } => Opener::Recovery,
            Slot::Named {
                name, break_glass, ..
            } => Opener::Person {
                name: name.clone(),
                break_glass: *break_glass,
            },
        }
    }

    /// The person's name, for a named slot.
    pub fn person(&self) -> Option<&str> {
        match self {
            Opener::Person { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// A parsed vault config.
#[derive(Clone)]
pub struct Config {
    /// Format version (always [`VERSION`] once parsed).
    pub version: u16,
    /// Feature flags.
    pub flags: u32,
    /// Random vault ID; HKDF salt for every subkey.
    pub vault_id: [u8; 16],
    /// Key slots, in file order.
    pub slots: Vec<Slot>,
    /// With [`FLAG_SLOT_MAC`]: HMAC-SHA256 of every byte before it, under
    /// the master key's `quire/v1/slots` subkey (zeros otherwise).
    pub slot_mac: [u8; 32],
}

/// Why no slot gave the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnlockError {
    /// No slot opened: a wrong password or recovery key.
    Wrong,
    /// No slot has the name asked for.
    NoSuchPerson(String),
    /// The config was changed outside Quire (what was found).
    Modified(String),
}

/// The secret a slot is opened with.
pub enum Unlock<'a> {
    /// A password.
    Password(&'a Password),
    /// A recovery key.
    Recovery(&'a Key32),
}

impl Config {
    /// A new config with a fresh vault ID and no slots yet.
    pub fn new() -> Self {
        Config {
            version: VERSION,
            flags: NEW_VAULT_FLAGS,
            vault_id: random::bytes(),
            slots: Vec::new(),
            slot_mac: [0; 32],
        }
    }

    /// Every byte the slot MAC covers: header (with the slot count) and
    /// slots.
    fn mac_input(&self) -> Vec<u8> {
        let mut v = self.header_bytes();
        for s in &self.slots {
            v.extend_from_slice(&s.params_bytes());
            v.extend_from_slice(s.wrapped());
        }
        v
    }

    fn slot_hmac(&self, master: &MasterKey) -> hmac::Hmac<Sha256> {
        use hmac::Mac;
        let key = master.derive::<32>(&self.vault_id, crate::crypto::labels::SLOTS);
        let mut m = hmac::Hmac::<Sha256>::new_from_slice(key.expose()).expect("any key length");
        m.update(&self.mac_input());
        m
    }

    fn compute_slot_mac(&self, master: &MasterKey) -> [u8; 32] {
        use hmac::Mac;
        self.slot_hmac(master).finalize().into_bytes().into()
    }

    /// Seals the slot list (with [`FLAG_SLOT_MAC`]): call after the slots
    /// change, before [`Config::to_bytes`].
    pub fn seal_slots(&mut self, master: &MasterKey) {
        if self.flags & FLAG_SLOT_MAC != 0 {
            self.slot_mac = self.compute_slot_mac(master);
        }
    }

    fn header_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER_LEN);
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&self.version.to_be_bytes());
        v.extend_from_slice(&self.flags.to_be_bytes());
        v.extend_from_slice(&self.vault_id);
        v.push(self.slots.len() as u8);
        v
    }

    fn slot_aad(&self, slot_params: &[u8]) -> Vec<u8> {
        // The slot count is excluded so slots can be added and removed
        // without re-wrapping the others; MAC-only flags read as zero.
        let mut aad = self.header_bytes();
        aad.pop();
        aad[10..14].copy_from_slice(&(self.flags & !MAC_ONLY_FLAGS).to_be_bytes());
        aad.extend_from_slice(slot_params);
        aad
    }

    /// Adds a password slot wrapping `master`, with a fresh salt.
    pub fn add_password_slot(
        &mut self,
        master: &MasterKey,
        password: &Password,
        params: Argon2Params,
    ) {
        let salt = random::bytes::<16>();
        let kek = kdf::password_kek(password, &salt, params);
        let mut slot = Slot::Password {
            params,
            salt,
            wrapped: [0; WRAPPED_LEN],
        };
        self.wrap_into(&mut slot, &kek, master);
        self.slots.push(slot);
    }

    /// Adds a recovery slot wrapping `master`.
    pub fn add_recovery_slot(&mut self, master: &MasterKey, recovery: &Key32) {
        let salt = random::bytes::<16>();
        let kek = kdf::recovery_kek(recovery, &salt);
        let mut slot = Slot::Recovery {
            salt,
            wrapped: [0; WRAPPED_LEN],
        };
        self.wrap_into(&mut slot, &kek, master);
        self.slots.push(slot);
    }

    /// Adds a named password slot for `name` (sets [`FLAG_NAMED_SLOTS`]
    /// and seals the slot list). Refused: a vault without the slot MAC,
    /// an invalid name, a name already there, or a full slot list.
    pub fn add_named_slot(
        &mut self,
        master: &MasterKey,
        name: &str,
        break_glass: bool,
        password: &Password,
        params: Argon2Params,
    ) -> Result<(), String> {
        if self.flags & FLAG_SLOT_MAC == 0 {
            return Err("this vault was made before Quire sealed its list of key slots, so it cannot hold a password per person: make a new vault and copy the notes over".into());
        }
        if !valid_name(name) {
            return Err(format!(
                "{name:?} cannot name a person: use 1 to {MAX_NAME} bytes, no control characters, no spaces at either end, not only digits"
            ));
        }
        if self
            .slots
            .iter()
            .any(|s| s.name().is_some_and(|n| same_name(n, name)))
        {
            return Err(format!("{name} already has a password for this vault"));
        }
        if self.slots.len() >= MAX_SLOTS_NAMED {
            return Err(format!(
                "this vault already has {} key slots, the most it can hold: remove one first",
                self.slots.len()
            ));
        }
        if break_glass && self.slots.iter().any(Slot::is_break_glass) {
            return Err("this vault already has a break-glass slot: remove it first".into());
        }
        self.flags |= FLAG_NAMED_SLOTS;
        let salt = random::bytes::<16>();
        let kek = kdf::password_kek(password, &salt, params);
        let mut slot = Slot::Named {
            name: name.to_string(),
            break_glass,
            params,
            salt,
            wrapped: [0; WRAPPED_LEN],
        };
        self.wrap_into(&mut slot, &kek, master);
        self.slots.push(slot);
        self.seal_slots(master);
        Ok(())
    }

    /// Gives slot `i` (a password slot, named or not) a new password: a
    /// fresh salt and wrap, its name and kind kept. The caller seals.
    pub fn rewrap_password_slot(
        &mut self,
        i: usize,
        master: &MasterKey,
        password: &Password,
        params: Argon2Params,
    ) {
        let salt = random::bytes::<16>();
        let kek = kdf::password_kek(password, &salt, params);
        let mut slot = match &self.slots[i] {
            Slot::Named {
                name, break_glass, ..
            } => Slot::Named {
                name: name.clone(),
                break_glass: *break_glass,
                params,
                salt,
                wrapped: [0; WRAPPED_LEN],
            },
            _ => Slot::Password {
                params,
                salt,
                wrapped: [0; WRAPPED_LEN],
            },
        };
        self.wrap_into(&mut slot, &kek, master);
        self.slots[i] = slot;
    }

    /// The index of the slot named `name`.
    pub fn named(&self, name: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.name().is_some_and(|n| same_name(n, name)))
    }

    /// Removes every unnamed password slot (before adding the new one in
    /// `passwd` on a vault without the slot MAC, which may hold several).
    pub fn remove_password_slots(&mut self) {
        self.slots.retain(|s| !s.is_password());
    }

    /// Removes every recovery-key slot (before adding the new one when
    /// the recovery key is replaced).
    pub fn remove_recovery_slots(&mut self) {
        self.slots.retain(|s| !matches!(s, Slot::Recovery { .. }));
    }

    fn wrap_into(&self, slot: &mut Slot, kek: &Key32, master: &MasterKey) {
        let aad = self.slot_aad(&slot.params_bytes());
        let nonce = random::bytes::<12>();
        let mut out = [0u8; WRAPPED_LEN];
        AeadKey::new(kek).seal_into(&nonce, &aad, master.0.expose(), &mut out);
        *slot.wrapped_mut() = out;
    }

    /// Adds a MAC-only flag ([`MAC_ONLY_FLAGS`]) with the master key: the
    /// slots stay as they are, the slot MAC is computed anew. Only vaults
    /// with [`FLAG_SLOT_MAC`] can.
    pub fn add_mac_only_flag(&mut self, flag: u32, master: &MasterKey) -> bool {
        if flag & !MAC_ONLY_FLAGS != 0 || self.flags & FLAG_SLOT_MAC == 0 {
            return false;
        }
        self.flags |= flag;
        self.seal_slots(master);
        true
    }

    /// Tries the slots of the matching kind, cheapest first; returns the
    /// master key. With [`FLAG_SLOT_MAC`], a second slot of a kind is
    /// refused before any is tried, and the slot list is checked against
    /// its MAC once a slot opened.
    pub fn unlock(&self, secret: Unlock<'_>) -> Result<MasterKey, UnlockError> {
        self.unlock_as(secret, None).map(|(m, _)| m)
    }

    /// The slot rules a reader checks before trying any slot: with the
    /// slot MAC, at most one unnamed password and one recovery slot, and
    /// (with named slots) each name once, at most one break-glass slot.
    fn check_slot_rules(&self) -> Result<(), UnlockError> {
        if self.flags & FLAG_SLOT_MAC == 0 {
            return Ok(());
        }
        let pw = self.slots.iter().filter(|s| s.is_password()).count();
        let rk = self
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Recovery { .. }))
            .count();
        if pw > 1 || rk > 1 {
            return Err(UnlockError::Modified(format!(
                "it has {pw} unnamed password and {rk} recovery-key slots; Quire keeps one of each"
            )));
        }
        let names: Vec<String> = self
            .slots
            .iter()
            .filter_map(|s| s.name().map(str::to_lowercase))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != names.len() {
            return Err(UnlockError::Modified(
                "two of its key slots have the same name".into(),
            ));
        }
        if self.slots.iter().filter(|s| s.is_break_glass()).count() > 1 {
            return Err(UnlockError::Modified(
                "it has more than one break-glass slot".into(),
            ));
        }
        Ok(())
    }

    /// [`Config::unlock`], also saying which slot opened (its index).
    /// With `person`, only the slot of that name is tried (a password);
    /// otherwise every slot of the secret's kind, cheapest first, the
    /// break-glass slot last.
    pub fn unlock_as(
        &self,
        secret: Unlock<'_>,
        person: Option<&str>,
    ) -> Result<(MasterKey, usize), UnlockError> {
        self.check_slot_rules()?;
        let sealed = self.flags & FLAG_SLOT_MAC != 0;
        let mut order: Vec<(usize, &Slot)> = self.slots.iter().enumerate().collect();
        if let (Some(p), Unlock::Password(_)) = (person, &secret) {
            order.retain(|(_, s)| s.name().is_some_and(|n| same_name(n, p)));
            if order.is_empty() {
                return Err(UnlockError::NoSuchPerson(p.to_string()));
            }
        }
        order.sort_by_key(|(_, s)| {
            let cost = s
                .params()
                .map_or(0, |p| p.m_kib as u64 * p.t as u64 * p.p.max(1) as u64);
            (s.is_break_glass(), cost)
        });
        for (i, slot) in order {
            let kek = match (&secret, slot.params(), slot) {
                (Unlock::Password(p), Some(params), _) => {
                    let salt = match slot {
                        Slot::Password { salt, .. } | Slot::Named { salt, .. } => salt,
                        Slot::Recovery { .. } => continue,
                    };
                    kdf::password_kek(p, salt, params)
                }
                (Unlock::Recovery(r), None, Slot::Recovery { salt, .. }) => {
                    kdf::recovery_kek(r, salt)
                }
                _ => continue,
            };
            let aad = self.slot_aad(&slot.params_bytes());
            let mut mk = [0u8; 32];
            if AeadKey::new(&kek)
                .open_into(&aad, slot.wrapped(), &mut mk)
                .is_ok()
            {
                let master = MasterKey(Key32::from_bytes(&mut mk));
                if sealed {
                    use hmac::Mac;
                    // Constant-time comparison.
                    if self
                        .slot_hmac(&master)
                        .verify_slice(&self.slot_mac)
                        .is_err()
                    {
                        return Err(UnlockError::Modified(
                            "its list of key slots was changed without the vault's key (a slot added, removed or swapped)".into(),
                        ));
                    }
                }
                return Ok((master, i));
            }
        }
        Err(UnlockError::Wrong)
    }

    /// The first password slot other than `except` that `password` opens
    /// (no slot-MAC check: used before adding or changing a password, so
    /// that two people never share one and every unlock names one person).
    pub fn opens_any(&self, password: &Password, except: Option<usize>) -> Option<usize> {
        self.slots.iter().enumerate().find_map(|(i, slot)| {
            let (params, salt) = match slot {
                Slot::Password { params, salt, .. } | Slot::Named { params, salt, .. } => {
                    (*params, salt)
                }
                Slot::Recovery { .. } => return None,
            };
            if Some(i) == except {
                return None;
            }
            let kek = kdf::password_kek(password, salt, params);
            let aad = self.slot_aad(&slot.params_bytes());
            let mut mk = [0u8; 32];
            let ok = AeadKey::new(&kek)
                .open_into(&aad, slot.wrapped(), &mut mk)
                .is_ok();
            zeroize::Zeroize::zeroize(&mut mk);
            ok.then_some(i)
        })
    }

    /// Whether `master` (opened from another copy of this vault's config,
    /// such as a sync tool's conflict copy) is this config's master key:
    /// with [`FLAG_SLOT_MAC`], its slot list verifies under it. A config
    /// without the flag cannot tell, and says yes (the vault ID matched;
    /// a wrong key opens no name or block).
    pub fn holds(&self, master: &MasterKey) -> bool {
        if self.flags & FLAG_SLOT_MAC == 0 {
            return true;
        }
        use hmac::Mac;
        self.slot_hmac(master).verify_slice(&self.slot_mac).is_ok()
    }

    /// Serializes: header, slots, the slot MAC (with [`FLAG_SLOT_MAC`]),
    /// then SHA-256 of all preceding bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.mac_input();
        if self.flags & FLAG_SLOT_MAC != 0 {
            v.extend_from_slice(&self.slot_mac);
        }
        let sum = Sha256::digest(&v);
        v.extend_from_slice(&sum);
        v
    }

    /// Parses and validates a config. Version and flags are checked before
    /// anything else so that a newer vault gets the right message.
    pub fn from_bytes(b: &[u8]) -> Result<Config, FormatError> {
        if b.len() < 10 || &b[..8] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = u16::from_be_bytes([b[8], b[9]]);
        if version > VERSION {
            return Err(FormatError::TooNew {
                found: version,
                supported: VERSION,
            });
        }
        if version < MIN_VERSION {
            return Err(FormatError::TooOld {
                found: version,
                supported: MIN_VERSION,
            });
        }
        if b.len() < HEADER_LEN + 32 {
            return Err(FormatError::Corrupt("truncated"));
        }
        let (body, sum) = b.split_at(b.len() - 32);
        if Sha256::digest(body).as_slice() != sum {
            return Err(FormatError::Corrupt("checksum mismatch"));
        }
        let flags = u32::from_be_bytes(b[10..14].try_into().unwrap());
        if flags & !KNOWN_FLAGS != 0 {
            return Err(FormatError::UnknownFlags(flags & !KNOWN_FLAGS));
        }
        if flags & REQUIRED_FLAGS != REQUIRED_FLAGS {
            return Err(FormatError::Corrupt("a required feature flag is missing"));
        }
        if flags & MAC_ONLY_FLAGS != 0 && flags & FLAG_SLOT_MAC == 0 {
            // Nothing would authenticate it.
            return Err(FormatError::Corrupt(
                "a feature flag that needs the slot MAC is set without it",
            ));
        }
        if flags & FLAG_SEALED_XATTRS != 0 && flags & FLAG_BOUND == 0 {
            return Err(FormatError::Corrupt(
                "sealed attribute files are set without bound records",
            ));
        }
        let vault_id: [u8; 16] = b[14..30].try_into().unwrap();
        let n = b[30] as usize;
        let max = if flags & FLAG_NAMED_SLOTS != 0 {
            MAX_SLOTS_NAMED
        } else {
            MAX_SLOTS
        };
        if n == 0 || n > max {
            return Err(FormatError::Corrupt("bad key slot count"));
        }
        let mut r = &body[HEADER_LEN..];
        let mut slots = Vec::with_capacity(n);
        for _ in 0..n {
            let (&kind, rest) = r
                .split_first()
                .ok_or(FormatError::Corrupt("truncated slot"))?;
            r = rest;
            let take = |r: &mut &[u8], k: usize| -> Result<Vec<u8>, FormatError> {
                if r.len() < k {
                    return Err(FormatError::Corrupt("truncated slot"));
                }
                let (a, b) = r.split_at(k);
                *r = b;
                Ok(a.to_vec())
            };
            let slot = match kind {
                SLOT_PASSWORD => {
                    let params = read_params(&take(&mut r, 12)?)?;
                    let salt = take(&mut r, 16)?.try_into().unwrap();
                    let wrapped = take(&mut r, WRAPPED_LEN)?.try_into().unwrap();
                    Slot::Password {
                        params,
                        salt,
                        wrapped,
                    }
                }
                SLOT_RECOVERY => {
                    let salt = take(&mut r, 16)?.try_into().unwrap();
                    let wrapped = take(&mut r, WRAPPED_LEN)?.try_into().unwrap();
                    Slot::Recovery { salt, wrapped }
                }
                SLOT_NAMED if flags & FLAG_NAMED_SLOTS != 0 => {
                    let h = take(&mut r, 2)?;
                    if h[0] & !SLOT_BREAK_GLASS != 0 {
                        return Err(FormatError::Corrupt("unknown named-slot flags"));
                    }
                    let name = String::from_utf8(take(&mut r, h[1] as usize)?)
                        .ok()
                        .filter(|n| valid_name(n))
                        .ok_or(FormatError::Corrupt("a key slot's name is not valid"))?;
                    let params = read_params(&take(&mut r, 12)?)?;
                    let salt = take(&mut r, 16)?.try_into().unwrap();
                    let wrapped = take(&mut r, WRAPPED_LEN)?.try_into().unwrap();
                    Slot::Named {
                        name,
                        break_glass: h[0] & SLOT_BREAK_GLASS != 0,
                        params,
                        salt,
                        wrapped,
                    }
                }
                SLOT_NAMED => {
                    return Err(FormatError::Corrupt(
                        "a named key slot without the named-slots flag",
                    ));
                }
                _ => return Err(FormatError::Corrupt("unknown key slot kind")),
            };
            slots.push(slot);
        }
        let mut slot_mac = [0u8; 32];
        if flags & FLAG_SLOT_MAC != 0 {
            if r.len() < 32 {
                return Err(FormatError::Corrupt("truncated slot MAC"));
            }
            slot_mac.copy_from_slice(&r[..32]);
            r = &r[32..];
        }
        if !r.is_empty() {
            return Err(FormatError::Corrupt("trailing bytes"));
        }
        Ok(Config {
            version,
            flags,
            vault_id,
            slots,
            slot_mac,
        })
    }
}

/// Argon2 cost from a slot's 12 bytes, refused out of bounds.
fn read_params(p: &[u8]) -> Result<Argon2Params, FormatError> {
    let params = Argon2Params {
        m_kib: u32::from_be_bytes(p[0..4].try_into().unwrap()),
        t: u32::from_be_bytes(p[4..8].try_into().unwrap()),
        p: u32::from_be_bytes(p[8..12].try_into().unwrap()),
    };
    if !params.in_bounds() {
        return Err(FormatError::Corrupt("Argon2 parameters out of bounds"));
    }
    Ok(params)
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::new(s.as_bytes().to_vec())
    }

    fn sample() -> (Config, MasterKey, Key32) {
        let mk = MasterKey::generate();
        let rk = Key32::random();
        let mut c = Config::new();
        c.add_password_slot(&mk, &pw("correct horse"), Argon2Params::MIN);
        c.add_recovery_slot(&mk, &rk);
        c.seal_slots(&mk);
        (c, mk, rk)
    }

    /// Issue 11.5: with FLAG_SLOT_MAC, a slot added (by someone who knows
    /// a password of their own but not the master key), a slot removed or
    /// two slots swapped is "modified", whichever secret is tried; a vault
    /// without the flag keeps working as before.
    #[test]
    fn the_slot_list_is_authenticated() {
        let (c, _mk, rk) = sample();
        let good = Config::from_bytes(&c.to_bytes()).unwrap();
        assert!(good.unlock(Unlock::Password(&pw("correct horse"))).is_ok());
        let modified =
            |c: &Config, u: Unlock<'_>| matches!(c.unlock(u), Err(UnlockError::Modified(_)));
        // An attacker's slot wrapping a key of their own, MAC left as is.
        let mut added = good.clone();
        added.remove_password_slots();
        added.add_password_slot(&MasterKey::generate(), &pw("attacker"), Argon2Params::MIN);
        added.slots.push(good.slots[0].clone());
        let added = Config::from_bytes(&added.to_bytes()).unwrap();
        assert!(modified(&added, Unlock::Password(&pw("correct horse"))));
        assert!(modified(&added, Unlock::Password(&pw("attacker"))));
        // One attacker slot replacing the password slot: its key is not
        // the master key, so the MAC fails with it.
        let mut replaced = good.clone();
        replaced.remove_password_slots();
        replaced.add_password_slot(&MasterKey::generate(), &pw("attacker"), Argon2Params::MIN);
        let replaced = Config::from_bytes(&replaced.to_bytes()).unwrap();
        assert!(modified(&replaced, Unlock::Password(&pw("attacker"))));
        // The recovery slot removed; the two slots swapped.
        let mut removed = good.clone();
        removed.slots.retain(|s| s.is_password());
        assert!(modified(&removed, Unlock::Password(&pw("correct horse"))));
        let mut swapped = good.clone();
        swapped.slots.reverse();
        assert!(modified(&swapped, Unlock::Recovery(&rk)));
        // Wrong secrets are still just wrong.
        assert_eq!(
            good.unlock(Unlock::Password(&pw("wrong"))).err(),
            Some(UnlockError::Wrong)
        );
        // Without the flag (vaults made before it): no MAC, as before.
        let mk = MasterKey::generate();
        let mut old = Config::new();
        old.flags &= !(FLAG_SLOT_MAC | FLAG_SEALED_XATTRS);
        old.add_password_slot(&mk, &pw("pw"), Argon2Params::MIN);
        let bytes = old.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + (1 + 12 + 16 + 60) + 32);
        let old = Config::from_bytes(&bytes).unwrap();
        assert!(old.unlock(Unlock::Password(&pw("pw"))).is_ok());
    }

    #[test]
    fn round_trip_and_unlock() {
        let (c, mk, rk) = sample();
        let bytes = c.to_bytes();
        assert_eq!(
            bytes.len(),
            HEADER_LEN + (1 + 12 + 16 + 60) + (1 + 16 + 60) + 32 + 32
        );
        let c2 = Config::from_bytes(&bytes).unwrap();
        let m1 = c2.unlock(Unlock::Password(&pw("correct horse"))).unwrap();
        assert_eq!(m1.0.expose(), mk.0.expose());
        let m2 = c2.unlock(Unlock::Recovery(&rk)).unwrap();
        assert_eq!(m2.0.expose(), mk.0.expose());
        assert!(c2.unlock(Unlock::Password(&pw("wrong"))).is_err());
        assert!(c2.unlock(Unlock::Recovery(&Key32::random())).is_err());
    }

    /// Rewrites a field and fixes the checksum, as an attacker would.
    fn forge(mut b: Vec<u8>, at: usize, val: &[u8]) -> Vec<u8> {
        b[at..at + val.len()].copy_from_slice(val);
        let n = b.len() - 32;
        let sum = Sha256::digest(&b[..n]);
        b[n..].copy_from_slice(&sum);
        b
    }

    #[test]
    fn refuses_newer_older_unknown_flags_and_corruption() {
        let (c, _, _) = sample();
        let b = c.to_bytes();
        assert!(matches!(
            Config::from_bytes(&forge(b.clone(), 8, &2u16.to_be_bytes())),
            Err(FormatError::TooNew { found: 2, .. })
        ));
        assert!(matches!(
            Config::from_bytes(&forge(b.clone(), 8, &0u16.to_be_bytes())),
            Err(FormatError::TooOld { found: 0, .. })
        ));
        assert!(matches!(
            Config::from_bytes(&forge(b.clone(), 10, &(KNOWN_FLAGS | 1 << 20).to_be_bytes())),
            Err(FormatError::UnknownFlags(f)) if f == 1 << 20
        ));
        let mut t = b.clone();
        t[40] ^= 1;
        assert!(matches!(
            Config::from_bytes(&t),
            Err(FormatError::Corrupt(_))
        ));
        assert!(matches!(
            Config::from_bytes(&b[..20]),
            Err(FormatError::Corrupt(_))
        ));
        assert!(matches!(
            Config::from_bytes(b"hello world"),
            Err(FormatError::BadMagic)
        ));
    }

    /// Issue 18.7: a MAC-only flag is added with the master key alone; both
    /// slots still open; clearing it again (or setting it without the
    /// master key) is "modified", not a wrong password.
    /// Issue 20.1: named slots. Each person's password opens the vault
    /// as that person; the name is bound to the wrap (AAD) and the list to
    /// the slot MAC, so renaming, swapping, duplicating or planting a
    /// named slot is "modified"; a vault without the flag refuses kind 3.
    #[test]
    fn named_slots_open_as_their_person_and_are_bound_to_their_name() {
        let (mut c, mk, rk) = sample();
        assert_eq!(c.flags & FLAG_NAMED_SLOTS, 0);
        c.add_named_slot(
            &mk,
            "Ana",
            false,
            &pw("ana's own phrase"),
            Argon2Params::MIN,
        )
        .unwrap();
        c.add_named_slot(
            &mk,
            "Sam Lee",
            false,
            &pw("sam's own phrase"),
            Argon2Params::MIN,
        )
        .unwrap();
        c.add_named_slot(
            &mk,
            "glass",
            true,
            &pw("break the glass"),
            Argon2Params::MIN,
        )
        .unwrap();
        assert_eq!(c.flags & FLAG_NAMED_SLOTS, FLAG_NAMED_SLOTS);
        // Refused: a name twice (any case), a bad name, a second break-glass.
        for (n, bg) in [
            ("ana", false),
            ("", false),
            (" x", false),
            ("12", false),
            ("B", true),
        ] {
            assert!(
                c.clone()
                    .add_named_slot(&mk, n, bg, &pw("p"), Argon2Params::MIN)
                    .is_err(),
                "{n}"
            );
        }
        let b = c.to_bytes();
        // Worked size: 261 + 3 named slots of 1 + 1 + 1 + len + 12 + 16 + 60.
        assert_eq!(b.len(), 261 + (91 + 3) + (91 + 7) + (91 + 5));
        let c = Config::from_bytes(&b).unwrap();
        let who = |u: Unlock<'_>, p: Option<&str>| {
            c.unlock_as(u, p)
                .map(|(_, i)| c.slots[i].name().map(str::to_string))
        };
        assert_eq!(who(Unlock::Password(&pw("correct horse")), None), Ok(None));
        assert_eq!(
            who(Unlock::Password(&pw("sam's own phrase")), None),
            Ok(Some("Sam Lee".into()))
        );
        assert_eq!(
            who(Unlock::Password(&pw("ana's own phrase")), Some("ANA")),
            Ok(Some("Ana".into()))
        );
        assert_eq!(
            who(Unlock::Password(&pw("sam's own phrase")), Some("Ana")),
            Err(UnlockError::Wrong)
        );
        assert_eq!(
            who(Unlock::Password(&pw("x")), Some("Bo")),
            Err(UnlockError::NoSuchPerson("Bo".into()))
        );
        assert_eq!(who(Unlock::Recovery(&rk), Some("Ana")), Ok(None));
        assert!(c.slots[4].is_break_glass());
        assert_eq!(c.opens_any(&pw("sam's own phrase"), None), Some(3));
        assert_eq!(c.opens_any(&pw("sam's own phrase"), Some(3)), None);
        // Ana's slot starts after the header, the shared and the recovery slot.
        let ana = HEADER_LEN + 89 + 77;
        assert_eq!(&b[ana..ana + 6], b"\x03\x00\x03Ana");
        let modified = |b: &[u8], u: Unlock<'_>| {
            matches!(
                Config::from_bytes(b).map(|c| c.unlock(u)),
                Ok(Err(UnlockError::Modified(_))) | Err(_)
            )
        };
        // Renamed (same length) and MAC fixed by no one: the wrap's AAD
        // fails for Ana, and the slot MAC for everyone else.
        let renamed = forge(b.clone(), ana + 3, b"Bob");
        assert!(matches!(
            Config::from_bytes(&renamed)
                .unwrap()
                .unlock(Unlock::Password(&pw("ana's own phrase"))),
            Err(UnlockError::Wrong)
        ));
        assert!(modified(&renamed, Unlock::Password(&pw("correct horse"))));
        // The break-glass bit cleared: modified.
        let glass = ana + 91 + 3 + 91 + 7;
        assert_eq!(&b[glass..glass + 2], b"\x03\x01");
        assert!(modified(
            &forge(b.clone(), glass + 1, b"\x00"),
            Unlock::Recovery(&rk)
        ));
        // An unknown named-slot flag, a bad name: corrupt.
        assert!(Config::from_bytes(&forge(b.clone(), ana + 1, b"\x02")).is_err());
        assert!(Config::from_bytes(&forge(b.clone(), ana + 3, b"\x01")).is_err());
        // Two slots of one name (a copy of Ana's added): refused before any
        // slot is tried.
        let mut dup = c.clone();
        dup.slots.push(c.slots[2].clone());
        let dup = Config::from_bytes(&dup.to_bytes()).unwrap();
        assert!(
            matches!(dup.unlock(Unlock::Recovery(&rk)), Err(UnlockError::Modified(m)) if m.contains("same name"))
        );
        // An attacker's named slot wrapping their own key: the MAC fails.
        let mut planted = c.clone();
        let mut other = Config::new();
        other.vault_id = c.vault_id;
        other.flags = c.flags;
        let evil = MasterKey::generate();
        other
            .add_named_slot(&evil, "Eve", false, &pw("eve"), Argon2Params::MIN)
            .unwrap();
        planted.slots.push(other.slots[0].clone());
        let planted = Config::from_bytes(&planted.to_bytes()).unwrap();
        assert!(matches!(
            planted.unlock(Unlock::Password(&pw("eve"))),
            Err(UnlockError::Modified(_))
        ));
        // Without the flag, a named slot is corrupt.
        let f = c.flags & !FLAG_NAMED_SLOTS;
        assert!(matches!(
            Config::from_bytes(&forge(b.clone(), 10, &f.to_be_bytes())),
            Err(FormatError::Corrupt(_))
        ));
        // A new password for Sam keeps name and kind; the shared slot's
        // password is untouched.
        let mut c2 = c.clone();
        c2.rewrap_password_slot(3, &mk, &pw("sam's new phrase"), Argon2Params::MIN);
        c2.seal_slots(&mk);
        let c2 = Config::from_bytes(&c2.to_bytes()).unwrap();
        assert_eq!(c2.slots[3].name(), Some("Sam Lee"));
        assert!(
            c2.unlock(Unlock::Password(&pw("sam's own phrase")))
                .is_err()
        );
        assert!(c2.unlock(Unlock::Password(&pw("sam's new phrase"))).is_ok());
        assert!(c2.unlock(Unlock::Password(&pw("correct horse"))).is_ok());
    }

    #[test]
    fn a_mac_only_flag_is_added_without_rewrapping_and_cannot_be_cleared() {
        let (mut c, mk, rk) = sample();
        c.flags &= !FLAG_SEALED_XATTRS;
        c.seal_slots(&mk);
        let before = Config::from_bytes(&c.to_bytes()).unwrap();
        let mut c = before.clone();
        assert!(c.add_mac_only_flag(FLAG_SEALED_XATTRS, &mk));
        assert!(!c.add_mac_only_flag(FLAG_BOUND, &mk));
        let b = c.to_bytes();
        // The slots are the very bytes they were.
        let slots = HEADER_LEN..b.len() - 64;
        assert_eq!(before.to_bytes()[slots.clone()], b[slots]);
        let c2 = Config::from_bytes(&b).unwrap();
        assert_eq!(c2.flags & FLAG_SEALED_XATTRS, FLAG_SEALED_XATTRS);
        assert!(c2.unlock(Unlock::Password(&pw("correct horse"))).is_ok());
        assert!(c2.unlock(Unlock::Recovery(&rk)).is_ok());
        let modified = |b: &[u8]| {
            matches!(
                Config::from_bytes(b).unwrap().unlock(Unlock::Recovery(&rk)),
                Err(UnlockError::Modified(_))
            )
        };
        let flags = |f: u32| f.to_be_bytes();
        assert!(modified(&forge(
            b.clone(),
            10,
            &flags(c2.flags & !FLAG_SEALED_XATTRS)
        )));
        assert!(modified(&forge(before.to_bytes(), 10, &flags(c2.flags))));
        // Without the slot MAC nothing would authenticate it: refused.
        let no_mac = forge(b, 10, &flags(c2.flags & !FLAG_SLOT_MAC));
        assert!(matches!(
            Config::from_bytes(&no_mac),
            Err(FormatError::Corrupt(_))
        ));
    }

    #[test]
    fn downgraded_kdf_params_fail_to_unlock() {
        let (c, _, _) = sample();
        let b = c.to_bytes();
        // Slot 0 starts at HEADER_LEN: kind, then m_kib. Raise m to
        // 9 MiB: still in bounds, checksum fixed, but the AAD no longer matches.
        let forged = forge(b, HEADER_LEN + 1, &(9 * 1024u32).to_be_bytes());
        let c2 = Config::from_bytes(&forged).unwrap();
        assert!(c2.unlock(Unlock::Password(&pw("correct horse"))).is_err());
    }
}
