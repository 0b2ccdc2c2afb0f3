//! Small sealed records (docs/FORMAT.md §6–7): symlink targets and their
//! binding records, extended attribute names and values, and log records.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::crypto::{AeadKey, AuthError, NameKey};

/// Prefix of every host xattr that holds a Quire xattr.
pub const XATTR_HOST_PREFIX: &str = "user.q.";
/// Longest plaintext symlink target accepted (the host's PATH_MAX minus
/// base64 and AEAD expansion).
pub const MAX_SYMLINK: usize = 3000;
/// Longest plaintext xattr name accepted (the host's 255-byte limit minus
/// the prefix and the expansion).
pub const MAX_XATTR_NAME: usize = 170;

/// Seals a symlink target into the host symlink's target text.
pub fn seal_symlink(key: &AeadKey, target: &[u8]) -> String {
    B64.encode(key.seal(b"quire/v1/symlink", target))
}

/// Opens a host symlink's target text.
pub fn open_symlink(key: &AeadKey, host: &[u8]) -> Result<Vec<u8>, AuthError> {
    let sealed = B64.decode(host).map_err(|_| AuthError)?;
    key.open(b"quire/v1/symlink", &sealed)
}

/// Longest plaintext symlink target with `LONG_SYMLINKS` (§6.2): Linux's
/// PATH_MAX minus its terminating NUL.
pub const MAX_LONG_SYMLINK: usize = 4095;
/// Folder (in the data root) of the sealed long symlink targets (§6.2).
pub const LONG_SYMLINK_DIR: &str = "quire.symlinks";
/// Length of a long symlink's host target text: `~`, 32 hex digits of its
/// ID and 4 decimal digits of its length. No sealed target text (base64url
/// of at least 29 bytes: 39 characters, never 37) has this length.
pub const LONG_HOST_LEN: usize = 37;

/// A long symlink's host target text: `~<ID hex><length, 4 digits>`.
pub fn long_host_target(id: &[u8; 16], len: usize) -> String {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!("~{hex}{len:04}")
}

/// The ID and length a long symlink's host target text names, if it is one.
pub fn parse_long_host_target(host: &[u8]) -> Option<([u8; 16], usize)> {
    if host.len() != LONG_HOST_LEN || host[0] != b'~' {
        return None;
    }
    let text = std::str::from_utf8(&host[1..]).ok()?;
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let len = text.get(32..36)?.parse().ok()?;
    Some((id, len))
}

fn long_aad(id: &[u8; 16]) -> Vec<u8> {
    let mut a = b"quire/v1/long-symlink".to_vec();
    a.extend_from_slice(id);
    a
}

/// Seals a long symlink target for its file `quire.symlinks/<ID hex>`.
pub fn seal_long_target(key: &AeadKey, id: &[u8; 16], target: &[u8]) -> Vec<u8> {
    key.seal(&long_aad(id), target)
}

/// Opens a long symlink target file: bound to its ID, so a file copied to
/// another ID fails; its length must be the one the host text names.
pub fn open_long_target(
    key: &AeadKey,
    id: &[u8; 16],
    len: usize,
    sealed: &[u8],
) -> Result<Vec<u8>, AuthError> {
    let t = key.open(&long_aad(id), sealed)?;
    if t.len() != len {
        return Err(AuthError);
    }
    Ok(t)
}

/// Suffix of a symlink binding record next to its symlink's host name
/// (flag `BOUND_SYMLINKS`, §6.1).
pub const BINDING_SUFFIX: &str = ".qs";
/// Layout version of a binding record's body.
const BINDING_VERSION: u8 = 1;
/// Most target hashes one binding record may accept (one, or a few while
/// a rename is in flight).
pub const MAX_BOUND_TARGETS: usize = 4;

/// The hash a binding record holds for a host symlink target text.
pub fn target_hash(host_target: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(host_target).into()
}

fn binding_aad(dir_id: &[u8; 16], host: &[u8]) -> Vec<u8> {
    let mut a = b"quire/v1/symlink-binding".to_vec();
    a.extend_from_slice(dir_id);
    a.extend_from_slice(host);
    a
}

/// Seals the binding record of the symlink named `host` in the folder
/// `dir_id`: the hashes of the host target texts that name may hold.
pub fn seal_binding(
    key: &AeadKey,
    dir_id: &[u8; 16],
    host: &[u8],
    targets: &[[u8; 32]],
) -> Vec<u8> {
    assert!(!targets.is_empty() && targets.len() <= MAX_BOUND_TARGETS);
    let mut body = vec![BINDING_VERSION, targets.len() as u8];
    for t in targets {
        body.extend_from_slice(t);
    }
    key.seal(&binding_aad(dir_id, host), &body)
}

/// Opens the binding record of the symlink named `host` in `dir_id`: the
/// target hashes it accepts. A record of another name or folder, an
/// unknown layout or a malformed body is refused.
pub fn open_binding(
    key: &AeadKey,
    dir_id: &[u8; 16],
    host: &[u8],
    sealed: &[u8],
) -> Result<Vec<[u8; 32]>, AuthError> {
    let body = key.open(&binding_aad(dir_id, host), sealed)?;
    let Some((&[version, count], rest)) = body.split_first_chunk::<2>() else {
        return Err(AuthError);
    };
    let count = count as usize;
    if version != BINDING_VERSION
        || count == 0
        || count > MAX_BOUND_TARGETS
        || rest.len() != 32 * count
    {
        return Err(AuthError);
    }
    Ok(rest
        .chunks_exact(32)
        .map(|c| c.try_into().expect("32 bytes"))
        .collect())
}

/// Host xattr name for a plaintext xattr name (deterministic, so get/remove
/// find it without listing).
pub fn xattr_host_name(key: &NameKey, name: &[u8]) -> String {
    format!(
        "{XATTR_HOST_PREFIX}{}",
        B64.encode(key.encrypt(b"quire/v1/xattr", name))
    )
}

/// Plaintext xattr name from a host xattr name; `None` for foreign names.
pub fn xattr_plain_name(key: &NameKey, host: &[u8]) -> Option<Result<Vec<u8>, AuthError>> {
    let rest = host.strip_prefix(XATTR_HOST_PREFIX.as_bytes())?;
    let sealed = match B64.decode(rest) {
        Ok(s) => s,
        Err(_) => return Some(Err(AuthError)),
    };
    Some(key.decrypt(b"quire/v1/xattr", &sealed))
}

/// The AAD of an xattr value: the plaintext name, so values cannot be
/// swapped between attributes; with the `BOUND` flag (§7) preceded by
/// `"quire/v1/xattr-value"` and the owner's ID (a file's file ID, a
/// folder's directory ID), so they cannot be moved to another file either.
fn xattr_aad(owner: Option<&[u8; 16]>, name: &[u8]) -> Vec<u8> {
    match owner {
        None => name.to_vec(),
        Some(id) => {
            let mut a = b"quire/v1/xattr-value".to_vec();
            a.extend_from_slice(id);
            a.extend_from_slice(name);
            a
        }
    }
}

/// Seals an xattr value of the file or folder `owner` (`None` in vaults
/// without `BOUND`).
pub fn seal_xattr_value(
    key: &AeadKey,
    owner: Option<&[u8; 16]>,
    name: &[u8],
    value: &[u8],
) -> Vec<u8> {
    key.seal(&xattr_aad(owner, name), value)
}

/// Opens an xattr value.
pub fn open_xattr_value(
    key: &AeadKey,
    owner: Option<&[u8; 16]>,
    name: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, AuthError> {
    key.open(&xattr_aad(owner, name), sealed)
}

/// The folder of sealed attribute files in `d/` (flag `SEALED_XATTRS`, §7.1).
pub const XATTR_FOLDER: &str = "quire.xattrs";
/// Largest attribute value (Linux's `XATTR_SIZE_MAX`).
pub const MAX_XATTR_VALUE: usize = 65536;
/// Largest body of one attribute file (every attribute of one owner).
pub const MAX_XATTR_SET: usize = 256 << 10;

/// The attributes of one file or folder: name → value, in name order.
pub type XattrSet = std::collections::BTreeMap<Vec<u8>, zeroize::Zeroizing<Vec<u8>>>;

fn xattr_set_aad(owner: &[u8; 16]) -> Vec<u8> {
    let mut a = b"quire/v1/xattrs".to_vec();
    a.extend_from_slice(owner);
    a
}

/// Seals every attribute of `owner` (a file ID or folder ID) into one
/// attribute file's bytes: `nonce ‖ AES-256-GCM(AAD = "quire/v1/xattrs" ‖
/// owner, count u16 ‖ count × (name length u8 ‖ name ‖ value length u32 ‖
/// value)) ‖ tag`.
pub fn seal_xattr_set(key: &AeadKey, owner: &[u8; 16], set: &XattrSet) -> Vec<u8> {
    let mut body = zeroize::Zeroizing::new(Vec::new());
    body.extend_from_slice(&(set.len() as u16).to_be_bytes());
    for (n, v) in set {
        body.push(n.len() as u8);
        body.extend_from_slice(n);
        body.extend_from_slice(&(v.len() as u32).to_be_bytes());
        body.extend_from_slice(v);
    }
    key.seal(&xattr_set_aad(owner), &body)
}

/// Opens an attribute file of `owner`; a file moved from another owner,
/// edited or malformed fails.
pub fn open_xattr_set(
    key: &AeadKey,
    owner: &[u8; 16],
    sealed: &[u8],
) -> Result<XattrSet, AuthError> {
    let body = zeroize::Zeroizing::new(key.open(&xattr_set_aad(owner), sealed)?);
    let mut r: &[u8] = &body;
    let mut take = |k: usize| -> Result<&[u8], AuthError> {
        if r.len() < k {
            return Err(AuthError);
        }
        let (a, b) = r.split_at(k);
        r = b;
        Ok(a)
    };
    let count = u16::from_be_bytes(take(2)?.try_into().expect("2 bytes"));
    let mut set = XattrSet::new();
    for _ in 0..count {
        let nl = take(1)?[0] as usize;
        let name = take(nl)?.to_vec();
        let vl = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let value = zeroize::Zeroizing::new(take(vl)?.to_vec());
        if !name.starts_with(b"user.") || nl > MAX_XATTR_NAME || set.insert(name, value).is_some() {
            return Err(AuthError);
        }
    }
    if !r.is_empty() {
        return Err(AuthError);
    }
    Ok(set)
}

/// The host name of `owner`'s attribute file in [`XATTR_FOLDER`].
pub fn xattr_file_name(owner: &[u8; 16]) -> String {
    owner.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key32;
    use crate::crypto::secret::Secret;

    #[test]
    fn xattr_sets_round_trip_and_stay_with_their_owner() {
        let key = AeadKey::new(&Key32::random());
        let mut set = XattrSet::new();
        set.insert(b"user.b".to_vec(), zeroize::Zeroizing::new(b"two".to_vec()));
        set.insert(b"user.a".to_vec(), zeroize::Zeroizing::new(Vec::new()));
        let sealed = seal_xattr_set(&key, &[1; 16], &set);
        // 12 nonce + 2 count + (1+6+4+0) + (1+6+4+3) + 16 tag.
        assert_eq!(sealed.len(), 12 + 2 + 11 + 14 + 16);
        let back = open_xattr_set(&key, &[1; 16], &sealed).unwrap();
        assert_eq!(back.keys().collect::<Vec<_>>(), [b"user.a", b"user.b"]);
        assert_eq!(&back[&b"user.b".to_vec()][..], b"two");
        // Another owner's file, or a flipped byte, does not open.
        assert!(open_xattr_set(&key, &[2; 16], &sealed).is_err());
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(open_xattr_set(&key, &[1; 16], &bad).is_err());
        assert_eq!(xattr_file_name(&[0xab; 16]), "ab".repeat(16));
    }

    #[test]
    fn symlink_and_xattr_round_trip() {
        let k = AeadKey::new(&Key32::from_bytes(&mut [5; 32]));
        let s = seal_symlink(&k, b"../a/b");
        assert!(!s.contains('/'));
        assert_eq!(open_symlink(&k, s.as_bytes()).unwrap(), b"../a/b");
        assert!(open_symlink(&k, b"garbage").is_err());
        let n = NameKey::new(Secret::from_bytes(&mut [6; 64]));
        let h = xattr_host_name(&n, b"user.color");
        assert_eq!(
            xattr_plain_name(&n, h.as_bytes()).unwrap().unwrap(),
            b"user.color"
        );
        assert!(xattr_plain_name(&n, b"user.other").is_none());
        let long = vec![b'a'; MAX_XATTR_NAME];
        assert!(xattr_host_name(&n, &long).len() <= 255);
        let v = seal_xattr_value(&k, None, b"user.a", b"red");
        assert_eq!(open_xattr_value(&k, None, b"user.a", &v).unwrap(), b"red");
        assert!(open_xattr_value(&k, None, b"user.b", &v).is_err());
        // BOUND: tied to the file (or folder) ID as well.
        let v = seal_xattr_value(&k, Some(&[1; 16]), b"user.a", b"red");
        assert_eq!(
            open_xattr_value(&k, Some(&[1; 16]), b"user.a", &v).unwrap(),
            b"red"
        );
        assert!(open_xattr_value(&k, Some(&[2; 16]), b"user.a", &v).is_err());
        assert!(open_xattr_value(&k, None, b"user.a", &v).is_err());
        // Binding records (§6.1): tied to the folder ID and host name.
        let h1 = target_hash(s.as_bytes());
        let h2 = target_hash(b"other");
        let b = seal_binding(&k, &[1; 16], b"abc", &[h1, h2]);
        assert_eq!(
            open_binding(&k, &[1; 16], b"abc", &b).unwrap(),
            vec![h1, h2]
        );
        assert!(open_binding(&k, &[1; 16], b"abd", &b).is_err());
        assert!(open_binding(&k, &[2; 16], b"abc", &b).is_err());
        let mut t = b.clone();
        t[20] ^= 1;
        assert!(open_binding(&k, &[1; 16], b"abc", &t).is_err());
        // Body layout: version 1, count, hashes.
        let forged = k.seal(&binding_aad(&[1; 16], b"abc"), &[2, 1]);
        assert!(open_binding(&k, &[1; 16], b"abc", &forged).is_err());
        let forged = k.seal(&binding_aad(&[1; 16], b"abc"), &[1, 2, 0]);
        assert!(open_binding(&k, &[1; 16], b"abc", &forged).is_err());
        let long_target = vec![b'x'; MAX_SYMLINK];
        assert!(seal_symlink(&k, &long_target).len() < 4096);
    }
}
