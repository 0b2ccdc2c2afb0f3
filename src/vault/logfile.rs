//! The daemon's encrypted log `quire.log` (docs/FORMAT.md §8). Log lines
//! never contain plaintext names, but they do reveal when the vault was used
//! and what failed, so they are sealed like everything else.
//!
//! Record: `len(u32 BE) ‖ nonce(12) ‖ AES-GCM(line) ‖ tag(16)`, where `len`
//! counts the sealed bytes; AAD = `quire/v1/log`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

use std::ffi::OsStr;
use std::path::Path;

use super::UnlockedVault;
use super::error::Error;
use super::features::Features;
use super::tree::Tree;
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
        let file = crate::store::safe::open_with(
            OpenOptions::new().append(true).create(true).mode(0o600),
            &p,
            u64::MAX,
        )
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
    read_path(&v.keys.log, &v.layout().log())
}

fn read_path(key: &AeadKey, p: &Path) -> Result<Vec<String>, Error> {
    let mut lines = Vec::new();
    for path in [p.with_extension("log.1"), p.to_path_buf()] {
        let bytes = match crate::store::safe::read(&path, crate::store::safe::MAX_LOG) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(Error::Io {
                    context: "reading quire.log".into(),
                    source,
                });
            }
        };
        lines.extend(parse(key, &bytes));
    }
    Ok(lines)
}

impl Features {
    /// The log's lines for `quire logs` (issue 10.8), with the host paths
    /// the daemon logs (`…/d/<encrypted>/<encrypted>`, never plaintext on
    /// disk) shown as the note paths they stand for, where they still
    /// exist: `clients/anna.md (host …/d/Xy…)` becomes `clients/anna.md`.
    pub fn log_lines(&self, tree: &Tree) -> io::Result<Vec<String>> {
        let lines = read_path(&tree.keys.log, &self.log_path)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let root = tree.root().describe();
        let mut names = NameCache::default();
        Ok(lines
            .into_iter()
            .map(|l| self.translate(tree, &l, &root, &mut names))
            .collect())
    }

    fn translate(&self, tree: &Tree, line: &str, root: &str, names: &mut NameCache) -> String {
        let prefix = format!("{root}/");
        let mut out = String::new();
        let mut rest = line;
        while let Some(i) = rest.find(&prefix) {
            out.push_str(&rest[..i]);
            let tail = &rest[i + prefix.len()..];
            let end = tail
                .find(|c: char| c.is_whitespace() || c == ':' || c == ',' || c == ')')
                .unwrap_or(tail.len());
            match self.note_path(tree, &tail[..end], names) {
                Some(p) => out.push_str(&p),
                None => out.push_str(&rest[i..i + prefix.len() + end]),
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    }

    /// The note path of a host path below the root, component by
    /// component; None when some part is gone or is not a name.
    fn note_path(&self, tree: &Tree, host: &str, names: &mut NameCache) -> Option<String> {
        let mut dir = tree.root();
        let mut parts = Vec::new();
        let comps: Vec<&str> = host.split('/').filter(|c| !c.is_empty()).collect();
        for (k, comp) in comps.iter().enumerate() {
            let key = (dir.ino, comp.to_string());
            let (name, is_dir) = match names.0.get(&key) {
                Some(v) => v.clone(),
                None => {
                    let e = tree
                        .read_dir(&dir)
                        .ok()?
                        .into_iter()
                        .find(|e| e.host() == OsStr::new(comp))?;
                    let v = (
                        e.name.to_string_lossy().into_owned(),
                        e.kind == super::node::Kind::Dir,
                    );
                    names.0.insert(key, v.clone());
                    v
                }
            };
            parts.push(name);
            if k + 1 < comps.len() {
                if !is_dir {
                    return None;
                }
                dir = Arc::new(tree.node_at(&dir, OsStr::new(comp)).ok()?.0);
            }
        }
        (!parts.is_empty()).then(|| parts.join("/"))
    }
}

/// Decrypted names already looked up: (folder inode, host name) → (name,
/// is a folder).
#[derive(Default)]
struct NameCache(std::collections::HashMap<(u64, String), (String, bool)>);

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
