//! Sealed record streams (docs/FORMAT.md §10): an append-only file of
//! framed AES-256-GCM records, used by the crash-undo journal (§11) and the
//! history streams (§12).
//!
//! ```text
//! header: magic (8) ‖ version u16 = 1 ‖ stream ID (16)            26 bytes
//! frame:  length u32 (of sealed) ‖ kind u8 ‖ sealed
//! sealed: nonce (12) ‖ ciphertext ‖ tag (16)
//! AAD:    magic ‖ stream ID ‖ frame offset u64 ‖ kind u8
//! ```
//!
//! Binding the frame offset and kind makes moving, reordering or relabelling
//! a frame fail authentication. A frame cut short by a crash is a torn tail:
//! readers stop there and writers cut it off before appending.

use crate::crypto::{AeadKey, AuthError, aead::OVERHEAD};

/// Header length.
pub const HEADER_LEN: u64 = 26;
/// Frame header length (length and kind).
pub const FRAME_HEADER: u64 = 5;
/// Version of the stream layout.
pub const VERSION: u16 = 1;
/// Largest sealed frame accepted (a 64 MiB chunk list is far beyond any
/// real note; the limit keeps a corrupt length from allocating gigabytes).
pub const MAX_SEALED: u32 = 1 << 26;

/// Why a stream header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Shorter than a header, or another magic.
    NotAStream,
    /// A layout version this build does not know.
    UnknownVersion(u16),
}

/// A stream header for `magic` with the given ID.
pub fn header(magic: &[u8; 8], id: &[u8; 16]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN as usize);
    h.extend_from_slice(magic);
    h.extend_from_slice(&VERSION.to_be_bytes());
    h.extend_from_slice(id);
    h
}

/// Parses a header; returns the stream ID.
pub fn parse_header(magic: &[u8; 8], b: &[u8]) -> Result<[u8; 16], HeaderError> {
    if b.len() < HEADER_LEN as usize || &b[..8] != magic {
        return Err(HeaderError::NotAStream);
    }
    let v = u16::from_be_bytes([b[8], b[9]]);
    if v != VERSION {
        return Err(HeaderError::UnknownVersion(v));
    }
    Ok(b[10..26].try_into().expect("16 bytes"))
}

fn aad(magic: &[u8; 8], id: &[u8; 16], offset: u64, kind: u8) -> [u8; 33] {
    let mut a = [0u8; 33];
    a[..8].copy_from_slice(magic);
    a[8..24].copy_from_slice(id);
    a[24..32].copy_from_slice(&offset.to_be_bytes());
    a[32] = kind;
    a
}

/// Seals one frame to be written at `offset`.
pub fn seal_frame(
    key: &AeadKey,
    magic: &[u8; 8],
    id: &[u8; 16],
    offset: u64,
    kind: u8,
    body: &[u8],
) -> Vec<u8> {
    let sealed = key.seal(&aad(magic, id, offset, kind), body);
    let mut f = Vec::with_capacity(sealed.len() + FRAME_HEADER as usize);
    f.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
    f.push(kind);
    f.extend_from_slice(&sealed);
    f
}

/// Splits a frame header into (sealed length, kind); `None` if implausible.
pub fn parse_frame_header(b: &[u8; 5]) -> Option<(u32, u8)> {
    let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if (len as usize) < OVERHEAD || len > MAX_SEALED {
        return None;
    }
    Some((len, b[4]))
}

/// Opens the sealed part of the frame at `offset`.
pub fn open_frame(
    key: &AeadKey,
    magic: &[u8; 8],
    id: &[u8; 16],
    offset: u64,
    kind: u8,
    sealed: &[u8],
) -> Result<Vec<u8>, AuthError> {
    key.open(&aad(magic, id, offset, kind), sealed)
}

/// One frame read back from a whole stream.
pub struct Frame {
    /// Offset of the frame header in the file.
    pub offset: u64,
    /// Kind byte.
    pub kind: u8,
    /// Decrypted body.
    pub body: Vec<u8>,
}

/// What reading a whole stream found.
pub struct Frames {
    /// Every frame that opened, in order.
    pub frames: Vec<Frame>,
    /// End of the last good frame: where the next append goes.
    pub end: u64,
    /// Whether reading stopped at a frame that failed authentication (as
    /// opposed to a clean end or a torn, incomplete tail).
    pub tampered: bool,
}

/// Opens every frame of a stream held in memory (header included).
pub fn open_all(key: &AeadKey, magic: &[u8; 8], id: &[u8; 16], b: &[u8]) -> Frames {
    let mut pos = HEADER_LEN as usize;
    let mut frames = Vec::new();
    let mut tampered = false;
    while pos + FRAME_HEADER as usize <= b.len() {
        let fh: [u8; 5] = b[pos..pos + 5].try_into().expect("5 bytes");
        let Some((len, kind)) = parse_frame_header(&fh) else {
            tampered = true;
            break;
        };
        let start = pos + FRAME_HEADER as usize;
        let end = start + len as usize;
        if end > b.len() {
            break; // torn tail
        }
        match open_frame(key, magic, id, pos as u64, kind, &b[start..end]) {
            Ok(body) => frames.push(Frame {
                offset: pos as u64,
                kind,
                body,
            }),
            Err(_) => {
                tampered = true;
                break;
            }
        }
        pos = end;
    }
    Frames {
        frames,
        end: pos.min(b.len()) as u64,
        tampered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[u8; 8] = b"QUIRETST";

    fn key() -> AeadKey {
        AeadKey::from_bytes(&[7u8; 32])
    }

    fn stream(bodies: &[&[u8]]) -> Vec<u8> {
        let id = [3u8; 16];
        let mut b = header(M, &id);
        for (i, body) in bodies.iter().enumerate() {
            let f = seal_frame(&key(), M, &id, b.len() as u64, i as u8, body);
            b.extend_from_slice(&f);
        }
        b
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let b = stream(&[b"one", b"two", b"three"]);
        let r = open_all(&key(), M, &[3u8; 16], &b);
        assert_eq!(r.frames.len(), 3);
        assert_eq!(r.frames[2].body, b"three");
        assert_eq!(r.frames[1].kind, 1);
        assert_eq!(r.end, b.len() as u64);
        assert!(!r.tampered);
        // A crash in the middle of the last append.
        let cut = &b[..b.len() - 4];
        let r = open_all(&key(), M, &[3u8; 16], cut);
        assert_eq!(r.frames.len(), 2);
        assert!(!r.tampered);
        assert_eq!(r.end, r.frames[1].offset + 5 + 3 + OVERHEAD as u64);
    }

    #[test]
    fn tampering_is_detected() {
        let b = stream(&[b"one", b"two"]);
        let second = {
            let r = open_all(&key(), M, &[3u8; 16], &b);
            r.frames[1].offset as usize
        };
        // Flip a ciphertext bit of the second frame.
        let mut t = b.clone();
        t[second + 5 + 13] ^= 1;
        let r = open_all(&key(), M, &[3u8; 16], &t);
        assert_eq!(r.frames.len(), 1);
        assert!(r.tampered);
        // Change the kind byte.
        let mut t = b.clone();
        t[second + 4] ^= 1;
        assert!(open_all(&key(), M, &[3u8; 16], &t).tampered);
        // Another stream ID.
        assert!(open_all(&key(), M, &[4u8; 16], &b).tampered);
        // Swapping two equal-length frames.
        let b = stream(&[b"aaa", b"bbb"]);
        let r = open_all(&key(), M, &[3u8; 16], &b);
        let (o1, o2) = (r.frames[0].offset as usize, r.frames[1].offset as usize);
        let mut t = b.clone();
        let f1 = b[o1..o2].to_vec();
        let f2 = b[o2..].to_vec();
        t.truncate(o1);
        t.extend_from_slice(&f2);
        t.extend_from_slice(&f1);
        assert!(open_all(&key(), M, &[3u8; 16], &t).tampered);
    }

    #[test]
    fn headers() {
        let h = header(M, &[9u8; 16]);
        assert_eq!(h.len() as u64, HEADER_LEN);
        assert_eq!(parse_header(M, &h), Ok([9u8; 16]));
        assert_eq!(parse_header(b"QUIREXXX", &h), Err(HeaderError::NotAStream));
        let mut h2 = h.clone();
        h2[9] = 2;
        assert_eq!(parse_header(M, &h2), Err(HeaderError::UnknownVersion(2)));
    }
}
