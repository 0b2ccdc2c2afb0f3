//! The daemon's encrypted log `quire.log` (docs/FORMAT.md §8). Log lines
//! never contain plaintext names, but they do reveal when the vault was used
//! and what failed, so they are sealed like everything else.
//!
//! Record: `len(u32 BE) ‖ nonce(12) ‖ AES-GCM(line) ‖ tag(16)`, where `len`
//! counts the sealed bytes; AAD = `quire/v1/log`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

use super::{Error, UnlockedVault};
use crate::crypto::{AeadKey, SubKeys};

const AAD: &[u8] = b"quire/v1/log";
/// The log is rotated (once) past this size.
const MAX_SIZE: u64 = 4 << 20;

/// An append-only encrypted log.
pub struct LogFile {
    keys: Arc<SubKeys>,
    file: Mutex<File>,
}

impl LogFile {
    /// Opens (creating) the vault's log for appending.
    pub fn open(v: &UnlockedVault) -> Result<LogFile, Error> {
        let p = v.layout().log();
        if std::fs::metadata(&p)
            .map(|m| m.len() > MAX_SIZE)
            .unwrap_or(false)
        {
            let _ = std::fs::rename(&p, p.with_extension("log.1"));
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&p)
            .map_err(|source| Error::Io {
                context: "opening quire.log".into(),
                source,
            })?;
        Ok(LogFile {
            keys: v.keys.clone(),
            file: Mutex::new(file),
        })
    }

    /// Appends one line (one write, so concurrent appenders never interleave).
    pub fn append(&self, line: &str) -> io::Result<()> {
        let sealed = self.keys.log.seal(AAD, line.as_bytes());
        let mut rec = Vec::with_capacity(4 + sealed.len());
        rec.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
        rec.extend_from_slice(&sealed);
        self.file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(&rec)
    }
}

/// Reads every record of the log (and its rotated predecessor). A torn
/// final record (a crash mid-append) ends the log; a record that fails
/// authentication is reported in its place.
pub fn read_all(v: &UnlockedVault) -> Result<Vec<String>, Error> {
    let mut lines = Vec::new();
    let p = v.layout().log();
    for path in [p.with_extension("log.1"), p] {
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut f) => f.read_to_end(&mut bytes).map_err(|source| Error::Io {
                context: "reading quire.log".into(),
                source,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(Error::Io {
                    context: "reading quire.log".into(),
                    source,
                });
            }
        };
        lines.extend(parse(&v.keys.log, &bytes));
    }
    Ok(lines)
}

fn parse(key: &AeadKey, mut b: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let n = u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
        if b.len() < 4 + n {
            break;
        }
        match key.open(AAD, &b[4..4 + n]) {
            Ok(p) => out.push(String::from_utf8_lossy(&p).into_owned()),
            Err(_) => out.push("<a log record failed authentication>".into()),
        }
        b = &b[4 + n..];
    }
    out
}
