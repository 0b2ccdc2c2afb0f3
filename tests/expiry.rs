//! Expiry, retention and purge (docs/FORMAT.md §15) and the audit log
//! (§16), end to end on real mounts: dates set by `quire expire`, by
//! `setfattr` and by front matter; a note that expires while mounted moves
//! to the trash; a purge at an injected "now" leaves none of its ciphertext
//! in the vault folder; retention refuses deletion; the audit log's chain
//! catches edits, removals and reordering.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

fn files_under(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut v = Vec::new();
    walk(root, &mut v);
    v.into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).unwrap_or_default();
            (p, b)
        })
        .collect()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: std::process::Output) -> std::process::Output {
    assert!(
        o.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn a_note_expires_to_the_trash_and_its_purge_leaves_no_ciphertext() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::create_dir(m.path("clients")).unwrap();
    let before = files_under(&w.vault.join("d"));
    // A note with two versions (content file and history stream).
    let note = m.path("clients/session.md");
    std::fs::write(&note, "first session notes\n".repeat(300)).unwrap();
    std::fs::write(&note, "second session notes\n".repeat(300)).unwrap();
    std::fs::write(m.path("clients/keep.md"), "stays").unwrap();
    // Its ciphertext: every new file under d/ except the other note's.
    let after = files_under(&w.vault.join("d"));
    let keep_len = after.values().map(|b| b.len()).min().unwrap();
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    for (p, b) in &after {
        if before.contains_key(p) || b.len() < 1000 {
            continue; // the folder's files, the short note, small records
        }
        for at in [b.len() / 4, b.len() / 2, b.len() - 40] {
            pieces.push(b[at..at + 32].to_vec());
        }
    }
    assert!(
        pieces.len() >= 6,
        "content and history: {pieces:?} {keep_len}"
    );

    // An expiry three seconds ahead, with the CLI (a moment, local time).
    let at = sh(&w.mnt, "date -d '+3 seconds' +%Y-%m-%dT%H:%M:%S");
    ok(w.run(&["expire", note.to_str().unwrap(), at.trim()]));
    let o = ok(w.run(&["expiring", "--within", "1d", "--json"]));
    assert!(stdout(&o).contains("clients/session.md"), "{}", stdout(&o));
    // The daemon moves it to the trash when it falls due (not a minute later).
    assert!(
        wait_until(Duration::from_secs(20), || !note.exists()),
        "the note did not expire"
    );
    assert!(
        !std::fs::read_dir(m.path("clients"))
            .unwrap()
            .any(|e| e.unwrap().file_name() == "session.md")
    );
    let o = ok(w.run(&["trash", "--json"]));
    let t = stdout(&o);
    assert!(
        t.contains("\"reason\":\"expired\"") && t.contains("clients/session.md"),
        "{t}"
    );
    let o = ok(w.run(&["status"]));
    assert!(
        stdout(&o).contains("expired, in the trash: 1"),
        "{}",
        stdout(&o)
    );

    // The plan at an injected "now" 61 days ahead: purge it.
    let o = ok(w.run(&["purge", "--dry-run", "--now", "+61d", "--json"]));
    let plan = stdout(&o);
    assert!(
        plan.contains("clients/session.md") && plan.contains("\"applied\":false"),
        "{plan}"
    );
    // Not yet at 59 days.
    let o = ok(w.run(&["purge", "--dry-run", "--now", "+59d", "--json"]));
    assert!(!stdout(&o).contains("session.md"), "{}", stdout(&o));
    // What the crash journal holds now: the first version's blocks, saved
    // before the second save overwrote them.
    let journal = w.local().join("quire.undo");
    let held = std::fs::read(&journal).unwrap_or_default();
    assert!(held.len() > 6000, "the journal holds {} bytes", held.len());
    let old_blocks: Vec<Vec<u8>> = [held.len() / 4, held.len() / 2, held.len() - 40]
        .iter()
        .map(|&at| held[at..at + 32].to_vec())
        .collect();
    ok(w.run(&["purge", "--now", "+61d"]));
    let o = ok(w.run(&["trash", "--json"]));
    assert!(!stdout(&o).contains("session.md"));
    assert_eq!(std::fs::read(m.path("clients/keep.md")).unwrap(), b"stays");
    // Nothing of its ciphertext anywhere in the vault folder (content,
    // history, trash, crash journal), mounted and after sealing.
    let check = |when: &str| {
        for (p, b) in files_under(&w.vault) {
            for piece in &pieces {
                assert!(
                    !b.windows(32).any(|x| x == &piece[..]),
                    "{when}: ciphertext of the purged note is still in {p:?}"
                );
            }
        }
    };
    check("mounted");
    // The crash journal held the first version's blocks (saved before the
    // second save overwrote them): none of them is left after the purge
    // (an audit append racing the check may have started it over with an
    // APPEND record, which holds no content).
    let undo = std::fs::read(&journal).unwrap_or_default();
    for piece in &old_blocks {
        assert!(
            !undo.windows(32).any(|x| x == &piece[..]),
            "quire.undo ({} bytes) still holds ciphertext of the purged note",
            undo.len()
        );
    }
    let o = ok(w.run(&["audit"]));
    let log = stdout(&o);
    for want in ["create", "save", "dates", "expire", "purge"] {
        assert!(log.contains(want), "{want} missing:\n{log}");
    }
    assert!(log.contains("clients/session.md  (version 2)"), "{log}");
    m.unmount();
    check("sealed");
    assert!(w.check_sealed().status.success());
    let o = ok(w.run(&[
        "audit",
        "--verify",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]));
    assert!(stdout(&o).contains("intact"), "{}", stdout(&o));
}

#[test]
fn retention_refuses_deletion_and_dates_follow_the_note() {
    need("setfattr");
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("record.md"), "keep me").unwrap();
    // Set with setfattr, shown by getfattr in canonical form.
    sh(
        &w.mnt,
        "setfattr -n user.quire.retain-until -v 2099-01-01 record.md",
    );
    let got = sh(
        &w.mnt,
        "getfattr --only-values -n user.quire.retain-until record.md",
    );
    assert_eq!(got, "2099-01-01");
    // rm says EPERM; the CLI says why, with its own exit code.
    let e = std::fs::remove_file(m.path("record.md")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    let o = w.run(&[
        "expire",
        m.path("record.md").to_str().unwrap(),
        "2030-01-01",
    ]);
    assert_eq!(o.status.code(), Some(23));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("retention"),
        "{o:?}"
    );
    let o = w.run(&["retain", "--clear", m.path("record.md").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(23));
    // Bad dates are refused clearly (exit 2; EINVAL through the mount).
    let o = w.run(&[
        "expire",
        m.path("record.md").to_str().unwrap(),
        "next tuesday",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("2027-03-01"),
        "{o:?}"
    );
    let o = std::process::Command::new("setfattr")
        .args(["-n", "user.quire.expires", "-v", "2027-02-30"])
        .arg(m.path("record.md"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Invalid argument"),
        "{o:?}"
    );
    // An editor's save (write a temporary file, rename it over the note)
    // keeps the dates, as does a rename; `rm -r` of the folder fails.
    sh(
        &w.mnt,
        "python3 -c \"import os; open('.record.md.tmp','w').write('v2'); os.replace('.record.md.tmp','record.md')\"",
    );
    assert_eq!(std::fs::read(m.path("record.md")).unwrap(), b"v2");
    std::fs::create_dir(m.path("old")).unwrap();
    std::fs::rename(m.path("record.md"), m.path("old/record.md")).unwrap();
    let o = ok(w.run(&[
        "retain",
        m.path("old/record.md").to_str().unwrap(),
        "--json",
    ]));
    assert!(
        stdout(&o).contains("\"retain_until\":\"2099-01-01\""),
        "{}",
        stdout(&o)
    );
    let o = std::process::Command::new("rm")
        .args(["-rf"])
        .arg(m.path("old"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(m.path("old/record.md").exists());
    // Extending works; an expiry on or after the retention date is accepted.
    ok(w.run(&[
        "retain",
        m.path("old/record.md").to_str().unwrap(),
        "2100-01-01",
    ]));
    ok(w.run(&[
        "expire",
        m.path("old/record.md").to_str().unwrap(),
        "2100-06-01",
    ]));
    // Front matter sets dates on save (Markdown notes).
    std::fs::write(
        m.path("fm.md"),
        "---\ntitle: intake\nexpires: 2031-05-01\nretain-until: 2030-01-01\n---\ntext\n",
    )
    .unwrap();
    let o = ok(w.run(&["expire", m.path("fm.md").to_str().unwrap(), "--json"]));
    assert!(
        stdout(&o).contains("\"expires\":\"2031-05-01\"")
            && stdout(&o).contains("\"retain_until\":\"2030-01-01\""),
        "{}",
        stdout(&o)
    );
    // A front matter expiry before the retention date is not applied.
    std::fs::write(m.path("fm.md"), "---\nexpires: 2029-01-01\n---\ntext\n").unwrap();
    let o = ok(w.run(&["expire", m.path("fm.md").to_str().unwrap(), "--json"]));
    assert!(
        stdout(&o).contains("\"expires\":\"2031-05-01\""),
        "{}",
        stdout(&o)
    );
    let o = ok(w.run(&["expiring", "--all", "--json"]));
    assert!(stdout(&o).contains("old/record.md") && stdout(&o).contains("fm.md"));
    m.unmount();
    // On the sealed vault too: the purge plan keeps retained notes, and
    // dates survive a remount.
    let o = ok(w.run(&[
        "purge",
        "--dry-run",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
        "--now",
        "2099-06-01",
        "--json",
    ]));
    assert!(!stdout(&o).contains("record.md"), "{}", stdout(&o));
    assert!(w.check_sealed().status.success());
}

#[test]
fn the_audit_chain_catches_edits_removals_and_a_cut_tail() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    for i in 0..5 {
        std::fs::write(m.path(&format!("n{i}.md")), format!("note {i}")).unwrap();
    }
    std::fs::rename(m.path("n0.md"), m.path("renamed.md")).unwrap();
    let o = ok(w.run(&["audit", "--path", m.path("renamed.md").to_str().unwrap()]));
    assert!(stdout(&o).contains("n0.md -> renamed.md"), "{}", stdout(&o));
    m.unmount();
    let sealed = |extra: &[&str]| {
        let mut a = vec![
            "audit",
            "--vault",
            w.vault.to_str().unwrap(),
            "--password-file",
            w.pwfile.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        w.run(&a)
    };
    let log = w.audit_chain();
    let orig = std::fs::read(&log).unwrap();
    assert!(sealed(&["--verify"]).status.success());
    // Record boundaries (header 26 bytes, frame = 5 + sealed length).
    let mut frames = Vec::new();
    let mut pos = 26;
    while pos < orig.len() {
        let len = u32::from_be_bytes(orig[pos..pos + 4].try_into().unwrap()) as usize;
        frames.push((pos, pos + 5 + len));
        pos += 5 + len;
    }
    assert!(frames.len() >= 12, "{} records", frames.len());
    let verdict = |bytes: &[u8]| {
        std::fs::write(&log, bytes).unwrap();
        let o = sealed(&["--verify"]);
        (o.status.code(), stdout(&o))
    };
    // An edited record.
    let mut t = orig.clone();
    t[frames[3].0 + 30] ^= 0x40;
    let (code, out) = verdict(&t);
    assert_eq!(code, Some(24), "{out}");
    assert!(out.contains("record 4 "), "{out}");
    // A removed record, and two swapped ones.
    let t = [&orig[..frames[2].0], &orig[frames[2].1..]].concat();
    assert_eq!(verdict(&t).0, Some(24));
    let t = [
        &orig[..frames[5].0],
        &orig[frames[6].0..frames[6].1],
        &orig[frames[5].0..frames[5].1],
        &orig[frames[7].0..],
    ]
    .concat();
    assert_eq!(verdict(&t).0, Some(24));
    // The last records cut off: the head remembered on this machine sees it.
    let cut = frames[frames.len() - 2].0;
    let (code, out) = verdict(&orig[..cut]);
    assert_eq!(code, Some(24), "{out}");
    assert!(out.contains("removed from the end"), "{out}");
    // Intact again.
    let (code, out) = verdict(&orig);
    assert_eq!(code, Some(0), "{out}");
    // Its content is no note: nothing of a note's text or name in the clear.
    assert!(!orig.windows(7).any(|x| x == b"renamed"));
}
