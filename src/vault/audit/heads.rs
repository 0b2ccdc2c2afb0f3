//! The heads this device remembers (docs/FORMAT.md §16): for every audit
//! chain it has seen, the `seq` and link of the last record, in
//! `audit.heads` in the device's own folder, outside the vault folder, so
//! that no copy of the vault carries it.
//!
//! ```text
//! quire audit heads v1
//! <chain> <seq> <link, 64 hex>        one line per chain; <chain> is
//!                                     `legacy` or a device ID in hex
//! ```
//!
//! A head moves only forward along the chain it remembers: a chain found
//! shorter than its head, or whose record at the head's `seq` has another
//! link, keeps the old head (and the alarm) until `quire audit --accept`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::ChainId;
use crate::store::{atomic, safe};
use crate::vault::util::{hex, unhex};

/// A remembered head: the last record's `seq` and link.
pub type Head = (u64, [u8; 32]);

const MAGIC_LINE: &str = "quire audit heads v1";

/// The heads file of one device and one vault folder.
#[derive(Debug, Clone)]
pub struct Heads {
    path: PathBuf,
}

/// Parses the text of a heads file; `None` if it is not one.
fn parse(text: &str) -> Option<BTreeMap<ChainId, Head>> {
    let mut lines = text.lines();
    if lines.next()? != MAGIC_LINE {
        return None;
    }
    let mut m = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut w = line.split_whitespace();
        let chain = ChainId::parse(w.next()?)?;
        let seq = w.next()?.parse().ok()?;
        let link = unhex::<32>(w.next()?)?;
        m.insert(chain, (seq, link));
    }
    Some(m)
}

fn render(m: &BTreeMap<ChainId, Head>) -> String {
    let mut s = format!("{MAGIC_LINE}\n");
    for (c, (seq, link)) in m {
        s.push_str(&format!("{} {seq} {}\n", c.key(), hex(link)));
    }
    s
}

/// The head file of older versions (one chain): `quire audit head v1`,
/// `seq N`, `link <hex>`.
pub fn read_old_head(path: &Path) -> Option<Head> {
    let text = String::from_utf8(safe::read(path, safe::MAX_RECORD).ok()?).ok()?;
    let mut seq = None;
    let mut link = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("seq ") {
            seq = v.trim().parse().ok();
        }
        if let Some(v) = line.strip_prefix("link ") {
            link = unhex::<32>(v.trim());
        }
    }
    Some((seq?, link?))
}

/// Holds an exclusive `flock` on the heads file's folder while a
/// read-modify-write runs (the daemon and a CLI command of this device may
/// both move heads; the file itself is replaced by renames).
struct Guard(#[allow(dead_code)] File);

impl Heads {
    /// The heads kept in `path`.
    pub fn new(path: PathBuf) -> Heads {
        Heads { path }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file exists.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Every remembered head (none if the file is missing). A file that
    /// cannot be parsed is reported and treated as empty.
    pub fn load(&self) -> BTreeMap<ChainId, Head> {
        match safe::read(&self.path, safe::MAX_RECORD) {
            Ok(b) => match std::str::from_utf8(&b).ok().and_then(parse) {
                Some(m) => m,
                None => {
                    log::error!(
                        "{} is not a list of audit heads; it is ignored",
                        self.path.display()
                    );
                    BTreeMap::new()
                }
            },
            Err(_) => BTreeMap::new(),
        }
    }

    /// The remembered head of one chain.
    pub fn get(&self, c: ChainId) -> Option<Head> {
        self.load().get(&c).copied()
    }

    fn lock(&self) -> io::Result<Guard> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        atomic::private_dir(dir)?;
        let f = File::open(dir)?;
        f.lock()?;
        Ok(Guard(f))
    }

    /// Changes the heads under the lock: `f` gets the file's current
    /// content and may change it; it is written back atomically if it did.
    pub fn update<T>(&self, f: impl FnOnce(&mut BTreeMap<ChainId, Head>) -> T) -> io::Result<T> {
        let _g = self.lock()?;
        let mut m = self.load();
        let before = m.clone();
        let out = f(&mut m);
        if m != before || !self.exists() {
            atomic::write(&self.path, render(&m).as_bytes())?;
        }
        Ok(out)
    }

    /// Takes over the head file of an older version as the legacy chain's
    /// head, once (when this file does not exist yet).
    pub fn import_old(&self, old: &Path) -> io::Result<()> {
        if self.exists() {
            return Ok(());
        }
        let head = read_old_head(old);
        self.update(|m| {
            if let Some(h) = head {
                m.entry(ChainId::Legacy).or_insert(h);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip_and_refuse_what_is_not_a_heads_file() {
        let d = tempfile::tempdir().unwrap();
        let h = Heads::new(d.path().join("local/audit.heads"));
        assert!(h.load().is_empty());
        let dev = ChainId::Device([7; 16]);
        h.update(|m| {
            m.insert(ChainId::Legacy, (3, [1; 32]));
            m.insert(dev, (9, [2; 32]));
        })
        .unwrap();
        let text = std::fs::read_to_string(h.path()).unwrap();
        assert_eq!(
            text,
            format!(
                "quire audit heads v1\nlegacy 3 {}\n{} 9 {}\n",
                "01".repeat(32),
                "07".repeat(16),
                "02".repeat(32)
            )
        );
        assert_eq!(h.get(dev), Some((9, [2; 32])));
        std::fs::write(h.path(), "quire audit head v1\nseq 3\n").unwrap();
        assert!(h.load().is_empty());
    }

    #[test]
    fn an_old_head_file_is_taken_over_once_as_the_legacy_head() {
        let d = tempfile::tempdir().unwrap();
        let old = d.path().join("old.head");
        std::fs::write(
            &old,
            format!("quire audit head v1\nseq 5\nlink {}\n", "ab".repeat(32)),
        )
        .unwrap();
        let h = Heads::new(d.path().join("audit.heads"));
        h.import_old(&old).unwrap();
        assert_eq!(h.get(ChainId::Legacy), Some((5, [0xab; 32])));
        h.update(|m| {
            m.remove(&ChainId::Legacy);
        })
        .unwrap();
        h.import_old(&old).unwrap();
        assert_eq!(h.get(ChainId::Legacy), None, "taken over only once");
    }
}
