//! AES-256-GCM with random 96-bit nonces, laid out as `nonce ‖ ciphertext ‖ tag`.
//!
//! Random nonces are safe for about 2^32 messages per key, which is why
//! content is sealed under a per-file key (docs/FORMAT.md §4).

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

use super::AuthError;
use super::secret::Key32;

/// Length of the random nonce.
pub const NONCE_LEN: usize = 12;
/// Length of the GCM tag.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed message adds to its plaintext.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// An expanded AES-256-GCM key (the key schedule is wiped on drop by the
/// `aes` crate's `zeroize` feature).
pub struct AeadKey(Aes256Gcm);

impl AeadKey {
    /// Expands a 256-bit key.
    pub fn new(key: &Key32) -> Self {
        Self::from_bytes(key.expose())
    }

    /// Expands a 256-bit key held by the caller in zeroizing storage.
    pub fn from_bytes(key: &[u8; 32]) -> Self {
        AeadKey(Aes256Gcm::new_from_slice(key).expect("32-byte key"))
    }

    /// Seals `plain` into `out` (which must be `plain.len() + OVERHEAD` long)
    /// with the given nonce.
    pub fn seal_into(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], plain: &[u8], out: &mut [u8]) {
        assert_eq!(out.len(), plain.len() + OVERHEAD);
        out[..NONCE_LEN].copy_from_slice(nonce);
        let (body, tag_out) = out[NONCE_LEN..].split_at_mut(plain.len());
        body.copy_from_slice(plain);
        let tag = self
            .0
            .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, body)
            .expect("message far below the GCM length limit");
        tag_out.copy_from_slice(&tag);
    }

    /// Seals with a fresh random nonce; returns `nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; plain.len() + OVERHEAD];
        let nonce = super::random::bytes::<NONCE_LEN>();
        self.seal_into(&nonce, aad, plain, &mut out);
        out
    }

    /// Opens `nonce ‖ ciphertext ‖ tag` into `out` (`sealed.len() - OVERHEAD` long).
    pub fn open_into(&self, aad: &[u8], sealed: &[u8], out: &mut [u8]) -> Result<(), AuthError> {
        if sealed.len() < OVERHEAD || out.len() != sealed.len() - OVERHEAD {
            return Err(AuthError);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        out.copy_from_slice(body);
        self.0
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, out, Tag::from_slice(tag))
            .map_err(|_| {
                out.fill(0);
                AuthError
            })
    }

    /// Opens `nonce ‖ ciphertext ‖ tag`, returning the plaintext.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
        if sealed.len() < OVERHEAD {
            return Err(AuthError);
        }
        let mut out = vec![0u8; sealed.len() - OVERHEAD];
        self.open_into(aad, sealed, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> AeadKey {
        AeadKey::new(&Key32::from_bytes(&mut [b; 32]))
    }

    /// NIST-style known answer: AES-256-GCM, zero key, zero nonce, empty
    /// plaintext gives tag 530f8afbc74536b9a963b4f1c4cb738b.
    #[test]
    fn known_answer_empty_message() {
        let k = key(0);
        let mut out = [0u8; OVERHEAD];
        k.seal_into(&[0; 12], b"", b"", &mut out);
        assert_eq!(hex(&out[12..]), "530f8afbc74536b9a963b4f1c4cb738b");
    }

    #[test]
    fn round_trip_and_every_bit_flip_fails() {
        let k = key(7);
        let sealed = k.seal(b"aad", b"hello");
        assert_eq!(k.open(b"aad", &sealed).unwrap(), b"hello");
        for i in 0..sealed.len() * 8 {
            let mut t = sealed.clone();
            t[i / 8] ^= 1 << (i % 8);
            assert_eq!(k.open(b"aad", &t), Err(AuthError), "bit {i}");
        }
        assert_eq!(k.open(b"aaD", &sealed), Err(AuthError));
        assert_eq!(key(8).open(b"aad", &sealed), Err(AuthError));
        assert_eq!(k.open(b"aad", &sealed[..sealed.len() - 1]), Err(AuthError));
        assert_eq!(k.open(b"aad", &[]), Err(AuthError));
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
