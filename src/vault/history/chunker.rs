//! The keyed content-defined chunker of history streams (docs/FORMAT.md
//! §12): a gear rolling hash cuts content into 2–64 KiB chunks (8 KiB on
//! average), so an insertion changes only the chunks around it. The gear
//! table and the chunk hashes are keyed, so chunk boundaries and hashes say
//! nothing about content to someone without the key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto::Key32;

pub(crate) const MIN_CHUNK: usize = 2 << 10;
pub(crate) const MAX_CHUNK: usize = 64 << 10;
const MASK: u64 = (1 << 13) - 1;

/// The keyed chunker and hasher of one vault.
pub struct Chunker {
    gear: Box<[u64; 256]>,
    mac: Hmac<Sha256>,
}

impl Chunker {
    /// Derives the boundary table and hash key from the chunk-hash subkey.
    pub(crate) fn new(key: &Key32) -> Chunker {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose()).expect("any key length");
        let mut gear = Box::new([0u64; 256]);
        for (i, g) in gear.iter_mut().enumerate() {
            let mut m = mac.clone();
            m.update(b"gear");
            m.update(&[i as u8]);
            let out = m.finalize().into_bytes();
            *g = u64::from_be_bytes(out[..8].try_into().expect("8 bytes"));
        }
        Chunker { gear, mac }
    }

    /// Chunk boundaries of `data` (end offsets).
    pub fn cut(&self, data: &[u8]) -> Vec<usize> {
        let mut ends = Vec::new();
        let mut start = 0;
        while start < data.len() {
            let rest = &data[start..];
            if rest.len() <= MIN_CHUNK {
                ends.push(data.len());
                break;
            }
            let limit = rest.len().min(MAX_CHUNK);
            let mut h: u64 = 0;
            let mut cut = limit;
            for (i, &b) in rest[..limit].iter().enumerate().skip(MIN_CHUNK) {
                h = (h << 1).wrapping_add(self.gear[b as usize]);
                if h & MASK == 0 {
                    cut = i + 1;
                    break;
                }
            }
            start += cut;
            ends.push(start);
        }
        ends
    }

    /// Keyed hash of `data`.
    pub fn hash(&self, data: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(data);
        m.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunker() -> Chunker {
        Chunker::new(&Key32::from_bytes(&mut [5u8; 32]))
    }

    fn pseudo(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn chunks_cover_the_data_within_bounds() {
        let c = chunker();
        for n in [0usize, 1, 2048, 2049, 10_000, 300_000] {
            let d = pseudo(n, 9);
            let ends = c.cut(&d);
            assert_eq!(ends.last().copied().unwrap_or(0), n);
            let mut prev = 0;
            for (i, &e) in ends.iter().enumerate() {
                let len = e - prev;
                assert!(len <= MAX_CHUNK);
                assert!(len >= MIN_CHUNK || i == ends.len() - 1, "{len}");
                prev = e;
            }
        }
    }

    #[test]
    fn an_insertion_changes_few_chunks() {
        let c = chunker();
        let a = pseudo(1 << 20, 3);
        let mut b = a.clone();
        b.splice(500_000..500_000, b"an inserted sentence".iter().copied());
        let set = |d: &[u8]| {
            let mut s = std::collections::HashSet::new();
            let mut p = 0;
            for e in c.cut(d) {
                s.insert(c.hash(&d[p..e]));
                p = e;
            }
            s
        };
        let (sa, sb) = (set(&a), set(&b));
        let new = sb.difference(&sa).count();
        assert!(new <= 3, "{new} new chunks of {}", sb.len());
        assert!(sa.len() > 50);
    }
}
