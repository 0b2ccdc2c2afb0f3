//! Device records (docs/FORMAT.md §18): one small sealed file per device
//! in the vault folder's `devices/`, written only by that device, saying
//! what it is called and whether it has the vault mounted.

use crate::crypto::{AeadKey, AuthError};

/// The only record version written and read.
pub const VERSION: u8 = 1;
/// Longest device name kept (bytes of UTF-8).
pub const MAX_NAME: usize = 64;

/// Whether the device has the vault open for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Mounted read-write since `since` (or killed while mounted).
    Mounted,
    /// Sealed (cleanly unmounted) at `since`.
    Sealed,
}

/// One device's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Mounted or sealed.
    pub state: State,
    /// When it was mounted or sealed, ns since the Unix epoch (UTC).
    pub since: i64,
    /// The device's name (its host name unless renamed).
    pub name: String,
}

/// Why a record was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordError {
    /// It failed authentication (tampered, or another device's record
    /// under this device's name).
    Auth,
    /// A version or state this Quire does not know.
    Unknown,
}

fn aad(id: &[u8; 16]) -> Vec<u8> {
    let mut a = b"quire/v1/device".to_vec();
    a.extend_from_slice(id);
    a
}

/// Cuts a name to at most [`MAX_NAME`] bytes on a character boundary,
/// without control characters.
pub fn clean_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_NAME {
            break;
        }
        out.push(c);
    }
    out
}

/// Seals the record of device `id`.
pub fn seal(key: &AeadKey, id: &[u8; 16], r: &Record) -> Vec<u8> {
    let name = clean_name(&r.name);
    let mut b = Vec::with_capacity(10 + name.len());
    b.push(VERSION);
    b.push(match r.state {
        State::Mounted => 1,
        State::Sealed => 2,
    });
    b.extend_from_slice(&r.since.to_be_bytes());
    b.extend_from_slice(name.as_bytes());
    key.seal(&aad(id), &b)
}

/// Opens the record of device `id`.
pub fn open(key: &AeadKey, id: &[u8; 16], sealed: &[u8]) -> Result<Record, RecordError> {
    let b = key
        .open(&aad(id), sealed)
        .map_err(|AuthError| RecordError::Auth)?;
    if b.len() < 10 || b[0] != VERSION {
        return Err(RecordError::Unknown);
    }
    let state = match b[1] {
        1 => State::Mounted,
        2 => State::Sealed,
        _ => return Err(RecordError::Unknown),
    };
    let since = i64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
    let name = String::from_utf8(b[10..].to_vec()).map_err(|_| RecordError::Unknown)?;
    Ok(Record { state, since, name })
}

/// A device ID as a file name: 32 lowercase hex digits.
pub fn file_name(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The device ID a file name in `devices/` names, if it is one.
pub fn parse_file_name(name: &str) -> Option<[u8; 16]> {
    if name.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(name.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    (file_name(&id) == name).then_some(id)
}

/// The short form users see (like Syncthing's): the first 7 hex digits.
pub fn short(id: &[u8; 16]) -> String {
    file_name(id)[..7].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_are_bound_to_their_device() {
        let k = AeadKey::new(&crate::crypto::Key32::from_bytes(&mut [7; 32]));
        let r = Record {
            state: State::Mounted,
            since: 1_764_000_000_000_000_000,
            name: "laptop".into(),
        };
        let s = seal(&k, &[1; 16], &r);
        assert_eq!(s.len(), 12 + 10 + 6 + 16);
        assert_eq!(open(&k, &[1; 16], &s), Ok(r));
        // Another device's record copied over this one's is refused.
        assert_eq!(open(&k, &[2; 16], &s), Err(RecordError::Auth));
        let mut t = s.clone();
        t[20] ^= 1;
        assert_eq!(open(&k, &[1; 16], &t), Err(RecordError::Auth));
        // An unknown version is refused, not guessed at.
        let bad = k.seal(&aad(&[1; 16]), &[9, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(open(&k, &[1; 16], &bad), Err(RecordError::Unknown));
    }

    #[test]
    fn names_are_cut_on_a_character_boundary_and_ids_parse() {
        assert_eq!(clean_name(" a\u{7}b\n "), "ab");
        let long = "é".repeat(40);
        let c = clean_name(&long);
        assert_eq!(c.len(), 64);
        assert!(c.chars().all(|ch| ch == 'é'));
        let id = [0xab; 16];
        assert_eq!(parse_file_name(&file_name(&id)), Some(id));
        assert_eq!(parse_file_name("ABABABABABABABABABABABABABABABAB"), None);
        assert_eq!(parse_file_name("x"), None);
        assert_eq!(short(&id), "abababa");
    }
}
