//! History streams (docs/FORMAT.md §12): the saved versions of one note, as
//! a sealed record stream (§10) with magic `QUIREHIS`, stored next to the
//! note as `<host name>.qh`.
//!
//! ```text
//! CHUNK   (kind 1): chunk plaintext
//! VERSION (kind 2): time i64 (ns since the Unix epoch, UTC) ‖ size u64 ‖
//!                   content hash (32) ‖ origin u8 ‖ chunk count u32 ‖
//!                   count × (frame offset u64 ‖ length u32 ‖ chunk hash (16))
//! OWNER   (kind 3): folder ID (16) ‖ host name (flag `BOUND`)
//! MOVE    (kind 4): from folder ID ‖ from name length u8 ‖ from name ‖
//!                   to folder ID ‖ to name (flag `BOUND`)
//! BY      (kind 5): VERSION frame offset u64 ‖ device ID (16)
//! ```

/// Stream magic.
pub const MAGIC: &[u8; 8] = b"QUIREHIS";
/// Frame kind of a chunk.
pub const CHUNK: u8 = 1;
/// Frame kind of a version record.
pub const VERSION: u8 = 2;
/// Frame kind of an owner record (flag `BOUND`): the folder ID (a trash
/// entry's ID in the trash) and host name the stream belongs to. The last
/// one must name where the stream is.
pub const OWNER: u8 = 3;
/// Frame kind of a move record (flag `BOUND`), appended just before Quire
/// moves the stream: until the OWNER frame that follows the move, the
/// stream belongs at either place, so a crash between the two loses
/// nothing.
pub const MOVE: u8 = 4;
/// Frame kind of a version's device: which device saved the VERSION frame
/// at the offset it names (an earlier frame of the same stream). Older
/// readers skip it, as they skip every kind they do not know.
pub const BY: u8 = 5;
/// Suffix of a history stream next to its note's host name.
pub const SUFFIX: &str = ".qh";

/// The body of an OWNER frame: folder ID (16) ‖ host name.
pub fn owner_body(dir_id: &[u8; 16], host: &[u8]) -> Vec<u8> {
    let mut b = dir_id.to_vec();
    b.extend_from_slice(host);
    b
}

/// The body of a MOVE frame: from folder ID (16) ‖ from name length u8 ‖
/// from name ‖ to folder ID (16) ‖ to name.
pub fn move_body(from: &[u8], to: &[u8]) -> Vec<u8> {
    debug_assert!(from.len() > 16 && from.len() - 16 <= 255);
    let mut b = from[..16].to_vec();
    b.push((from.len() - 16) as u8);
    b.extend_from_slice(&from[16..]);
    b.extend_from_slice(to);
    b
}

/// The places (OWNER bodies) a MOVE body names: from, to.
pub fn move_places(b: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let n = *b.get(16)? as usize;
    let to = b.get(17 + n..)?;
    if to.len() <= 16 {
        return None;
    }
    let mut from = b[..16].to_vec();
    from.extend_from_slice(&b[17..17 + n]);
    Some((from, to.to_vec()))
}

/// The body of a BY frame: the VERSION frame's offset u64 ‖ device ID (16).
pub fn by_body(version_at: u64, device: &[u8; 16]) -> Vec<u8> {
    let mut b = version_at.to_be_bytes().to_vec();
    b.extend_from_slice(device);
    b
}

/// The VERSION offset and device a BY body names.
pub fn parse_by(b: &[u8]) -> Option<(u64, [u8; 16])> {
    if b.len() != 24 {
        return None;
    }
    Some((
        u64::from_be_bytes(b[..8].try_into().ok()?),
        b[8..].try_into().ok()?,
    ))
}

/// Why a version was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A save (close after writing, or a rename over the note).
    Save = 0,
    /// `quire restore` made an old version current again.
    Restore = 1,
    /// An fsync of a file that stays open (coalesced).
    Checkpoint = 2,
}

impl Origin {
    fn from_u8(b: u8) -> Option<Origin> {
        match b {
            0 => Some(Origin::Save),
            1 => Some(Origin::Restore),
            2 => Some(Origin::Checkpoint),
            _ => None,
        }
    }

    /// A word for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Save => "save",
            Origin::Restore => "restore",
            Origin::Checkpoint => "checkpoint",
        }
    }
}

/// One chunk reference of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    /// Offset of the CHUNK frame in the stream.
    pub offset: u64,
    /// Plaintext length.
    pub len: u32,
    /// Keyed hash of the plaintext (first 16 bytes of HMAC-SHA256).
    pub hash: [u8; 16],
}

/// A decoded VERSION record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Save time, ns since the epoch.
    pub time_ns: i64,
    /// Plaintext size.
    pub size: u64,
    /// Keyed hash of the whole content.
    pub hash: [u8; 32],
    /// Why it was recorded.
    pub origin: Origin,
    /// The chunks, in order.
    pub chunks: Vec<ChunkRef>,
    /// The device that saved it, from the BY frame that follows it (not
    /// part of the VERSION body; `None` for versions saved before devices
    /// were recorded).
    pub device: Option<[u8; 16]>,
}

const FIXED: usize = 8 + 8 + 32 + 1 + 4;
const PER_CHUNK: usize = 8 + 4 + 16;

impl Version {
    /// Body bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(FIXED + PER_CHUNK * self.chunks.len());
        b.extend_from_slice(&self.time_ns.to_be_bytes());
        b.extend_from_slice(&self.size.to_be_bytes());
        b.extend_from_slice(&self.hash);
        b.push(self.origin as u8);
        b.extend_from_slice(&(self.chunks.len() as u32).to_be_bytes());
        for c in &self.chunks {
            b.extend_from_slice(&c.offset.to_be_bytes());
            b.extend_from_slice(&c.len.to_be_bytes());
            b.extend_from_slice(&c.hash);
        }
        b
    }

    /// Decodes a body; `None` if malformed (sizes must add up).
    pub fn decode(b: &[u8]) -> Option<Version> {
        if b.len() < FIXED {
            return None;
        }
        let n = u32::from_be_bytes(b[49..53].try_into().ok()?) as usize;
        if b.len() != FIXED + n * PER_CHUNK {
            return None;
        }
        let mut chunks = Vec::with_capacity(n);
        for i in 0..n {
            let c = &b[FIXED + i * PER_CHUNK..FIXED + (i + 1) * PER_CHUNK];
            chunks.push(ChunkRef {
                offset: u64::from_be_bytes(c[..8].try_into().ok()?),
                len: u32::from_be_bytes(c[8..12].try_into().ok()?),
                hash: c[12..28].try_into().ok()?,
            });
        }
        let v = Version {
            time_ns: i64::from_be_bytes(b[..8].try_into().ok()?),
            size: u64::from_be_bytes(b[8..16].try_into().ok()?),
            hash: b[16..48].try_into().ok()?,
            origin: Origin::from_u8(b[48])?,
            chunks,
            device: None,
        };
        (v.chunks.iter().map(|c| c.len as u64).sum::<u64>() == v.size).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_bodies_name_both_places() {
        let (a, b) = (owner_body(&[1; 16], b"from"), owner_body(&[2; 16], b"to"));
        assert_eq!(move_places(&move_body(&a, &b)), Some((a, b)));
        assert_eq!(move_places(&[0; 17]), None);
    }

    #[test]
    fn by_bodies_name_a_version_and_a_device() {
        let b = by_body(0x0102, &[9; 16]);
        assert_eq!(b.len(), 24);
        assert_eq!(&b[..8], &[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(parse_by(&b), Some((0x0102, [9; 16])));
        assert_eq!(parse_by(&b[..23]), None);
    }

    #[test]
    fn round_trip_and_consistency() {
        let v = Version {
            time_ns: 1_764_000_000_000_000_000,
            size: 5,
            hash: [7; 32],
            origin: Origin::Restore,
            chunks: vec![
                ChunkRef {
                    offset: 26,
                    len: 2,
                    hash: [1; 16],
                },
                ChunkRef {
                    offset: 70,
                    len: 3,
                    hash: [2; 16],
                },
            ],
            device: None,
        };
        let b = v.encode();
        assert_eq!(b.len(), 53 + 2 * 28);
        assert_eq!(Version::decode(&b), Some(v.clone()));
        // Sizes that do not add up, unknown origins, short bodies.
        let mut bad = v.clone();
        bad.size = 6;
        assert_eq!(Version::decode(&bad.encode()), None);
        let mut b2 = b.clone();
        b2[48] = 9;
        assert_eq!(Version::decode(&b2), None);
        assert_eq!(Version::decode(&b[..60]), None);
    }
}
