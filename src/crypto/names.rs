//! Deterministic authenticated encryption of names with AES-SIV (RFC 5297),
//! as Cryptomator does: the same name in the same directory always encrypts
//! to the same ciphertext, so lookups need no directory scan, and the
//! directory's ID is associated data, so a name moved to another directory
//! fails to decrypt.

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;

use super::AuthError;
use super::secret::Secret;

/// A 512-bit AES-SIV key.
pub struct NameKey(Secret<64>);

impl NameKey {
    /// Wraps a 64-byte key.
    pub fn new(key: Secret<64>) -> Self {
        NameKey(key)
    }

    /// See [`super::secret::Secret::relock`].
    pub fn relock(&self) {
        self.0.relock();
    }

    fn cipher(&self) -> Aes256Siv {
        Aes256Siv::new_from_slice(self.0.expose()).expect("64-byte key")
    }

    /// Encrypts `plain` with `ad` as associated data: `tag(16) ‖ ciphertext`.
    pub fn encrypt(&self, ad: &[u8], plain: &[u8]) -> Vec<u8> {
        self.cipher()
            .encrypt([ad], plain)
            .expect("name far below the SIV length limit")
    }

    /// Decrypts what [`NameKey::encrypt`] produced.
    pub fn decrypt(&self, ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
        self.cipher().decrypt([ad], sealed).map_err(|_| AuthError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> NameKey {
        NameKey::new(Secret::from_bytes(&mut [3u8; 64]))
    }

    #[test]
    fn deterministic_and_bound_to_directory() {
        let k = key();
        let a = k.encrypt(b"dir-1", b"notes.md");
        assert_eq!(a, k.encrypt(b"dir-1", b"notes.md"));
        assert_ne!(a, k.encrypt(b"dir-2", b"notes.md"));
        assert_eq!(a.len(), 16 + 8);
        assert_eq!(k.decrypt(b"dir-1", &a).unwrap(), b"notes.md");
        assert_eq!(k.decrypt(b"dir-2", &a), Err(AuthError));
        let mut t = a.clone();
        t[20] ^= 1;
        assert_eq!(k.decrypt(b"dir-1", &t), Err(AuthError));
    }
}
