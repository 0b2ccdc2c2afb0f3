//! `quire export` and `quire disclosures` (issue 19.1): an export is one
//! age-encrypted archive that Debian's `age` opens, written 0600 outside
//! the mount, recorded in the audit log (what, to which file, for whom,
//! why, its hash, until when), listed as a disclosure, and disposed of
//! with a record. Bad destinations are refused and write nothing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

/// Unpacks the tar `archive` into `dir`.
fn untar(archive: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    sh(dir, &format!("tar -xf {}", archive.display()));
}

#[test]
fn an_export_opens_with_age_and_is_accounted_for_until_disposed() {
    need("age");
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::create_dir(m.path("clients")).unwrap();
    std::fs::write(m.path("clients/anna.md"), "first session\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    std::fs::write(m.path("clients/anna.md"), "first session\nsecond session\n").unwrap();
    std::fs::write(m.path("clients/ben.md"), "ben's notes\n").unwrap();
    std::fs::write(m.path("other.md"), "not exported\n").unwrap();
    let dir = w.dir.path();
    let out_dir = dir.join("outbox");
    std::fs::create_dir(&out_dir).unwrap();

    // To a recipient (an age key made by Debian's age-keygen).
    sh(dir, "age-keygen -o key.txt 2>/dev/null");
    let recipient = sh(dir, "age-keygen -y key.txt").trim().to_string();
    let file = out_dir.join("referral.age");
    let o = w.run(&[
        "export",
        m.path("clients").to_str().unwrap(),
        "--to",
        file.to_str().unwrap(),
        "--recipient",
        &recipient,
        "--purpose",
        "referral to Dr Example",
        "--with-history",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // No plaintext in the file, nor anything else left in the outbox.
    assert!(
        !std::fs::read(&file)
            .unwrap()
            .windows(7)
            .any(|x| x == b"session")
    );
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 1);
    sh(
        dir,
        &format!("age -d -i key.txt -o referral.tar {}", file.display()),
    );
    untar(&dir.join("referral.tar"), &dir.join("unpacked"));
    let u = dir.join("unpacked");
    assert_eq!(
        std::fs::read_to_string(u.join("notes/clients/anna.md")).unwrap(),
        "first session\nsecond session\n"
    );
    assert_eq!(
        std::fs::read_to_string(u.join("notes/clients/ben.md")).unwrap(),
        "ben's notes\n"
    );
    assert!(!u.join("notes/other.md").exists());
    assert_eq!(
        std::fs::read_to_string(u.join("history/clients/anna.md/1")).unwrap(),
        "first session\n"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(u.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest["purpose"], "referral to Dr Example");
    let notes = manifest["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{manifest}");
    let sha = sh(dir, "sha256sum unpacked/notes/clients/ben.md");
    assert!(
        manifest
            .to_string()
            .contains(sha.split_whitespace().next().unwrap()),
        "{manifest}"
    );

    // To a passphrase (from a file); Debian's age asks for it on a
    // terminal, given here through a pty.
    let pass = dir.join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let file2 = out_dir.join("copy-for-client.age");
    let o = w.run(&[
        "export",
        m.path("clients/ben.md").to_str().unwrap(),
        "--to",
        file2.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--purpose",
        "client's own copy",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let script = format!(
        "import os, pty, sys, time\npid, fd = pty.fork()\nif pid == 0:\n    os.execvp('age', ['age', '-d', '-o', 'ben.tar', '{}'])\nbuf = b''\nwhile b'passphrase' not in buf.lower():\n    buf += os.read(fd, 1024)\nos.write(fd, b'correct horse battery staple\\n')\ntry:\n    while os.read(fd, 1024): pass\nexcept OSError: pass\n_, st = os.waitpid(pid, 0)\nsys.exit(os.waitstatus_to_exitcode(st))\n",
        file2.display()
    );
    std::fs::write(dir.join("agepty.py"), script).unwrap();
    sh(dir, "python3 agepty.py");
    untar(&dir.join("ben.tar"), &dir.join("ben"));
    assert_eq!(
        std::fs::read_to_string(dir.join("ben/notes/clients/ben.md")).unwrap(),
        "ben's notes\n"
    );

    // Refused, writing nothing: inside the mount, inside the vault folder,
    // an existing file, an unknown note, two ways of sealing at once.
    for (to, what) in [
        (m.path("leak.age"), "inside the mounted vault"),
        (w.vault.join("leak.age"), "vault folder"),
        (file.clone(), "exists"),
    ] {
        let o = w.run(&[
            "export",
            m.path("clients/ben.md").to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ]);
        assert!(!o.status.success());
        assert!(err(&o).contains(what), "{what}: {}", err(&o));
    }
    assert!(!m.path("leak.age").exists());
    assert!(!w.vault.join("leak.age").exists());
    let o = w.run(&[
        "export",
        m.path("clients/nobody.md").to_str().unwrap(),
        "--to",
        out_dir.join("x.age").to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(!out_dir.join("x.age").exists());
    let o = w.run(&[
        "export",
        m.path("clients/ben.md").to_str().unwrap(),
        "--to",
        out_dir.join("y.age").to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--recipient",
        &recipient,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    // Plaintext only when asked for and confirmed.
    let o = w.run(&[
        "export",
        m.path("other.md").to_str().unwrap(),
        "--to",
        out_dir.join("plain.tar").to_str().unwrap(),
        "--plaintext",
    ]);
    assert!(!o.status.success());
    assert!(!out_dir.join("plain.tar").exists());
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 2);

    // Accounted for: the audit log and the disclosures list name each
    // export, its notes, for whom, why and its hash.
    let o = w.run(&["disclosures", "--json"]);
    assert!(o.status.success(), "{}", err(&o));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let referral = &list[0];
    assert_eq!(referral["record"]["purpose"], "referral to Dr Example");
    assert_eq!(referral["record"]["for"], recipient.as_str());
    assert_eq!(referral["notes"].as_array().unwrap().len(), 2);
    let file_sha = sh(dir, &format!("sha256sum {}", file.display()));
    assert_eq!(
        referral["record"]["sha256"],
        file_sha.split_whitespace().next().unwrap()
    );
    assert_eq!(list[1]["record"]["for"], "passphrase");
    let o = w.run(&["disclosures", "--client", "clients/anna.md"]);
    assert!(out(&o).contains("referral to Dr Example"), "{}", out(&o));
    assert!(!out(&o).contains("client's own copy"), "{}", out(&o));
    let o = w.run(&["audit"]);
    assert!(out(&o).contains("referral to Dr Example"), "{}", out(&o));

    // Disposed of: the file goes, the record says so.
    let id = referral["export"].as_str().unwrap().to_string();
    let o = w.run(&["export", "--dispose", &id]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(!file.exists());
    let o = w.run(&["disclosures", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(list[0]["disposed_ns"].as_i64().is_some(), "{list:?}");
    let o = w.run(&["export", "--dispose", &id]);
    assert!(!o.status.success());
    m.unmount();
    // No plaintext of the notes outside the mount: not in the vault, the
    // device folder, or this test's temp folder.
    for root in [&w.vault, &w.local(), &w.tmp] {
        assert_eq!(
            contains_bytes(root, b"ben's notes"),
            None,
            "{}",
            root.display()
        );
    }
}

#[test]
fn an_export_past_its_date_is_named_as_overdue() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("n.md"), "note\n").unwrap();
    let pass = w.dir.path().join("pass");
    std::fs::write(&pass, "a long export passphrase\n").unwrap();
    let file = w.dir.path().join("n.age");
    let export = |keep: &str| {
        w.run(&[
            "export",
            m.path("n.md").to_str().unwrap(),
            "--to",
            file.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
            "--keep-until",
            keep,
        ])
    };
    // A bad date, or one past, is refused and writes nothing.
    for bad in ["next tuesday", "2020-01-01"] {
        let o = export(bad);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", err(&o));
        assert!(!file.exists());
    }
    let o = export("+1d");
    assert!(o.status.success(), "{}", err(&o));
    let o = w.run(&["disclosures"]);
    assert!(out(&o).contains("keep until"), "{}", out(&o));
    assert!(!out(&o).contains("OVERDUE"), "{}", out(&o));
    // Three days on, it is overdue (and `--json` says so).
    let o = w.run(&["disclosures", "--now", "+3d"]);
    assert!(out(&o).contains("OVERDUE"), "{}", out(&o));
    let o = w.run(&["disclosures", "--now", "+3d", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list[0]["overdue"], true);
    m.unmount();
}
