//! Layer 0: the cryptographic primitives Quire is built from.
//!
//! Owns AEAD sealing (AES-256-GCM), the name cipher (AES-SIV), Argon2id key
//! derivation with stored parameters, HKDF subkeys (every label lives in
//! [`labels`]), random identifiers and the secret newtypes. It knows nothing of
//! paths, files or FUSE.

pub mod aead;
pub mod kdf;
pub mod keys;
pub mod labels;
pub mod mac;
pub mod names;
pub mod random;
pub mod secret;
pub mod sign;

pub use aead::{AeadKey, NONCE_LEN, TAG_LEN};
pub use keys::{MasterKey, SubKeys};
pub use names::NameKey;
pub use secret::{Key32, Password};

/// A cryptographic check failed: wrong key, or data that was tampered with or
/// truncated. Deliberately carries no detail about the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed (wrong key, or the data was modified)")]
pub struct AuthError;
