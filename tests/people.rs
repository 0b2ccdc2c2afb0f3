//! Issue 20 (people), the parts done: wrong passwords and recovery keys
//! are counted on this computer and reported at the next unlock (on the
//! terminal and in the audit log); the recovery key can be replaced, and
//! the old one then opens nothing.

mod common;

use common::*;

#[test]
fn failed_unlocks_are_reported_at_the_next_unlock_and_audited() {
    let w = World::new();
    w.init();
    let wrong = w.dir.path().join("wrong");
    std::fs::write(&wrong, "not the password\n").unwrap();
    let bad_rk = w.dir.path().join("badrk");
    // A well-formed recovery key that is not this vault's.
    let other = World::new();
    std::fs::write(&bad_rk, format!("{}\n", other.init())).unwrap();
    let v = w.vault.to_str().unwrap();
    let mp = w.mnt.to_str().unwrap();
    for _ in 0..2 {
        let o = w.run(&["mount", v, mp, "--password-file", wrong.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(10), "{}", err(&o));
    }
    let o = w.run(&[
        "passwd",
        v,
        "--recovery-key-file",
        bad_rk.to_str().unwrap(),
        "--new-password-file",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(10), "{}", err(&o));
    assert!(!w.is_mounted());
    // The next unlock says so, once.
    let o = w.mount_output(&[]);
    assert!(o.status.success(), "{}", err(&o));
    let _m = Mounted::adopt(&w);
    assert!(
        err(&o).contains("3 failed attempts to unlock the vault on this computer (2 wrong passwords, 1 wrong recovery key)"),
        "{}",
        err(&o)
    );
    let a = String::from_utf8_lossy(&w.run(&["audit"]).stdout).into_owned();
    assert!(
        a.contains("failed-unlocks") && a.contains("3 failed attempts"),
        "{a}"
    );
    drop(_m);
    let o = w.mount_output(&[]);
    assert!(
        !err(&o).contains("failed attempt"),
        "told twice: {}",
        err(&o)
    );
    let _m = Mounted::adopt(&w);
}

#[test]
fn a_replaced_recovery_key_stops_opening_the_vault() {
    let w = World::new();
    let old = w.init();
    let v = w.vault.to_str().unwrap();
    let dir = w.dir.path();
    let old_f = dir.join("old-rk");
    std::fs::write(&old_f, format!("{old}\n")).unwrap();
    let new_f = dir.join("new-rk");
    let pw = w.pwfile.to_str().unwrap();
    // Without --new: a usage error, nothing changed.
    let o = w.run(&["recovery-key", v, "--password-file", pw]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    // A wrong password: refused, no file left.
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, "nope\n").unwrap();
    let o = w.run(&[
        "recovery-key",
        v,
        "--new",
        "--password-file",
        wrong.to_str().unwrap(),
        "--recovery-key-out",
        new_f.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(10), "{}", err(&o));
    assert!(!new_f.exists());
    let o = w.run(&[
        "recovery-key",
        v,
        "--new",
        "--password-file",
        pw,
        "--recovery-key-out",
        new_f.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&new_f).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let new = std::fs::read_to_string(&new_f).unwrap();
    assert_ne!(new.trim(), old);
    // The old key opens nothing; the new one sets a password.
    let np = dir.join("np");
    std::fs::write(&np, "a new password\n").unwrap();
    let o = w.run(&[
        "passwd",
        v,
        "--recovery-key-file",
        old_f.to_str().unwrap(),
        "--new-password-file",
        np.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(10),
        "the old recovery key still works: {}",
        err(&o)
    );
    let o = w.run(&[
        "passwd",
        v,
        "--recovery-key-file",
        new_f.to_str().unwrap(),
        "--new-password-file",
        np.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("recovery-key --new"), "{}", err(&o));
    // The password still works after the replacement (the new one now),
    // and the audit log tells the story.
    let o = w.run(&[
        "audit",
        "--vault",
        v,
        "--password-file",
        np.to_str().unwrap(),
    ]);
    let a = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(a.contains("recovery key replaced"), "{a}{}", err(&o));
    assert!(a.contains("unlocked with the recovery key"), "{a}");
    assert!(a.contains("failed-unlocks"), "{a}");
    let o = w.run(&["check", v, "--password-file", np.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

/// Issue 20.3: on a mount with `--allow-other`, another Linux account
/// opening a note (or one of its versions) is audited with its uid and
/// name; the owner's own reads are not, and a note is one record a
/// minute per reader.
#[test]
fn reads_by_another_account_are_audited() {
    if !is_root() {
        eprintln!("skipped: needs root (allow_other and a second user)");
        return;
    }
    let w = World::new();
    w.init();
    let m = w.mount(&["--allow-other"]);
    std::fs::set_permissions(&w.dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(m.path("shared.md"), "for the colleague\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(m.path("shared.md"), "for the colleague, v2\n").unwrap();
    std::fs::write(m.path("mine.md"), "the owner's\n").unwrap();
    std::fs::create_dir(m.path("drop")).unwrap();
    std::fs::set_permissions(
        m.path("drop"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    // The owner reads: nothing recorded.
    for _ in 0..3 {
        std::fs::read(m.path("shared.md")).unwrap();
        std::fs::read(m.path("mine.md")).unwrap();
    }
    let o = as_nobody(
        &w.mnt,
        "cat shared.md shared.md; cat .history/shared.md/* >/dev/null; echo from sam > drop/from-sam.md; echo ok",
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).ends_with("ok\n"),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        err(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&w.run(&["audit", "--json"]).stdout).unwrap();
    let records = v
        .as_array()
        .cloned()
        .unwrap_or_else(|| v["records"].as_array().unwrap().clone());
    let reads: Vec<&serde_json::Value> = records.iter().filter(|r| r["event"] == "read").collect();
    // The note once (twice opened within a minute), its two versions once each.
    assert_eq!(reads.len(), 3, "{reads:#?}");
    for r in &reads {
        assert_eq!(r["uid"], 65534, "{r}");
        assert_eq!(r["path"], "shared.md", "{r}");
        assert!(
            r["detail"].as_str().unwrap().contains("nobody (uid 65534)"),
            "{r}"
        );
    }
    assert!(
        reads
            .iter()
            .any(|r| r["detail"].as_str().unwrap().starts_with("version "))
    );
    // Issue 20.2, in part: what another account changes is recorded under
    // its uid; the owner's changes under the owner's.
    let by = |path: &str, event: &str| {
        records
            .iter()
            .find(|r| r["path"] == path && r["event"] == event)
            .unwrap_or_else(|| panic!("no {event} of {path}: {records:#?}"))["uid"]
            .clone()
    };
    assert_eq!(by("drop/from-sam.md", "create"), 65534);
    assert_eq!(by("mine.md", "create"), 0);
    m.unmount();
}
