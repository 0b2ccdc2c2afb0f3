//! The vault's master key and the subkeys derived from it, one per purpose
//! (labels in `labels`). Built on the secret newtypes (`secret`) and the
//! ciphers (`aead`, `names`); nothing below imports this file.

use super::aead::AeadKey;
use super::labels;
use super::names::NameKey;
use super::secret::{Key32, Secret, lock_memory};

/// The vault's random master key. Only ever stored wrapped in key slots.
pub struct MasterKey(pub(crate) Key32);

impl MasterKey {
    /// A fresh random master key (vault creation).
    pub fn generate() -> Self {
        MasterKey(Key32::random())
    }

    /// Derives a purpose subkey with HKDF-SHA256 (salt = vault ID).
    pub fn derive<const N: usize>(&self, vault_id: &[u8; 16], label: &[u8]) -> Secret<N> {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(vault_id), self.0.expose());
        let mut out = [0u8; N];
        hk.expand(label, &mut out)
            .expect("HKDF output length is a small constant");
        Secret::from_bytes(&mut out)
    }

    /// See [`Secret::relock`].
    pub fn relock(&self) {
        self.0.relock();
    }

    /// The search index's key (given to the index alone).
    pub fn index_key(&self, vault_id: &[u8; 16]) -> AeadKey {
        AeadKey::new(&self.derive::<32>(vault_id, labels::INDEX))
    }

    /// All per-purpose keys of an unlocked vault.
    pub fn subkeys(&self, vault_id: &[u8; 16]) -> SubKeys {
        SubKeys {
            content: self.derive::<32>(vault_id, labels::CONTENT),
            names: NameKey::new(self.derive::<64>(vault_id, labels::NAMES)),
            symlink: AeadKey::new(&self.derive::<32>(vault_id, labels::SYMLINK)),
            xattr_name: NameKey::new(self.derive::<64>(vault_id, labels::XATTR_NAME)),
            xattr_value: AeadKey::new(&self.derive::<32>(vault_id, labels::XATTR_VALUE)),
            log: AeadKey::new(&self.derive::<32>(vault_id, labels::LOG)),
            undo: self.derive::<32>(vault_id, labels::UNDO),
            history: self.derive::<32>(vault_id, labels::HISTORY),
            chunk_hash: self.derive::<32>(vault_id, labels::CHUNK_HASH),
            trash: AeadKey::new(&self.derive::<32>(vault_id, labels::TRASH)),
            lifecycle: AeadKey::new(&self.derive::<32>(vault_id, labels::LIFECYCLE)),
            audit: AeadKey::new(&self.derive::<32>(vault_id, labels::AUDIT)),
            audit_chain: self.derive::<32>(vault_id, labels::AUDIT_CHAIN),
            block_mac: self.derive::<32>(vault_id, labels::BLOCK_MAC),
            mac_sums: AeadKey::new(&self.derive::<32>(vault_id, labels::MAC_SUMS)),
            device: AeadKey::new(&self.derive::<32>(vault_id, labels::DEVICE)),
            backup_sign: self.derive::<32>(vault_id, labels::BACKUP_SIGN),
        }
    }
}

/// The subkeys of an unlocked vault. Dropping it wipes them all.
pub struct SubKeys {
    /// Content master subkey: per-file keys are HKDF(content, FILE_KEY ‖ file ID).
    pub content: Key32,
    /// Content files' block MAC (flag `BLOCK_MAC`).
    pub block_mac: Key32,
    /// The group sums of large files a device keeps (§4.2).
    pub mac_sums: AeadKey,
    /// File and directory names.
    pub names: NameKey,
    /// Symlink targets.
    pub symlink: AeadKey,
    /// Extended attribute names.
    pub xattr_name: NameKey,
    /// Extended attribute values.
    pub xattr_value: AeadKey,
    /// Daemon log records.
    pub log: AeadKey,
    /// Crash-undo journal: per-generation keys derive from it.
    pub undo: Key32,
    /// History streams: per-stream keys derive from it.
    pub history: Key32,
    /// Keyed chunk hashes and the chunker's boundary table.
    pub chunk_hash: Key32,
    /// Trash entry records.
    pub trash: AeadKey,
    /// Lifecycle records (expiry and retention dates).
    pub lifecycle: AeadKey,
    /// Audit log records.
    pub audit: AeadKey,
    /// HMAC key of the audit log's hash chain.
    pub audit_chain: Key32,
    /// Device records (§18).
    pub device: AeadKey,
    /// Seed of the Ed25519 key that signs backup manifests (§19).
    pub backup_sign: Key32,
}

impl SubKeys {
    /// The AEAD key of one file, bound to its random 128-bit file ID.
    /// (Per-file keys are wiped on drop but not locked in memory: there can
    /// be thousands; the keys they derive from are locked.)
    pub fn file_key(&self, file_id: &[u8; 16]) -> AeadKey {
        expand_with_id(&self.content, labels::FILE_KEY, file_id)
    }

    /// The key of one crash-undo journal generation.
    pub fn undo_key(&self, generation: &[u8; 16]) -> AeadKey {
        expand_with_id(&self.undo, labels::UNDO, generation)
    }

    /// The key of one history stream.
    pub fn history_key(&self, stream: &[u8; 16]) -> AeadKey {
        expand_with_id(&self.history, labels::HISTORY, stream)
    }

    /// HMAC-SHA256 of `data` under the audit chain key: the link that
    /// each audit record carries of the one before it.
    pub fn audit_link(&self, data: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(self.audit_chain.expose())
            .expect("HMAC takes any key length");
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// Locks every subkey in memory, including the expanded AES key
    /// schedules held inline in this struct (see [`Secret::relock`]).
    pub fn relock(&self) {
        self.content.relock();
        self.undo.relock();
        self.history.relock();
        self.chunk_hash.relock();
        self.block_mac.relock();
        self.audit_chain.relock();
        self.backup_sign.relock();
        self.names.relock();
        self.xattr_name.relock();
        lock_memory((self as *const Self).cast(), std::mem::size_of::<Self>());
    }
}

/// HKDF-Expand(prk = `base`, info = `label ‖ id`) as an AES-256-GCM key.
fn expand_with_id(base: &Key32, label: &[u8], id: &[u8; 16]) -> AeadKey {
    let hk = hkdf::Hkdf::<sha2::Sha256>::from_prk(base.expose()).expect("32-byte PRK is valid");
    let mut info = Vec::with_capacity(label.len() + 16);
    info.extend_from_slice(label);
    info.extend_from_slice(id);
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    hk.expand(&info, &mut out[..])
        .expect("HKDF output length is a small constant");
    AeadKey::from_bytes(&out)
}
