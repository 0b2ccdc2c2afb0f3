//! Reading and verifying the audit chains (`quire audit`, `quire check`):
//! every record of every chain opened, each chain followed and compared
//! with the head this device remembers, and the records merged by time
//! (docs/FORMAT.md §16).

use std::io;

use super::{ChainId, Head, Heads};
use crate::crypto::SubKeys;
use crate::format::audit::{MAGIC, Record};
use crate::format::stream;
use crate::store::Layout;

/// One record and the chain it is on.
#[derive(Debug, Clone)]
pub struct Chained {
    /// The chain (the device that wrote it).
    pub chain: ChainId,
    /// The record.
    pub record: Record,
}

/// What verifying one chain found.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ChainVerdict {
    /// The chain: `legacy` or the device ID in hex.
    pub chain: String,
    /// Records that opened and chained, in order.
    pub records: u64,
    /// The first problem, if any (a sentence naming the record).
    pub broken: Option<String>,
    /// The last frame was cut short (a crash while appending).
    pub torn_tail: bool,
    /// The `seq` of the head this device remembers for it, if any.
    pub remembered: Option<u64>,
    /// The link (hex) of the last record that authenticates and chains.
    pub last_link: String,
}

/// What reading and verifying every chain found.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// Records that opened and chained, over all chains.
    pub records: u64,
    /// The first problem of any chain, if any (a sentence naming the chain
    /// and the record).
    pub broken: Option<String>,
    /// Some chain's last frame was cut short (a crash while appending).
    pub torn_tail: bool,
    /// What the remembered heads say (or that there are none).
    pub head: String,
    /// The link (hex) of this device's last record: with its count, the
    /// value to write down off the machine to anchor its chain
    /// (docs/THREAT_MODEL.md).
    #[serde(default)]
    pub last_link: String,
    /// Each chain on its own.
    #[serde(default)]
    pub chains: Vec<ChainVerdict>,
    /// Files in `audit/` that are no device's chain (a sync tool's
    /// conflict copy of one, a stray): never read, reported.
    #[serde(default)]
    pub other_files: Vec<String>,
}

/// The whole frames of `b` from `from`, as (offset, end), without opening
/// them; stops at the first frame that is malformed or runs past the end.
pub(super) fn frames(b: &[u8], from: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = from;
    std::iter::from_fn(move || {
        let fh: [u8; 5] = b
            .get(pos..pos + stream::FRAME_HEADER as usize)?
            .try_into()
            .ok()?;
        let (len, _) = stream::parse_frame_header(&fh)?;
        let end = pos + stream::FRAME_HEADER as usize + len as usize;
        if end > b.len() {
            return None;
        }
        let at = pos;
        pos = end;
        Some((at, end))
    })
}

/// Opens the frame at `at..end` of the chain `b` (stream ID `id`) as a
/// record: the record and its link.
pub(super) fn open_at(
    keys: &SubKeys,
    id: &[u8; 16],
    b: &[u8],
    (at, end): (usize, usize),
) -> Option<(Record, [u8; 32])> {
    let (_, kind) = stream::parse_frame_header(b.get(at..at + 5)?.try_into().ok()?)?;
    let body =
        stream::open_frame(&keys.audit, MAGIC, id, at as u64, kind, b.get(at + 5..end)?).ok()?;
    Record::decode_kind(kind, &body).map(|r| (r, keys.audit_link(&body)))
}

/// Parses a chain's header; a device's chain must carry its device ID as
/// the stream ID (so one device's chain cannot pose as another's).
pub(super) fn header_id(chain: ChainId, b: &[u8]) -> Result<[u8; 16], String> {
    let id =
        stream::parse_header(MAGIC, b).map_err(|e| format!("its header is damaged ({e:?})"))?;
    match chain {
        ChainId::Device(dev) if dev != id => {
            Err("its header names another device: it is not this device's chain".into())
        }
        _ => Ok(id),
    }
}

/// Reads one chain (`b`: the whole file, empty if missing) and verifies it
/// against the remembered head.
pub fn read_chain(
    keys: &SubKeys,
    chain: ChainId,
    b: &[u8],
    remembered: Option<Head>,
) -> (Vec<Record>, ChainVerdict) {
    let mut last_link = [0u8; 32];
    let mut records = Vec::new();
    let mut broken = None;
    let mut torn_tail = false;
    if b.is_empty() {
        if let Some((seq, _)) = remembered {
            broken = Some(format!(
                "it is missing, but {seq} of its records were seen on this device"
            ));
        }
    } else {
        match header_id(chain, b) {
            Err(e) => broken = Some(e),
            Ok(id) => {
                let frames = stream::open_all(&keys.audit, MAGIC, &id, b);
                let link = &mut last_link;
                for f in &frames.frames {
                    let n = records.len() as u64 + 1;
                    let Some(r) = Record::decode_kind(f.kind, &f.body) else {
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
                                "it ends at record {} but record {seq} was seen on this device: records were removed from the end",
                                records.len()
                            ))
                        }
                        Some(r) if keys.audit_link(&r.encode()) != l => {
                            broken = Some(format!(
                                "record {seq} is not the one seen on this device: the chain was rewritten or rolled back"
                            ))
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let v = ChainVerdict {
        chain: chain.key(),
        records: records.len() as u64,
        broken,
        torn_tail,
        remembered: remembered.map(|(s, _)| s),
        last_link: if records.is_empty() {
            String::new()
        } else {
            crate::vault::util::hex(&last_link)
        },
    };
    (records, v)
}

/// Reads a chain's file whole (empty if it is missing).
pub(super) fn load(layout: &Layout, chain: ChainId) -> io::Result<Vec<u8>> {
    match crate::store::safe::read(&chain.path(layout), crate::store::safe::MAX_AUDIT) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Reads and verifies every chain of the vault (and every chain `heads`
/// remembers, present or not); the records come merged by time. `me` is
/// this device's chain (for the verdict's `last_link`).
pub fn read_all(
    keys: &SubKeys,
    layout: &Layout,
    heads: Option<&Heads>,
    me: Option<ChainId>,
) -> io::Result<(Vec<Chained>, Verdict)> {
    let (mut ids, other_files) = super::chains(layout)?;
    let remembered = heads.map(Heads::load).unwrap_or_default();
    for c in remembered.keys() {
        if !ids.contains(c) {
            ids.push(*c);
        }
    }
    let mut all = Vec::new();
    let mut chains = Vec::new();
    for c in ids {
        let b = load(layout, c)?;
        let (records, v) = read_chain(keys, c, &b, remembered.get(&c).copied());
        all.extend(
            records
                .into_iter()
                .map(|record| Chained { chain: c, record }),
        );
        chains.push((c, v));
    }
    all.sort_by(|a, b| {
        (a.record.time_ns, a.chain, a.record.seq).cmp(&(b.record.time_ns, b.chain, b.record.seq))
    });
    let broken = chains
        .iter()
        .find_map(|(c, v)| Some(format!("{}: {}", c.describe(), v.broken.as_ref()?)));
    let head = match heads {
        None => "no heads are remembered for this vault".into(),
        Some(h) if remembered.is_empty() => format!(
            "no heads remembered on this device yet ({})",
            h.path().display()
        ),
        Some(_) => {
            let mine = me
                .and_then(|m| remembered.get(&m))
                .map(|(s, _)| format!(", its own at record {s}"))
                .unwrap_or_default();
            format!(
                "heads remembered on this device: {} chain(s){mine}",
                remembered.len()
            )
        }
    };
    let last_link = me
        .and_then(|m| chains.iter().find(|(c, _)| *c == m))
        .map(|(_, v)| v.last_link.clone())
        .unwrap_or_default();
    let v = Verdict {
        records: all.len() as u64,
        broken,
        torn_tail: chains.iter().any(|(_, v)| v.torn_tail),
        head,
        last_link,
        chains: chains.into_iter().map(|(_, v)| v).collect(),
        other_files,
    };
    Ok((all, v))
}

/// A chain sealed again under `new` keys (re-keying, issue 20.1): the same
/// header (stream ID), and every record `old` keys read from `b`, in
/// order, with its fields as they were and its links recomputed. A chain
/// that does not read whole (broken, or with a torn tail) is refused.
pub fn transcode_chain(
    old: &SubKeys,
    new: &SubKeys,
    chain: ChainId,
    b: &[u8],
) -> Result<Vec<u8>, String> {
    let (records, v) = read_chain(old, chain, b, None);
    if let Some(why) = v.broken {
        return Err(format!("{} is broken: {why}", chain.describe()));
    }
    let id = header_id(chain, b)?;
    let mut out = b[..stream::HEADER_LEN as usize].to_vec();
    let mut link = [0u8; 32];
    for mut r in records {
        r.prev = link;
        let body = r.encode();
        let at = out.len() as u64;
        out.extend_from_slice(&stream::seal_frame(
            &new.audit,
            MAGIC,
            &id,
            at,
            r.kind(),
            &body,
        ));
        link = new.audit_link(&body);
    }
    Ok(out)
}
