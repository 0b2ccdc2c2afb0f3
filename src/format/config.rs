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
/// Flags the slot MAC authenticates but the slots' AAD leaves out (they
/// read as zero there), so they can be added with the master key alone.
pub const MAC_ONLY_FLAGS: u32 = FLAG_SEALED_XATTRS;
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
    | FLAG_SEALED_XATTRS;
/// Flags every version-1 vault has.
pub const REQUIRED_FLAGS: u32 =
    FLAG_SIV_NAMES | FLAG_LONG_NAMES | FLAG_LAST_BLOCK_AAD | FLAG_XATTRS;

const HEADER_LEN: usize = 8 + 2 + 4 + 16 + 1;
const WRAPPED_LEN: usize = 12 + 32 + 16;
const MAX_SLOTS: usize = 8;

/// Kind byte of a password slot.
pub const SLOT_PASSWORD: u8 = 1;
/// Kind byte of a recovery-key slot.
pub const SLOT_RECOVERY: u8 = 2;

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
        }
        v
    }

    fn wrapped(&self) -> &[u8; WRAPPED_LEN] {
        match self {
            Slot::Password { wrapped, .. } | Slot::Recovery { wrapped, .. } => wrapped,
        }
    }

    /// Whether this is a password slot.
    pub fn is_password(&self) -> bool {
        matches!(self, Slot::Password { .. })
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
            flags: KNOWN_FLAGS,
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

    /// Removes every password slot (before adding the new one in `passwd`).
    pub fn remove_password_slots(&mut self) {
        self.slots.retain(|s| !s.is_password());
    }

    /// Removes every recovery-key slot (before adding the new one when
    /// the recovery key is replaced).
    pub fn remove_recovery_slots(&mut self) {
        self.slots.retain(|s| s.is_password());
    }

    fn wrap_into(&self, slot: &mut Slot, kek: &Key32, master: &MasterKey) {
        let aad = self.slot_aad(&slot.params_bytes());
        let nonce = random::bytes::<12>();
        let mut out = [0u8; WRAPPED_LEN];
        AeadKey::new(kek).seal_into(&nonce, &aad, master.0.expose(), &mut out);
        match slot {
            Slot::Password { wrapped, .. } | Slot::Recovery { wrapped, .. } => *wrapped = out,
        }
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
        let sealed = self.flags & FLAG_SLOT_MAC != 0;
        if sealed {
            let pw = self.slots.iter().filter(|s| s.is_password()).count();
            let rk = self.slots.len() - pw;
            if pw > 1 || rk > 1 {
                return Err(UnlockError::Modified(format!(
                    "it has {pw} password and {rk} recovery-key slots; Quire keeps one of each"
                )));
            }
        }
        let mut order: Vec<&Slot> = self.slots.iter().collect();
        order.sort_by_key(|s| match s {
            Slot::Password { params, .. } => {
                params.m_kib as u64 * params.t as u64 * params.p.max(1) as u64
            }
            Slot::Recovery { .. } => 0,
        });
        for slot in order {
            let kek = match (&secret, slot) {
                (Unlock::Password(p), Slot::Password { params, salt, .. }) => {
                    kdf::password_kek(p, salt, *params)
                }
                (Unlock::Recovery(r), Slot::Recovery { salt, .. }) => kdf::recovery_kek(r, salt),
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
                return Ok(master);
            }
        }
        Err(UnlockError::Wrong)
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
        if n == 0 || n > MAX_SLOTS {
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
                    let p = take(&mut r, 12)?;
                    let params = Argon2Params {
                        m_kib: u32::from_be_bytes(p[0..4].try_into().unwrap()),
                        t: u32::from_be_bytes(p[4..8].try_into().unwrap()),
                        p: u32::from_be_bytes(p[8..12].try_into().unwrap()),
                    };
                    if !params.in_bounds() {
                        return Err(FormatError::Corrupt("Argon2 parameters out of bounds"));
                    }
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
