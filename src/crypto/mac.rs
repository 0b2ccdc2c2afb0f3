//! The block MAC's per-slot values (docs/FORMAT.md §4.2): HMAC-SHA256 under
//! the `quire/v1/block-mac` subkey of (file ID ‖ slot number ‖ the slot's
//! nonce). A file's MAC is the XOR of the values of its non-empty slots, so
//! a write updates it from the slots it replaces alone.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Key32;

/// The keyed PRF of slot values. No `Debug`: it holds key material.
pub struct BlockMacKey(Hmac<Sha256>);

impl BlockMacKey {
    /// From the vault's block-MAC subkey.
    pub fn new(key: &Key32) -> Self {
        BlockMacKey(<Hmac<Sha256> as Mac>::new_from_slice(key.expose()).expect("any key length"))
    }

    /// The value of slot `n` of file `file_id` holding a seal with `nonce`;
    /// zero for an empty slot (an all-zero nonce: a hole).
    pub fn slot(&self, file_id: &[u8; 16], n: u64, nonce: &[u8]) -> [u8; 32] {
        if nonce.iter().all(|&b| b == 0) {
            return [0; 32];
        }
        let mut m = self.0.clone();
        m.update(file_id);
        m.update(&n.to_be_bytes());
        m.update(nonce);
        m.finalize().into_bytes().into()
    }
}

/// `acc ^= v`.
pub fn xor_into(acc: &mut [u8; 32], v: &[u8; 32]) {
    for (a, b) in acc.iter_mut().zip(v) {
        *a ^= b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_values_bind_file_position_and_nonce() {
        let k = BlockMacKey::new(&Key32::from_bytes(&mut [3; 32]));
        let a = k.slot(&[1; 16], 5, &[9; 12]);
        assert_ne!(a, k.slot(&[2; 16], 5, &[9; 12]));
        assert_ne!(a, k.slot(&[1; 16], 6, &[9; 12]));
        assert_ne!(a, k.slot(&[1; 16], 5, &[8; 12]));
        assert_eq!(k.slot(&[1; 16], 5, &[0; 12]), [0; 32]);
        let mut acc = [0; 32];
        xor_into(&mut acc, &a);
        xor_into(&mut acc, &a);
        assert_eq!(acc, [0; 32]);
    }
}
