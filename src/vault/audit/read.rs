//! Reading and verifying the audit log (`quire audit`, `quire check`):
//! every record opened, the chain followed, the head compared with the
//! one this machine remembers (docs/FORMAT.md §16).

use std::io;
use std::path::Path;

use super::read_head;
use crate::crypto::SubKeys;
use crate::format::audit::{MAGIC, RECORD, Record};
use crate::format::stream;

/// What reading and verifying the log found.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// Records that opened and chained, in order.
    pub records: u64,
    /// The first problem, if any (a sentence naming the record).
    pub broken: Option<String>,
    /// The last frame was cut short (a crash while appending): not tampering.
    pub torn_tail: bool,
    /// What the remembered head says (or that there is none).
    pub head: String,
    /// The link (hex) of the last record that authenticates and chains:
    /// with `records`, the value to write down off the machine to anchor
    /// the log (docs/THREAT_MODEL.md).
    #[serde(default)]
    pub last_link: String,
}

/// Reads every record that opens and chains; the verdict says where the
/// chain broke, if it did.
pub fn read(
    keys: &SubKeys,
    path: &Path,
    head: Option<&Path>,
) -> io::Result<(Vec<Record>, Verdict)> {
    let b = match crate::store::safe::read(path, crate::store::safe::MAX_AUDIT) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let remembered = head.and_then(read_head);
    let mut last_link = [0u8; 32];
    let mut records = Vec::new();
    let mut broken = None;
    let mut torn_tail = false;
    if b.is_empty() {
        if let Some((seq, _)) = remembered {
            broken = Some(format!(
                "the audit log is missing, but {seq} records were written on this machine"
            ));
        }
    } else {
        match stream::parse_header(MAGIC, &b) {
            Err(e) => broken = Some(format!("the log's header is damaged ({e:?})")),
            Ok(id) => {
                let frames = stream::open_all(&keys.audit, MAGIC, &id, &b);
                let link = &mut last_link;
                for f in &frames.frames {
                    let n = records.len() as u64 + 1;
                    let Some(r) = Record::decode(&f.body).filter(|_| f.kind == RECORD) else {
                        broken = Some(format!("record {n} (byte {}) is malformed", f.offset));
                        break;
                    };
                    if r.seq != n || r.prev != *link {
                        broken = Some(format!(
                            "record {n} (byte {}) does not follow record {}: records were removed, reordered or replaced",
                            f.offset,
                            n - 1
                        ));
                        break;
                    }
                    *link = keys.audit_link(&f.body);
                    records.push(r);
                }
                if broken.is_none() && frames.tampered {
                    broken = Some(format!(
                        "record {} (byte {}) fails authentication: it was altered, or records before it were removed or reordered",
                        records.len() + 1,
                        frames.end
                    ));
                }
                torn_tail = !frames.tampered && frames.end < b.len() as u64;
                if broken.is_none() && torn_tail {
                    // A crash's torn record is cut when the crash journal
                    // is replayed (at the next read-write unlock); one
                    // still here was not written by Quire (issue 11.8).
                    broken = Some(format!(
                        "{} bytes after record {} (byte {}) do not form a record, and no interrupted write explains them: records were cut or added",
                        b.len() as u64 - frames.end,
                        records.len(),
                        frames.end
                    ));
                }
                if broken.is_none()
                    && let Some((seq, l)) = remembered
                {
                    match records.get(seq.saturating_sub(1) as usize) {
                        None if seq > 0 => {
                            broken = Some(format!(
                                "the log ends at record {} but record {seq} was written on this machine: records were removed from the end",
                                records.len()
                            ))
                        }
                        Some(r) if keys.audit_link(&r.encode()) != l => {
                            broken = Some(format!(
                                "record {seq} is not the one written on this machine: the log was rewritten"
                            ))
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let head = match (head, remembered) {
        (None, _) => "no head is remembered for this vault".into(),
        (Some(p), None) => format!("no head remembered on this machine yet ({})", p.display()),
        (Some(_), Some((seq, _))) => format!("head remembered on this machine: record {seq}"),
    };
    let v = Verdict {
        records: records.len() as u64,
        broken,
        torn_tail,
        head,
        last_link: if records.is_empty() {
            String::new()
        } else {
            crate::vault::util::hex(&last_link)
        },
    };
    Ok((records, v))
}
