//! Lifecycle records (docs/FORMAT.md §15): a note's expiry and retention
//! dates, sealed in a small file `<host name>.ql` next to the note, so they
//! follow the note's path the way its history stream (`.qh`) does.
//!
//! ```text
//! file:  nonce (12) ‖ AES-GCM(body) ‖ tag (16)
//! AAD:   "quire/v1/lifecycle" ‖ directory ID (16)
//! body:  version u8 = 1 ‖ expires length u8 ‖ expires ‖ retain length u8 ‖ retain
//! ```
//!
//! Both dates are canonical date texts (§15; empty = not set).

use crate::crypto::AeadKey;

/// Suffix of a lifecycle record next to its note's host name.
pub const SUFFIX: &str = ".ql";
/// Body layout version.
pub const VERSION: u8 = 1;

/// The dates of one note (canonical texts; `None` = not set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dates {
    /// When the note goes to the trash.
    pub expires: Option<String>,
    /// Until when it may not be deleted.
    pub retain_until: Option<String>,
}

impl Dates {
    /// Neither date set.
    pub fn is_empty(&self) -> bool {
        self.expires.is_none() && self.retain_until.is_none()
    }
}

/// Why a record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// It failed authentication (tampered, or moved from another folder).
    Auth,
    /// A body layout this build does not know.
    UnknownVersion(u8),
    /// Authentic but malformed.
    Malformed,
}

/// Where a record belongs: its folder's ID (a trash entry's ID in the
/// trash) and, with the `BOUND` flag, its note's host name (`c` in the
/// trash), so a record renamed onto another note fails authentication.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The folder ID (or trash entry ID).
    pub dir_id: &'a [u8; 16],
    /// The note's host name, or `None` in vaults without `BOUND`.
    pub host: Option<&'a [u8]>,
}

fn aad(o: &Owner) -> Vec<u8> {
    let mut a = b"quire/v1/lifecycle".to_vec();
    a.extend_from_slice(o.dir_id);
    if let Some(h) = o.host {
        a.extend_from_slice(h);
    }
    a
}

/// Seals the dates of the note `owner`.
pub fn seal(key: &AeadKey, owner: &Owner, d: &Dates) -> Vec<u8> {
    let mut b = vec![VERSION];
    for t in [&d.expires, &d.retain_until] {
        let t = t.as_deref().unwrap_or("").as_bytes();
        let t = &t[..t.len().min(255)];
        b.push(t.len() as u8);
        b.extend_from_slice(t);
    }
    key.seal(&aad(owner), &b)
}

/// Opens the record of the note `owner`.
pub fn open(key: &AeadKey, owner: &Owner, sealed: &[u8]) -> Result<Dates, RecordError> {
    let b = key
        .open(&aad(owner), sealed)
        .map_err(|_| RecordError::Auth)?;
    let (&v, mut rest) = b.split_first().ok_or(RecordError::Malformed)?;
    if v != VERSION {
        return Err(RecordError::UnknownVersion(v));
    }
    let mut field = || -> Result<Option<String>, RecordError> {
        let (&n, r) = rest.split_first().ok_or(RecordError::Malformed)?;
        let t = r.get(..n as usize).ok_or(RecordError::Malformed)?;
        rest = &r[n as usize..];
        let s = std::str::from_utf8(t).map_err(|_| RecordError::Malformed)?;
        Ok((!s.is_empty()).then(|| s.to_string()))
    };
    let expires = field()?;
    let retain_until = field()?;
    if !rest.is_empty() {
        return Err(RecordError::Malformed);
    }
    Ok(Dates {
        expires,
        retain_until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const O1: Owner = Owner {
        dir_id: &[1u8; 16],
        host: None,
    };
    const O2: Owner = Owner {
        dir_id: &[2u8; 16],
        host: None,
    };

    #[test]
    fn round_trip_and_binding() {
        let k = AeadKey::from_bytes(&[5u8; 32]);
        let d = Dates {
            expires: Some("2027-03-01".into()),
            retain_until: None,
        };
        let s = seal(&k, &O1, &d);
        // nonce + body (1 + 1 + 10 + 1) + tag
        assert_eq!(s.len(), 12 + 13 + 16);
        assert_eq!(open(&k, &O1, &s), Ok(d.clone()));
        // Moved to another folder, or flipped: refused.
        assert_eq!(open(&k, &O2, &s), Err(RecordError::Auth));
        let mut t = s.clone();
        t[14] ^= 1;
        assert_eq!(open(&k, &O1, &t), Err(RecordError::Auth));
        let both = Dates {
            expires: Some("2027-03-01".into()),
            retain_until: Some("2030-01-01T00:00:00Z".into()),
        };
        assert_eq!(open(&k, &O1, &seal(&k, &O1, &both)), Ok(both));
        // An unknown body version is refused as such.
        let v2 = k.seal(&aad(&O1), &[2, 0, 0]);
        assert_eq!(open(&k, &O1, &v2), Err(RecordError::UnknownVersion(2)));
        // With BOUND: the host name is bound too.
        let a = Owner {
            dir_id: &[1u8; 16],
            host: Some(b"AAAA"),
        };
        let b = Owner {
            host: Some(b"BBBB"),
            ..a
        };
        let s = seal(&k, &a, &d);
        assert_eq!(open(&k, &a, &s), Ok(d.clone()));
        assert_eq!(open(&k, &b, &s), Err(RecordError::Auth));
        assert_eq!(open(&k, &O1, &s), Err(RecordError::Auth));
        let short = k.seal(&aad(&O1), &[1, 5, b'a']);
        assert_eq!(open(&k, &O1, &short), Err(RecordError::Malformed));
    }
}
