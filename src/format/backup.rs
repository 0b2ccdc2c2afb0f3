//! Backup manifests and the backup folder's marker (docs/FORMAT.md §19).
//! A manifest lists every host file of one snapshot of the vault folder
//! (ciphertext only: names are host names, contents SHA-256 hashes) and
//! is signed with the vault's backup key, so that a backup can be checked
//! without the password. Text, one entry a line, every name in hex: no
//! escaping, and readable with `less`.

use crate::crypto::sign;

/// First line of a manifest.
pub const MANIFEST_MAGIC: &str = "QUIRE-BACKUP-MANIFEST 1";
/// First line of the backup folder's marker file.
pub const MARKER_MAGIC: &str = "QUIRE-BACKUP 1";
/// Largest manifest read (about 10 million entries).
pub const MAX_MANIFEST: u64 = 2 << 30;

/// What one host path of the snapshot is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A folder, with its mode bits.
    Dir { mode: u32 },
    /// A regular file: mode bits, size, modification and change times (ns
    /// since the epoch) and host inode number (together they let the next
    /// backup skip reading an unchanged file: a sync tool may set a file's
    /// mtime, never its ctime or inode), and the SHA-256 of its bytes (the
    /// object that holds them).
    File {
        mode: u32,
        size: u64,
        mtime_ns: i64,
        ctime_ns: i64,
        ino: u64,
        hash: [u8; 32],
    },
    /// A symlink and its (host, encrypted) target.
    Symlink { target: Vec<u8> },
    /// Another name of the file at `target` (an earlier path of the same
    /// manifest): a hard link.
    Link { target: Vec<u8> },
}

/// One host path, relative to the vault folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: Kind,
}

/// One snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The vault's ID (from `quire.conf`).
    pub vault: [u8; 16],
    /// The device that took it.
    pub device: [u8; 16],
    /// When, seconds since the epoch.
    pub time: u64,
    /// The public key that signs it.
    pub key: [u8; sign::PUBLIC_LEN],
    /// Every path, parents before children.
    pub entries: Vec<Entry>,
}

/// Why a manifest or marker was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not a Quire backup manifest")]
    BadMagic,
    #[error("line {0} of the manifest is malformed")]
    Malformed(usize),
    #[error(
        "the manifest's signature does not verify (the file was changed, or signed by another key)"
    )]
    BadSignature,
    #[error("the manifest is signed by another key than the backup folder's")]
    OtherKey,
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn unhex_n<const N: usize>(s: &str) -> Option<[u8; N]> {
    unhex(s)?.try_into().ok()
}

impl Manifest {
    /// The signed part: every line up to and including the entries.
    pub fn body(&self) -> Vec<u8> {
        let mut s = String::with_capacity(64 + self.entries.len() * 160);
        s.push_str(MANIFEST_MAGIC);
        s.push('\n');
        s.push_str(&format!("vault {}\n", hex(&self.vault)));
        s.push_str(&format!("device {}\n", hex(&self.device)));
        s.push_str(&format!("time {}\n", self.time));
        s.push_str(&format!("key {}\n", hex(&self.key)));
        s.push_str(&format!("entries {}\n", self.entries.len()));
        for e in &self.entries {
            match &e.kind {
                Kind::Dir { mode } => s.push_str(&format!("D {mode:o} {}\n", hex(&e.path))),
                Kind::File {
                    mode,
                    size,
                    mtime_ns,
                    ctime_ns,
                    ino,
                    hash,
                } => s.push_str(&format!(
                    "F {mode:o} {size} {mtime_ns} {ctime_ns} {ino} {} {}\n",
                    hex(hash),
                    hex(&e.path)
                )),
                Kind::Symlink { target } => {
                    s.push_str(&format!("L {} {}\n", hex(target), hex(&e.path)))
                }
                Kind::Link { target } => {
                    s.push_str(&format!("H {} {}\n", hex(target), hex(&e.path)))
                }
            }
        }
        s.into_bytes()
    }

    /// The whole file: the body, then `sig <hex>` of the body's signature.
    pub fn encode(&self, seed: &crate::crypto::Key32) -> Vec<u8> {
        let mut b = self.body();
        let sig = sign::sign(seed, &b);
        b.extend_from_slice(format!("sig {}\n", hex(&sig)).as_bytes());
        b
    }

    /// Parses a manifest and checks its signature against its own key;
    /// the caller compares that key with the one it trusts.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, Error> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::BadMagic)?;
        let sig_at = text.rfind("\nsig ").ok_or(Error::Malformed(0))? + 1;
        let (body, sig_line) = text.split_at(sig_at);
        let sig: [u8; 64] = sig_line
            .strip_prefix("sig ")
            .and_then(|s| s.strip_suffix('\n'))
            .and_then(unhex_n)
            .ok_or(Error::Malformed(0))?;
        let mut lines = body.lines().enumerate();
        if lines.next().map(|(_, l)| l) != Some(MANIFEST_MAGIC) {
            return Err(Error::BadMagic);
        }
        let mut field = |name: &str| -> Result<String, Error> {
            let (n, l) = lines.next().ok_or(Error::Malformed(0))?;
            l.strip_prefix(name)
                .and_then(|r| r.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or(Error::Malformed(n + 1))
        };
        let vault = unhex_n(&field("vault")?).ok_or(Error::Malformed(2))?;
        let device = unhex_n(&field("device")?).ok_or(Error::Malformed(3))?;
        let time = field("time")?.parse().map_err(|_| Error::Malformed(4))?;
        let key = unhex_n(&field("key")?).ok_or(Error::Malformed(5))?;
        let count: u64 = field("entries")?.parse().map_err(|_| Error::Malformed(6))?;
        let mut entries = Vec::new();
        for (n, l) in lines {
            let bad = || Error::Malformed(n + 1);
            let w: Vec<&str> = l.split(' ').collect();
            let mode = |s: &str| u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o7777);
            let e = match w.as_slice() {
                ["D", m, p] => Entry {
                    path: unhex(p).ok_or_else(bad)?,
                    kind: Kind::Dir {
                        mode: mode(m).ok_or_else(bad)?,
                    },
                },
                ["F", m, size, mtime, ctime, ino, h, p] => Entry {
                    path: unhex(p).ok_or_else(bad)?,
                    kind: Kind::File {
                        mode: mode(m).ok_or_else(bad)?,
                        size: size.parse().map_err(|_| bad())?,
                        mtime_ns: mtime.parse().map_err(|_| bad())?,
                        ctime_ns: ctime.parse().map_err(|_| bad())?,
                        ino: ino.parse().map_err(|_| bad())?,
                        hash: unhex_n(h).ok_or_else(bad)?,
                    },
                },
                ["L", t, p] => Entry {
                    path: unhex(p).ok_or_else(bad)?,
                    kind: Kind::Symlink {
                        target: unhex(t).ok_or_else(bad)?,
                    },
                },
                ["H", t, p] => {
                    let target = unhex(t).ok_or_else(bad)?;
                    // Only to a file listed before it.
                    if !entries
                        .iter()
                        .any(|x: &Entry| x.path == target && matches!(x.kind, Kind::File { .. }))
                    {
                        return Err(bad());
                    }
                    Entry {
                        path: unhex(p).ok_or_else(bad)?,
                        kind: Kind::Link { target },
                    }
                }
                _ => return Err(bad()),
            };
            if !safe_path(&e.path) {
                return Err(bad());
            }
            entries.push(e);
        }
        if entries.len() as u64 != count {
            return Err(Error::Malformed(6));
        }
        if !sign::verify(&key, body.as_bytes(), &sig) {
            return Err(Error::BadSignature);
        }
        Ok(Manifest {
            vault,
            device,
            time,
            key,
            entries,
        })
    }
}

/// A relative path with no `..`, `.`, empty or absolute component: a
/// manifest can never name a file outside the folder it is restored to.
pub fn safe_path(p: &[u8]) -> bool {
    !p.is_empty()
        && p.split(|&c| c == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b".." && !c.contains(&0))
}

/// The backup folder's marker: which vault and which key its snapshots
/// belong to.
pub fn encode_marker(vault: &[u8; 16], key: &[u8; 32]) -> Vec<u8> {
    format!("{MARKER_MAGIC}\nvault {}\nkey {}\n", hex(vault), hex(key)).into_bytes()
}

/// (vault ID, public key) of a marker.
pub fn parse_marker(b: &[u8]) -> Option<([u8; 16], [u8; 32])> {
    let t = std::str::from_utf8(b).ok()?;
    let mut l = t.lines();
    if l.next()? != MARKER_MAGIC {
        return None;
    }
    let vault = unhex_n(l.next()?.strip_prefix("vault ")?)?;
    let key = unhex_n(l.next()?.strip_prefix("key ")?)?;
    Some((vault, key))
}

/// A short, readable form of a public key for people to compare (the
/// first 16 hex digits of its SHA-256, in groups of four).
pub fn fingerprint(key: &[u8; 32]) -> String {
    use sha2::Digest;
    let h = hex(&sha2::Sha256::digest(key)[..8]);
    h.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key32;

    fn sample() -> (Manifest, Key32) {
        let seed = Key32::from_bytes(&mut [9u8; 32]);
        let m = Manifest {
            vault: [1; 16],
            device: [2; 16],
            time: 1_764_000_000,
            key: sign::public(&seed),
            entries: vec![
                Entry {
                    path: b"d".to_vec(),
                    kind: Kind::Dir { mode: 0o700 },
                },
                Entry {
                    path: b"quire.conf".to_vec(),
                    kind: Kind::File {
                        mode: 0o600,
                        size: 3,
                        mtime_ns: -5,
                        ctime_ns: 7,
                        ino: 42,
                        hash: [0xab; 32],
                    },
                },
                Entry {
                    path: b"d/a b".to_vec(),
                    kind: Kind::Symlink {
                        target: b"x\ny".to_vec(),
                    },
                },
                Entry {
                    path: b"d/c".to_vec(),
                    kind: Kind::Link {
                        target: b"quire.conf".to_vec(),
                    },
                },
            ],
        };
        (m, seed)
    }

    /// The exact bytes of a small manifest's body (FORMAT §19 shows it).
    #[test]
    fn body_layout() {
        let (m, _) = sample();
        let body = String::from_utf8(m.body()).unwrap();
        let want = format!(
            "QUIRE-BACKUP-MANIFEST 1\nvault {}\ndevice {}\ntime 1764000000\nkey {}\nentries 4\nD 700 64\nF 600 3 -5 7 42 {} 71756972652e636f6e66\nL 780a79 642f612062\nH 71756972652e636f6e66 642f63\n",
            "01".repeat(16),
            "02".repeat(16),
            hex(&m.key),
            "ab".repeat(32)
        );
        assert_eq!(body, want);
    }

    #[test]
    fn round_trip_and_every_change_refused() {
        let (m, seed) = sample();
        let b = m.encode(&seed);
        assert_eq!(Manifest::parse(&b).unwrap(), m);
        // Any byte of the body changed: refused (signature or syntax).
        for i in 0..b.len() - 130 {
            let mut c = b.clone();
            c[i] ^= 0x01;
            assert!(
                Manifest::parse(&c).is_err(),
                "byte {i} changed and accepted"
            );
        }
        // An entry dropped and re-counted, re-signed by another key: its
        // own signature holds, the key differs (the caller's check).
        let mut m2 = m.clone();
        m2.entries.pop();
        let other = Key32::from_bytes(&mut [3u8; 32]);
        m2.key = sign::public(&other);
        let p = Manifest::parse(&m2.encode(&other)).unwrap();
        assert_ne!(p.key, m.key);
        // Truncated: refused.
        assert!(Manifest::parse(&b[..b.len() - 10]).is_err());
    }

    #[test]
    fn paths_that_leave_the_folder_are_refused() {
        for p in [&b"../x"[..], b"/etc", b"a//b", b"a/./b", b"", b"a/.."] {
            assert!(!safe_path(p), "{p:?}");
        }
        assert!(safe_path(b"d/AbC_-/x.qh"));
    }

    #[test]
    fn marker_round_trip() {
        let b = encode_marker(&[4; 16], &[5; 32]);
        assert_eq!(parse_marker(&b), Some(([4; 16], [5; 32])));
        assert_eq!(parse_marker(b"QUIRE-BACKUP 2\n"), None);
        assert_eq!(fingerprint(&[5; 32]).len(), 19);
    }
}
