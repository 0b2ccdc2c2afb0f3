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

/// Runs `quire user …` (or any command) with the password in a file.
fn with_pw(w: &World, args: &[&str], pw: &std::path::Path) -> std::process::Output {
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["--password-file", pw.to_str().unwrap()]);
    w.run(&a)
}

/// `quire audit --json` of the sealed vault, unlocked with `pw`.
fn audit_records(w: &World, pw: &std::path::Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec!["audit", "--json", "--vault", w.vault.to_str().unwrap()];
    a.extend_from_slice(extra);
    let o = with_pw(w, &a, pw);
    assert!(o.status.success(), "{}", err(&o));
    serde_json::from_slice::<serde_json::Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Issue 20.1 and 20.2: two people, each with a password of their own.
/// Each unlock and each change names its person in the audit log (and,
/// through an `--allow-other` mount, the Linux account that made the
/// change); `quire audit --user` picks one person; `passwd` changes only
/// your own; a removed person's password opens nothing; the break-glass
/// password works and every use is recorded.
#[test]
fn each_person_unlocks_with_their_own_password_and_is_named_in_the_audit_log() {
    let w = World::new();
    w.init();
    let v = w.vault.to_str().unwrap();
    let dir = w.dir.path();
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!("{text}\n")).unwrap();
        p
    };
    let ana = file("ana", "ana's long passphrase one");
    let sam = file("sam", "sam's long passphrase two");
    let glass = file("glass", "break the glass in an emergency");
    let kdf = ["--kdf-memory", "8", "--kdf-passes", "1"];
    let add = |name: &str, new: &std::path::Path, by: &std::path::Path, extra: &[&str]| {
        let mut a = vec!["user", "add", name, "--vault", v, "--new-password-file"];
        a.push(new.to_str().unwrap());
        a.extend_from_slice(&kdf);
        a.extend_from_slice(extra);
        with_pw(&w, &a, by)
    };
    let o = add("Ana Reyes", &ana, &w.pwfile, &[]);
    assert!(o.status.success(), "{}", err(&o));
    // A password someone already has is refused (every unlock names one person).
    let o = add("Sam", &ana, &w.pwfile, &[]);
    assert_eq!(o.status.code(), Some(23), "{}", err(&o));
    assert!(
        err(&o).contains("already Ana Reyes's password"),
        "{}",
        err(&o)
    );
    // Ana adds Sam with her own password; a name twice is refused.
    let o = add("Sam", &sam, &ana, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let o = add("sam", &glass, &ana, &[]);
    assert_eq!(o.status.code(), Some(23), "{}", err(&o));
    let o = add("Emergency", &glass, &ana, &["--break-glass"]);
    assert!(o.status.success(), "{}", err(&o));
    // The list, without a password.
    let o = w.run(&["user", "list", v, "--json"]);
    assert!(o.status.success(), "{}", err(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap().to_string(),
                s["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("password".into(), "".into()),
            ("recovery-key".into(), "".into()),
            ("person".into(), "Ana Reyes".into()),
            ("person".into(), "Sam".into()),
            ("break-glass".into(), "Emergency".into()),
        ]
    );
    // The names are bound to their wraps: renaming Ana's slot in the file
    // makes the vault refuse it as modified (exit 12), whoever unlocks.
    let conf = w.vault.join("quire.conf");
    let good = std::fs::read(&conf).unwrap();
    let at = good.windows(9).position(|x| x == b"Ana Reyes").unwrap();
    let mut bad = good.clone();
    bad[at..at + 3].copy_from_slice(b"Bob");
    let n = bad.len();
    let sum = {
        use sha2::Digest;
        sha2::Sha256::digest(&bad[..n - 32])
    };
    bad[n - 32..].copy_from_slice(&sum);
    std::fs::write(&conf, &bad).unwrap();
    let o = with_pw(&w, &["check", v], &sam);
    assert_eq!(o.status.code(), Some(12), "{}", err(&o));
    std::fs::write(&conf, &good).unwrap();

    // Ana mounts and writes a note.
    let o = w
        .cmd()
        .args(["mount", v, w.mnt.to_str().unwrap(), "--password-file"])
        .arg(&ana)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let m = Mounted::adopt(&w);
    std::fs::write(m.path("by-ana.md"), "Ana's session note\n").unwrap();
    m.unmount();
    // Sam mounts with --as and --allow-other; Sam writes, and another Linux
    // account writes through Sam's mount.
    let o = w
        .cmd()
        .args([
            "mount",
            v,
            w.mnt.to_str().unwrap(),
            "--as",
            "sam",
            "--allow-other",
            "--password-file",
        ])
        .arg(&sam)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let m = Mounted::adopt(&w);
    std::fs::write(m.path("by-sam.md"), "Sam's session note\n").unwrap();
    if is_root() {
        std::fs::set_permissions(&w.dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::create_dir(m.path("drop")).unwrap();
        std::fs::set_permissions(
            m.path("drop"),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let o = as_nobody(
            &w.mnt,
            "echo from the office account > drop/office.md && echo ok",
        );
        assert_eq!(out(&o), "ok\n", "{}", err(&o));
    }
    m.unmount();
    let records = audit_records(&w, &ana, &[]);
    let rec = |path: &str, event: &str| {
        records
            .iter()
            .find(|r| r["path"] == path && r["event"] == event)
            .unwrap_or_else(|| panic!("no {event} of {path}: {records:#?}"))
            .clone()
    };
    assert_eq!(rec("by-ana.md", "create")["person"], "Ana Reyes");
    assert_eq!(rec("by-sam.md", "create")["person"], "Sam");
    if is_root() {
        let r = rec("drop/office.md", "create");
        assert_eq!(
            (r["person"].as_str(), r["uid"].as_u64()),
            (Some("Sam"), Some(65534))
        );
    }
    let mounts: Vec<&str> = records
        .iter()
        .filter(|r| r["event"] == "mount")
        .map(|r| r["person"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["Ana Reyes", "Sam"]);
    // Records made with the shared password name nobody (frame kind 1).
    assert!(
        records
            .iter()
            .any(|r| r["event"] == "user" && r["person"] == "")
    );
    // --user: one person's records only (by name, any case), or an account's.
    let anas = audit_records(&w, &ana, &["--user", "ana reyes"]);
    assert!(
        !anas.is_empty() && anas.iter().all(|r| r["person"] == "Ana Reyes"),
        "{anas:#?}"
    );
    assert!(anas.iter().any(|r| r["path"] == "by-ana.md"));
    if is_root() {
        let nobody = audit_records(&w, &ana, &["--user", "nobody"]);
        assert!(
            !nobody.is_empty() && nobody.iter().all(|r| r["uid"] == 65534),
            "{nobody:#?}"
        );
    }
    let text = out(&with_pw(&w, &["audit", "--vault", v], &ana));
    assert!(
        text.lines()
            .any(|l| l.contains("Sam") && l.contains("by-sam.md")),
        "{text}"
    );

    // passwd refuses a password someone else already has (exit 23, a
    // refusal, not an I/O error), and changes nothing.
    let o = with_pw(
        &w,
        &[
            "passwd",
            v,
            "--new-password-file",
            ana.to_str().unwrap(),
            "--kdf-memory",
            "8",
            "--kdf-passes",
            "1",
        ],
        &sam,
    );
    assert_eq!(o.status.code(), Some(23), "{}", err(&o));
    assert!(err(&o).contains("nothing was changed"), "{}", err(&o));
    assert_eq!(with_pw(&w, &["check", v], &sam).status.code(), Some(0));

    // passwd changes only your own: Sam's new password works, Sam's old one
    // does not, Ana's and the shared one still do.
    let sam2 = file("sam2", "sam's second long passphrase");
    let o = with_pw(
        &w,
        &[
            "passwd",
            v,
            "--new-password-file",
            sam2.to_str().unwrap(),
            "--kdf-memory",
            "8",
            "--kdf-passes",
            "1",
        ],
        &sam,
    );
    assert!(o.status.success(), "{}", err(&o));
    let opens = |pw: &std::path::Path| with_pw(&w, &["check", v], pw).status.code();
    assert_eq!(opens(&sam), Some(10));
    assert_eq!(opens(&sam2), Some(0));
    assert_eq!(opens(&ana), Some(0));
    assert_eq!(opens(&w.pwfile), Some(0));
    // --as with another person's password: wrong; an unknown name: said so.
    let o = with_pw(&w, &["check", v, "--as", "Ana Reyes"], &sam2);
    assert_eq!(o.status.code(), Some(10), "{}", err(&o));
    let o = with_pw(&w, &["check", v, "--as", "Bo"], &sam2);
    assert!(err(&o).contains("no password for \"Bo\""), "{}", err(&o));

    // Removing: not your own, not a name that is not there; Ana removes Sam.
    let o = with_pw(&w, &["user", "remove", "Sam", "--vault", v], &sam2);
    assert_eq!(o.status.code(), Some(23), "{}", err(&o));
    let o = with_pw(&w, &["user", "remove", "Sam", "--vault", v], &ana);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(opens(&sam2), Some(10));
    let removed = audit_records(&w, &ana, &[]);
    assert!(removed.iter().any(|r| r["event"] == "user"
        && r["detail"] == "person Sam removed"
        && r["person"] == "Ana Reyes"));
    // The shared password goes once everyone has their own.
    let o = with_pw(&w, &["user", "remove", "--shared", "--vault", v], &ana);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(opens(&w.pwfile), Some(10));

    // The break-glass password opens the vault, says so, and is recorded.
    let o = with_pw(&w, &["check", v], &glass);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(err(&o).contains("break-glass"), "{}", err(&o));
    let bg = audit_records(&w, &ana, &["--user", "Emergency"]);
    assert!(bg.iter().any(|r| r["event"] == "break-glass"), "{bg:#?}");
    // The recovery key still sets a person's password (--user).
    let rk = dir.join("recovery.txt");
    let ana2 = file("ana2", "ana's second long passphrase");
    let o = w.run(&[
        "passwd",
        v,
        "--recovery-key-file",
        rk.to_str().unwrap(),
        "--user",
        "Ana Reyes",
        "--new-password-file",
        ana2.to_str().unwrap(),
        "--kdf-memory",
        "8",
        "--kdf-passes",
        "1",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(opens(&ana), Some(10));
    assert_eq!(opens(&ana2), Some(0));
    // Nothing of the names is in the clear except in quire.conf's slots.
    assert_eq!(contains_bytes(&w.vault.join("d"), b"Ana Reyes"), None);
    assert_eq!(contains_bytes(&w.vault.join("audit"), b"Ana Reyes"), None);
}

/// Issue 20.1: the Argon2 cost check covers every person's slot, not only
/// the shared password's: a person's slot weakened in `quire.conf` (cost
/// lowered, the slot MAC left as it was) is reported as modified before any
/// password is tried, whoever unlocks; one raised past what this machine
/// saw is refused before Argon2 runs on it.
#[test]
fn a_persons_slot_with_its_cost_changed_is_called_modified() {
    let w = World::new();
    w.init();
    let v = w.vault.to_str().unwrap();
    let ana = w.dir.path().join("ana");
    std::fs::write(&ana, "ana's long passphrase one\n").unwrap();
    let o = with_pw(
        &w,
        &[
            "user",
            "add",
            "ana",
            "--vault",
            v,
            "--new-password-file",
            ana.to_str().unwrap(),
            "--kdf-memory",
            "16",
            "--kdf-passes",
            "2",
        ],
        &w.pwfile,
    );
    assert!(o.status.success(), "{}", err(&o));
    // Seen here once (as every unlock remembers every slot's cost).
    assert_eq!(with_pw(&w, &["check", v], &ana).status.code(), Some(0));
    let conf = w.vault.join("quire.conf");
    let good = std::fs::read(&conf).unwrap();
    let at = good.windows(3).position(|x| x == b"ana").unwrap() + 3;
    let forge = |m_kib: u32, t: u32| {
        let mut b = good.clone();
        b[at..at + 4].copy_from_slice(&m_kib.to_be_bytes());
        b[at + 4..at + 8].copy_from_slice(&t.to_be_bytes());
        let n = b.len();
        let sum = {
            use sha2::Digest;
            sha2::Sha256::digest(&b[..n - 32])
        };
        b[n - 32..].copy_from_slice(&sum);
        std::fs::write(&conf, b).unwrap();
    };
    forge(8192, 2);
    for pw in [&w.pwfile, &ana] {
        let o = with_pw(&w, &["check", v], pw);
        assert_eq!(o.status.code(), Some(12), "{}", err(&o));
        assert!(
            err(&o).contains("cost was lowered for the password slot of ana"),
            "{}",
            err(&o)
        );
    }
    // Raised to 2 GiB: refused before Argon2 runs on it (not minutes of
    // work).
    forge(2 << 20, 2);
    let o = with_pw(&w, &["check", v], &w.pwfile);
    assert_eq!(o.status.code(), Some(12), "{}", err(&o));
    assert!(
        err(&o).contains("cost raised: the password slot of ana"),
        "{}",
        err(&o)
    );
    std::fs::write(&conf, &good).unwrap();
    assert_eq!(with_pw(&w, &["check", v], &ana).status.code(), Some(0));
}

/// The stored value of xattr `name` of `p`, if any.
fn xattr(p: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the length given.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

/// Issue 20.1, `--rekey`: Sam is removed and the vault re-keyed with Ana's
/// password. Everything comes through (notes, folders, a hard link, a
/// symlink, an attribute, every version with its number, the trash, a
/// retention date, the audit log with its records before), `check` counts
/// the same, and nothing is left beside the vault. Only Ana's password
/// and the new recovery key open it: Sam's, the shared one and the old
/// recovery key do not. With the old config, Sam's password still gives
/// the old master key, but it opens no content file, no name and no note
/// of the re-keyed vault, nor one written after it.
#[test]
fn after_rekey_a_removed_persons_old_key_opens_nothing() {
    use quire::crypto::Password;
    use quire::format::config::{Config, Unlock};
    let w = World::new();
    let old_rk = w.init();
    let v = w.vault.to_str().unwrap();
    let dir = w.dir.path();
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!("{text}\n")).unwrap();
        p
    };
    let ana = file("ana", "ana's long passphrase one");
    let sam = file("sam", "sam's long passphrase two");
    let kdf = ["--kdf-memory", "8", "--kdf-passes", "1"];
    for (name, new, by) in [("Ana Reyes", &ana, &w.pwfile), ("Sam", &sam, &ana)] {
        let mut a = vec!["user", "add", name, "--vault", v, "--new-password-file"];
        a.push(new.to_str().unwrap());
        a.extend_from_slice(&kdf);
        let o = with_pw(&w, &a, by);
        assert!(o.status.success(), "{}", err(&o));
    }
    {
        let m = w.mount(&[]);
        std::fs::create_dir_all(m.path("notes/sub")).unwrap();
        std::fs::write(m.path("notes/n.md"), "first session note\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(m.path("notes/n.md"), "second session note\n").unwrap();
        std::fs::write(m.path("notes/sub/k.md"), "kept note\n").unwrap();
        std::fs::hard_link(m.path("notes/sub/k.md"), m.path("notes/sub/k2.md")).unwrap();
        // Saved through its second name: that name keeps versions too.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(m.path("notes/sub/k2.md"), "kept note, edited\n").unwrap();
        std::os::unix::fs::symlink("../n.md", m.path("notes/sub/link")).unwrap();
        let o = std::process::Command::new("setfattr")
            .args(["-n", "user.tag", "-v", "intake"])
            .arg(m.path("notes/n.md"))
            .output();
        let tagged = o.is_ok_and(|o| o.status.success());
        let o = w.run(&[
            "retain",
            m.path("notes/n.md").to_str().unwrap(),
            "2030-01-01",
        ]);
        assert!(o.status.success(), "{}", err(&o));
        std::fs::write(m.path("gone.md"), "deleted note\n").unwrap();
        std::thread::sleep(std::time::Duration::from_secs(6));
        std::fs::remove_file(m.path("gone.md")).unwrap();
        assert!(!tagged || xattr(&m.path("notes/n.md"), "user.tag").is_some());
        m.unmount();
    }
    let counts = |pw: &std::path::Path| -> serde_json::Value {
        let o = with_pw(&w, &["check", v, "--json"], pw);
        assert!(o.status.success(), "{}", err(&o));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        serde_json::json!([
            r["files"],
            r["folders"],
            r["versions"],
            r["trash_entries"],
            r["bytes"]
        ])
    };
    let before = counts(&ana);
    // A vault that does not check clean is not re-keyed, and nobody is
    // removed: a stray file in audit/ is a problem `check` reports.
    let stray = w.vault.join("audit").join("stray");
    std::fs::write(&stray, "x").unwrap();
    let o = with_pw(
        &w,
        &["user", "remove", "Sam", "--rekey", "--vault", v],
        &ana,
    );
    assert_eq!(o.status.code(), Some(23), "{}", err(&o));
    assert!(
        err(&o).contains("only a vault that checks clean"),
        "{}",
        err(&o)
    );
    let o = w.run(&["user", "list", v, "--json"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"Sam\""),
        "Sam was removed"
    );
    std::fs::remove_file(&stray).unwrap();
    let old_conf = std::fs::read(w.vault.join("quire.conf")).unwrap();
    let rk2 = dir.join("rk2");
    let o = with_pw(
        &w,
        &[
            "user",
            "remove",
            "Sam",
            "--rekey",
            "--vault",
            v,
            "--recovery-key-out",
            rk2.to_str().unwrap(),
        ],
        &ana,
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("Vault re-keyed"), "{}", err(&o));
    assert!(
        err(&o).contains("shared password was not kept"),
        "{}",
        err(&o)
    );
    assert_eq!(counts(&ana), before);
    // Only Ana's password and the new recovery key open it.
    let opens = |args: &[&str]| {
        let mut a = vec!["check", v];
        a.extend_from_slice(args);
        w.run(&a).status.code()
    };
    assert_eq!(opens(&["--password-file", sam.to_str().unwrap()]), Some(10));
    assert_eq!(
        opens(&["--password-file", w.pwfile.to_str().unwrap()]),
        Some(10)
    );
    let old_rk_file = file("old-rk", &old_rk);
    assert_eq!(
        opens(&["--recovery-key-file", old_rk_file.to_str().unwrap()]),
        Some(10)
    );
    assert_eq!(
        opens(&["--recovery-key-file", rk2.to_str().unwrap()]),
        Some(0)
    );
    // Nothing left beside the vault; one device folder for it.
    let stray: Vec<_> = std::fs::read_dir(w.vault.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".rekey-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    let place = quire::store::place(&w.vault);
    let locals: Vec<_> = std::fs::read_dir(dir.join(".local/state/quire/vaults"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(&place))
        .collect();
    assert_eq!(locals.len(), 1, "one device folder for the vault");
    // The audit log goes on: the records before, then the re-keying, Ana's.
    let recs = audit_records(&w, &ana, &[]);
    assert!(
        recs.iter()
            .any(|r| r["event"] == "user" && r["detail"] == "person Sam added")
    );
    let rekey = recs
        .iter()
        .find(|r| r["event"] == "rekey")
        .expect("a rekey record");
    assert_eq!(rekey["person"], "Ana Reyes");
    assert!(
        rekey["detail"]
            .as_str()
            .unwrap()
            .contains("Sam removed first")
    );

    // Ana's password mounts it: everything is there; a note written now.
    std::fs::copy(&ana, &w.pwfile).unwrap();
    {
        let m = w.mount(&[]);
        let text = |p: &str| std::fs::read_to_string(m.path(p)).unwrap();
        assert_eq!(text("notes/n.md"), "second session note\n");
        assert_eq!(text("notes/sub/k.md"), "kept note, edited\n");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(m.path("notes/sub/k.md")).unwrap().ino(),
            std::fs::metadata(m.path("notes/sub/k2.md")).unwrap().ino()
        );
        assert_eq!(
            std::fs::read_link(m.path("notes/sub/link")).unwrap(),
            std::path::Path::new("../n.md")
        );
        if let Some(t) = xattr(&m.path("notes/n.md"), "user.tag") {
            assert_eq!(t, b"intake");
        }
        let o = w.run(&["log", m.path("notes/n.md").to_str().unwrap()]);
        let log = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            log.lines().filter(|l| l.contains(" save ")).count(),
            2,
            "{log}"
        );
        let o = w.run(&[
            "show",
            m.path("notes/n.md").to_str().unwrap(),
            "--version",
            "1",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "first session note\n",
            "{}",
            err(&o)
        );
        let o = w.run(&["retain", m.path("notes/n.md").to_str().unwrap()]);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("2030-01-01"),
            "{}",
            err(&o)
        );
        let o = w.run(&["trash"]);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("gone.md"),
            "{}",
            err(&o)
        );
        std::fs::write(m.path("after.md"), "written after the re-keying\n").unwrap();
        m.unmount();
    }

    // Sam's copy of the old key: the old config opens with his password...
    let old = Config::from_bytes(&old_conf).unwrap();
    let sam_pw = Password::new(b"sam's long passphrase two".to_vec());
    let master = old.unlock(Unlock::Password(&sam_pw)).expect("the old key");
    let keys = master.subkeys(&old.vault_id);
    // ...but opens no content file of the re-keyed vault (every note,
    // version chunk and trash entry's content has a new key).
    let mut contents = 0;
    let mut all = Vec::new();
    walk(&w.vault.join("d"), &mut all);
    for p in all {
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        let content_file = n == "c" || !n.contains('.');
        if !p.is_file() || !content_file {
            continue;
        }
        let b = std::fs::read(&p).unwrap();
        if b.len() < 78 {
            continue;
        }
        let id: [u8; 16] = b[2..18].try_into().unwrap();
        let fk = keys.file_key(&id);
        assert!(
            quire::format::content::open_header_mac(&fk, &id, &b).is_none(),
            "{p:?} opens with the old key"
        );
        contents += 1;
    }
    assert!(contents >= 4, "content files seen: {contents}");
    // ...nor any name, and a vault with the old config in place reads as
    // damaged through and through.
    let copy = dir.join("copy");
    let o = std::process::Command::new("cp")
        .arg("-a")
        .arg(&w.vault)
        .arg(&copy)
        .output()
        .unwrap();
    assert!(o.status.success());
    std::fs::write(copy.join("quire.conf"), &old_conf).unwrap();
    let o = with_pw(&w, &["check", copy.to_str().unwrap()], &sam);
    assert_eq!(o.status.code(), Some(21), "{}", err(&o));
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        !report.contains("after.md") && !report.contains("n.md"),
        "{report}"
    );
}
