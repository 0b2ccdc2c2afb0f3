//! Mount lifecycle: sealing by every route, passwords, the recovery key,
//! idle sealing, read-only mounts, and the canary check that nothing
//! readable ever reaches the disk.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn canary_never_reaches_the_disk() {
    let started = std::time::SystemTime::now() - Duration::from_secs(2);
    let w = World::new();
    w.init();
    let canary = format!(
        "QCANARY{:016x}",
        (std::process::id() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
    );
    let m = w.mount(&[]);
    std::fs::create_dir(m.path(&format!("dir-{canary}"))).unwrap();
    std::fs::write(
        m.path(&format!("dir-{canary}/{canary}.md")),
        format!("body {canary} body"),
    )
    .unwrap();
    std::fs::write(m.path("big.txt"), canary.repeat(5000)).unwrap();
    std::os::unix::fs::symlink(format!("target-{canary}"), m.path(&format!("ln-{canary}")))
        .unwrap();
    sh(
        &w.mnt,
        &format!("python3 -c \"import os; os.setxattr('big.txt','user.{canary}',b'{canary}')\""),
    );
    std::fs::write(m.path(&"L".repeat(200)), &canary).unwrap();
    // History (a second version) and the trash (a note deleted after a
    // remount, so not "short-lived"), and the commands that read them.
    std::fs::write(m.path("big.txt"), canary.repeat(4000)).unwrap();
    std::fs::write(m.path(&format!("gone-{canary}.md")), &canary).unwrap();
    m.unmount();
    let m = w.mount(&[]);
    std::fs::remove_file(m.path(&format!("gone-{canary}.md"))).unwrap();
    // Dates (a lifecycle record), an expiry and the audit log name notes.
    let dated = format!("dir-{canary}/{canary}.md");
    for args in [
        vec!["log", "big.txt"],
        vec!["show", "big.txt", "--version", "1"],
        vec!["trash"],
        vec!["expire", dated.as_str(), "+30d"],
        vec!["retain", dated.as_str(), "+10d"],
        vec!["expiring"],
        vec!["audit"],
    ] {
        assert!(w.run(&args).status.success(), "{args:?}");
    }
    assert!(std::fs::read_dir(m.path(".history")).is_ok());
    // The search index holds the canary (as a term, in stored text and in
    // a path): it must be sealed on disk like everything else.
    assert!(
        wait_until(Duration::from_secs(15), || {
            let o = w.run(&["search", "--json", &canary.to_lowercase()]);
            String::from_utf8_lossy(&o.stdout).contains(&format!("dir-{canary}"))
        }),
        "the canary note was not indexed"
    );
    assert!(w.local().join("index").is_dir());
    assert!(!w.vault.join("index").exists());
    m.unmount();
    // Every file, name, symlink target and xattr under the vault folder.
    assert_eq!(contains_bytes(&w.vault, canary.as_bytes()), None);
    // And this device's folder: journal, log, index (issue 18.1).
    assert_eq!(contains_bytes(&w.local(), canary.as_bytes()), None);
    let mut files = Vec::new();
    walk(&w.vault, &mut files);
    for f in &files {
        for x in xattr_dump(f) {
            assert!(
                !x.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "xattr of {f:?}"
            );
        }
    }
    // Every file written to this test's temp folder (the TMPDIR of the
    // daemon and of every command it ran) and anywhere else under the
    // test's own folder (its runtime folder, home and state).
    assert_eq!(
        contains_bytes_since(&w.tmp, canary.as_bytes(), started),
        None
    );
    assert_eq!(
        contains_bytes_since(w.dir.path(), canary.as_bytes(), started),
        None
    );
}

fn xattr_dump(p: &std::path::Path) -> Vec<Vec<u8>> {
    let out = std::process::Command::new("getfattr")
        .args(["-d", "-m", "-", "-e", "text"])
        .arg(p)
        .output();
    match out {
        Ok(o) => vec![o.stdout],
        Err(_) => Vec::new(),
    }
}

#[test]
fn sigterm_sigint_and_fusermount_all_seal() {
    let w = World::new();
    w.init();
    for how in ["TERM", "INT", "fusermount"] {
        let m = w.mount(&[]);
        std::fs::write(m.path("f"), how).unwrap();
        let pid = w.daemon_pid().expect("daemon pid in status");
        match how {
            "fusermount" => {
                sh(w.dir.path(), &format!("fusermount3 -u {}", w.mnt.display()));
            }
            sig => {
                sh(w.dir.path(), &format!("kill -{sig} {pid}"));
            }
        }
        assert!(
            wait_gone(pid, Duration::from_secs(10)),
            "{how}: daemon still running"
        );
        assert!(!w.is_mounted(), "{how}: still mounted");
        std::mem::forget(m);
        assert_eq!(w.daemon_pid(), None);
        let listed = String::from_utf8(w.run(&["status", "--json"]).stdout).unwrap();
        assert!(!listed.contains(w.mnt.to_str().unwrap()), "{listed}");
        let m = w.mount(&[]);
        assert_eq!(std::fs::read_to_string(m.path("f")).unwrap(), how);
        m.unmount();
    }
}

#[test]
fn killed_daemon_releases_the_lock_and_fsynced_data_survives() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let pid = w.daemon_pid().unwrap();
    sh(
        &w.mnt,
        "python3 -c \"import os; f=open('durable.md','w'); f.write('kept'); f.flush(); os.fsync(f.fileno())\"",
    );
    sh(w.dir.path(), &format!("kill -KILL {pid}"));
    assert!(wait_gone(pid, Duration::from_secs(5)));
    std::mem::forget(m);
    // The dead mount is reported, and `quire mount` cleans it up by itself.
    let st = String::from_utf8(w.run(&["status"]).stdout).unwrap();
    assert!(st.contains("daemon gone"), "{st}");
    let m = w.mount(&[]);
    assert_eq!(
        std::fs::read_to_string(m.path("durable.md")).unwrap(),
        "kept"
    );
}

#[test]
fn passwd_and_recovery_key() {
    let w = World::new();
    let rk = w.init();
    let rkfile = w.dir.path().join("rk");
    std::fs::write(&rkfile, &rk).unwrap();
    let salt_before = std::fs::read(w.vault.join("quire.conf")).unwrap();
    let newpw = w.dir.path().join("newpw");
    std::fs::write(&newpw, "a brand new password\n").unwrap();
    let o = w
        .cmd()
        .arg("passwd")
        .arg(&w.vault)
        .arg("--password-file")
        .arg(&w.pwfile)
        .arg("--new-password-file")
        .arg(&newpw)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let after = std::fs::read(w.vault.join("quire.conf")).unwrap();
    assert_ne!(salt_before, after, "fresh salt and wrap");
    // Old password refused, new one works.
    assert_eq!(w.mount_output(&[]).status.code(), Some(10));
    std::fs::copy(&newpw, &w.pwfile).unwrap();
    w.mount(&[]).unmount();
    // Forgotten password: the recovery key opens the vault and sets a new one.
    let o = w
        .cmd()
        .arg("passwd")
        .arg(&w.vault)
        .arg("--recovery-key-file")
        .arg(&rkfile)
        .arg("--new-password-file")
        .arg(&newpw)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The recovery key also mounts directly.
    let o = w
        .cmd()
        .arg("mount")
        .arg(&w.vault)
        .arg(&w.mnt)
        .arg("--recovery-key-file")
        .arg(&rkfile)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Mounted { world: &w }.unmount();
    // A typo in the recovery key is reported as such.
    let mut typo = rk.clone().into_bytes();
    typo[0] = if typo[0] == b'A' { b'B' } else { b'A' };
    std::fs::write(&rkfile, typo).unwrap();
    let o = w
        .cmd()
        .arg("mount")
        .arg(&w.vault)
        .arg(&w.mnt)
        .arg("--recovery-key-file")
        .arg(&rkfile)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(10));
    assert!(String::from_utf8_lossy(&o.stderr).contains("typo"));
    // The audit log recorded both password changes and both uses of the
    // recovery key (`passwd --recovery-key`, `mount --recovery-key`), in
    // one intact chain.
    let o = w.run(&[
        "audit",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        newpw.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{o:?}");
    let log = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        log.matches("\"event\":\"password-change\"").count(),
        2,
        "{log}"
    );
    assert_eq!(
        log.matches("\"event\":\"recovery-key\"").count(),
        2,
        "{log}"
    );
    assert_eq!(log.matches("\"event\":\"mount\"").count(), 2, "{log}");
    let o = w.run(&[
        "audit",
        "--verify",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        newpw.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
}

#[test]
fn idle_seals_only_when_nothing_is_in_use() {
    let w = World::new();
    w.init();
    let m = w.mount(&["--idle", "2s"]);
    // An open file holds the vault open past the idle time.
    let held = std::fs::File::open({
        std::fs::write(m.path("open.md"), "x").unwrap();
        m.path("open.md")
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(w.is_mounted(), "sealed while a file was open");
    drop(held);
    // A shell whose working folder is inside the mount also holds it.
    let mut child = std::process::Command::new("sleep")
        .arg("5")
        .current_dir(&w.mnt)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        w.is_mounted(),
        "sealed while a program was inside the folder"
    );
    child.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || !w.is_mounted()),
        "never sealed when idle"
    );
    std::mem::forget(m);
}

#[test]
fn read_only_mount_and_status() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("a.md"), "a").unwrap();
    let st = String::from_utf8(w.run(&["status"]).stdout).unwrap();
    assert!(
        st.contains(w.mnt.to_str().unwrap())
            && st.contains(w.vault.to_str().unwrap())
            && st.contains("since"),
        "{st}"
    );
    m.unmount();
    let m = w.mount(&["--read-only"]);
    assert_eq!(std::fs::read_to_string(m.path("a.md")).unwrap(), "a");
    let e = std::fs::write(m.path("b.md"), "b").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    assert!(
        String::from_utf8(w.run(&["status"]).stdout)
            .unwrap()
            .contains("read-only")
    );
}

#[test]
fn daemon_killed_mid_write_leaves_a_vault_that_opens_and_never_shows_garbage() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("before.md"), "written before").unwrap();
    sh(
        &w.mnt,
        "python3 -c \"import os; f=open('before.md','a'); os.fsync(f.fileno())\"",
    );
    let pid = w.daemon_pid().unwrap();
    // A writer streaming a known pattern when the daemon dies.
    let pattern: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let target = m.path("streaming.bin");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        if let Ok(mut f) = std::fs::File::create(&target) {
            for _ in 0..200 {
                if f.write_all(&pattern).is_err() {
                    break;
                }
            }
        }
    });
    std::thread::sleep(Duration::from_millis(400));
    sh(w.dir.path(), &format!("kill -KILL {pid}"));
    assert!(wait_gone(pid, Duration::from_secs(5)));
    force_unmount(&w.mnt);
    writer.join().unwrap();
    std::mem::forget(m);
    let m = w.mount(&[]);
    assert_eq!(
        std::fs::read_to_string(m.path("before.md")).unwrap(),
        "written before"
    );
    // The interrupted file reads either as a prefix of what was written or
    // fails with EIO (a torn final block): never as garbage.
    let expect: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    match std::fs::read(m.path("streaming.bin")) {
        Ok(b) => {
            for (i, chunk) in b.chunks(1_000_000).enumerate() {
                assert_eq!(chunk, &expect[..chunk.len()], "garbage in chunk {i}");
            }
        }
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}"),
    }
    // The vault stays usable: the torn file can be replaced.
    std::fs::write(m.path("streaming.bin"), "fresh").unwrap();
    assert_eq!(
        std::fs::read_to_string(m.path("streaming.bin")).unwrap(),
        "fresh"
    );
}

#[test]
fn daemon_has_no_core_dumps_and_locks_its_keys() {
    let w = World::new();
    w.init();
    let _m = w.mount(&[]);
    let pid = w.daemon_pid().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(core.split_whitespace().nth(4) == Some("0"), "{core}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let locked: u64 = status
        .lines()
        .find(|l| l.starts_with("VmLck:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(locked > 0, "no key page is locked in memory:\n{status}");
}
