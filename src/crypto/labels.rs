//! Every HKDF `info` label Quire uses, in one place (gocryptfs keeps its
//! labels in `internal/cryptocore/hkdf.go` for the same reason: a label used
//! twice for two purposes would make two keys equal).
//!
//! Changing any string here changes the on-disk format: see docs/FORMAT.md §3.

/// Key-encryption key of a recovery-key slot, from the recovery key.
pub const KEK_RECOVERY: &[u8] = b"quire/v1/kek/recovery";
/// Content master subkey; per-file keys are derived from it.
pub const CONTENT: &[u8] = b"quire/v1/content";
/// Per-file content key: this label followed by the 16-byte file ID.
pub const FILE_KEY: &[u8] = b"quire/v1/file";
/// AES-SIV key (64 bytes) for file and directory names.
pub const NAMES: &[u8] = b"quire/v1/names";
/// AES-GCM key for symlink targets.
pub const SYMLINK: &[u8] = b"quire/v1/symlink";
/// AES-SIV key (64 bytes) for extended attribute names.
pub const XATTR_NAME: &[u8] = b"quire/v1/xattr-name";
/// AES-GCM key for extended attribute values.
pub const XATTR_VALUE: &[u8] = b"quire/v1/xattr-value";
/// AES-GCM key for the daemon's log records.
pub const LOG: &[u8] = b"quire/v1/log";
/// AES-GCM key of the search index's files (§17).
pub const INDEX: &[u8] = b"quire/v1/index";
/// Crash-undo journal subkey; each journal generation's key is derived from
/// it with this label followed by the 16-byte generation ID.
pub const UNDO: &[u8] = b"quire/v1/undo";
/// History subkey; each history stream's key is derived from it with this
/// label followed by the 16-byte stream ID.
pub const HISTORY: &[u8] = b"quire/v1/history";
/// Keyed chunk hash and chunk-boundary table of history streams.
pub const CHUNK_HASH: &[u8] = b"quire/v1/chunk-hash";
/// AES-GCM key for trash entry records.
pub const TRASH: &[u8] = b"quire/v1/trash";
/// AES-GCM key for lifecycle records (expiry and retention dates, §15).
pub const LIFECYCLE: &[u8] = b"quire/v1/lifecycle";
/// AES-GCM key for audit log records (§16).
pub const AUDIT: &[u8] = b"quire/v1/audit";
/// HMAC-SHA256 key that authenticates the key slot list (§2.2).
pub const SLOTS: &[u8] = b"quire/v1/slots";
/// HMAC-SHA256 key of the audit log's hash chain (§16).
pub const AUDIT_CHAIN: &[u8] = b"quire/v1/audit-chain";
/// HMAC-SHA256 key of content files' block MAC (§4.2).
pub const BLOCK_MAC: &[u8] = b"quire/v1/block-mac";
/// AES-256-GCM key of the group sums a device keeps of large files (§4.2).
pub const MAC_SUMS: &[u8] = b"quire/v1/mac-sums";
/// AES-GCM key for device records (§18).
pub const DEVICE: &[u8] = b"quire/v1/device";
/// Ed25519 seed that signs backup manifests (§19).
pub const BACKUP_SIGN: &[u8] = b"quire/v1/backup-sign";

#[cfg(test)]
mod tests {
    #[test]
    fn labels_are_distinct() {
        let all = [
            super::KEK_RECOVERY,
            super::CONTENT,
            super::FILE_KEY,
            super::NAMES,
            super::SYMLINK,
            super::XATTR_NAME,
            super::XATTR_VALUE,
            super::LOG,
            super::INDEX,
            super::UNDO,
            super::HISTORY,
            super::CHUNK_HASH,
            super::TRASH,
            super::LIFECYCLE,
            super::AUDIT,
            super::AUDIT_CHAIN,
            super::SLOTS,
            super::BLOCK_MAC,
            super::DEVICE,
            super::BACKUP_SIGN,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
