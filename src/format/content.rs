//! File content layout (docs/FORMAT.md §4): an 18-byte header, then 4 KiB
//! plaintext blocks each sealed as `nonce(12) ‖ ciphertext ‖ tag(16)`.
//!
//! The AAD of block *n* is `file ID(16) ‖ n (u64 BE) ‖ last(u8)`, where `last`
//! is 1 only for the final block. Swapping, reordering or truncating blocks
//! therefore fails authentication (the STREAM construction of the age format).
//! An all-zero block is accepted as a hole only in a vault with the
//! `SPARSE` flag, and only inside a run of holes closed by a sealed hole
//! marker (see [`seal_marker`]); anywhere else it fails like any other
//! forgery.

use crate::crypto::aead::{AeadKey, NONCE_LEN, OVERHEAD};
use crate::crypto::{AuthError, random};

/// Content format version written in the header.
pub const HEADER_VERSION: u16 = 1;
/// Header length: version(2) ‖ file ID(16).
pub const HEADER_LEN: u64 = 18;
/// Content version of a header that carries the block MAC (flag
/// `BLOCK_MAC`, §4.2).
pub const HEADER_VERSION_MAC: u16 = 2;
/// Header length with the block MAC: version(2) ‖ file ID(16) ‖ sealed
/// MAC: nonce(12) ‖ MAC(32) ‖ tag(16).
pub const MAC_HEADER_LEN: u64 = 18 + 32 + OVERHEAD as u64;

/// Where blocks sit in a vault's content files: after an 18-byte header,
/// or (flag `BLOCK_MAC`) after a 78-byte header holding the sealed block
/// MAC. One layout per vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    header: u64,
}

impl Layout {
    /// Version 1 files: header = version ‖ file ID.
    pub const PLAIN: Layout = Layout { header: HEADER_LEN };
    /// Files with the block MAC in their header.
    pub const MAC: Layout = Layout {
        header: MAC_HEADER_LEN,
    };

    /// Header length.
    pub fn header_len(self) -> u64 {
        self.header
    }

    /// Whether headers carry the block MAC.
    pub fn has_mac(self) -> bool {
        self.header == MAC_HEADER_LEN
    }

    /// The content version its headers carry.
    pub fn version(self) -> u16 {
        if self.has_mac() {
            HEADER_VERSION_MAC
        } else {
            HEADER_VERSION
        }
    }

    /// Plaintext size for a ciphertext file of `csize` bytes, or `None` if
    /// no valid file has that size (a torn or truncated tail). A 0-byte
    /// file is an empty file whose header has not been written yet.
    pub fn plain_size(self, csize: u64) -> Option<u64> {
        if csize == 0 {
            return Some(0);
        }
        if csize < self.header {
            return None;
        }
        let body = csize - self.header;
        let full = body / CBLOCK;
        let rem = body % CBLOCK;
        match rem {
            0 => Some(full * BLOCK),
            r if r > OVERHEAD as u64 => Some(full * BLOCK + r - OVERHEAD as u64),
            _ => None,
        }
    }

    /// Ciphertext size of a file holding `psize` plaintext bytes.
    pub fn cipher_size(self, psize: u64) -> u64 {
        let full = psize / BLOCK;
        let rem = psize % BLOCK;
        self.header + full * CBLOCK + if rem > 0 { rem + OVERHEAD as u64 } else { 0 }
    }

    /// Offset of block (slot) `n` in the ciphertext file.
    pub fn block_offset(self, n: u64) -> u64 {
        self.header + n * CBLOCK
    }

    /// The slot holding host byte `offset` (the header counts as slot 0).
    pub fn slot_at(self, offset: u64) -> u64 {
        offset.saturating_sub(self.header) / CBLOCK
    }
}

/// The AAD of a header's sealed block MAC: file ID ‖ its label (34 bytes,
/// never the 25 of a block or marker).
fn mac_aad(file_id: &[u8; 16]) -> Vec<u8> {
    let mut a = file_id.to_vec();
    a.extend_from_slice(b"quire/v1/block-mac");
    a
}

/// A header with the block MAC (§4.2): version 2 ‖ file ID ‖ MAC sealed
/// under the file key.
pub fn header_with_mac(key: &AeadKey, file_id: &[u8; 16], mac: &[u8; 32]) -> Vec<u8> {
    let mut h = HEADER_VERSION_MAC.to_be_bytes().to_vec();
    h.extend_from_slice(file_id);
    h.extend_from_slice(&key.seal(&mac_aad(file_id), mac));
    debug_assert_eq!(h.len() as u64, MAC_HEADER_LEN);
    h
}

/// The block MAC a header holds, if it opens for this file.
pub fn open_header_mac(key: &AeadKey, file_id: &[u8; 16], h: &[u8]) -> Option<[u8; 32]> {
    let sealed = h.get(HEADER_LEN as usize..MAC_HEADER_LEN as usize)?;
    key.open(&mac_aad(file_id), sealed).ok()?.try_into().ok()
}
/// Slots per group of the block MAC (§4.2): a device keeps each group's
/// sum of slot values, so a file is verified group by group as it is read.
pub const MAC_GROUP: u64 = 1024;

/// Magic of a record of a file's group sums (§4.2, kept per device).
pub const SUMS_MAGIC: &[u8; 8] = b"QUIREGMS";
/// Layout version of a group-sums record.
pub const SUMS_VERSION: u16 = 1;
/// Largest group count: an 8 TiB file.
pub const MAX_GROUPS: u64 = MAX_FILE_SIZE / (BLOCK * MAC_GROUP);
/// Largest group-sums record on disk.
pub const MAX_SUMS_RECORD: u64 = 10 + 12 + 8 + MAX_GROUPS * 32 + 16;

fn sums_aad(header: &[u8]) -> Vec<u8> {
    let mut aad = SUMS_MAGIC.to_vec();
    aad.extend_from_slice(&SUMS_VERSION.to_be_bytes());
    aad.extend_from_slice(header);
    aad
}

/// Seals a file's group sums, bound to its header as it is on the host
/// (`header`: the 78 bytes, whose sealed MAC is the XOR of `sums`).
pub fn seal_group_sums(key: &AeadKey, header: &[u8], sums: &[[u8; 32]]) -> Vec<u8> {
    let mut body = Vec::with_capacity(8 + sums.len() * 32);
    body.extend_from_slice(&(MAC_GROUP as u32).to_be_bytes());
    body.extend_from_slice(&(sums.len() as u32).to_be_bytes());
    for s in sums {
        body.extend_from_slice(s);
    }
    let mut out = SUMS_MAGIC.to_vec();
    out.extend_from_slice(&SUMS_VERSION.to_be_bytes());
    out.extend_from_slice(&key.seal(&sums_aad(header), &body));
    out
}

/// The group sums a record holds, if it opens for the file whose header is
/// `header` now, with this Quire's group size; `None` otherwise (the
/// record is then ignored and the file verified whole).
pub fn open_group_sums(key: &AeadKey, header: &[u8], rec: &[u8]) -> Option<Vec<[u8; 32]>> {
    if rec.len() < 10 || &rec[..8] != SUMS_MAGIC || rec[8..10] != SUMS_VERSION.to_be_bytes() {
        return None;
    }
    let body = zeroize::Zeroizing::new(key.open(&sums_aad(header), &rec[10..]).ok()?);
    if body.len() < 8 || body[..4] != (MAC_GROUP as u32).to_be_bytes() {
        return None;
    }
    let n = u32::from_be_bytes(body[4..8].try_into().ok()?) as usize;
    if n as u64 > MAX_GROUPS || body.len() != 8 + n * 32 {
        return None;
    }
    Some(
        body[8..]
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect(),
    )
}

/// Plaintext bytes per block.
pub const BLOCK: u64 = 4096;
/// Ciphertext bytes per full block.
pub const CBLOCK: u64 = BLOCK + OVERHEAD as u64;

/// Largest plaintext size of a file: 8 TiB (host size ≈ 8.06 TiB, under
/// ext4's 16 TiB). Larger sizes are refused with `EFBIG`.
pub const MAX_FILE_SIZE: u64 = 1 << 43;

/// A hole marker's sealed length: nonce(12) ‖ start (u64) ‖ tag(16).
pub const MARKER_LEN: usize = 8 + OVERHEAD;

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Shorter than 18 bytes.
    Truncated,
    /// A content version this build does not read.
    UnknownVersion(u16),
}

/// Builds a header for a new file with a fresh random file ID.
pub fn new_header() -> ([u8; HEADER_LEN as usize], [u8; 16]) {
    let id = random::bytes::<16>();
    let mut h = [0u8; HEADER_LEN as usize];
    h[..2].copy_from_slice(&HEADER_VERSION.to_be_bytes());
    h[2..].copy_from_slice(&id);
    (h, id)
}

/// Parses the first `layout.header_len()` bytes of a file, returning the
/// file ID. A header of the other layout's version is refused (a vault's
/// files all have its layout).
pub fn parse_header(h: &[u8], layout: Layout) -> Result<[u8; 16], HeaderError> {
    if h.len() < HEADER_LEN as usize {
        return Err(HeaderError::Truncated);
    }
    let v = u16::from_be_bytes([h[0], h[1]]);
    if v != layout.version() {
        return Err(HeaderError::UnknownVersion(v));
    }
    if h.len() < layout.header_len() as usize {
        return Err(HeaderError::Truncated);
    }
    Ok(h[2..18].try_into().unwrap())
}

/// Number of blocks of a file of `psize` bytes.
pub fn block_count(psize: u64) -> u64 {
    psize.div_ceil(BLOCK)
}

/// The AAD of block `n`.
pub fn block_aad(file_id: &[u8; 16], n: u64, last: bool) -> [u8; 25] {
    let mut a = [0u8; 25];
    a[..16].copy_from_slice(file_id);
    a[16..24].copy_from_slice(&n.to_be_bytes());
    a[24] = last as u8;
    a
}

/// Seals consecutive blocks `first..` of one file into `out`. `plain` is cut
/// into 4 KiB blocks (the final one may be short); `last_is_final` says
/// whether the final block of `plain` is the final block of the file.
pub fn seal_blocks(
    key: &AeadKey,
    file_id: &[u8; 16],
    first: u64,
    plain: &[u8],
    last_is_final: bool,
    out: &mut Vec<u8>,
) {
    let n = plain.len().div_ceil(BLOCK as usize);
    let mut nonces = vec![0u8; n * NONCE_LEN];
    random::fill(&mut nonces);
    let start = out.len();
    out.resize(start + plain.len() + n * OVERHEAD, 0);
    let mut o = start;
    for (i, chunk) in plain.chunks(BLOCK as usize).enumerate() {
        let last = last_is_final && i == n - 1;
        let aad = block_aad(file_id, first + i as u64, last);
        let nonce: &[u8; NONCE_LEN] = nonces[i * NONCE_LEN..(i + 1) * NONCE_LEN]
            .try_into()
            .unwrap();
        let len = chunk.len() + OVERHEAD;
        key.seal_into(nonce, &aad, chunk, &mut out[o..o + len]);
        o += len;
    }
}

/// The AAD of a hole marker in slot `n`: like a block's, with the flag
/// byte 2 (a block has 0 or 1), so a marker never opens as a block.
pub fn marker_aad(file_id: &[u8; 16], n: u64) -> [u8; 25] {
    let mut a = block_aad(file_id, n, false);
    a[24] = 2;
    a
}

/// Seals the hole marker of slot `n`: "slots `start..=n` are holes (read
/// as zeros)". Written at the start of slot `n`; the rest of the slot, and
/// every slot from `start` to `n - 1`, is zero (a host hole).
pub fn seal_marker(key: &AeadKey, file_id: &[u8; 16], n: u64, start: u64) -> Vec<u8> {
    debug_assert!(start <= n);
    key.seal(&marker_aad(file_id, n), &start.to_be_bytes())
}

/// Opens slot `n` as a hole marker: the run's first slot, if the slot
/// holds a marker sealed for this file and position, and nothing else.
pub fn open_marker(key: &AeadKey, file_id: &[u8; 16], n: u64, slot: &[u8]) -> Option<u64> {
    if slot.len() < MARKER_LEN || slot[MARKER_LEN..].iter().any(|&b| b != 0) {
        return None;
    }
    let p = key
        .open(&marker_aad(file_id, n), &slot[..MARKER_LEN])
        .ok()?;
    let start = u64::from_be_bytes(p.as_slice().try_into().ok()?);
    (start <= n).then_some(start)
}

/// Opens consecutive sealed blocks `first..` into `out` (appending).
/// `final_block` is the number of the file's last block.
pub fn open_blocks(
    key: &AeadKey,
    file_id: &[u8; 16],
    first: u64,
    sealed: &[u8],
    final_block: u64,
    out: &mut Vec<u8>,
) -> Result<(), (u64, AuthError)> {
    for (i, chunk) in sealed.chunks(CBLOCK as usize).enumerate() {
        let n = first + i as u64;
        if chunk.len() <= OVERHEAD {
            return Err((n, AuthError));
        }
        let aad = block_aad(file_id, n, n == final_block);
        let start = out.len();
        out.resize(start + chunk.len() - OVERHEAD, 0);
        key.open_into(&aad, chunk, &mut out[start..])
            .map_err(|e| (n, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key32;

    #[test]
    fn size_math_round_trips() {
        for l in [Layout::PLAIN, Layout::MAC] {
            for p in [0u64, 1, 4095, 4096, 4097, 8192, 1 << 20, (1 << 20) + 17] {
                let c = l.cipher_size(p);
                if p == 0 {
                    assert_eq!(c, l.header_len());
                }
                assert_eq!(l.plain_size(c), Some(p), "p={p}");
            }
            assert_eq!(l.plain_size(0), Some(0));
            assert_eq!(l.plain_size(5), None);
            assert_eq!(l.plain_size(l.header_len() + 28), None);
            assert_eq!(l.plain_size(l.header_len() + 29), Some(1));
        }
        // Worked examples from docs/FORMAT.md §4: 10,000 bytes.
        assert_eq!(
            Layout::PLAIN.cipher_size(10_000),
            18 + 2 * 4124 + (1808 + 28)
        );
        assert_eq!(Layout::MAC.cipher_size(10_000), 78 + 2 * 4124 + (1808 + 28));
    }

    #[test]
    fn the_header_mac_opens_only_for_its_file_and_version() {
        let key = AeadKey::new(&Key32::from_bytes(&mut [9; 32]));
        let h = header_with_mac(&key, &[1; 16], &[7; 32]);
        assert_eq!(parse_header(&h, Layout::MAC), Ok([1; 16]));
        assert_eq!(
            parse_header(&h, Layout::PLAIN),
            Err(HeaderError::UnknownVersion(2))
        );
        assert_eq!(open_header_mac(&key, &[1; 16], &h), Some([7; 32]));
        assert_eq!(open_header_mac(&key, &[2; 16], &h), None);
        let mut t = h.clone();
        t[40] ^= 1;
        assert_eq!(open_header_mac(&key, &[1; 16], &t), None);
        assert_eq!(
            parse_header(&h[..40], Layout::MAC),
            Err(HeaderError::Truncated)
        );
    }

    #[test]
    fn group_sums_open_only_with_their_header() {
        let key = AeadKey::new(&Key32::from_bytes(&mut [9; 32]));
        let h = header_with_mac(&key, &[1; 16], &[7; 32]);
        let sums = [[1u8; 32], [6u8; 32]];
        let r = seal_group_sums(&key, &h, &sums);
        // magic 8 ‖ version 2 ‖ nonce 12 ‖ (4 + 4 + 2 × 32) ‖ tag 16
        assert_eq!(r.len(), 10 + 12 + 8 + 64 + 16);
        assert_eq!(&r[..10], b"QUIREGMS\x00\x01");
        assert_eq!(open_group_sums(&key, &h, &r), Some(sums.to_vec()));
        // Another header (a newer seal of the same file's MAC): refused.
        let h2 = header_with_mac(&key, &[1; 16], &[7; 32]);
        assert_eq!(open_group_sums(&key, &h2, &r), None);
        let mut t = r.clone();
        t[30] ^= 1;
        assert_eq!(open_group_sums(&key, &h, &t), None);
        let mut v = r.clone();
        v[9] = 2;
        assert_eq!(open_group_sums(&key, &h, &v), None);
        let other = AeadKey::new(&Key32::from_bytes(&mut [8; 32]));
        assert_eq!(open_group_sums(&other, &h, &r), None);
    }

    #[test]
    fn blocks_bind_position_file_and_last_flag() {
        let key = AeadKey::new(&Key32::from_bytes(&mut [9; 32]));
        let id = [1u8; 16];
        let plain: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut sealed = Vec::new();
        seal_blocks(&key, &id, 0, &plain, true, &mut sealed);
        assert_eq!(
            sealed.len() as u64,
            Layout::PLAIN.cipher_size(10_000) - HEADER_LEN
        );
        let mut out = Vec::new();
        open_blocks(&key, &id, 0, &sealed, 2, &mut out).unwrap();
        assert_eq!(out, plain);
        // Truncating to the block boundary: block 1 was not sealed as last.
        let cut = &sealed[..2 * CBLOCK as usize];
        assert!(open_blocks(&key, &id, 0, cut, 1, &mut Vec::new()).is_err());
        // Swapping blocks 0 and 1.
        let mut sw = sealed.clone();
        let (a, b) = sw.split_at_mut(CBLOCK as usize);
        a.swap_with_slice(&mut b[..CBLOCK as usize]);
        assert!(open_blocks(&key, &id, 0, &sw, 2, &mut Vec::new()).is_err());
        // Another file ID.
        assert!(open_blocks(&key, &[2; 16], 0, &sealed, 2, &mut Vec::new()).is_err());
        // A zeroed block is never a hole.
        let mut z = sealed.clone();
        z[..CBLOCK as usize].fill(0);
        assert_eq!(
            open_blocks(&key, &id, 0, &z, 2, &mut Vec::new())
                .unwrap_err()
                .0,
            0
        );
    }
}
