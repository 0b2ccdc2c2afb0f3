//! Unit tests of the audit chains: appending, verifying, heads, merging.
use std::path::Path;
use std::sync::Arc;

use super::read::frames;
use super::*;
use crate::crypto::{MasterKey, SubKeys};
use crate::format::audit::{Event, MAGIC};
use crate::format::stream;
use crate::store::Layout;

const A: [u8; 16] = [0xaa; 16];
const B: [u8; 16] = [0xbb; 16];

fn keys() -> Arc<SubKeys> {
    Arc::new(MasterKey::generate().subkeys(&[1u8; 16]))
}

/// The same vault folder seen from device `local`.
fn layout(d: &Path, local: &str) -> Layout {
    Layout::new(d.join("v"), d.join(local))
}

fn heads(l: &Layout) -> Heads {
    Heads::new(l.audit_heads())
}

fn write(l: &Layout, dev: [u8; 16], k: &Arc<SubKeys>, n: usize) {
    let log = AuditLog::open(l, dev, k.clone(), Some(heads(l)), true).unwrap();
    for i in 0..n {
        log.append(
            Event::Save,
            format!("n{i}.md").as_bytes(),
            b"",
            i as u32,
            "",
        );
    }
}

fn verdict(l: &Layout, dev: [u8; 16], k: &SubKeys) -> Verdict {
    read_all(k, l, Some(&heads(l)), Some(ChainId::Device(dev)))
        .unwrap()
        .1
}

fn frames_of(b: &[u8]) -> Vec<(usize, usize)> {
    frames(b, stream::HEADER_LEN as usize).collect()
}

fn own_head(l: &Layout, dev: [u8; 16]) -> u64 {
    heads(l).get(ChainId::Device(dev)).unwrap().0
}

#[test]
fn a_chain_across_openings_verifies() {
    let d = tempfile::tempdir().unwrap();
    let (k, a) = (keys(), layout(d.path(), "a"));
    write(&a, A, &k, 3);
    // A second process (or a later mount) continues the same chain.
    write(&a, A, &k, 2);
    let (recs, v) = read_all(&k, &a, Some(&heads(&a)), Some(ChainId::Device(A))).unwrap();
    assert_eq!(v.broken, None, "{v:?}");
    assert_eq!(
        recs.iter().map(|r| r.record.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(recs.iter().all(|r| r.chain == ChainId::Device(A)));
    assert_eq!(own_head(&a, A), 5);
    assert!(v.head.contains("its own at record 5"), "{}", v.head);
    // The chain's stream ID is the device ID.
    let b = std::fs::read(a.audit_chain(&"aa".repeat(16))).unwrap();
    assert_eq!(stream::parse_header(MAGIC, &b).unwrap(), A);
}

#[test]
fn editing_removing_reordering_and_cutting_are_detected() {
    let d = tempfile::tempdir().unwrap();
    let (k, a) = (keys(), layout(d.path(), "a"));
    write(&a, A, &k, 4);
    let p = a.audit_chain(&"aa".repeat(16));
    let orig = std::fs::read(&p).unwrap();
    let f = frames_of(&orig);
    let check = |b: &[u8]| {
        std::fs::write(&p, b).unwrap();
        verdict(&a, A, &k)
    };
    // A flipped bit in record 2.
    let mut t = orig.clone();
    t[f[1].0 + 20] ^= 1;
    let v = check(&t);
    assert!(
        v.broken.as_deref().unwrap().contains(": record 2 "),
        "{v:?}"
    );
    assert_eq!(v.records, 1);
    // Record 2 removed.
    let t = [&orig[..f[1].0], &orig[f[1].1..]].concat();
    assert!(check(&t).broken.unwrap().contains(": record 2 "));
    // Records 2 and 3 swapped.
    let t = [
        &orig[..f[1].0],
        &orig[f[2].0..f[2].1],
        &orig[f[1].0..f[1].1],
        &orig[f[3].0..],
    ]
    .concat();
    assert!(check(&t).broken.unwrap().contains(": record 2 "));
    // The last record removed: only the remembered head can tell.
    let t = orig[..f[3].0].to_vec();
    let v = check(&t);
    assert!(v.broken.unwrap().contains("removed from the end"));
    let v = read_all(&k, &a, None, None).unwrap().1;
    assert_eq!(v.broken, None);
    // A torn tail that the crash journal does not explain (a crash's
    // is cut when the journal is replayed): reported.
    std::fs::write(&p, &orig[..orig.len() - 3]).unwrap();
    let v = read_all(&k, &a, None, None).unwrap().1;
    assert!(v.torn_tail && v.broken.unwrap().contains("no interrupted write"));
    // The whole chain deleted.
    std::fs::remove_file(&p).unwrap();
    assert!(verdict(&a, A, &k).broken.unwrap().contains("missing"));
    // Intact again: clean.
    assert_eq!(check(&orig).broken, None);
}

#[test]
fn a_torn_tail_is_cut_before_the_next_append_and_a_cut_chain_keeps_its_alarm() {
    let d = tempfile::tempdir().unwrap();
    let (k, a) = (keys(), layout(d.path(), "a"));
    write(&a, A, &k, 2);
    let p = a.audit_chain(&"aa".repeat(16));
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 5]).unwrap();
    // The head (written when the log was closed) says 2 records: the
    // chain is behind it. Appending goes on; the head is left alone.
    write(&a, A, &k, 1);
    let (recs, v) = read_all(&k, &a, Some(&heads(&a)), None).unwrap();
    assert_eq!(recs.len(), 2);
    assert!(v.broken.unwrap().contains("not the one seen"));
    assert_eq!(own_head(&a, A), 2);
    // Without the heads, the chain itself is whole.
    assert_eq!(read_all(&k, &a, None, None).unwrap().1.broken, None);
}

#[test]
fn the_head_moves_forward_only_along_the_chain_it_remembers() {
    let d = tempfile::tempdir().unwrap();
    let (k, a) = (keys(), layout(d.path(), "a"));
    let p = a.audit_chain(&"aa".repeat(16));
    write(&a, A, &k, 2);
    let old = std::fs::read(&p).unwrap();
    write(&a, A, &k, 2);
    assert_eq!(own_head(&a, A), 4);
    // The older chain put back, then extended past the head: the head
    // is not on its chain and stays where it was.
    std::fs::write(&p, &old).unwrap();
    write(&a, A, &k, 5);
    assert_eq!(own_head(&a, A), 4);
    assert!(verdict(&a, A, &k).broken.unwrap().contains("rewritten"));
    write(&a, A, &k, 1);
    assert_eq!(own_head(&a, A), 4);
    // Accepted: the head moves to this chain and follows it again.
    let log = AuditLog::open(&a, A, k.clone(), Some(heads(&a)), false).unwrap();
    log.accept().unwrap();
    drop(log);
    let n = own_head(&a, A);
    write(&a, A, &k, 1);
    assert_eq!(own_head(&a, A), n + 1);
    assert_eq!(verdict(&a, A, &k).broken, None);
}

#[test]
fn chains_of_two_devices_merge_by_time_and_a_rollback_of_the_other_is_seen() {
    let d = tempfile::tempdir().unwrap();
    let k = keys();
    let (a, b) = (layout(d.path(), "a"), layout(d.path(), "b"));
    write(&a, A, &k, 2);
    write(&b, B, &k, 2);
    let b_old = std::fs::read(b.audit_chain(&"bb".repeat(16))).unwrap();
    write(&a, A, &k, 1);
    write(&b, B, &k, 1);
    let (recs, v) = read_all(&k, &a, Some(&heads(&a)), Some(ChainId::Device(A))).unwrap();
    assert_eq!(v.broken, None, "{v:?}");
    let order: Vec<_> = recs
        .iter()
        .map(|r| (r.chain == ChainId::Device(A), r.record.seq))
        .collect();
    assert_eq!(
        order,
        [
            (true, 1),
            (true, 2),
            (false, 1),
            (false, 2),
            (true, 3),
            (false, 3)
        ]
    );
    assert_eq!(v.chains.len(), 2);
    // A saw B's chain at 2 records when it last wrote its heads.
    assert_eq!(heads(&a).get(ChainId::Device(B)).unwrap().0, 2);
    write(&a, A, &k, 0);
    assert_eq!(heads(&a).get(ChainId::Device(B)).unwrap().0, 3);
    // B's chain put back to an older copy (a restored backup, a sync
    // tool's rollback): A says so, and does not move its head.
    std::fs::write(b.audit_chain(&"bb".repeat(16)), &b_old).unwrap();
    let v = verdict(&a, A, &k);
    assert!(
        v.broken
            .as_deref()
            .unwrap()
            .starts_with("device bbbbbbb's chain: "),
        "{v:?}"
    );
    write(&a, A, &k, 1);
    assert_eq!(heads(&a).get(ChainId::Device(B)).unwrap().0, 3);
    // B's chain deleted: missing, still an alarm.
    std::fs::remove_file(b.audit_chain(&"bb".repeat(16))).unwrap();
    assert!(verdict(&a, A, &k).broken.unwrap().contains("missing"));
    // Accepted on A: the alarm goes, B's head is forgotten.
    AuditLog::open(&a, A, k.clone(), Some(heads(&a)), false)
        .unwrap()
        .accept()
        .unwrap();
    assert_eq!(verdict(&a, A, &k).broken, None);
    assert_eq!(heads(&a).get(ChainId::Device(B)), None);
}

#[test]
fn a_chain_under_another_devices_name_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let k = keys();
    let (a, b) = (layout(d.path(), "a"), layout(d.path(), "b"));
    write(&b, B, &k, 2);
    std::fs::create_dir_all(a.audit_dir()).unwrap();
    std::fs::copy(
        b.audit_chain(&"bb".repeat(16)),
        a.audit_chain(&"aa".repeat(16)),
    )
    .unwrap();
    assert!(AuditLog::open(&a, A, k.clone(), Some(heads(&a)), false).is_err());
    let v = read_all(&k, &a, None, None).unwrap().1;
    assert!(v.broken.unwrap().contains("names another device"));
    // A stray file in audit/ (a conflict copy) is listed, never read.
    std::fs::write(
        a.audit_dir()
            .join("bbbb.sync-conflict-20261204-101010-ABCDEFG"),
        b"x",
    )
    .unwrap();
    let v = read_all(&k, &b, None, None).unwrap().1;
    assert_eq!(v.other_files.len(), 1);
}
