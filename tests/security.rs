//! Local-user attacks (issue 11): each test plays the other user on a
//! shared machine, or the one who can write the vault folder.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::*;

/// A helper process killed even when the test fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// Issue 11.1: a runtime folder made first by another user is refused
/// before anything is served from it.
#[test]
fn a_runtime_folder_held_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root (a second user)");
        return;
    }
    let w = World::new();
    w.init();
    let rt = w.runtime.join("quire");
    std::fs::create_dir(&rt).unwrap();
    std::fs::set_permissions(&rt, PermissionsExt::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(&rt, Some(65534), Some(65534)).unwrap();
    let o = w.mount_output(&[]);
    assert!(!o.status.success(), "mounted beside another user's folder");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("belongs to another user"), "{err}");
    assert!(!w.is_mounted());
    // Ours but open to others: refused too.
    std::os::unix::fs::chown(&rt, Some(0), Some(0)).unwrap();
    let o = w.mount_output(&[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("open to others"));
    assert!(!w.is_mounted());
    // Fixed: it mounts.
    std::fs::set_permissions(&rt, PermissionsExt::from_mode(0o700)).unwrap();
    let m = w.mount(&[]);
    drop(m);
}

/// Issue 11.1: the client talks only to a socket of its own user, served
/// by a process of its own user; a forged answer is never printed.
#[test]
fn a_swapped_control_socket_gets_no_request_and_shows_nothing() {
    if !is_root() {
        eprintln!("skipped: needs root (a second user)");
        return;
    }
    need("python3");
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("note.md"), "real text\n").unwrap();
    let rt = w.runtime.join("quire");
    let sock = std::fs::read_dir(&rt)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .expect("the daemon's socket");
    let real = sock.with_extension("real");
    std::fs::rename(&sock, &real).unwrap();
    // A fake daemon: binds as root, then listens as nobody, answers with
    // forged text and records what it was sent.
    let seen = w.dir.path().join("seen");
    let fake = format!(
        r#"
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind({sock:?})
os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
s.listen(4)
print("ready", flush=True)
s.settimeout(20)
try:
    while True:
        c, _ = s.accept()
        c.settimeout(2)
        try:
            data = c.recv(65536)
        except Exception:
            data = b""
        with open({seen:?}, "ab") as f:
            f.write(data)
        c.sendall(b'{{"Error":{{"errno":5,"message":"FORGED"}}}}\n')
        c.close()
except Exception:
    pass
"#,
        sock = sock.to_str().unwrap(),
        seen = seen.to_str().unwrap()
    );
    std::fs::write(&seen, b"").unwrap();
    std::fs::set_permissions(&seen, PermissionsExt::from_mode(0o666)).unwrap();
    let mut child = KillOnDrop(
        std::process::Command::new("python3")
            .args(["-c", &fake])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(child.0.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let o = w.run(&["search", "secretquery"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("uid 65534"), "{out}");
    assert!(!out.contains("FORGED"), "{out}");
    // A socket file of another user: refused before connecting.
    std::os::unix::fs::lchown(&sock, Some(65534), Some(65534)).unwrap();
    let o = w.run(&["log", m.path("note.md").to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    assert!(out.contains("not a socket of yours"), "{out}");
    drop(child);
    assert!(
        !std::fs::read(&seen)
            .unwrap()
            .windows(11)
            .any(|w| w == b"secretquery"),
        "the query reached the fake daemon"
    );
    std::fs::remove_file(&sock).unwrap();
    std::fs::rename(&real, &sock).unwrap();
    drop(m);
}

/// Issue 11.2: whatever the caller's umask, Quire's own files and folders
/// are private, while a note keeps exactly the mode it was created with.
#[test]
fn own_files_are_private_and_note_modes_exact_under_any_umask() {
    let w = World::new();
    w.init();
    let script = format!(
        "umask 000; {q} mount {v} {m} --password-file {pw}",
        q = quire_bin().display(),
        v = w.vault.display(),
        m = w.mnt.display(),
        pw = w.pwfile.display()
    );
    let mut c = std::process::Command::new("sh");
    c.args(["-c", &script])
        .env("XDG_RUNTIME_DIR", &w.runtime)
        .env("HOME", w.dir.path())
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_DATA_HOME");
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = Mounted::adopt(&w);
    sh(
        &w.mnt,
        "umask 000; echo a > open.md; mkdir -m 0755 d; mkfifo -m 0666 fifo; umask 022; echo b > shared.md; umask 077; echo c > private.md",
    );
    assert_eq!(mode(&m.path("open.md")), 0o666);
    assert_eq!(mode(&m.path("shared.md")), 0o644);
    assert_eq!(mode(&m.path("private.md")), 0o600);
    assert_eq!(mode(&m.path("d")), 0o755);
    assert_eq!(mode(&m.path("fifo")), 0o666);
    std::fs::write(m.path("open.md"), "a2\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    m.unmount();
    // Quire's own files, made by the daemon with umask 000 inherited.
    for p in [
        w.dir.path().join(".local"),
        w.dir.path().join(".local/state"),
        w.dir.path().join(".local/state/quire"),
        w.dir.path().join(".local/state/quire/audit"),
        w.runtime.join("quire"),
    ] {
        assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
    }
    for f in walk_all(&w.dir.path().join(".local")) {
        assert_eq!(mode(&f) & 0o077, 0, "{} is {:o}", f.display(), mode(&f));
    }
    for f in w.vault_files() {
        let n = f.file_name().unwrap().to_string_lossy().into_owned();
        if n.starts_with("quire.") {
            assert_eq!(mode(&f) & 0o077, 0, "{} is {:o}", f.display(), mode(&f));
        }
    }
}

fn walk_all(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    walk(p, &mut out);
    out
}

/// Issue 11.3: on an `--allow-other` mount, another user reads a note's
/// versions and its trash entry only if they may read the note.
#[test]
fn history_and_trash_keep_the_notes_owner_and_mode() {
    if !is_root() {
        eprintln!("skipped: needs root (allow_other and a second user)");
        return;
    }
    let w = World::new();
    w.init();
    let m = w.mount(&["--allow-other"]);
    std::fs::set_permissions(w.dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&w.mnt, PermissionsExt::from_mode(0o755)).unwrap();
    sh(
        &w.mnt,
        "umask 077; echo one > private.md; umask 022; echo one > shared.md",
    );
    std::thread::sleep(Duration::from_millis(1100));
    sh(&w.mnt, "echo two >> private.md; echo two >> shared.md");
    wait_until(Duration::from_secs(5), || {
        std::fs::read_dir(m.path(".history/private.md"))
            .map(|d| d.count() >= 2)
            .unwrap_or(false)
    });
    let o = as_nobody(&w.mnt, "cat .history/private.md/*");
    assert!(
        !o.status.success(),
        "another user read a private note's versions"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("Permission denied"));
    let o = as_nobody(&w.mnt, "cat .history/shared.md/* | head -1");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "one");
    // Versions carry the note's owner and its read bits.
    let v = std::fs::read_dir(m.path(".history/private.md"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(mode(&v), 0o400);
    assert_eq!(mode(&m.path(".history/private.md")), 0o500);
    // Deleted, the private note stays private in the trash.
    std::thread::sleep(Duration::from_secs(5));
    sh(&w.mnt, "rm private.md");
    assert_eq!(mode(&m.path(".trash/private.md")), 0o400);
    let o = as_nobody(&w.mnt, "ls .trash; cat .trash/private.md");
    assert!(!o.status.success());
    assert!(!String::from_utf8_lossy(&o.stdout).contains("private.md"));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("two"));
    drop(m);
}

/// Issue 11.9: a query can be given on standard input (not in the process
/// list), and the daemon's log never records it.
#[test]
fn search_queries_come_from_stdin_and_never_reach_the_log() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("n.md"), "the zanzibarquery word\n").unwrap();
    let found = || {
        let mut c = w.cmd();
        c.args(["search", "--json", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut i = child.stdin.take().unwrap();
            i.write_all(b"zanzibarquery\n").unwrap();
        }
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout).contains("n.md")
    };
    assert!(wait_until(Duration::from_secs(15), found));
    // A malformed query from stdin: refused, and not logged either.
    let mut c = w.cmd();
    c.args(["search", "-"]).stdin(std::process::Stdio::piped());
    let mut child = c
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        i.write_all(b"\"zanzibarquery").unwrap();
    }
    assert_eq!(child.wait().unwrap().code(), Some(2));
    m.unmount();
    let o = w
        .cmd()
        .args(["logs", w.vault.to_str().unwrap(), "--password-file"])
        .arg(&w.pwfile)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("unmount") || !o.stdout.is_empty());
    let all = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(!all.contains("zanzibarquery"), "{all}");
}

/// Issue 11.4: no clock given to `quire purge --now` moves a retained note
/// before its real retention date.
#[test]
fn a_test_clock_cannot_cross_retention() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let note = m.path("kept.md");
    std::fs::write(&note, "must stay\n").unwrap();
    for args in [["retain", "+30d"], ["expire", "+31d"]] {
        let o = w.run(&[args[0], note.to_str().unwrap(), args[1]]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = w.run(&["purge", "--now", "+400d"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&note).unwrap(), "must stay\n");
    let o = w.run(&["trash", "--json"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    m.unmount();
    // Sealed, the same.
    let o = w
        .cmd()
        .args([
            "purge",
            "--now",
            "+400d",
            "--vault",
            w.vault.to_str().unwrap(),
        ])
        .arg("--password-file")
        .arg(&w.pwfile)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = w.mount(&[]);
    assert_eq!(
        std::fs::read_to_string(m.path("kept.md")).unwrap(),
        "must stay\n"
    );
}

/// Issue 10.9: the mount root has the mode of a new folder (0755 under
/// umask 022), so `--allow-other` lets other users in; chmod on it works
/// and persists.
#[test]
fn the_mount_root_has_a_folders_mode_and_keeps_a_chmod() {
    let w = World::new();
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022; exec {} init {} --password-file {} --kdf-memory 8 --kdf-passes 1 --recovery-key-out {}",
            quire_bin().display(),
            w.vault.display(),
            w.pwfile.display(),
            w.dir.path().join("rk").display()
        ))
        .env("HOME", w.dir.path())
        .env("XDG_RUNTIME_DIR", &w.runtime)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The vault folder itself stays private.
    assert_eq!(mode(&w.vault), 0o700);
    let extra: &[&str] = if is_root() { &["--allow-other"] } else { &[] };
    let m = w.mount(extra);
    assert_eq!(mode(&w.mnt), 0o755);
    if is_root() {
        std::fs::set_permissions(w.dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::write(m.path("hello.md"), "hi\n").unwrap();
        let o = as_nobody(&w.mnt, "ls && cat hello.md");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("hello.md"));
    }
    std::fs::set_permissions(&w.mnt, PermissionsExt::from_mode(0o711)).unwrap();
    assert_eq!(mode(&w.mnt), 0o711);
    m.unmount();
    let m = w.mount(&[]);
    assert_eq!(mode(&w.mnt), 0o711);
    drop(m);
}

/// Runs a command; fails the test if it has not ended within 30 s (a FIFO
/// planted in the vault hung commands forever before issue 11.6).
fn bounded(mut c: std::process::Command, what: &str) -> std::process::Output {
    use std::io::Read;
    let child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut g = KillOnDrop(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = g.0.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "{what} hung");
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    g.0.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    g.0.stderr.take().unwrap().read_to_end(&mut err).unwrap();
    std::process::Output {
        status,
        stdout: out,
        stderr: err,
    }
}

fn mkfifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn find_suffix(dir: &Path, suffix: &str) -> std::path::PathBuf {
    walk_all(dir)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no {suffix} file"))
}

/// Issue 11.6: a FIFO or a huge sparse file planted in the vault folder is
/// refused with a message, never waited on or read whole.
#[test]
fn planted_fifos_and_huge_files_are_refused_not_waited_on() {
    let w = World::new();
    w.init();
    let v = w.vault.to_str().unwrap().to_string();
    let pw = w.pwfile.to_str().unwrap().to_string();
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("note.md"), "first\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(m.path("note.md"), "second\n").unwrap();
        let o = w.run(&["expire", m.path("note.md").to_str().unwrap(), "+30d"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        m.unmount();
    }
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // A FIFO at quire.conf.
    let conf = w.vault.join("quire.conf");
    let saved = std::fs::read(&conf).unwrap();
    mkfifo(&conf);
    let mut c = w.cmd();
    c.args(["mount", &v, w.mnt.to_str().unwrap(), "--password-file", &pw]);
    let o = bounded(c, "mount with a FIFO at quire.conf");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is a FIFO"), "{}", stderr(&o));
    assert!(!w.is_mounted());
    std::fs::remove_file(&conf).unwrap();
    std::fs::write(&conf, &saved).unwrap();

    // A FIFO at the note's lifecycle record (.ql): reading, setting dates
    // and deleting all end.
    let ql = find_suffix(&w.vault.join("d"), ".ql");
    mkfifo(&ql);
    let m = w.mount(&[]);
    let note = m.path("note.md");
    let mut c = std::process::Command::new("cat");
    c.arg(&note);
    bounded(c, "cat");
    let mut c = w.cmd();
    c.args(["expire", note.to_str().unwrap()]);
    let o = bounded(c, "quire expire");
    assert!(!o.status.success(), "a FIFO read as dates");
    let mut c = std::process::Command::new("rm");
    c.arg("-f").arg(&note);
    bounded(c, "rm");
    m.unmount();

    // A 60 GB sparse history stream and audit log.
    std::fs::remove_file(&ql).unwrap();
    let streams = |d: &Path| -> Vec<std::path::PathBuf> {
        walk_all(d)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".qh"))
            .collect()
    };
    let before = streams(&w.vault.join("d"));
    let m = w.mount(&[]);
    std::fs::write(m.path("other.md"), "one\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(m.path("other.md"), "two\n").unwrap();
    m.unmount();
    // The stream of other.md: the one that is new.
    let qh = streams(&w.vault.join("d"))
        .into_iter()
        .find(|p| !before.contains(p))
        .expect("other.md has a history stream");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&qh)
        .unwrap()
        .set_len(60 << 30)
        .unwrap();
    let m = w.mount(&[]);
    let mut c = w.cmd();
    c.args(["log", m.path("other.md").to_str().unwrap()]);
    let o = bounded(c, "quire log");
    assert!(!o.status.success());
    assert!(
        o.status.code().is_some(),
        "killed by a signal: {:?}",
        o.status
    );
    // The daemon is alive and the note reads.
    assert_eq!(
        std::fs::read_to_string(m.path("other.md")).unwrap(),
        "two\n"
    );
    m.unmount();

    let audit = w.audit_chain();
    let len = std::fs::metadata(&audit).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&audit)
        .unwrap()
        .set_len(60 << 30)
        .unwrap();
    let mut c = w.cmd();
    c.args(["audit", "--verify", "--vault", &v, "--password-file", &pw]);
    let o = bounded(c, "quire audit --verify");
    assert!(o.status.code().is_some_and(|c| c != 0), "{:?}", o.status);
    assert!(stderr(&o).contains("more than it can be"), "{}", stderr(&o));
    let o = w.mount_output(&[]);
    assert!(o.status.code().is_some_and(|c| c != 0), "{:?}", o.status);
    assert!(stderr(&o).contains("more than it can be"), "{}", stderr(&o));
    assert!(!w.is_mounted());
    // Cut back to its real length, the vault mounts again.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&audit)
        .unwrap()
        .set_len(len)
        .unwrap();
    let m = w.mount(&[]);
    m.unmount();
}

/// Issue 11.8: a frame whose length runs past the end of a history stream
/// or of the audit log is tampering when no interrupted write explains it
/// (a crash's is cut when the journal is replayed, tested in
/// `vault::journal`): `quire check` and `quire audit --verify` report it,
/// and `--verify` leaves the log as it found it.
#[test]
fn frames_running_past_the_end_are_reported_and_verify_changes_nothing() {
    let w = World::new();
    w.init();
    let v = w.vault.to_str().unwrap().to_string();
    let pw = w.pwfile.to_str().unwrap().to_string();
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("n.md"), "one\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(m.path("n.md"), "two\n").unwrap();
        m.unmount();
    }
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // A frame header saying 200 bytes, with 20 after it.
    let mut tail = 200u32.to_be_bytes().to_vec();
    tail.push(1);
    tail.extend([0x5a; 20]);
    let append = |p: &Path| {
        let mut b = std::fs::read(p).unwrap();
        b.extend(&tail);
        std::fs::write(p, b).unwrap();
    };
    let audit = w.audit_chain();
    append(&audit);
    let before = std::fs::read(&audit).unwrap();
    let o = w.run(&["audit", "--verify", "--vault", &v, "--password-file", &pw]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(24), "{out}");
    assert!(out.contains("no interrupted write explains"), "{out}");
    assert_eq!(
        std::fs::read(&audit).unwrap(),
        before,
        "--verify changed the log"
    );

    let qh = find_suffix(&w.vault.join("d"), ".qh");
    append(&qh);
    let out = w.check_problems("");
    assert!(out.contains("no interrupted save explains"), "{out}");
}

/// Issue 11.5: a config whose feature flags were cleared or whose
/// password cost was lowered since this machine last opened the vault is
/// refused as modified, not reported as a wrong password.
#[test]
fn a_weakened_config_is_called_modified_not_a_wrong_password() {
    use sha2::Digest;
    let w = World::new();
    let rk = w.dir.path().join("rk");
    let o = w.run(&[
        "init",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
        "--kdf-memory",
        "16",
        "--kdf-passes",
        "2",
        "--recovery-key-out",
        rk.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    w.mount(&[]).unmount();
    let conf = w.vault.join("quire.conf");
    let good = std::fs::read(&conf).unwrap();
    let forge = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good[..good.len() - 32].to_vec();
        edit(&mut b);
        let sum = sha2::Sha256::digest(&b);
        b.extend_from_slice(&sum);
        std::fs::write(&conf, b).unwrap();
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    // The lifecycle flag cleared (an older reader would then ignore
    // retention dates).
    forge(&|b| b[13] &= !0x20);
    let o = w.mount_output(&[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("quire.conf was modified"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("cleared"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("wrong password"), "{}", stderr(&o));
    // The password's Argon2 memory lowered from 16 to 8 MiB.
    forge(&|b| b[32..36].copy_from_slice(&8192u32.to_be_bytes()));
    let o = w.mount_output(&[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cost was lowered"), "{}", stderr(&o));
    // Put back: it mounts.
    std::fs::write(&conf, &good).unwrap();
    w.mount(&[]).unmount();
}

/// Swaps two host files (a rename through a third name).
/// `quire check` of the sealed vault finds nothing (`what`: the step).
fn check_clean(w: &World, what: &str) {
    let o = w.check_sealed();
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn swap(a: &Path, b: &Path) {
    let t = a.with_extension("swap");
    std::fs::rename(a, &t).unwrap();
    std::fs::rename(b, a).unwrap();
    std::fs::rename(&t, b).unwrap();
}

fn py(script: &str, args: &[&Path]) -> String {
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Issue 11.7: history streams, lifecycle records and xattr values are
/// bound to their note: one moved or copied onto another note on the
/// host is refused (EIO, named by `quire check`), while the moves Quire
/// makes itself (rename, trash, restore, folder removal) keep them valid.
#[test]
fn sealed_records_moved_onto_another_note_are_refused() {
    let w = World::new();
    w.init();
    let v = w.vault.to_str().unwrap().to_string();
    let pw = w.pwfile.to_str().unwrap().to_string();
    {
        let m = w.mount(&[]);
        for (n, t) in [("a.md", "alpha"), ("b.md", "bravo")] {
            std::fs::write(m.path(n), format!("{t} one\n")).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            std::fs::write(m.path(n), format!("{t} two\n")).unwrap();
        }
        let setx = "import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode())";
        for (n, e, c) in [
            ("a.md", "2090-01-01", "red"),
            ("b.md", "2091-01-01", "blue"),
        ] {
            let p = m.path(n);
            let o = w.run(&["expire", p.to_str().unwrap(), e]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            py(setx, &[&p, Path::new("user.color"), Path::new(c)]);
        }
        m.unmount();
    }
    let clean = |what: &str| check_clean(&w, what);
    clean("as written");
    let d = w.vault.join("d");
    let qh: Vec<_> = walk_all(&d)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".qh"))
        .collect();
    assert_eq!(qh.len(), 2, "{qh:?}");
    let stem = |p: &Path| p.with_extension("");
    let (fa, fb) = (stem(&qh[0]), stem(&qh[1]));
    let ql = |p: &Path| p.with_extension("ql");

    // A history stream moved onto the other note.
    swap(&qh[0], &qh[1]);
    let out = w.check_problems("");
    assert_eq!(out.matches("belongs to another note").count(), 2, "{out}");
    {
        let m = w.mount(&["--read-only"]);
        let e = std::fs::read_dir(m.path(".history/a.md")).map(|r| r.count());
        let e = e.and_then(|_| std::fs::read(m.path(".history/a.md/v1")));
        assert!(e.is_err(), "a swapped history was shown");
        m.unmount();
    }
    swap(&qh[0], &qh[1]);
    clean("streams put back");

    // Lifecycle records swapped: both refused, the notes undeletable.
    swap(&ql(&fa), &ql(&fb));
    let out = w.check_problems("");
    assert_eq!(
        out.matches("expiry/retention record failed").count(),
        2,
        "{out}"
    );
    swap(&ql(&fa), &ql(&fb));
    clean("records put back");

    // One note's attribute file (FORMAT §7.1) copied over the other's.
    let attrs: Vec<_> = std::fs::read_dir(w.vault.join("d/quire.xattrs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(attrs.len(), 2, "{attrs:?}");
    let saved = std::fs::read(&attrs[1]).unwrap();
    std::fs::copy(&attrs[0], &attrs[1]).unwrap();
    let out = w.check_problems("");
    assert!(out.contains("copied from another file"), "{out}");
    {
        let m = w.mount(&[]);
        let r = "import os,sys\nfor n in sorted(os.listdir(sys.argv[1])):\n try: print(n, os.getxattr(os.path.join(sys.argv[1], n), 'user.color').decode())\n except OSError as e: print(n, e.errno)";
        let seen = py(r, &[&w.mnt]);
        assert!(seen.contains(&format!(" {}", libc::EIO)), "{seen}");
        m.unmount();
    }
    std::fs::write(&attrs[1], saved).unwrap();
    clean("xattr put back");

    // Quire's own moves keep everything bound: rename, into a folder,
    // to the trash and back, and a folder removed with an orphan stream.
    {
        let m = w.mount(&[]);
        std::fs::create_dir(m.path("f")).unwrap();
        std::fs::rename(m.path("a.md"), m.path("f/c.md")).unwrap();
        std::fs::remove_file(m.path("b.md")).unwrap();
        m.unmount();
    }
    clean("after rename and delete");
    {
        let m = w.mount(&[]);
        let vs = std::fs::read_dir(m.path(".history/f/c.md"))
            .unwrap()
            .count();
        assert!(vs >= 2, "versions of the renamed note: {vs}");
        let o = w.run(&["trash", "restore", "b.md"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let vs = std::fs::read_dir(m.path(".history/b.md")).unwrap().count();
        assert!(vs >= 2, "versions of the restored note: {vs}");
        // A history left with its path (vim's x.md → x.md~), then the
        // folder removed: the orphan stream goes to the trash.
        std::fs::write(m.path("f/x.md"), "x1").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(m.path("f/x.md"), "x2").unwrap();
        std::fs::rename(m.path("f/x.md"), m.path("f/x.md~")).unwrap();
        std::fs::remove_file(m.path("f/x.md~")).unwrap();
        std::fs::remove_file(m.path("f/c.md")).unwrap();
        std::fs::remove_dir(m.path("f")).unwrap();
        m.unmount();
    }
    clean("after restore and rmdir");
    let o = w.run(&["trash", "--vault", &v, "--password-file", &pw, "--json"]);
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(listing.contains("f/x.md"), "the orphan history: {listing}");
}

/// Content header and block slot sizes with the block MAC (FORMAT §4.2).
const HDR: u64 = 78;
const SLOT: u64 = 4124;

/// A note of a little over three blocks.
fn three_block_note() -> String {
    (0..800)
        .map(|i| format!("line {i} of the note\n"))
        .collect()
}

/// The host file of the only note of a vault.
fn only_note(w: &World) -> std::path::PathBuf {
    let files: Vec<_> = walk_all(&w.vault.join("d"))
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            !n.contains('.') && p.is_file()
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// Issue 11.7: an older copy of a block (or of a slot a punch made a hole)
/// spliced back at its own position authenticates on its own; the block
/// MAC in the header (FORMAT §4.2) catches it: `quire check` names the
/// note and reads fail with EIO. Cutting a note to its header is caught
/// the same way.
#[test]
fn an_older_block_spliced_back_in_place_is_detected() {
    need("fallocate");
    let w = World::new();
    w.init();
    let text = three_block_note();
    assert!(text.len() > 3 * 4096);
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("n.md"), &text).unwrap();
        m.unmount();
    }
    let host = only_note(&w);
    let old = std::fs::read(&host).unwrap();
    {
        let m = w.mount(&[]);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(m.path("n.md"))
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"CHANGED", 5000).unwrap();
        drop(f);
        // Block 2 becomes a hole (punched), before the final block.
        let o = std::process::Command::new("fallocate")
            .args(["-p", "-o", "8192", "-l", "4096"])
            .arg(m.path("n.md"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        m.unmount();
    }
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let new = std::fs::read(&host).unwrap();
    let slot = |n: u64| (HDR + n * SLOT) as usize..(HDR + (n + 1) * SLOT) as usize;
    let refused = |what: &str, bytes: &[u8]| {
        std::fs::write(&host, bytes).unwrap();
        let out = w.check_problems(what);
        assert!(out.contains("n.md"), "{what}: {out}");
        let m = w.mount(&["--read-only"]);
        let e = std::fs::read(m.path("n.md")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "{what}");
        m.unmount();
    };
    for (what, n) in [("the old block 1", 1), ("the data punched from block 2", 2)] {
        let mut b = new.clone();
        b[slot(n)].copy_from_slice(&old[slot(n)]);
        refused(what, &b);
    }
    refused("cut to its header", &new[..HDR as usize]);
    std::fs::write(&host, &new).unwrap();
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let m = w.mount(&["--read-only"]);
    let mut want = text.into_bytes();
    want[5000..5007].copy_from_slice(b"CHANGED");
    want[8192..12288].fill(0);
    assert!(std::fs::read(m.path("n.md")).unwrap() == want);
    m.unmount();
}

/// Issue 11.7: a symlink's target is bound to its name by its binding
/// record (FORMAT §6.1): a host target copied from another symlink, a
/// record copied from another name, or a missing record read as EIO and
/// `quire check` names the symlink; the changes Quire makes itself (rename
/// within and across folders, over another symlink, exchange, hard link,
/// delete, folder removal) keep every symlink readable and inode-stable.
#[test]
fn symlink_targets_are_bound_to_their_name() {
    let w = World::new();
    w.init();
    {
        let m = w.mount(&[]);
        std::fs::create_dir(m.path("d")).unwrap();
        std::os::unix::fs::symlink("note.md", m.path("a")).unwrap();
        std::os::unix::fs::symlink("../elsewhere/x", m.path("b")).unwrap();
        std::os::unix::fs::symlink("third", m.path("d/c")).unwrap();
        m.unmount();
    }
    let clean = |what: &str| check_clean(&w, what);
    let refused = |what: &str, says: &str| {
        let out = w.check_problems(what);
        assert!(
            out.contains(says) && out.contains("symlink"),
            "{what}: {out}"
        );
    };
    clean("as written");
    let links: Vec<_> = walk_all(&w.vault.join("d"))
        .into_iter()
        .filter(|p| is_symlink(p))
        .collect();
    assert_eq!(links.len(), 3, "{links:?}");
    let qs = |p: &Path| {
        let mut s = p.as_os_str().to_owned();
        s.push(".qs");
        std::path::PathBuf::from(s)
    };
    for l in &links {
        assert!(qs(l).is_file(), "no binding record for {l:?}");
    }
    let top: Vec<_> = links
        .iter()
        .filter(|p| p.parent() == Some(w.vault.join("d").as_path()))
        .cloned()
        .collect();
    assert_eq!(top.len(), 2);
    let (la, lb) = (&top[0], &top[1]);
    let ta = std::fs::read_link(la).unwrap();
    let tb = std::fs::read_link(lb).unwrap();

    // The other symlink's host target copied in: refused, through the
    // mount too.
    std::fs::remove_file(la).unwrap();
    std::os::unix::fs::symlink(&tb, la).unwrap();
    refused(
        "target copied from another symlink",
        "is not the one its binding record names",
    );
    {
        let m = w.mount(&["--read-only"]);
        let ok = ["a", "b"]
            .iter()
            .filter(|n| std::fs::read_link(m.path(n)).is_ok())
            .count();
        assert_eq!(ok, 1, "a copied target was shown");
        let e = ["a", "b"]
            .iter()
            .filter_map(|n| std::fs::read_link(m.path(n)).err())
            .next()
            .unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        m.unmount();
    }
    std::fs::remove_file(la).unwrap();
    std::os::unix::fs::symlink(&ta, la).unwrap();
    clean("target put back");

    // Both target and record copied from the other name: refused.
    let saved = std::fs::read(qs(la)).unwrap();
    std::fs::remove_file(la).unwrap();
    std::os::unix::fs::symlink(&tb, la).unwrap();
    std::fs::copy(qs(lb), qs(la)).unwrap();
    refused(
        "target and record copied",
        "binding record fails authentication",
    );
    // The record missing: refused.
    std::fs::remove_file(la).unwrap();
    std::os::unix::fs::symlink(&ta, la).unwrap();
    std::fs::remove_file(qs(la)).unwrap();
    refused("record removed", "has no binding record");
    std::fs::write(qs(la), &saved).unwrap();
    clean("record put back");

    // Quire's own changes keep every symlink bound and its inode stable.
    {
        let m = w.mount(&[]);
        let ino = |p: &Path| std::fs::symlink_metadata(p).unwrap().ino();
        let i = ino(&m.path("a"));
        std::fs::rename(m.path("a"), m.path("a2")).unwrap();
        assert_eq!(ino(&m.path("a2")), i, "rename kept the inode");
        std::fs::rename(m.path("a2"), m.path("d/a3")).unwrap();
        assert_eq!(ino(&m.path("d/a3")), i);
        std::fs::hard_link(m.path("d/a3"), m.path("hard")).unwrap();
        assert_eq!(ino(&m.path("hard")), i);
        // Over another symlink, then an exchange of two.
        std::fs::rename(m.path("b"), m.path("d/c")).unwrap();
        exchange(&m.path("d/c"), &m.path("hard")).unwrap();
        assert_eq!(
            std::fs::read_link(m.path("hard")).unwrap(),
            Path::new("../elsewhere/x")
        );
        assert_eq!(
            std::fs::read_link(m.path("d/c")).unwrap(),
            Path::new("note.md")
        );
        assert_eq!(
            std::fs::read_link(m.path("d/a3")).unwrap(),
            Path::new("note.md")
        );
        // A hard-linked symlink keeps reading after the name it was
        // created (and last looked up) by is removed, and can be linked
        // again from its other name.
        std::os::unix::fs::symlink("kept", m.path("s1")).unwrap();
        std::fs::hard_link(m.path("s1"), m.path("s2")).unwrap();
        std::fs::remove_file(m.path("s1")).unwrap();
        assert_eq!(std::fs::read_link(m.path("s2")).unwrap(), Path::new("kept"));
        std::fs::hard_link(m.path("s2"), m.path("s3")).unwrap();
        std::fs::remove_file(m.path("s2")).unwrap();
        assert_eq!(std::fs::read_link(m.path("s3")).unwrap(), Path::new("kept"));
        // A note renamed over a symlink, and a symlink deleted.
        std::fs::write(m.path("n.md"), "note\n").unwrap();
        std::fs::rename(m.path("n.md"), m.path("d/a3")).unwrap();
        std::fs::create_dir(m.path("e")).unwrap();
        std::os::unix::fs::symlink("gone", m.path("e/l")).unwrap();
        std::fs::remove_file(m.path("e/l")).unwrap();
        std::fs::remove_dir(m.path("e")).unwrap();
        m.unmount();
    }
    clean("after Quire's own changes");
    let records = walk_all(&w.vault.join("d"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".qs"))
        .count();
    assert_eq!(records, 3, "one record per symlink name, none left over");

    // A record whose symlink was never made (a crash between the two)
    // does not keep its folder from being removed.
    {
        let m = w.mount(&[]);
        std::fs::create_dir(m.path("g")).unwrap();
        std::os::unix::fs::symlink("x", m.path("g/l")).unwrap();
        m.unmount();
    }
    let orphan = walk_all(&w.vault.join("d"))
        .into_iter()
        .find(|p| {
            is_symlink(p) && qs(p).is_file() && {
                let dir = p.parent().unwrap();
                std::fs::read_dir(dir).unwrap().count() == 3
            }
        })
        .expect("the symlink in g");
    std::fs::remove_file(&orphan).unwrap();
    {
        let m = w.mount(&[]);
        std::fs::remove_dir(m.path("g")).unwrap();
        m.unmount();
    }
    assert!(!qs(&orphan).exists());
    clean("after the folder with an orphan record went");
}

/// Issue 22.2: a large file (more than one group of 1,024 slots, 4 MiB) is
/// verified group by group as it is read, from the group sums this device
/// keeps (sealed, bound to the header, in `sums/` of its folder): after a
/// mount its first block reads without a pass over the whole file. Every
/// splice is still refused, where it is read; without the kept sums (or
/// with sums damaged, or another file's) the file is verified whole again
/// at its first open. Writes, a truncate and an extension keep the sums
/// current across mounts.
#[test]
fn a_large_file_is_verified_group_by_group_and_every_splice_is_caught() {
    let w = World::new();
    w.init();
    const MIB: usize = 1 << 20;
    let mut want: Vec<u8> = (0..13 * MIB + 1000).map(|i| (i * 7 % 251) as u8).collect();
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("big.bin"), &want).unwrap();
        std::fs::write(m.path("other.bin"), &want[..9 * MIB]).unwrap();
        m.unmount();
    }
    let sums = w.local().join("sums");
    let kept = || -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&sums)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(kept().len(), 2, "one record per large file: {:?}", kept());
    let host = walk_all(&w.vault.join("d"))
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            !n.contains('.') && p.is_file()
        })
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let old = std::fs::read(&host).unwrap();
    // Changes in groups 0 and 2, kept current across a mount.
    {
        let m = w.mount(&[]);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(m.path("big.bin"))
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"CHANGED", 100).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"CHANGED", 9 * MIB as u64).unwrap();
        drop(f);
        m.unmount();
    }
    want[100..107].copy_from_slice(b"CHANGED");
    want[9 * MIB..9 * MIB + 7].copy_from_slice(b"CHANGED");
    let new = std::fs::read(&host).unwrap();
    let read_at = |m: &Mounted, off: u64, len: usize| -> std::io::Result<Vec<u8>> {
        let f = std::fs::File::open(m.path("big.bin"))?;
        let mut b = vec![0u8; len];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, off)?;
        Ok(b)
    };
    {
        let m = w.mount(&["--read-only"]);
        assert!(std::fs::read(m.path("big.bin")).unwrap() == want);
        m.unmount();
    }
    // The old slot of the block at 9 MiB (group 2) spliced back.
    let slot_of = |off: usize| {
        let n = (off / 4096) as u64;
        (HDR + n * SLOT) as usize..(HDR + (n + 1) * SLOT) as usize
    };
    let mut spliced = new.clone();
    let s9 = slot_of(9 * MIB);
    spliced[s9.clone()].copy_from_slice(&old[s9]);
    std::fs::write(&host, &spliced).unwrap();
    {
        let m = w.mount(&["--read-only"]);
        // Group 0 reads (it is the one last written), group 2 does not.
        assert!(read_at(&m, 0, 4096).unwrap()[..] == want[..4096]);
        let e = read_at(&m, 9 * MIB as u64, 4096).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
        let e = std::fs::read(m.path("big.bin")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
        m.unmount();
    }
    let out = w.check_problems("a block spliced into group 2");
    assert!(out.contains("big.bin"), "{out}");
    // Without the kept sums, or with them damaged, or with another file's
    // record under its name: verified whole at the first open, so even
    // its first block is refused.
    let records = kept();
    let saved: Vec<Vec<u8>> = records.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let whole = |what: &str| {
        let m = w.mount(&["--read-only"]);
        let e = read_at(&m, 0, 4096).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "{what}: {e}");
        m.unmount();
    };
    for r in &records {
        std::fs::remove_file(r).unwrap();
    }
    whole("no kept sums");
    for (r, b) in records.iter().zip(&saved) {
        let mut b = b.clone();
        let i = b.len() - 20;
        b[i] ^= 1;
        std::fs::write(r, b).unwrap();
    }
    whole("damaged sums");
    std::fs::write(&records[0], &saved[1]).unwrap();
    std::fs::write(&records[1], &saved[0]).unwrap();
    whole("another file's sums");
    for (r, b) in records.iter().zip(&saved) {
        std::fs::write(r, b).unwrap();
    }
    // Put back, the file reads whole; a truncate into group 1 and an
    // extension to group 4 keep the sums current.
    std::fs::write(&host, &new).unwrap();
    {
        let m = w.mount(&[]);
        assert!(std::fs::read(m.path("big.bin")).unwrap() == want);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(m.path("big.bin"))
            .unwrap();
        f.set_len(5 * MIB as u64 + 3).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"END", 17 * MIB as u64).unwrap();
        drop(f);
        m.unmount();
    }
    want.truncate(5 * MIB + 3);
    want.resize(17 * MIB, 0);
    want.extend_from_slice(b"END");
    {
        let m = w.mount(&["--read-only"]);
        assert!(read_at(&m, 17 * MIB as u64, 3).unwrap() == b"END");
        assert!(std::fs::read(m.path("big.bin")).unwrap() == want);
        m.unmount();
    }
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // No plaintext in the kept sums.
    for r in kept() {
        let b = std::fs::read(&r).unwrap();
        assert!(b.starts_with(b"QUIREGMS"), "{r:?}");
        assert!(!b.windows(7).any(|x| x == b"CHANGED"));
    }
}

/// A file whose MAC this mount verified reopens without a full pass while
/// its host file is as Quire left it (for a node the kernel forgot, the
/// MAC is parked), but a block spliced into it on the host meanwhile
/// changes its ctime, so the next open verifies again and refuses it:
/// for a forgotten file and for one the daemon still holds (Quire's own
/// chmod, xattr, utime and link in between are not taken for tampering).
#[test]
fn a_block_spliced_on_the_host_while_mounted_is_refused_at_the_next_open() {
    if !is_root() {
        eprintln!("skipped: dropping the kernel's inode cache needs root");
        return;
    }
    let w = World::new();
    w.init();
    let text = three_block_note();
    let m = w.mount(&[]);
    std::fs::write(m.path("n.md"), &text).unwrap();
    let host = only_note(&w);
    let old = std::fs::read(&host).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(m.path("n.md"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"CHANGED", 5000).unwrap();
    drop(f);
    let forget = || {
        // Dentries and inodes: the kernel forgets the mount's nodes.
        std::fs::write("/proc/sys/vm/drop_caches", "2").unwrap();
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut expected = text.clone().into_bytes();
    expected[5000..5007].copy_from_slice(b"CHANGED");
    assert!(std::fs::read(m.path("n.md")).unwrap() == expected);
    // Forgotten and unchanged: reads back (from the parked MAC).
    forget();
    assert!(std::fs::read(m.path("n.md")).unwrap() == expected);
    // Forgotten, then the old block 1 spliced back on the host.
    forget();
    let slot = (HDR + SLOT) as usize..(HDR + 2 * SLOT) as usize;
    let h = std::fs::OpenOptions::new().write(true).open(&host).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&h, &old[slot.clone()], slot.start as u64).unwrap();
    drop(h);
    let e = std::fs::read(m.path("n.md")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    m.unmount();

    // A file the daemon still holds (open elsewhere): Quire's own changes
    // to its inode keep it readable; a block spliced on the host is
    // refused at the next open.
    let m = w.mount(&[]);
    std::fs::write(m.path("k.md"), &text).unwrap();
    let kept = std::fs::File::open(m.path("k.md")).unwrap();
    let k = std::fs::OpenOptions::new()
        .write(true)
        .open(m.path("k.md"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&k, b"AGAIN", 100).unwrap();
    drop(k);
    let k_host = walk_all(&w.vault.join("d"))
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            !n.contains('.') && p.is_file() && *p != host
        })
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let k_old = std::fs::read(&k_host).unwrap();
    let k = std::fs::OpenOptions::new()
        .write(true)
        .open(m.path("k.md"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&k, b"THIRD", 5000).unwrap();
    drop(k);
    let p = m.path("k.md");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    py(
        "import os,sys; os.setxattr(sys.argv[1], 'user.tag', b'x'); os.utime(sys.argv[1], (1, 2))",
        &[&p],
    );
    std::fs::hard_link(&p, m.path("k2.md")).unwrap();
    assert!(
        std::fs::read(&p).is_ok(),
        "Quire's own changes are not tampering"
    );
    let h = std::fs::OpenOptions::new()
        .write(true)
        .open(&k_host)
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&h, &k_old[slot.clone()], slot.start as u64).unwrap();
    drop(h);
    let e = std::fs::read(&p).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    drop(kept);
    m.unmount();
}

/// Issue 17.2: RENAME_EXCHANGE between a retained note and a decoy would
/// move the retained text under a name its retention does not follow;
/// it is refused while either side is retained, and an exchange of plain
/// notes is audited.
#[test]
fn an_exchange_cannot_carry_retained_text_away_from_its_retention() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let kept = m.path("kept.md");
    let decoy = m.path("decoy.md");
    std::fs::write(&kept, "must stay\n").unwrap();
    std::fs::write(&decoy, "nothing\n").unwrap();
    let o = w.run(&["retain", kept.to_str().unwrap(), "+30d"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (a, b) in [(&kept, &decoy), (&decoy, &kept)] {
        let e = exchange(a, b).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    }
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "must stay\n");
    assert_eq!(std::fs::read_to_string(&decoy).unwrap(), "nothing\n");
    // Retained and only seconds old: rm is refused, never "for good".
    let young = m.path("young.md");
    std::fs::write(&young, "fresh and kept\n").unwrap();
    let o = w.run(&["retain", young.to_str().unwrap(), "+30d"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::remove_file(&young).is_err());
    assert_eq!(std::fs::read_to_string(&young).unwrap(), "fresh and kept\n");
    // The hard-link trick: a second name for the retained text, the
    // retained name replaced, the second name deleted and the trash
    // emptied: the text is still in the retained note's history.
    std::fs::hard_link(&kept, m.path("link.md")).unwrap();
    std::fs::write(m.path("new.md"), "replacement\n").unwrap();
    std::fs::rename(m.path("new.md"), &kept).unwrap();
    std::fs::remove_file(m.path("link.md")).unwrap();
    let o = w.run(&["trash", "empty", "--yes"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = w.run(&["show", kept.to_str().unwrap(), "--version", "1"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "must stay\n", "{o:?}");
    assert!(std::fs::remove_file(&kept).is_err());
    // Two plain notes may swap, and the swap is in the audit log.
    let other = m.path("other.md");
    std::fs::write(&other, "other\n").unwrap();
    exchange(&decoy, &other).unwrap();
    assert_eq!(std::fs::read_to_string(&decoy).unwrap(), "other\n");
    let o = w.run(&["audit", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(
        log.lines()
            .any(|l| l.contains("exchanged") && l.contains("decoy.md")),
        "{log}"
    );
}

/// Issue 17.3: a symlink planted at any temporary name Quire writes in the
/// vault folder (the index's `<file>.qtmp`, the trash settings' and a
/// date record's temporaries, an atomic write's `.<name>.tmp…`) is never
/// written through: the file it points to keeps its bytes.
#[test]
fn symlinks_planted_at_temporary_names_are_never_written_through() {
    let w = World::new();
    w.init();
    let victim = w.dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    // First mount: the index folder and the trash exist from here on.
    let m = w.mount(&[]);
    std::fs::write(m.path("a.md"), "alpha\n").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    m.unmount();
    let index = w.local().join("index");
    let mut planted = vec![];
    let mut names: Vec<String> = std::fs::read_dir(&index)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.extend(["meta.json".into(), ".managed.json".into()]);
    for n in names {
        planted.push(index.join(format!("{n}.qtmp")));
    }
    let trash = w.vault.join("d/quire.trash");
    std::fs::create_dir_all(&trash).unwrap();
    planted.push(trash.join("settings.tmp"));
    planted.push(w.vault.join(".quire.conf.tmp"));
    for p in &planted {
        let _ = std::fs::remove_file(p);
        std::os::unix::fs::symlink(&victim, p).unwrap();
    }
    let m = w.mount(&[]);
    for i in 0..3 {
        std::fs::write(m.path(&format!("n{i}.md")), format!("note {i}\n")).unwrap();
    }
    let o = w.run(&["retain", m.path("a.md").to_str().unwrap(), "+10d"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = w.run(&["trash", "keep", "30"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_secs(3));
    let o = w.run(&["search", "note"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    m.unmount();
    let o = w.run(&[
        "passwd",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
        "--new-password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

/// Issue 17.5: a small note cut on the host inside its only block (header
/// plus 12..28 bytes: the nonce survives, so the block MAC still matches)
/// is tampering: EIO at open, never an empty note, and a `check` problem.
#[test]
fn a_small_note_cut_inside_its_block_is_refused_not_empty() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("small.md"), "a short session note\n").unwrap();
    m.unmount();
    let host = only_note(&w);
    let orig = std::fs::read(&host).unwrap();
    let hdr = 78;
    for cut in [12usize, 20, 28] {
        std::fs::write(&host, &orig[..hdr + cut]).unwrap();
        let m = w.mount(&[]);
        let e = std::fs::read(m.path("small.md")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "cut {cut}: {e}");
        assert!(
            std::fs::OpenOptions::new()
                .write(true)
                .open(m.path("small.md"))
                .is_err()
        );
        m.unmount();
        let out = w.check_problems(&format!("cut {cut}"));
        assert!(out.contains("small.md"), "{out}");
    }
    std::fs::write(&host, &orig).unwrap();
    let m = w.mount(&[]);
    assert_eq!(
        std::fs::read_to_string(m.path("small.md")).unwrap(),
        "a short session note\n"
    );
}

/// Issue 17.1: a vault put back from an older copy and then used a few
/// times has a log longer than the remembered head, but not the chain it
/// remembers: the alarm stays at every mount, `check` and `--verify`
/// (none of them moves the head) until `quire audit --accept`.
#[test]
fn a_rolled_back_audit_log_stays_an_alarm_until_accepted() {
    let w = World::new();
    w.init();
    let pw = w.pwfile.to_str().unwrap().to_string();
    let vault = w.vault.to_str().unwrap().to_string();
    let verify = || {
        w.run(&[
            "audit",
            "--verify",
            "--vault",
            &vault,
            "--password-file",
            &pw,
        ])
    };
    let edit = |i: usize| {
        let o = w.mount_output(&[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let m = Mounted::adopt(&w);
        std::fs::write(m.path(&format!("n{i}.md")), format!("note {i}\n")).unwrap();
        m.unmount();
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    edit(0);
    let aside = w.dir.path().join("aside");
    let cp = |from: &Path, to: &Path| {
        let o = std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .output()
            .unwrap();
        assert!(o.status.success());
    };
    cp(&w.vault, &aside);
    for i in 1..=2 {
        assert!(!edit(i).contains("BROKEN"));
    }
    assert_eq!(verify().status.code(), Some(0));
    std::fs::remove_dir_all(&w.vault).unwrap();
    cp(&aside, &w.vault);
    for i in 3..=5 {
        let err = edit(i);
        assert!(err.contains("audit log is BROKEN"), "mount {i} said: {err}");
        assert!(err.contains("quire audit --accept"), "{err}");
    }
    for _ in 0..2 {
        let o = verify();
        assert_eq!(
            o.status.code(),
            Some(24),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        // The count it gives is of records that verify, not "before" the
        // record named (issue 16.7).
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("record(s) authenticate and chain."), "{out}");
        assert!(!out.contains("records before it"), "{out}");
        let out = w.check_problems("rolled-back log");
        assert!(out.contains("audit/"), "{out}");
    }
    let o = w.run(&[
        "audit",
        "--accept",
        "--vault",
        &vault,
        "--password-file",
        &pw,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = verify();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!edit(6).contains("BROKEN"));
}

/// Issue 17.4: a password slot's Argon2 cost raised in quire.conf (memory,
/// passes or lanes) is refused before Argon2 runs, with exit 12 and
/// "cost raised": above what this machine remembers, and above the
/// ceiling on a machine that remembers nothing.
#[test]
fn a_raised_key_derivation_cost_is_refused_before_it_is_tried() {
    use sha2::Digest;
    let w = World::new();
    w.init();
    w.mount(&[]).unmount();
    let conf = w.vault.join("quire.conf");
    let good = std::fs::read(&conf).unwrap();
    let forge = |at: usize, v: u32| {
        let mut b = good[..good.len() - 32].to_vec();
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        let sum = sha2::Sha256::digest(&b);
        b.extend_from_slice(&sum);
        std::fs::write(&conf, b).unwrap();
    };
    let check = |home: &Path| {
        let mut c = w.cmd();
        c.env("HOME", home)
            .env("XDG_STATE_HOME", home.join("state"))
            .args(["check", w.vault.to_str().unwrap(), "--password-file"])
            .arg(&w.pwfile);
        bounded(c, "quire check on a raised cost")
    };
    let elsewhere = w.dir.path().join("new-machine");
    std::fs::create_dir(&elsewhere).unwrap();
    let home = w.dir.path().to_path_buf();
    // Memory 8 MiB -> 16 MiB (under the ceiling, over what was seen here),
    // then 4 GiB; passes 1 -> 64; lanes 4 -> 64.
    for (what, at, v, remembered_only) in [
        ("memory", 32, 16 * 1024, true),
        ("memory", 32, 4 * 1024 * 1024, false),
        ("passes", 36, 64, false),
        ("lanes", 40, 64, false),
    ] {
        forge(at, v);
        let homes: Vec<&Path> = if remembered_only {
            vec![&home]
        } else {
            vec![&home, &elsewhere]
        };
        for h in homes {
            // The world's HOME keeps its state in ~/.local/state.
            let o = if h == home {
                w.check_sealed()
            } else {
                check(h)
            };
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(12), "{what} {v}: {err}");
            assert!(err.contains("quire.conf was modified"), "{err}");
            assert!(err.contains("cost raised"), "{err}");
            assert!(!err.contains("wrong password"), "{err}");
        }
    }
    std::fs::write(&conf, &good).unwrap();
    w.mount(&[]).unmount();
}

/// Issue 17.9: a recovery key file that cannot be created stops `init`
/// before the vault is made: never a vault whose recovery key is lost.
#[test]
fn init_makes_nothing_when_the_recovery_key_cannot_be_written() {
    let w = World::new();
    let o = w.run(&[
        "init",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
        "--kdf-memory",
        "8",
        "--kdf-passes",
        "1",
        "--recovery-key-out",
        w.dir.path().join("no/such/folder/rk").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("recovery key") && err.contains("nothing was created"),
        "{err}"
    );
    assert!(!w.vault.join("quire.conf").exists());
    // An existing file is not overwritten either.
    let rk = w.dir.path().join("rk");
    std::fs::write(&rk, "mine\n").unwrap();
    let o = w.run(&[
        "init",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
        "--recovery-key-out",
        rk.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read_to_string(&rk).unwrap(), "mine\n");
    assert!(!w.vault.join("quire.conf").exists());
}

/// Issue 17.10: a FIFO or a 60 GB sparse file planted at quire.log (or
/// quire.undo) is a problem `check` names, not a clean exit 0.
#[test]
fn check_names_planted_files_at_the_log_and_journal() {
    let w = World::new();
    w.init();
    w.mount(&[]).unmount();
    // quire.log: a problem in the report (exit 21).
    let p = w.local().join("quire.log");
    let _ = std::fs::remove_file(&p);
    mkfifo(&p);
    let out = w.check_problems("FIFO at quire.log");
    assert!(out.contains("quire.log") && out.contains("FIFO"), "{out}");
    std::fs::remove_file(&p).unwrap();
    std::fs::File::create(&p)
        .unwrap()
        .set_len(60 << 30)
        .unwrap();
    let out = w.check_problems("sparse file at quire.log");
    assert!(
        out.contains("quire.log") && out.contains("more than it can be"),
        "{out}"
    );
    std::fs::remove_file(&p).unwrap();
    // quire.undo: the vault is not opened at all, and the message says why.
    let p = w.local().join("quire.undo");
    for (what, plant) in [("FIFO", 0), ("more than it can be", 1)] {
        let _ = std::fs::remove_file(&p);
        if plant == 0 {
            mkfifo(&p);
        } else {
            std::fs::File::create(&p)
                .unwrap()
                .set_len(60 << 30)
                .unwrap();
        }
        let o = w.check_sealed();
        let all =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{all}");
        assert!(all.contains("quire.undo") && all.contains(what), "{all}");
    }
    std::fs::remove_file(&p).unwrap();
    let o = w.check_sealed();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Issue 17.8: `quire status` and `quire unmount` believe no mount record
/// from a runtime folder (or a file) another user owns: no forged "since
/// 1970 / pid 1", and no wait on someone else's process.
#[test]
fn status_and_unmount_ignore_records_another_user_forged() {
    if !is_root() {
        eprintln!("skipped: needs root (a second user)");
        return;
    }
    use sha2::Digest;
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let rt = w.runtime.join("quire");
    let real = w.runtime.join("quire.real");
    std::fs::rename(&rt, &real).unwrap();
    std::fs::create_dir(&rt).unwrap();
    let h = sha2::Sha256::digest(w.mnt.as_os_str().as_encoded_bytes());
    let name: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
    let rec = rt.join(format!("{name}.mount"));
    std::fs::write(
        &rec,
        format!(
            "pid=1\nsince=0\nidle=0\nvault=/forged\nmountpoint={}\n",
            w.mnt.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::chown(&rec, Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(&rt, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&rt, PermissionsExt::from_mode(0o777)).unwrap();
    let o = w.run(&["status"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(!out.contains("1970") && !out.contains("/forged"), "{out}");
    assert!(!out.contains("pid 1\n") && !out.contains("pid 1 "), "{out}");
    // Ours, but open to others: not believed either.
    std::os::unix::fs::chown(&rt, Some(0), Some(0)).unwrap();
    std::os::unix::fs::chown(&rec, Some(0), Some(0)).unwrap();
    let o = w.run(&["status"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!out.contains("1970") && !out.contains("/forged"), "{out}");
    // Unmount does not wait on pid 1.
    let mut c = w.cmd();
    c.args(["unmount", w.mnt.to_str().unwrap()]);
    let o = bounded(c, "quire unmount with a forged record");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!w.is_mounted());
    std::mem::forget(m);
    std::fs::remove_dir_all(&rt).unwrap();
    std::fs::rename(&real, &rt).unwrap();
}
