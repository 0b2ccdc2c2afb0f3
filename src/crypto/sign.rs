//! Ed25519 signatures of backup manifests (docs/FORMAT.md §19): the seed
//! is a subkey of the master key (label `BACKUP_SIGN`), so only someone
//! who can unlock the vault signs, and anyone with the public key verifies
//! a backup without the password.

use super::secret::Key32;

/// Length of a public key.
pub const PUBLIC_LEN: usize = 32;
/// Length of a signature.
pub const SIGNATURE_LEN: usize = 64;

fn signing_key(seed: &Key32) -> ed25519_dalek::SigningKey {
    // The dalek key wipes itself on drop (its `zeroize` feature).
    ed25519_dalek::SigningKey::from_bytes(seed.expose())
}

/// The public key of the signing key seeded by `seed`.
pub fn public(seed: &Key32) -> [u8; PUBLIC_LEN] {
    signing_key(seed).verifying_key().to_bytes()
}

/// Signs `msg` (deterministic, RFC 8032).
pub fn sign(seed: &Key32, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
    use ed25519_dalek::Signer;
    signing_key(seed).sign(msg).to_bytes()
}

/// Whether `sig` is a valid signature of `msg` by `public` (strict
/// verification: no malleable or small-order forms accepted).
pub fn verify(public: &[u8; PUBLIC_LEN], msg: &[u8], sig: &[u8; SIGNATURE_LEN]) -> bool {
    let Ok(k) = ed25519_dalek::VerifyingKey::from_bytes(public) else {
        return false;
    };
    k.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8032 §7.1, TEST 2 (one-byte message), then the failures: a
    /// changed message, a changed signature, another key.
    #[test]
    fn rfc8032_vector_and_failures() {
        let mut seed: [u8; 32] =
            hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
                .try_into()
                .unwrap();
        let seed = Key32::from_bytes(&mut seed);
        let pk = public(&seed);
        assert_eq!(
            pk.to_vec(),
            hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
        );
        let msg = [0x72u8];
        let sig = sign(&seed, &msg);
        assert_eq!(
            sig.to_vec(),
            hex(
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
            )
        );
        assert!(verify(&pk, &msg, &sig));
        assert!(!verify(&pk, &[0x73], &sig));
        let mut bad = sig;
        bad[10] ^= 1;
        assert!(!verify(&pk, &msg, &bad));
        let mut other = [7u8; 32];
        let other = public(&Key32::from_bytes(&mut other));
        assert!(!verify(&other, &msg, &sig));
    }
}
