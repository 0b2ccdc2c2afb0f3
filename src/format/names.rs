//! Encrypted name encoding (docs/FORMAT.md §5).
//!
//! A plaintext name is encrypted with AES-SIV (directory ID as associated
//! data) and written as unpadded base64url. Encodings longer than
//! [`MAX_DIRECT`] characters are stored as `<base64url(SHA-256(encoding))>.lng`
//! with a sidecar `<same>.lng.name` holding the full encoding. The limit
//! leaves room under the host's 255-byte limit for a sync tool's conflict
//! suffix. Base64url has no `.`, so any host name containing a dot is either
//! a Quire-internal file or foreign (and is not shown in the mount).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};

/// Longest encoding stored directly as a host name.
pub const MAX_DIRECT: usize = 175;
/// Suffix of a shortened (hashed) name.
pub const LONG_SUFFIX: &str = ".lng";
/// Suffix of a long name's sidecar.
pub const SIDECAR_SUFFIX: &str = ".lng.name";
/// Longest plaintext name accepted (as on Linux local filesystems).
pub const MAX_PLAIN: usize = 255;

/// How one encrypted name is stored on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostName {
    /// The encoding is the host name.
    Direct(String),
    /// The host name is a hash; the sidecar holds `full`.
    Long {
        /// `<hash>.lng`
        host: String,
        /// `<hash>.lng.name`
        sidecar: String,
        /// The full base64url encoding, the sidecar's content.
        full: String,
    },
    /// A sync tool's conflict copy of another entry, as the tool named it
    /// (docs/FORMAT.md §5.5): not an encoding of the name it is shown
    /// under.
    Copy(String),
}

impl HostName {
    /// The name of the entry in the host directory.
    pub fn host(&self) -> &str {
        match self {
            HostName::Direct(s) | HostName::Copy(s) => s,
            HostName::Long { host, .. } => host,
        }
    }
}

/// Encodes SIV output as the host name.
pub fn encode(sealed: &[u8]) -> HostName {
    let full = B64.encode(sealed);
    if full.len() <= MAX_DIRECT {
        return HostName::Direct(full);
    }
    let hash = B64.encode(Sha256::digest(full.as_bytes()));
    HostName::Long {
        host: format!("{hash}{LONG_SUFFIX}"),
        sidecar: format!("{hash}{SIDECAR_SUFFIX}"),
        full,
    }
}

/// What a host directory entry is.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    /// A direct encoding: decode these bytes.
    Direct(&'a str),
    /// A long name: read the sidecar of this name.
    Long(&'a str),
    /// Internal or foreign: not shown.
    Hidden,
}

/// Classifies a host directory entry name.
pub fn classify(host: &str) -> Entry<'_> {
    if let Some(stem) = host.strip_suffix(LONG_SUFFIX) {
        if !stem.contains('.') && stem.len() == 43 {
            return Entry::Long(host);
        }
        return Entry::Hidden;
    }
    if host.is_empty() || host.contains('.') {
        return Entry::Hidden;
    }
    Entry::Direct(host)
}

/// Sidecar name of a long host name.
pub fn sidecar_of(long_host: &str) -> String {
    format!("{long_host}.name")
}

/// Checks that a sidecar's content matches the host name it belongs to.
pub fn sidecar_matches(long_host: &str, full: &str) -> bool {
    let hash = B64.encode(Sha256::digest(full.as_bytes()));
    long_host.strip_suffix(LONG_SUFFIX) == Some(hash.as_str())
}

/// Decodes base64url text into SIV bytes.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    B64.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long() {
        let short = encode(&[0u8; 100]);
        assert!(matches!(short, HostName::Direct(ref s) if s.len() == 134));
        let long = encode(&[0u8; 255 + 16]);
        let HostName::Long {
            host,
            sidecar,
            full,
        } = &long
        else {
            panic!()
        };
        assert_eq!(host.len(), 43 + 4);
        assert_eq!(sidecar, &sidecar_of(host));
        assert!(sidecar_matches(host, full));
        assert!(!sidecar_matches(host, "AAAA"));
        assert_eq!(classify(host), Entry::Long(host));
        assert_eq!(classify(sidecar), Entry::Hidden);
        assert_eq!(classify("quire.dirid"), Entry::Hidden);
        assert_eq!(classify("abc-_"), Entry::Direct("abc-_"));
        assert_eq!(decode(short.host()).unwrap(), vec![0u8; 100]);
    }
}
