//! The recovery key as users see it: 32 random bytes in Crockford base32,
//! in groups of four, with a 4-character checksum group so that a typo is
//! reported as a typo rather than as a wrong key (docs/FORMAT.md §2.3).

use sha2::{Digest, Sha256};

use super::error::Error;
use crate::crypto::Key32;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A recovery key rendered for display; wiped on drop.
pub struct RecoveryText(zeroize::Zeroizing<String>);

impl RecoveryText {
    /// The text to show the user once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn b32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Formats a recovery key: 52 data characters + 4 checksum characters.
pub fn encode(key: &Key32) -> RecoveryText {
    let mut s = b32(key.expose());
    let sum = Sha256::digest(key.expose());
    s.push_str(&b32(&sum[..3])[..4]);
    let grouped: String = s
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("-");
    s.zeroize_string();
    RecoveryText(zeroize::Zeroizing::new(grouped))
}

trait ZeroizeString {
    fn zeroize_string(&mut self);
}
impl ZeroizeString for String {
    fn zeroize_string(&mut self) {
        zeroize::Zeroize::zeroize(self);
    }
}

/// Parses a recovery key typed by a user (case, dashes and spaces ignored;
/// O→0, I/L→1 as Crockford allows).
pub fn decode(text: &str) -> Result<Key32, Error> {
    let mut vals: Vec<u8> = Vec::with_capacity(56);
    for c in text.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' | '\n' | '\t' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        let v = ALPHABET
            .iter()
            .position(|&a| a as char == c)
            .ok_or(Error::BadRecoveryKey(
                "it contains a character that is not in a recovery key",
            ))?;
        vals.push(v as u8);
    }
    if vals.len() != 56 {
        return Err(Error::BadRecoveryKey(
            "it must have 56 characters (14 groups of 4)",
        ));
    }
    let mut bytes = [0u8; 33];
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    for &v in &vals[..52] {
        acc = (acc << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if n < 33 {
                bytes[n] = (acc >> bits) as u8;
            }
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes[..32]);
    zeroize::Zeroize::zeroize(&mut bytes);
    let sum = Sha256::digest(key);
    let expect = b32(&sum[..3]);
    let got: String = vals[52..]
        .iter()
        .map(|&v| ALPHABET[v as usize] as char)
        .collect();
    if expect[..4] != got {
        zeroize::Zeroize::zeroize(&mut key);
        return Err(Error::BadRecoveryKey(
            "its checksum does not match: check for a typo",
        ));
    }
    Ok(Key32::from_bytes(&mut key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_typo_detection() {
        let k = Key32::random();
        let t = encode(&k);
        assert_eq!(t.expose().len(), 56 + 13);
        let back = decode(&t.expose().to_lowercase()).unwrap();
        assert_eq!(back.expose(), k.expose());
        let mut typo = t.expose().to_string().into_bytes();
        typo[0] = if typo[0] == b'A' { b'B' } else { b'A' };
        assert!(matches!(
            decode(std::str::from_utf8(&typo).unwrap()),
            Err(Error::BadRecoveryKey(_))
        ));
        assert!(decode("abc").is_err());
    }
}
