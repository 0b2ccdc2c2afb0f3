//! One vault, several devices (issue 18.1): what is per device stays out
//! of the vault folder, a crash on one device is rolled back only there,
//! a stale journal never replays onto files that were replaced, and a
//! file another device left half-written is named as such.
//!
//! A second "device" is a second world (its own HOME, so its own state
//! folder, mount point and runtime folder) pointed at the same vault
//! folder, as a sync tool would make it look.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

/// A second device: its own HOME and mount point, the same vault folder.
fn other_device(w: &World) -> World {
    let mut b = World::new();
    b.vault = w.vault.clone();
    b
}

/// Names in the vault folder's top level.
fn top(w: &World) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&w.vault)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn per_device_state_lives_outside_the_vault_folder() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("a.md"), "kangaroo notes\n").unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        let o = w.run(&["search", "--json", "kangaroo"]);
        String::from_utf8_lossy(&o.stdout).contains("a.md")
    }));
    // While mounted: no lock file, journal, log or index in the folder a
    // sync tool copies.
    assert_eq!(top(&w), ["audit", "d", "devices", "quire.conf"]);
    let local = w.local();
    assert!(local.join("quire.log").is_file(), "{}", local.display());
    assert!(local.join("index").is_dir());
    assert_eq!(std::fs::read(local.join("device")).unwrap().len(), 16);
    // A second mount of the same folder on this machine is still refused
    // (the lock is the vault folder's own flock).
    let b = other_device(&w);
    let o = b.mount_output(&[]);
    assert!(!o.status.success());
    assert_eq!(o.status.code(), Some(13), "{o:?}");
    m.unmount();
    assert_eq!(top(&w), ["audit", "d", "devices", "quire.conf"]);
    // The device is listed, sealed, named after the host; it can be renamed.
    let pw = w.pwfile.to_str().unwrap();
    let v = w.vault.to_str().unwrap();
    let o = w.run(&["devices", "--vault", v, "--password-file", pw]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("sealed since") && out.contains("(this computer)"),
        "{out}"
    );
    let o = w.run(&[
        "devices",
        "--vault",
        v,
        "--password-file",
        pw,
        "--rename",
        "Office desktop",
    ]);
    assert!(o.status.success());
    let o = w.run(&["devices", "--vault", v, "--password-file", pw, "--json"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("\"name\": \"Office desktop\""), "{out}");
    // The name is sealed: not in the clear in the vault folder.
    assert_eq!(contains_bytes(&w.vault, b"Office desktop"), None);
    let o = w.run(&["audit", "--vault", v, "--password-file", pw]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("renamed to \"Office desktop\""),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn a_crash_on_one_device_is_rolled_back_only_on_that_device() {
    let a = World::new();
    a.init();
    let m = a.mount(&[]);
    let old = "committed line\n".repeat(700);
    std::fs::write(m.path("n.md"), &old).unwrap();
    m.unmount();
    let m = a.mount(&[]);
    // Device A overwrites the note in place and is killed before it closes
    // the file: its journal (in A's own folder) holds the old blocks.
    write_then_kill(&a, m, "n.md", 9000, b'x');
    assert!(a.local().join("quire.undo").is_file());
    // Device B (the folder as a sync tool delivered it) mounts: it has no
    // journal of A's and rolls nothing back; it says A has the vault open.
    let b = other_device(&a);
    let o = b.mount_output(&[]);
    assert!(o.status.success(), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("has had this vault mounted since") && err.contains("stopped without"),
        "{err}"
    );
    let mb = Mounted { world: &b };
    match std::fs::read(mb.path("n.md")) {
        // A's change was half-made: never garbage, and the log names A.
        Err(e) => {
            assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
            mb.unmount();
            let log = b.logs();
            assert!(
                log.contains("half-written by another device") && log.contains("mounted since"),
                "{log}"
            );
        }
        // Or the state A's write had reached (old or new, never a mix).
        Ok(c) => {
            let mut new = old.clone().into_bytes();
            new[..9000].fill(b'x');
            assert!(c == old.as_bytes() || c == new, "B read a mix");
            mb.unmount();
        }
    }
    assert!(
        !b.local().join("quire.undo").exists()
            || std::fs::read(b.local().join("quire.undo"))
                .unwrap()
                .is_empty()
    );
    // Back on A: its own journal rolls the note back to its last save.
    let m = a.mount(&[]);
    let back = std::fs::read_to_string(m.path("n.md")).unwrap();
    m.unmount();
    assert!(
        back == old,
        "not rolled back: {}\n{}",
        &back[..40],
        a.logs()
    );
    let o = a.check_sealed();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
}

#[test]
fn a_stale_journal_never_replays_onto_a_restored_copy() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let v1 = "version one\n".repeat(500);
    std::fs::write(m.path("n.md"), &v1).unwrap();
    m.unmount();
    // A backup of the sealed folder, taken by any tool.
    let backup = w.dir.path().join("backup");
    sh(
        w.dir.path(),
        &format!("cp -a {} {}", w.vault.display(), backup.display()),
    );
    let m = w.mount(&[]);
    let v2 = "version two\n".repeat(500);
    std::fs::write(m.path("n.md"), &v2).unwrap();
    m.unmount();
    let m = w.mount(&[]);
    write_then_kill(&w, m, "n.md", 5000, b'y');
    assert!(w.local().join("quire.undo").is_file());
    // The user restores the backup into the same place: this machine's
    // journal is about files that are gone, and must not be replayed
    // onto the restored ones.
    sh(
        w.dir.path(),
        &format!(
            "rm -rf {v} && cp -a {b} {v}",
            v = w.vault.display(),
            b = backup.display()
        ),
    );
    let m = w.mount(&[]);
    let back = std::fs::read_to_string(m.path("n.md")).unwrap();
    assert!(back == v1, "replayed onto the copy: {}", &back[..40]);
    m.unmount();
    let log = w.logs();
    assert!(log.contains("changed identity since the crash"), "{log}");
    // The restore rolled the audit log back too: named, then accepted.
    let out = w.check_problems("a restored backup");
    assert!(out.contains("audit/") && !out.contains("n.md"), "{out}");
    let o = w.run(&[
        "audit",
        "--accept",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    let o = w.check_sealed();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
}

#[test]
fn files_older_versions_kept_in_the_vault_folder_are_moved_out() {
    let w = World::new();
    w.init();
    w.mount(&[]).unmount();
    // What an older Quire left in the vault folder.
    std::fs::write(w.vault.join("quire.lock"), b"").unwrap();
    std::fs::create_dir(w.vault.join("index")).unwrap();
    std::fs::write(w.vault.join("index/meta.json"), b"sealed junk").unwrap();
    std::fs::rename(w.local().join("quire.log"), w.vault.join("quire.log")).unwrap();
    let m = w.mount(&[]);
    let mut f = std::fs::File::create(m.path("b.md")).unwrap();
    f.write_all(b"after the move\n").unwrap();
    drop(f);
    m.unmount();
    assert_eq!(top(&w), ["audit", "d", "devices", "quire.conf"]);
    // The old log is this device's previous log now: still readable.
    assert!(w.local().join("quire.log.1").is_file());
    assert!(w.logs().contains("mounted"));
}

/// Issue 18.2: each device appends only to its own audit chain; `quire
/// audit` merges the chains by time and names the device of each record;
/// a device remembers the heads of the other devices' chains, so one put
/// back to an older copy is an alarm until it is accepted.
#[test]
fn each_device_writes_its_own_audit_chain_and_a_rollback_of_another_is_seen() {
    let a = World::new();
    a.init();
    let b = other_device(&a);
    let v = a.vault.to_str().unwrap().to_string();
    let run = |w: &World, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--vault", &v, "--password-file", w.pwfile.to_str().unwrap()]);
        w.run(&all)
    };
    let rename = |w: &World, name: &str| {
        assert!(run(w, &["devices", "--rename", name]).status.success());
    };
    let session = |w: &World, note: &str| {
        let m = w.mount(&[]);
        std::fs::write(m.path(note), format!("{note}\n")).unwrap();
        m.unmount();
    };
    rename(&a, "desk");
    session(&a, "a.md");
    rename(&b, "laptop");
    let b_chain = b.audit_chain();
    let a_chain = a.audit_chain();
    session(&b, "b.md");
    // A mount of A leaves B's chain as it was.
    let b_bytes = std::fs::read(&b_chain).unwrap();
    session(&a, "a2.md");
    assert_eq!(std::fs::read(&b_chain).unwrap(), b_bytes);
    let mut chains: Vec<_> = std::fs::read_dir(a.vault.join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    chains.sort();
    let mut expect = vec![a_chain.clone(), b_chain.clone()];
    expect.sort();
    assert_eq!(chains, expect);
    // Merged by time, each record naming its device.
    let o = run(&a, &["audit", "--json"]);
    let recs: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let saves: Vec<(String, String)> = recs
        .iter()
        .filter(|r| r["event"] == "create")
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["device_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        saves,
        [
            ("a.md".to_string(), "desk".to_string()),
            ("b.md".into(), "laptop".into()),
            ("a2.md".into(), "desk".into())
        ],
        "{recs:?}"
    );
    let times: Vec<i64> = recs
        .iter()
        .map(|r| r["time_ns"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|p| p[0] <= p[1]));
    let o = run(&a, &["audit"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("laptop") && out.contains("desk"), "{out}");
    assert_eq!(run(&a, &["audit", "--verify"]).status.code(), Some(0));
    // B goes on; A sees it (its heads move at its next mount); then B's
    // chain is put back to the older copy (a restored backup on B, a sync
    // tool's rollback): A says so, naming B's chain.
    session(&b, "b2.md");
    session(&a, "a3.md");
    std::fs::write(&b_chain, &b_bytes).unwrap();
    let o = run(&a, &["audit", "--verify"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(24), "{out}");
    assert!(out.contains("removed from the end"), "{out}");
    assert!(out.contains("(laptop): BROKEN"), "{out}");
    let short = &b_chain.file_name().unwrap().to_str().unwrap()[..7];
    assert!(out.contains(&format!("device {short}'s chain")), "{out}");
    let out = a.check_problems("another device's chain rolled back");
    assert!(out.contains(&format!("audit/{}", &short)), "{out}");
    // B itself, which remembers its own head, says so too.
    assert_eq!(run(&b, &["audit", "--verify"]).status.code(), Some(24));
    // A mount of A warns and leaves the head where it was.
    let o = a.mount_output(&[]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("audit log is BROKEN"),
        "{o:?}"
    );
    Mounted::adopt(&a).unmount();
    assert_eq!(run(&a, &["audit", "--verify"]).status.code(), Some(24));
    // Reviewed and accepted on A: clean there.
    assert!(run(&a, &["audit", "--accept"]).status.success());
    assert_eq!(run(&a, &["audit", "--verify"]).status.code(), Some(0));
}

/// A device folder copied onto another machine (a home folder restored
/// onto a new computer) would make two devices of one ID, writing one
/// audit chain: the copy becomes a device of its own.
#[test]
fn a_device_folder_from_another_machine_becomes_a_new_device() {
    let w = World::new();
    w.init();
    w.mount(&[]).unmount();
    let first = std::fs::read(w.local().join("device")).unwrap();
    assert_eq!(
        std::fs::read(w.local().join("device.machine"))
            .unwrap()
            .len(),
        32
    );
    // The same machine: the same device.
    w.mount(&[]).unmount();
    assert_eq!(std::fs::read(w.local().join("device")).unwrap(), first);
    // As if made on another machine.
    std::fs::write(w.local().join("device.machine"), [7u8; 32]).unwrap();
    let o = w.mount_output(&[]);
    assert!(o.status.success(), "{o:?}");
    Mounted::adopt(&w).unmount();
    let said = String::from_utf8_lossy(&o.stderr).into_owned() + &w.logs();
    assert!(said.contains("copied from another computer"), "{said}");
    let second = std::fs::read(w.local().join("device")).unwrap();
    assert_ne!(second, first);
    let v = w.vault.to_str().unwrap();
    let pw = w.pwfile.to_str().unwrap();
    let o = w.run(&["devices", "--json", "--vault", v, "--password-file", pw]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(std::fs::read_dir(w.vault.join("audit")).unwrap().count(), 2);
    let o = w.run(&["audit", "--verify", "--vault", v, "--password-file", pw]);
    assert!(o.status.success(), "{o:?}");
}
