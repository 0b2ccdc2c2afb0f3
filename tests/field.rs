//! Field fixes (issue 10): each test reproduces what a user or an external
//! suite tripped on, on a real mount.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// A content file's header length in new vaults (FORMAT §4.2: with the
/// block MAC).
const HDR: usize = 78;

fn trash_len(w: &World) -> usize {
    let o = w.run(&["trash", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    list.len()
}

fn save_by_rename(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// Issue 10.1: a note saved by rename has a new host file at every save;
/// deleting it within seconds of its last save must still keep it (and
/// its history) in the trash.
#[test]
fn a_note_saved_by_rename_and_deleted_soon_after_goes_to_the_trash() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    save_by_rename(&w.mnt, "client.md", "first\n");
    std::thread::sleep(Duration::from_secs(7));
    save_by_rename(&w.mnt, "client.md", "second\n");
    std::thread::sleep(Duration::from_secs(1));
    std::fs::remove_file(m.path("client.md")).unwrap();
    assert_eq!(trash_len(&w), 1, "the deleted note skipped the trash");
    assert_eq!(
        std::fs::read_to_string(m.path(".trash/client.md")).unwrap(),
        "second\n"
    );
    // Its history came along: restored, it has both saves.
    let o = w.run(&["trash", "restore", "client.md"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = w.run(&["log", "--json", m.path("client.md").to_str().unwrap()]);
    let v: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.len() >= 2, "history lost: {v:?}");
    // A file that really is new (written once, removed at once) is not kept.
    std::fs::write(m.path("scratch.md"), "x\n").unwrap();
    std::fs::remove_file(m.path("scratch.md")).unwrap();
    assert_eq!(trash_len(&w), 0);
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The version `quire search --history --json` names for `word`.
fn version_of(w: &World, word: &str) -> Option<u64> {
    let v = json(&w.run(&["search", "--history", "--json", word]));
    v.as_array()?
        .first()
        .map(|h| h["version"].as_u64().unwrap())
}

/// Issue 10.7: reports name the right version, origin, event and order.
#[test]
fn reports_name_the_right_version_origin_event_and_order() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let note = m.path("clients/ann.md");
    std::fs::create_dir(m.path("clients")).unwrap();
    std::fs::write(&note, "alpha\n").unwrap();
    assert!(wait_until(Duration::from_secs(15), || version_of(
        &w, "alpha"
    ) == Some(0)));
    // Two saves within one indexer batch.
    std::fs::write(&note, "bravo\n").unwrap();
    std::fs::write(&note, "charlie\n").unwrap();
    assert!(wait_until(Duration::from_secs(15), || version_of(
        &w, "charlie"
    ) == Some(0)));
    let log = json(&w.run(&["log", "--json", note.to_str().unwrap()]));
    let texts: Vec<String> = (1..=3)
        .map(|n| {
            let o = w.run(&["show", note.to_str().unwrap(), "--version", &n.to_string()]);
            String::from_utf8_lossy(&o.stdout).into_owned()
        })
        .collect();
    assert_eq!(texts, ["alpha\n", "bravo\n", "charlie\n"], "{log}");
    assert_eq!(version_of(&w, "alpha"), Some(1));
    assert_eq!(version_of(&w, "bravo"), Some(2));

    // A restore through the mount is recorded and audited as a restore.
    let o = w.run(&["restore", note.to_str().unwrap(), "--version", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = json(&w.run(&["log", "--json", note.to_str().unwrap()]));
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["origin"], "restore", "{log}");
    // diff is not an export.
    let _ = w.run(&["diff", note.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(200));
    let audit = json(&w.run(&["audit", "--json"]));
    let events: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["event"].as_str().unwrap_or("").to_string(),
                r["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        events
            .iter()
            .any(|(e, d)| e == "restore" && d.contains("version 1")),
        "{events:?}"
    );
    // The three `quire show` above are exports; diff and restore are not.
    assert_eq!(
        events.iter().filter(|(e, _)| e == "export").count(),
        3,
        "diff or restore audited as an export: {events:?}"
    );
    // A folder given with a trailing slash.
    let a = json(&w.run(&["audit", "--json", "--path", "clients/"]));
    assert!(!a.as_array().unwrap().is_empty());

    // vim's first :w of a new note is one save.
    need("vim");
    sh(
        &w.mnt,
        "vim -u NONE -i NONE -es -c 'call setline(1, \"hello\")' -c 'w fresh.md' -c 'q'",
    );
    std::thread::sleep(Duration::from_millis(300));
    let a = json(&w.run(&["audit", "--json", "--path", "fresh.md"]));
    let saves = a
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event"] == "save")
        .count();
    assert_eq!(saves, 1, "{a}");

    // expiring --all: soonest first.
    for (name, when) in [
        ("late.md", "+300d"),
        ("soon.md", "+10d"),
        ("mid.md", "+100d"),
    ] {
        std::fs::write(m.path(name), "x\n").unwrap();
        let o = w.run(&["expire", m.path(name).to_str().unwrap(), when]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let e = json(&w.run(&["expiring", "--all", "--json"]));
    let order: Vec<&str> = e
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["soon.md", "mid.md", "late.md"]);
}

/// Issue 10.6: leak scans stay in the test's own folder and never walk
/// into another file system mounted below it (someone's stuck mount).
#[test]
fn leak_scans_stay_on_the_tests_own_file_system() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (mount)");
        return;
    }
    let w = World::new();
    let other = w.tmp.join("someone-elses-mount");
    std::fs::create_dir(&other).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&other)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount tmpfs");
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _g = Umount(other.clone());
    std::fs::write(other.join("f"), "needle-in-another-fs").unwrap();
    std::fs::write(w.tmp.join("mine"), "needle-here").unwrap();
    assert_eq!(contains_bytes(&w.tmp, b"needle-in-another-fs"), None);
    assert_eq!(
        contains_bytes(&w.tmp, b"needle-here"),
        Some(w.tmp.join("mine"))
    );
    // Every command of a test gets the test's own temp folder.
    let tmpdir = w
        .cmd()
        .get_envs()
        .find(|(k, _)| *k == "TMPDIR")
        .and_then(|(_, v)| v.map(|v| v.to_owned()));
    assert_eq!(tmpdir.as_deref(), Some(w.tmp.as_os_str()));
}

/// Issue 10.4: a command uses the vault of the mount it runs in, else the
/// default vault; with a choice to make it says which vaults exist, and a
/// listing names the vault it used.
#[test]
fn commands_find_their_vault_like_git_and_never_answer_from_another() {
    let w = World::new();
    w.init(); // the "other" vault, at w.vault
    let default = w.dir.path().join(".local/share/quire/vault");
    let o = w
        .cmd()
        .arg("init")
        .arg(&default)
        .arg("--password-file")
        .arg(&w.pwfile)
        .args([
            "--kdf-memory",
            "8",
            "--kdf-passes",
            "1",
            "--recovery-key-out",
        ])
        .arg(w.dir.path().join("rk2"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = w.mount(&[]); // the other vault at w.mnt
    std::fs::write(m.path("other.md"), "only in the other vault\n").unwrap();
    // The default vault is sealed and another is mounted: no silent answer.
    let o = w
        .cmd()
        .args(["trash"])
        .current_dir(w.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("which vault?"), "{err}");
    assert!(err.contains("the default vault, sealed"), "{err}");
    assert!(err.contains("mounted at"), "{err}");
    // Inside the mount: that vault, named in the header.
    let o = w
        .cmd()
        .args(["trash"])
        .current_dir(&w.mnt)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().next().unwrap().starts_with("Vault: ") && out.contains("/vault)"),
        "{out}"
    );
    let o = w
        .cmd()
        .args(["log", "other.md"])
        .current_dir(&w.mnt)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A path outside the vault says so.
    let o = w
        .cmd()
        .args(["log", "/etc/passwd"])
        .current_dir(&w.mnt)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("outside the vault"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // With the default vault mounted too, outside any mount: the default.
    let dmnt = w.dir.path().join("notes");
    std::fs::create_dir(&dmnt).unwrap();
    let o = w
        .cmd()
        .arg("mount")
        .arg(&default)
        .arg(&dmnt)
        .arg("--password-file")
        .arg(&w.pwfile)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    struct Unmount<'a>(&'a World, std::path::PathBuf);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = self.0.run(&["unmount", self.1.to_str().unwrap()]);
            force_unmount(&self.1);
        }
    }
    let _g = Unmount(&w, dmnt.clone());
    let o = w
        .cmd()
        .args(["trash"])
        .current_dir(w.dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("share/quire/vault"), "{out}");
    let o = w
        .cmd()
        .args(["log", "other.md"])
        .current_dir(w.dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(22), "answered from the other vault");
}

/// Issue 10.8: on a terminal a wrong password is asked again (three
/// tries), two different new passwords are asked again, a weak one is
/// questioned, and `quire passwd` says which password it wants.
#[test]
fn passwords_typed_at_a_terminal_get_second_chances_and_weak_ones_a_question() {
    need("python3");
    let w = World::new();
    let v = w.vault.to_str().unwrap();
    let rk = w.dir.path().join("rk.txt");
    let (code, out) = w.tty(
        &[
            "init",
            v,
            "--kdf-memory",
            "8",
            "--kdf-passes",
            "1",
            "--recovery-key-out",
            rk.to_str().unwrap(),
        ],
        &[
            ("New password: ", "short"),
            ("Use it anyway? [y/N] ", "n"),
            ("New password: ", "Password1234"),
            ("Use it anyway? [y/N] ", "n"),
            ("New password: ", PASSWORD),
            ("New password (again): ", "correct horse battery stapler"),
            ("New password: ", PASSWORD),
            ("New password (again): ", PASSWORD),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("shorter than 12 characters"), "{out}");
    assert!(out.contains("most common passwords"), "{out}");
    assert!(out.contains("differ"), "{out}");
    assert!(out.contains("Vault created"), "{out}");

    // Two wrong passwords, then the right one: mounted.
    let mnt = w.mnt.to_str().unwrap();
    let (code, out) = w.tty(
        &["mount", v, mnt],
        &[
            ("Password: ", "not it"),
            ("Password: ", "not it either"),
            ("Password: ", PASSWORD),
        ],
    );
    let m = Mounted::adopt(&w);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("try again (2 tries left)"), "{out}");
    assert!(out.contains("try again (1 tries left)"), "{out}");
    assert!(w.is_mounted());
    m.unmount();

    // Three wrong: refused, the wrong-password exit code.
    let (code, out) = w.tty(
        &["mount", v, mnt],
        &[
            ("Password: ", "a"),
            ("Password: ", "b"),
            ("Password: ", "c"),
        ],
    );
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("wrong password"), "{out}");
    assert!(!w.is_mounted());

    // passwd asks for the current password by that name.
    let (code, out) = w.tty(
        &["passwd", v, "--kdf-memory", "8", "--kdf-passes", "1"],
        &[
            ("Current password: ", PASSWORD),
            ("New password: ", "a different long passphrase"),
            ("New password (again): ", "a different long passphrase"),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Password changed"), "{out}");
}

/// Issue 10.8, what a new user tripped on: `quire logs` through the daemon
/// with note paths and no fuser noise; `show` on a folder; a second mount
/// says where the vault is; `status` shows the idle setting; a date in the
/// past is not taken unasked; a closed pipe ends a command quietly.
#[test]
fn messages_say_what_happened_in_the_users_words() {
    let w = World::new();
    w.init();
    let data: Vec<u8> = (0..9000u32).map(|i| b'a' + (i % 26) as u8).collect();
    {
        let m = w.mount(&[]);
        std::fs::create_dir(m.path("clients")).unwrap();
        std::fs::write(m.path("clients/anna.md"), &data).unwrap();
        m.unmount();
    }
    // Flip a bit in the note's second block on the host.
    let files = content_files(&w.vault.join("d"));
    let f = files
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut b = std::fs::read(f).unwrap();
    b[HDR + 4124 + 50] ^= 1;
    std::fs::write(f, b).unwrap();

    let m = w.mount(&["--idle", "45m"]);
    assert_eq!(
        std::fs::read(m.path("clients/anna.md"))
            .err()
            .and_then(|e| e.raw_os_error()),
        Some(libc::EIO)
    );
    // `quire logs` from inside the mount: through the daemon, no password.
    let o = w
        .cmd()
        .arg("logs")
        .current_dir(m.path("clients"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(log.starts_with("Vault: "), "{log}");
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("failed authentication"))
        .collect();
    assert!(!bad.is_empty(), "{log}");
    assert!(
        bad.iter().all(|l| l.contains("clients/anna.md")),
        "host paths, not note paths: {bad:?}"
    );
    let host = f.file_name().unwrap().to_str().unwrap();
    assert!(!log.contains(host), "{log}");
    assert!(!log.contains("Failed to umount"), "{log}");
    assert!(!log.contains("Not Implemented"), "{log}");

    // `show` on a folder.
    let o = w.run(&["show", m.path("clients").to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("clients is a folder"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A second mount of the same vault says where it is mounted.
    let other = w.dir.path().join("mnt2");
    let o = w.run(&[
        "mount",
        w.vault.to_str().unwrap(),
        other.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        err.contains(&format!("already mounted at {}", w.mnt.display())),
        "{err}"
    );

    // `status` shows the idle setting, in words.
    let o = w.run(&["status"]);
    let st = String::from_utf8_lossy(&o.stdout);
    assert!(st.contains("seals when idle: after 45 minutes"), "{st}");

    // A date that has passed is refused without --yes (no terminal to ask).
    std::fs::write(m.path("clients/bob.md"), "bob\n").unwrap();
    let bob = m.path("clients/bob.md");
    let o = w.run(&["expire", bob.to_str().unwrap(), "2020-01-01"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--yes"));
    let o = w.run(&["expire", bob.to_str().unwrap()]);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("2020"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = w.run(&["expire", bob.to_str().unwrap(), "2020-01-01", "--yes"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A reader that goes away: the command ends quietly, no panic.
    let mut child = w
        .cmd()
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    m.unmount();
}

/// Bytes the vault folder takes on the host disk.
fn host_use(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            }
            total += m.blocks() * 512;
        }
    }
    total
}

fn fallocate(args: &[&str], file: &Path) -> std::process::Output {
    std::process::Command::new("fallocate")
        .args(args)
        .arg(file)
        .output()
        .unwrap()
}

/// Issue 10.2: sparse files cost their data, not their size; huge sizes
/// get EFBIG at once; fallocate punches, zeros and reserves; and a zeroed
/// block, a zeroed marker or a cut file is still detected.
#[test]
fn sparse_files_cost_their_data_and_holes_stay_authenticated() {
    need("fallocate");
    let w = World::new();
    w.init();
    const GIB: u64 = 1 << 30;
    let m = w.mount(&[]);
    let base = host_use(&w.vault);
    // pjdfstest truncate/12: far past the maximum size.
    let f = std::fs::File::create(m.path("huge")).unwrap();
    assert_eq!(
        f.set_len(999_999_999_999_999).unwrap_err().raw_os_error(),
        Some(libc::EFBIG)
    );
    assert_eq!(std::fs::metadata(m.path("huge")).unwrap().len(), 0);
    // 2 GiB of nothing, and 4 bytes written at 2 GiB: a few KiB on disk.
    f.set_len(2 * GIB).unwrap();
    drop(f);
    {
        use std::os::unix::fs::FileExt;
        let g = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(m.path("w4"))
            .unwrap();
        g.write_all_at(b"abcd", 2 * GIB).unwrap();
        let mut b = [9u8; 8];
        let r = std::fs::File::open(m.path("w4")).unwrap();
        r.read_exact_at(&mut b[..4], 2 * GIB).unwrap();
        assert_eq!(&b[..4], b"abcd");
        r.read_exact_at(&mut b, GIB + 12345).unwrap();
        assert_eq!(b, [0u8; 8]);
    }
    assert_eq!(std::fs::metadata(m.path("huge")).unwrap().len(), 2 * GIB);
    assert_eq!(std::fs::metadata(m.path("w4")).unwrap().len(), 2 * GIB + 4);
    let used = host_use(&w.vault) - base;
    assert!(used < 1 << 20, "{used} host bytes for two sparse files");

    // Data, a hole, data; then holes punched and zeroed in the data.
    let data: Vec<u8> = (0..(64 * 4096u32)).map(|i| (i % 251) as u8 + 1).collect();
    let p = m.path("db");
    std::fs::write(&p, &data).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let g = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        g.write_all_at(&data, 10 << 20).unwrap();
    }
    let mut want = vec![0u8; (10 << 20) + data.len()];
    want[..data.len()].copy_from_slice(&data);
    want[10 << 20..].copy_from_slice(&data);
    let o = fallocate(&["-p", "-o", "5000", "-l", "100000"], &p);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    want[5000..105_000].fill(0);
    let o = fallocate(&["-z", "-o", "150000", "-l", "30000"], &p);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    want[150_000..180_000].fill(0);
    // Writing into a hole splits its run.
    {
        use std::os::unix::fs::FileExt;
        let g = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        g.write_all_at(b"middle", 5 << 20).unwrap();
    }
    want[5 << 20..(5 << 20) + 6].copy_from_slice(b"middle");
    // Mode 0 past the end grows the file; KEEP_SIZE does not.
    let o = fallocate(&["-o", "0", "-l", &(want.len() + 8192).to_string()], &p);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    want.resize(want.len() + 8192, 0);
    let o = fallocate(&["-n", "-o", "0", "-l", &(want.len() * 2).to_string()], &p);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(&p).unwrap() == want,
        "content after fallocate"
    );
    // offset + length past the maximum: EFBIG, nothing changed.
    let o = fallocate(&["-o", "9223372036854000000", "-l", "1000000"], &p);
    assert!(!o.status.success());
    assert_eq!(std::fs::metadata(&p).unwrap().len(), want.len() as u64);
    m.unmount();
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    // Tampering with a sparse file on the host.
    let host = {
        let files = content_files(&w.vault.join("d"));
        // The one whose host size is that of `db`.
        let csize = |n: u64| {
            HDR as u64
                + n / 4096 * 4124
                + if !n.is_multiple_of(4096) {
                    n % 4096 + 28
                } else {
                    0
                }
        };
        files
            .into_iter()
            .find(|f| std::fs::metadata(f).unwrap().len() == csize(want.len() as u64))
            .unwrap()
    };
    let good = std::fs::read(&host).unwrap();
    let slot = |n: usize| HDR + n * 4124..HDR + (n + 1) * 4124;
    let marker_slot = (5 << 20) / 4096 - 1; // the run before "middle"
    let cases: Vec<(&str, Vec<u8>, usize)> = vec![
        (
            "zeroed data block",
            {
                let mut b = good.clone();
                b[slot(50)].fill(0);
                b
            },
            50 * 4096 + 10,
        ),
        (
            "zeroed marker",
            {
                let mut b = good.clone();
                b[slot(marker_slot)].fill(0);
                b
            },
            (3 << 20) + 7,
        ),
        ("cut inside a run", good[..slot(2000).start].to_vec(), 0),
    ];
    for (what, bytes, at) in cases {
        std::fs::write(&host, &bytes).unwrap();
        let m = w.mount(&[]);
        // With the block MAC (FORMAT §4.2) the open itself fails; without
        // it, the read of the damaged slot.
        let mut b = [0u8; 16];
        let e = match std::fs::File::open(m.path("db")) {
            Err(e) => Some(e),
            Ok(r) => {
                use std::os::unix::fs::FileExt;
                if what.starts_with("cut") {
                    std::fs::read(m.path("db")).err()
                } else {
                    r.read_exact_at(&mut b, at as u64).err()
                }
            }
        };
        assert_eq!(
            e.and_then(|e| e.raw_os_error()),
            Some(libc::EIO),
            "{what}: read as data"
        );
        m.unmount();
    }
    std::fs::write(&host, &good).unwrap();
    let m = w.mount(&[]);
    assert!(std::fs::read(m.path("db")).unwrap() == want);
    m.unmount();
}

/// Unmounts a small tmpfs made for a test, even when it fails.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Issue 17.6 (replacing 10.3's "the trash gives way" test): someone else
/// filling a shared disk cannot empty your trash. Entries from the last
/// week (and the ten newest) are never purged for space, so filling the
/// disk leaves a fresh trash entry in place; `quire status` and the next
/// mount warn that the disk is low, and the daemon log says why nothing
/// was purged. Which older entries go, and only when that helps, is
/// `vault::trash::plan_space` (unit test with a fixed clock).
#[test]
fn filling_a_shared_disk_does_not_empty_the_trash() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to mount a small tmpfs");
        return;
    }
    let mut w = World::new();
    let small = w.dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let o = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256m,mode=0755", "tmpfs"])
        .arg(&small)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _fs = Tmpfs(small.clone());
    w.vault = small.join("vault");
    w.init();
    let m = w.mount(&[]);
    const MIB: usize = 1 << 20;
    std::fs::write(m.path("old.bin"), vec![7u8; 80 * MIB]).unwrap();
    std::thread::sleep(Duration::from_secs(6));
    std::fs::remove_file(m.path("old.bin")).unwrap();
    let o = w.run(&["status"]);
    let st = String::from_utf8_lossy(&o.stdout);
    assert!(st.contains("trash: 1 entries, 80.0 MiB"), "{st}");
    assert!(!st.contains("warning: the disk holding the vault"), "{st}");
    // Another user takes nearly all the free space.
    let theirs = small.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "free=$(df --output=avail -B1 {} | tail -1); setpriv --reuid=65534 --regid=65534 --clear-groups fallocate -l $((free - 2 * 1048576)) {}/big",
            small.display(),
            theirs.display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A save wakes the daemon's lifecycle work (it checks for space).
    std::fs::write(m.path("small.md"), "a note\n").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let o = w.run(&["trash", "--json"]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.contains("old.bin"), "the trash was purged: {t}");
    let o = w.run(&["status"]);
    let st = String::from_utf8_lossy(&o.stdout);
    assert!(
        st.contains("warning: the disk holding the vault has only"),
        "{st}"
    );
    let logs = String::from_utf8_lossy(&w.run(&["logs"]).stdout).into_owned();
    assert!(logs.contains("the trash is not purged"), "{logs}");
    let a = String::from_utf8_lossy(&w.run(&["audit", "--json"]).stdout).into_owned();
    assert!(!a.contains("low disk space"), "{a}");
    m.unmount();
    let o = w.mount_output(&[]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("low on space")
            || String::from_utf8_lossy(&o.stderr).contains("has only"),
        "{o:?}"
    );
    Mounted::adopt(&w).unmount();
}

/// Issue 10.5: a copy of a vault (same vault ID) keeps its own audit head,
/// so using the copy raises no alarm on the original; a log that is really
/// shorter than the head is reported until `quire audit --accept`, which
/// is itself audited.
#[test]
fn an_audit_head_per_copy_and_a_reviewed_state_can_be_accepted() {
    let w = World::new();
    w.init();
    let pw = w.pwfile.to_str().unwrap().to_string();
    let verify = |vault: &Path| {
        w.run(&[
            "audit",
            "--verify",
            "--vault",
            vault.to_str().unwrap(),
            "--password-file",
            &pw,
        ])
    };
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("a.md"), "a\n").unwrap();
        m.unmount();
    }
    let early_log = std::fs::read(w.audit_chain()).unwrap();
    // rsync the sealed vault, mount the copy, write, unmount.
    let copy = w.dir.path().join("copy");
    let o = std::process::Command::new("cp")
        .arg("-a")
        .arg(&w.vault)
        .arg(&copy)
        .output()
        .unwrap();
    assert!(o.status.success());
    let mnt2 = w.dir.path().join("mnt2");
    std::fs::create_dir(&mnt2).unwrap();
    let o = w.run(&[
        "mount",
        copy.to_str().unwrap(),
        mnt2.to_str().unwrap(),
        "--password-file",
        &pw,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(mnt2.join("b.md"), "b\n").unwrap();
    let o = w.run(&["unmount", mnt2.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Both verify.
    for v in [&w.vault, &copy] {
        let o = verify(v);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    // More records on the original, then its log put back to the earlier
    // one: records were removed, and that is reported.
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("c.md"), "c\n").unwrap();
        m.unmount();
    }
    std::fs::write(w.audit_chain(), &early_log).unwrap();
    let o = verify(&w.vault);
    assert_eq!(
        o.status.code(),
        Some(24),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // Reviewed and accepted: recorded, and the log verifies again.
    let o = w.run(&[
        "audit",
        "--accept",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        &pw,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = verify(&w.vault);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = w.run(&[
        "audit",
        "--json",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        &pw,
    ]);
    let a = String::from_utf8_lossy(&o.stdout);
    assert!(a.contains("\"event\":\"accept\""), "{a}");
}

/// Issue 10.2, history side: the versions of a sparse note store its runs
/// of zeros once, not once per 64 KiB.
#[test]
fn versions_of_a_sparse_note_store_its_zeros_once() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let p = m.path("image.bin");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(32 << 20).unwrap();
    drop(f);
    // Two saves far enough apart to be two versions.
    std::thread::sleep(Duration::from_millis(1100));
    {
        use std::os::unix::fs::FileExt;
        let g = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        g.write_all_at(b"second save", 1 << 20).unwrap();
    }
    // The second version is recorded as the handle closes (reading and
    // chunking 32 MiB takes a moment in a debug build).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let o = w.run(&["log", p.to_str().unwrap(), "--json"]);
        let log = String::from_utf8_lossy(&o.stdout).to_string();
        if log.matches("\"number\"").count() >= 2 {
            break;
        }
        if std::time::Instant::now() > deadline {
            let ls = std::process::Command::new("ls")
                .arg("-la")
                .arg(w.vault.join("d"))
                .output()
                .unwrap();
            let daemon = w.cmd().arg("logs").current_dir(&w.mnt).output().unwrap();
            panic!(
                "{log}\n{}\n{}",
                String::from_utf8_lossy(&ls.stdout),
                String::from_utf8_lossy(&daemon.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    m.unmount();
    let qh: u64 = walk_host(&w.vault.join("d"))
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".qh"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(qh < 1 << 20, "history of a 32 MiB sparse note: {qh} bytes");
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

fn walk_host(d: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![d.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// The notes' content files under a host folder (names without a dot).
fn content_files(d: &Path) -> Vec<std::path::PathBuf> {
    walk_host(d)
        .into_iter()
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_str().unwrap().contains('.'))
        .collect()
}

/// Issue 16.3: a note saved three times within seconds has versions; it
/// is not "new", so deleting it right after its last save keeps it (and
/// its history) in the trash.
#[test]
fn a_note_with_versions_never_skips_the_trash() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    for i in 1..=3 {
        std::fs::write(m.path("quick.md"), format!("save {i}\n")).unwrap();
        std::thread::sleep(Duration::from_millis(1200));
    }
    let o = w.run(&["log", "--json", m.path("quick.md").to_str().unwrap()]);
    let v: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.len(), 3, "three saves, three versions: {v:?}");
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(m.path("quick.md")).unwrap();
    assert_eq!(trash_len(&w), 1, "a note with versions skipped the trash");
    assert_eq!(
        std::fs::read_to_string(m.path(".trash/quick.md")).unwrap(),
        "save 3\n"
    );
    // Written once and removed at once: still not kept.
    std::fs::write(m.path("scratch.md"), "x\n").unwrap();
    std::fs::remove_file(m.path("scratch.md")).unwrap();
    assert_eq!(trash_len(&w), 1);
}

/// Issue 16.4: every kind of virtual entry (history root, folder, note,
/// version; trash root, folder, entry) answers listxattr with an empty
/// list, getxattr with ENODATA and statx like a plain file, so `ls -l`
/// (coreutils 9.4 calls listxattr) prints no error.
#[test]
fn virtual_entries_answer_xattr_calls_like_plain_files() {
    need("python3");
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::create_dir(m.path("sub")).unwrap();
    std::fs::write(m.path("sub/n.md"), "one\n").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(m.path("sub/n.md"), "two\n").unwrap();
    std::fs::write(m.path("sub/gone.md"), "bye\n").unwrap();
    std::thread::sleep(Duration::from_secs(6));
    std::fs::remove_file(m.path("sub/gone.md")).unwrap();
    let versions: Vec<_> = std::fs::read_dir(m.path(".history/sub/n.md"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!versions.is_empty());
    let entries = [
        ".history".to_string(),
        ".history/sub".to_string(),
        ".history/sub/n.md".to_string(),
        format!(".history/sub/n.md/{}", versions[0]),
        ".trash".to_string(),
        ".trash/sub".to_string(),
        ".trash/sub/gone.md".to_string(),
    ];
    let script = r#"
import errno, os, sys
for p in sys.argv[1:]:
    assert os.listxattr(p) == [], p
    assert os.listxattr(p, follow_symlinks=False) == [], p
    try:
        os.getxattr(p, "user.x")
        raise SystemExit("getxattr answered on " + p)
    except OSError as e:
        assert e.errno == errno.ENODATA, (p, e)
    os.stat(p)
    os.lstat(p)
print("ok")
"#;
    let mut c = std::process::Command::new("python3");
    c.arg("-c").arg(script).current_dir(&w.mnt).args(&entries);
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // ls -l itself prints no error on any of them.
    let o = std::process::Command::new("ls")
        .arg("-ld")
        .args(&entries)
        .current_dir(&w.mnt)
        .output()
        .unwrap();
    assert!(o.status.success() && o.stderr.is_empty(), "{o:?}");
    drop(m);
}

/// Issue 16.1: once sealed (by `quire unmount` or by `--idle`), the mount
/// point is read-only to its owner: an editor still open on a note cannot
/// save it there as plaintext ("Permission denied"), and the next mount
/// works as before. Run as an unprivileged user (root ignores modes).
#[test]
fn a_sealed_mount_point_takes_no_plaintext() {
    if unsafe { libc::geteuid() } != 0 {
        return; // needs root to become another user; CI runs as root
    }
    let w = World::new();
    std::fs::set_permissions(&w.dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let script = format!(
        "set -u; cd {dir}; Q={q}; export HOME={dir} XDG_RUNTIME_DIR={dir}/nrun
         echo pw-for-a-test > npw
         $Q init nv --password-file npw --kdf-memory 8 --kdf-passes 1 --recovery-key-out nrk 2>/dev/null || exit 9
         mkdir nm; $Q mount nv nm --password-file npw || exit 9
         trap '$Q unmount nm >/dev/null 2>&1 || fusermount3 -u -z nm' EXIT
         echo 'session note' > nm/note.md
         $Q unmount nm || exit 9
         # An editor saving after the seal: refused.
         if echo 'plaintext zebrafinch' > nm/note.md; then echo SAVED-AFTER-UNMOUNT; fi
         stat -c %a nm
         # Mount again: the note is there; sealed again by --idle.
         $Q mount nv nm --password-file npw --idle 2s || exit 9
         cat nm/note.md
         for i in $(seq 1 100); do mountpoint -q nm || break; sleep 0.2; done
         mountpoint -q nm && echo STILL-MOUNTED
         if echo 'plaintext zebrafinch' > nm/note.md; then echo SAVED-AFTER-IDLE; fi
         ls -A nm | wc -l",
        dir = w.dir.path().display(),
        q = quire_bin().display()
    );
    let o = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(!out.contains("SAVED-AFTER"), "{out}\n{err}");
    assert!(!out.contains("STILL-MOUNTED"), "{out}\n{err}");
    assert!(err.contains("Permission denied"), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["500", "session note", "0"], "{err}");
    assert!(contains_bytes(w.dir.path(), b"zebrafinch").is_none());
}

/// Issue 16.1: files found in the mount point are named as unencrypted
/// and not hidden by a mount; `quire import` mounts and moves them into
/// the vault (a taken name gets "unencrypted copy"), overwriting and
/// removing the plaintext.
#[test]
fn files_left_in_the_mount_point_are_named_and_imported() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("a.md"), "the vault's own a\n").unwrap();
    m.unmount();
    // Left there while sealed (root ignores the sealed mode).
    std::fs::write(w.mnt.join("a.md"), "plain a zebrafinch\n").unwrap();
    std::fs::create_dir(w.mnt.join("sub")).unwrap();
    std::fs::write(w.mnt.join("sub/b.md"), "plain b zebrafinch\n").unwrap();
    let o = w.mount_output(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(14), "{err}");
    assert!(
        err.contains("NOT encrypted") && err.contains("a.md"),
        "{err}"
    );
    assert!(err.contains("quire import"), "{err}");
    assert!(!w.is_mounted());
    let o = w
        .cmd()
        .arg("import")
        .arg(&w.vault)
        .arg(&w.mnt)
        .arg("--password-file")
        .arg(&w.pwfile)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("Imported 2 item(s)"), "{err}");
    let m = Mounted::adopt(&w);
    assert_eq!(
        std::fs::read_to_string(m.path("a.md")).unwrap(),
        "the vault's own a\n"
    );
    assert_eq!(
        std::fs::read_to_string(m.path("sub/b.md")).unwrap(),
        "plain b zebrafinch\n"
    );
    let copies: Vec<String> = std::fs::read_dir(&w.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("a (unencrypted copy "))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(copies[0].ends_with(".md"));
    assert_eq!(
        std::fs::read_to_string(w.mnt.join(&copies[0])).unwrap(),
        "plain a zebrafinch\n"
    );
    m.unmount();
    // Sealed: the mount point is empty, and no plaintext is left on disk.
    assert_eq!(std::fs::read_dir(&w.mnt).unwrap().count(), 0);
    assert!(contains_bytes(w.dir.path(), b"zebrafinch").is_none());
    w.mount(&[]).unmount();
}

/// Issue 16.5: with two vaults mounted, `quire trash restore` of a note's
/// path in one mount (the note no longer exists there) picks that mount.
#[test]
fn trash_restore_finds_its_vault_among_two_mounts() {
    let w = World::new();
    w.init();
    let v2 = w.dir.path().join("vault2");
    let mnt2 = w.dir.path().join("mnt2");
    std::fs::create_dir(&mnt2).unwrap();
    let pw = w.pwfile.to_str().unwrap();
    let o = w.run(&[
        "init",
        v2.to_str().unwrap(),
        "--password-file",
        pw,
        "--kdf-memory",
        "8",
        "--kdf-passes",
        "1",
        "--recovery-key-out",
        w.dir.path().join("rk2").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    let m = w.mount(&[]);
    let o = w.run(&[
        "mount",
        v2.to_str().unwrap(),
        mnt2.to_str().unwrap(),
        "--password-file",
        pw,
    ]);
    assert!(o.status.success(), "{o:?}");
    let _other = scopeguard(&w, &mnt2);
    for (i, t) in ["first\n", "second\n"].iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(1100));
        }
        std::fs::write(m.path("note.md"), t).unwrap();
    }
    std::fs::remove_file(m.path("note.md")).unwrap();
    let o = w
        .cmd()
        .current_dir(w.dir.path())
        .args(["trash", "restore", m.path("note.md").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(m.path("note.md")).unwrap(),
        "second\n"
    );
}

/// Unmounts a second mount of a test when dropped.
struct Unmount2<'a>(&'a World, std::path::PathBuf);

impl Drop for Unmount2<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["unmount", self.1.to_str().unwrap()]);
        force_unmount(&self.1);
    }
}

fn scopeguard<'a>(w: &'a World, mnt: &Path) -> Unmount2<'a> {
    Unmount2(w, mnt.to_path_buf())
}

/// Issue 16.6: a mount point (or any folder) given where a vault is
/// expected is refused before anything is created in it.
#[test]
fn a_folder_that_is_not_a_vault_gets_nothing_created_in_it() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let before = w.run(&["audit", "--json"]);
    let o = w.run(&[
        "check",
        w.mnt.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a Quire vault"),
        "{o:?}"
    );
    assert!(!m.path("quire.lock").exists());
    assert_eq!(std::fs::read_dir(&w.mnt).unwrap().count(), 0);
    let after = w.run(&["audit", "--json"]);
    assert_eq!(before.stdout, after.stdout);
    // An empty folder elsewhere: the same, and it stays empty.
    let empty = w.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = w.run(&[
        "check",
        empty.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

/// Issue 16.14: SEEK_DATA / SEEK_HOLE answer from the hole runs: a 1 GiB
/// file holding 12 KiB of data reports nearly all of itself as holes,
/// never a hole where data is, and `cp --sparse=always` keeps it sparse.
#[test]
fn seek_data_and_seek_hole_report_the_holes() {
    need("python3");
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let script = r#"
import os, sys
p = sys.argv[1]
with open(p, "wb") as f:
    f.write(b"a" * 4096)
    f.seek(512 << 20); f.write(b"b" * 4096)
    f.seek((1 << 30) - 4096); f.write(b"c" * 4096)
size = os.path.getsize(p)
fd = os.open(p, os.O_RDONLY)
off, holes, datas = 0, 0, []
while off < size:
    d = os.lseek(fd, off, os.SEEK_DATA)
    h = os.lseek(fd, d, os.SEEK_HOLE)
    assert d >= off and h > d, (off, d, h)
    holes += d - off
    datas.append((d, h))
    # What is reported as a hole reads as zeros.
    os.lseek(fd, off, os.SEEK_SET)
    left = min(d - off, 64 << 20)
    while left:
        b = os.read(fd, min(left, 1 << 20))
        assert b and b.count(0) == len(b), off
        left -= len(b)
    off = h
try:
    os.lseek(fd, size, os.SEEK_DATA); raise SystemExit("ENXIO expected")
except OSError as e:
    assert e.errno == 6, e
print(holes, len(datas))
for d, h in datas:
    assert any(d <= x < h for x in (0, 512 << 20, (1 << 30) - 4096)), (d, h)
"#;
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(m.path("big.img"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let holes: u64 = out.split_whitespace().next().unwrap().parse().unwrap();
    assert!(holes > 1000 << 20, "only {holes} bytes reported as holes");
    // A sparse-aware copy out of the mount stays sparse and equal.
    let copy = w.dir.path().join("copy.img");
    let o = std::process::Command::new("cp")
        .arg("--sparse=always")
        .arg(m.path("big.img"))
        .arg(&copy)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    use std::os::unix::fs::MetadataExt;
    assert!(std::fs::metadata(&copy).unwrap().blocks() * 512 < 16 << 20);
    let c = std::fs::read(&copy).unwrap();
    assert_eq!(c.len(), 1 << 30);
    assert!(c[..4096].iter().all(|&b| b == b'a'));
    assert!(c[512 << 20..(512 << 20) + 4096].iter().all(|&b| b == b'b'));
    assert!(c[(1 << 30) - 4096..].iter().all(|&b| b == b'c'));
    assert!(c[4096..512 << 20].iter().all(|&b| b == 0));
}

/// Issue 16.7: a vim save is audited as one save — not "create" again for
/// a note that exists, and never "checkpoint of a file kept open" (vim
/// writes, fsyncs and closes); the first save of a new note is a create
/// and a save.
#[test]
fn vim_saves_are_audited_as_saves() {
    need("vim");
    let w = World::new();
    w.init();
    let _m = w.mount(&[]);
    let vim = |cmd: &str| {
        sh(
            &w.mnt,
            &format!("vim -u NONE -i NONE -es -c 'set writebackup backupcopy=no' {cmd} -c 'q'"),
        )
    };
    vim("-c 'call setline(1, \"first\")' -c 'w note.md'");
    std::thread::sleep(Duration::from_millis(1100));
    for i in 2..=3 {
        vim(&format!(
            "note.md -c 'call setline(1, \"save {i}\")' -c 'w'"
        ));
        std::thread::sleep(Duration::from_millis(1100));
    }
    let a = json(&w.run(&["audit", "--json", "--path", "note.md"]));
    let events: Vec<(String, String)> = a
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["event"].as_str().unwrap_or("").to_string(),
                r["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let count = |e: &str| events.iter().filter(|(x, _)| x == e).count();
    assert_eq!(count("create"), 1, "{events:?}");
    assert_eq!(count("save"), 3, "{events:?}");
    assert!(
        !events.iter().any(|(_, d)| d.contains("checkpoint")),
        "{events:?}"
    );
}

/// The daemon's peak resident memory (VmHWM) in bytes.
fn peak_rss(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb << 10
}

/// Issue 16.12: a multi-GiB note in the trash is read in bounded pieces:
/// through `.trash/` (the daemon's peak memory stays far below the note's
/// size) and by `quire check` under an address-space limit far below it.
#[test]
fn a_huge_note_in_the_trash_is_read_in_bounded_pieces() {
    need("prlimit");
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    const GIB: u64 = 1 << 30;
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(m.path("scan.img")).unwrap();
        f.set_len(2 * GIB).unwrap();
        for at in [0, GIB, 2 * GIB - (4 << 20)] {
            f.write_all_at(&vec![b'x'; 4 << 20], at).unwrap();
        }
    }
    std::thread::sleep(Duration::from_secs(6));
    std::fs::remove_file(m.path("scan.img")).unwrap();
    assert_eq!(trash_len(&w), 1);
    let pid = w.daemon_pid().unwrap();
    let before = peak_rss(pid);
    // Opened through the view and read where it holds data.
    let f = std::fs::File::open(m.path(".trash/scan.img")).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 2 * GIB);
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 4 << 20];
    for at in [0, GIB, 2 * GIB - (4 << 20)] {
        f.read_exact_at(&mut buf, at).unwrap();
        assert!(buf.iter().all(|&b| b == b'x'), "at {at}");
    }
    f.read_exact_at(&mut buf, GIB / 2).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    drop(f);
    let peak = peak_rss(pid);
    assert!(
        peak < before.max(64 << 20) + (256 << 20),
        "the daemon peaked at {} MiB reading a 2 GiB trash entry",
        peak >> 20
    );
    m.unmount();
    // check, with 1 GiB of address space for a 2 GiB entry.
    let o = std::process::Command::new("prlimit")
        .arg(format!("--as={}", GIB))
        .arg("--")
        .arg(quire_bin())
        .args(["check", w.vault.to_str().unwrap(), "--password-file"])
        .arg(&w.pwfile)
        .env("XDG_RUNTIME_DIR", &w.runtime)
        .env("HOME", w.dir.path())
        .env("TMPDIR", &w.tmp)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Issue 16.11: cutting a file costs memory bounded by a constant and time
/// that follows the data actually stored: a 272 MiB file of data cut to
/// nothing (the crash journal saves it in bounded batches, in two
/// committed pieces), and an 8 TiB sparse file cut to nothing (its holes
/// cost nothing); the daemon's peak memory barely moves. (Sizes kept small
/// for a debug build's speed; the bound does not depend on them.)
#[test]
fn cutting_big_and_sparse_files_costs_bounded_memory() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let pid = w.daemon_pid().unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::File::create(m.path("big.bin")).unwrap();
        let chunk = vec![b'd'; 8 << 20];
        for _ in 0..34 {
            f.write_all(&chunk).unwrap();
        }
    }
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(m.path("sparse.bin")).unwrap();
        f.set_len(8 << 40).unwrap();
        for at in [0, 1 << 40, (8 << 40) - 4096] {
            f.write_all_at(&[b's'; 4096], at).unwrap();
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let before = peak_rss(pid);
    for name in ["big.bin", "sparse.bin"] {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(m.path(name))
            .unwrap();
        f.set_len(0).unwrap();
        drop(f);
        assert_eq!(std::fs::metadata(m.path(name)).unwrap().len(), 0);
    }
    let peak = peak_rss(pid);
    assert!(
        peak < before + (128 << 20),
        "the daemon's peak memory went from {} to {} MiB cutting the files",
        before >> 20,
        peak >> 20
    );
    m.unmount();
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

/// Issue 16.15: symlink targets up to 4095 bytes (pjdfstest symlink/03;
/// ext4's limit), kept sealed in `quire.symlinks/` (FORMAT §6.2): they
/// read back whole, `lstat` gives their length, hard links and renames keep
/// them, their file goes with the last name, 4096 bytes is refused, and a
/// target file swapped for another's reads as EIO and is named by check.
#[test]
fn symlink_targets_up_to_4095_bytes() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let t4095 = format!("{}b", "a/".repeat(2047));
    let t3500 = format!("{}c", "x/".repeat(1749));
    assert_eq!((t4095.len(), t3500.len()), (4095, 3499));
    std::os::unix::fs::symlink(&t4095, m.path("long")).unwrap();
    std::os::unix::fs::symlink(&t3500, m.path("mid")).unwrap();
    let e = std::os::unix::fs::symlink(format!("{t4095}x"), m.path("too")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG), "{e}");
    let mnt = w.mnt.clone();
    let read = |p: &str| {
        std::fs::read_link(mnt.join(p)).map(|t| t.into_os_string().into_string().unwrap())
    };
    assert_eq!(read("long").unwrap(), t4095);
    assert_eq!(read("mid").unwrap(), t3500);
    assert_eq!(
        std::fs::symlink_metadata(m.path("long")).unwrap().len(),
        4095
    );
    std::fs::hard_link(m.path("long"), m.path("long2")).unwrap();
    std::fs::create_dir(m.path("sub")).unwrap();
    std::fs::rename(m.path("long"), m.path("sub/long3")).unwrap();
    assert_eq!(read("long2").unwrap(), t4095);
    assert_eq!(read("sub/long3").unwrap(), t4095);
    m.unmount();
    let store = w.vault.join("d/quire.symlinks");
    let files = || -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&store)
            .map(|r| r.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(files().len(), 2);
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // One target file put in place of the other: refused, and named.
    let (a, b) = (files()[0].clone(), files()[1].clone());
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, &bb).unwrap();
    let out = w.check_problems("swapped long target");
    assert!(out.contains("does not authenticate"), "{out}");
    {
        let m = w.mount(&["--read-only"]);
        let bad = ["long2", "mid"]
            .iter()
            .filter(|n| std::fs::read_link(m.path(n)).is_err())
            .count();
        assert_eq!(bad, 1);
        m.unmount();
    }
    std::fs::write(&a, &ba).unwrap();
    let m = w.mount(&[]);
    std::fs::remove_file(m.path("long2")).unwrap();
    assert_eq!(read("sub/long3").unwrap(), t4095);
    std::fs::remove_file(m.path("sub/long3")).unwrap();
    std::fs::remove_file(m.path("mid")).unwrap();
    m.unmount();
    assert!(files().is_empty(), "{:?}", files());
}

/// Issue 16.7 and 16.8, reports and messages: a dry-run purge with
/// entries not yet due says so (not "The trash is empty."); emptying the
/// trash without a terminal says to add --yes; search prints its header,
/// results and "No note matches." on one stream; expiring names the span;
/// an idle seal is audited as idle; a mistyped recovery key is asked again.
#[test]
fn reports_and_messages_say_what_is_true() {
    need("python3");
    let w = World::new();
    let rk = w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("kept.md"), "first\n").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(m.path("kept.md"), "second\n").unwrap();
    std::fs::remove_file(m.path("kept.md")).unwrap();
    let o = w.run(&["trash", "purge", "--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{o:?}");
    assert!(!out.contains("The trash is empty"), "{out}");
    assert!(
        out.contains("Nothing is due") && out.contains("1 entry"),
        "{out}"
    );
    let o = w.run(&["trash", "empty"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--yes"), "{err}");
    std::fs::write(m.path("words.md"), "ocelot\n").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    for (q, want) in [("ocelot", "words.md"), ("zzzqqq", "No note matches.")] {
        let o = w.run(&["search", q]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("Vault:") && out.contains(want), "{q}: {o:?}");
        assert!(o.stderr.is_empty(), "{q}: {o:?}");
    }
    let o = w.run(&["expiring"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Nothing expires within 30 days"), "{out}");
    let o = w.run(&["expiring", "--within", "12w"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("within 12 weeks"),
        "{o:?}"
    );
    m.unmount();
    // An idle seal is audited as such.
    let m = w.mount(&["--idle", "1s"]);
    assert!(wait_until(Duration::from_secs(20), || !w.is_mounted()));
    std::mem::forget(m);
    let o = w.run(&[
        "audit",
        "--json",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    let a = String::from_utf8_lossy(&o.stdout);
    assert!(
        a.contains("\"event\":\"unmount\"") && a.contains("idle for"),
        "{a}"
    );
    // A mistyped recovery key (a missing character) is asked again.
    let bad = &rk[..rk.len() - 1];
    let (code, out) = w.tty(
        &["check", w.vault.to_str().unwrap(), "--recovery-key"],
        &[("Recovery key: ", bad), ("Recovery key: ", &rk)],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("try again (2 tries left)"), "{out}");
}

/// Issue 16.1: on a terminal, `quire mount` names the unencrypted files it
/// finds and offers to move them in at once.
#[test]
fn mount_offers_the_import_on_a_terminal() {
    need("python3");
    let w = World::new();
    w.init();
    std::fs::write(w.mnt.join("left.md"), "left behind\n").unwrap();
    let (code, out) = w.tty(
        &[
            "mount",
            w.vault.to_str().unwrap(),
            w.mnt.to_str().unwrap(),
            "--password-file",
            w.pwfile.to_str().unwrap(),
        ],
        &[("[y/N] ", "y")],
    );
    assert_eq!(code, Some(0), "{out}");
    let m = Mounted::adopt(&w);
    assert!(
        out.contains("NOT encrypted") && out.contains("left.md"),
        "{out}"
    );
    assert!(out.contains("Imported 1 item(s)"), "{out}");
    assert_eq!(
        std::fs::read_to_string(m.path("left.md")).unwrap(),
        "left behind\n"
    );
    m.unmount();
    assert_eq!(std::fs::read_dir(&w.mnt).unwrap().count(), 0);
}
