//! Storage faults (HOUSE habit 9): the k-th write, truncate or fsync fails
//! during a save; the operation reports an error, and after reopening the
//! note reads as its old or its new content, never torn, and `check`
//! finds nothing wrong. Runs on the vault API, without mounting.

use std::ffi::OsStr;
use std::sync::Arc;

use quire::crypto::Password;
use quire::crypto::kdf::Argon2Params;
use quire::store::fault;
use quire::vault::{LockedVault, Notebook as Tree, Secret};

fn pw() -> Password {
    Password::new(b"fault injection".to_vec())
}

fn open(path: &std::path::Path) -> (quire::vault::UnlockedVault, Tree) {
    let v = LockedVault::open(path)
        .unwrap()
        .unlock(&Secret::Password(pw()))
        .unwrap();
    let t = v.tree(false).unwrap();
    (v, t)
}

fn read(t: &Tree, name: &str) -> Vec<u8> {
    let root = t.root();
    t.read_current(&root, OsStr::new(name)).unwrap().to_vec()
}

/// Saves `data` as `name` the way an editor writing in place does.
fn save(t: &Tree, name: &str, data: &[u8]) -> std::io::Result<()> {
    let root = t.root();
    let node = match t.lookup(&root, OsStr::new(name)) {
        Ok((n, _)) => Arc::new(n),
        Err(_) => Arc::new(t.create(&root, OsStr::new(name), 0o600, true, None)?.0),
    };
    let of = t.open(node, true)?;
    let r = (|| {
        t.truncate(&of, 0)?;
        for (i, c) in data.chunks(5000).enumerate() {
            t.write(&of, (i * 5000) as u64, c)?;
        }
        t.fsync(&of, false)?;
        t.flush(&of)
    })();
    let c = t.release(&of);
    r.and(c)
}

#[test]
fn every_failing_write_leaves_old_or_new() {
    let old: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    let new: Vec<u8> = (0..21_000u32).map(|i| (i % 13) as u8 + 100).collect();
    let mut failed_at = Vec::new();
    for k in 0..200 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v");
        quire::vault::init(&path, &pw(), Argon2Params::MIN, true).unwrap();
        {
            let (_v, t) = open(&path);
            save(&t, "note.md", &old).unwrap();
            fault::fail_after(k);
            let r = save(&t, "note.md", &new);
            let fired = fault::spent();
            fault::off();
            if !fired {
                // Every write of the save succeeded: done.
                assert!(r.is_ok());
                assert_eq!(read(&t, "note.md"), new);
                assert!(k > 5, "a save makes several writes");
                println!("faults injected at writes 0..{k}: {failed_at:?}");
                return;
            }
            // A failed history append is logged, not returned (the note
            // itself is saved): then the save succeeds with the new content.
            if r.is_ok() {
                assert_eq!(read(&t, "note.md"), new, "fault at write {k}");
            }
            failed_at.push(k);
            // The daemon would carry on; here the tree is dropped as a
            // crash would leave it (an open session is rolled back).
        }
        let (_v, t) = open(&path);
        let now = read(&t, "note.md");
        let versions = t.versions(&t.root(), OsStr::new("note.md")).unwrap();
        assert!(!versions.is_empty(), "fault at write {k}: history lost");
        // Old, new, or the new content as far as the writes the program
        // was told succeeded (a failure before anything was touched keeps
        // them, as a local disk does); never a torn block.
        let acknowledged = now.len().is_multiple_of(5000) || now.len() == new.len();
        assert!(
            now == old || (now.len() <= new.len() && now[..] == new[..now.len()] && acknowledged),
            "fault at write {k}: the note is neither old nor new ({} bytes)",
            now.len()
        );
        let report = t.check(&mut |_| {}).unwrap();
        assert!(
            report.problems.is_empty(),
            "fault at write {k}: {:?}",
            report.problems
        );
    }
    panic!("the save never completed");
}
