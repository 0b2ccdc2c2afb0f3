//! Shared helpers for integration tests that really mount.
//!
//! Every test gets its own temporary vault, mount point and runtime folder;
//! [`Mounted`] unmounts in `Drop`, even when the test panics, so a test run
//! never leaves a mount behind.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "correct horse battery staple";

pub fn quire_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quire"))
}

/// A temporary world: vault folder, mount point, runtime folder, password file.
pub struct World {
    pub dir: tempfile::TempDir,
    pub vault: PathBuf,
    pub mnt: PathBuf,
    pub pwfile: PathBuf,
    pub runtime: PathBuf,
    /// This test's own temp folder (`TMPDIR` of every command it runs):
    /// scans for leaked plaintext look here, never at the whole machine's
    /// temp folder, where other people's mounts may hang (issue 10.6).
    pub tmp: PathBuf,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("quire-test-")
            .tempdir()
            .unwrap();
        let vault = dir.path().join("vault");
        let mnt = dir.path().join("mnt");
        let runtime = dir.path().join("run");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&mnt).unwrap();
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
        World {
            dir,
            vault,
            mnt,
            pwfile,
            runtime,
            tmp,
        }
    }

    /// This device's folder for the world's vault (docs/FORMAT.md §18):
    /// where the crash journal, daemon log and search index live, outside
    /// the vault folder.
    pub fn local(&self) -> PathBuf {
        self.local_of(&self.vault)
    }

    /// This device's audit chain in the vault folder,
    /// `audit/<device ID hex>` (docs/FORMAT.md §16).
    pub fn audit_chain(&self) -> PathBuf {
        let id = std::fs::read(self.local().join("device")).expect("this device's ID");
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        self.vault.join("audit").join(hex)
    }

    /// This device's folder for the vault folder `vault` (HOME is the
    /// world's folder, so XDG_STATE_HOME is `<world>/.local/state`).
    pub fn local_of(&self, vault: &Path) -> PathBuf {
        let base = self.dir.path().join(".local/state/quire/vaults");
        let place = quire::store::place(vault);
        std::fs::read_dir(&base)
            .ok()
            .and_then(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .find(|p| p.to_string_lossy().ends_with(&format!("-{place}")))
            })
            .unwrap_or_else(|| base.join(format!("unknown-{place}")))
    }

    /// A `quire` command with this world's environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(quire_bin());
        c.env("XDG_RUNTIME_DIR", &self.runtime)
            .env("HOME", self.dir.path())
            .env("TMPDIR", &self.tmp)
            .env_remove("QUIRE_PASSWORD_FILE")
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_DATA_HOME")
            .stdin(std::process::Stdio::null());
        c
    }

    /// Runs quire on a terminal (a pty): waits for each `expect` text in
    /// its output and types `send` and Enter. Returns the exit code and
    /// everything it printed.
    pub fn tty(&self, args: &[&str], steps: &[(&str, &str)]) -> (Option<i32>, String) {
        let q = self.cmd();
        let mut c = Command::new("python3");
        for (k, v) in q.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        let mut argv = vec![quire_bin().to_string_lossy().into_owned()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let js = |v: Vec<String>| {
            let items: Vec<String> = v
                .iter()
                .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            format!("[{}]", items.join(","))
        };
        let flat: Vec<String> = steps
            .iter()
            .flat_map(|(e, s)| [e.to_string(), s.to_string()])
            .collect();
        let o = c
            .arg("-c")
            .arg(TTY_PY)
            .arg(js(argv))
            .arg(js(flat))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    }

    /// Runs quire with args; returns the output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// `quire init` with cheap KDF parameters (tests only; the default is 64 MiB).
    pub fn init(&self) -> String {
        let rk = self.dir.path().join("recovery.txt");
        let o = self
            .cmd()
            .arg("init")
            .arg(&self.vault)
            .arg("--password-file")
            .arg(&self.pwfile)
            .args(["--kdf-memory", "8", "--kdf-passes", "1"])
            .arg("--recovery-key-out")
            .arg(&rk)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::read_to_string(rk).unwrap().trim().to_string()
    }

    /// Mounts in the background (the user's way) and returns the guard.
    pub fn mount(&self, extra: &[&str]) -> Mounted<'_> {
        let o = self.mount_output(extra);
        assert!(
            o.status.success(),
            "mount failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Mounted { world: self }
    }

    pub fn mount_output(&self, extra: &[&str]) -> Output {
        self.cmd()
            .arg("mount")
            .arg(&self.vault)
            .arg(&self.mnt)
            .arg("--password-file")
            .arg(&self.pwfile)
            .args(extra)
            .output()
            .unwrap()
    }

    /// `quire check` on the sealed vault, with the password file.
    pub fn check_sealed(&self) -> Output {
        self.run(&[
            "check",
            self.vault.to_str().unwrap(),
            "--password-file",
            self.pwfile.to_str().unwrap(),
        ])
    }

    /// `quire check` on the sealed vault must find problems (exit 21);
    /// returns its report (`what`: the case, for the failure message).
    pub fn check_problems(&self, what: &str) -> String {
        let o = self.check_sealed();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(o.status.code(), Some(21), "{what}: {out}");
        out
    }

    pub fn is_mounted(&self) -> bool {
        is_mounted(&self.mnt)
    }

    /// All files under the vault folder, recursively.
    pub fn vault_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.vault, &mut out);
        out
    }

    /// `quire logs` of the sealed vault (with the password file); asserts
    /// it worked and returns what it printed.
    pub fn logs(&self) -> String {
        let o = self.run(&[
            "logs",
            self.vault.to_str().unwrap(),
            "--password-file",
            self.pwfile.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The daemon's pid from `quire status --json`.
    pub fn daemon_pid(&self) -> Option<i32> {
        let o = self.run(&["status", "--json"]);
        let s = String::from_utf8_lossy(&o.stdout);
        // Other tests' mounts are listed too: pick ours by mount point.
        let key = format!("{{\"mountpoint\":\"{}\"", self.mnt.display());
        let rest = &s[s.find(&key)?..];
        let rest = &rest[..rest.find('}')?];
        let i = rest.find("\"pid\":")? + 6;
        rest[i..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }
}

/// Every file under `p` (not following symlinks, not crossing into other
/// filesystems: a mount below is skipped, it may be someone's stuck FUSE
/// mount).
pub fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    use std::os::unix::fs::MetadataExt;
    let Ok(root) = std::fs::symlink_metadata(p) else {
        return;
    };
    walk_dev(p, root.dev(), out);
}

fn walk_dev(p: &Path, dev: u64, out: &mut Vec<PathBuf>) {
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = std::fs::read_dir(p) else { return };
    for e in rd.flatten() {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.dev() == dev) {
                walk_dev(&path, dev, out);
            }
        } else {
            out.push(path);
        }
    }
}

/// Unmounts `p` whatever state its daemon is in: lazily through
/// `fusermount3 -u -z`, retried for a few seconds (a killed daemon's
/// connection can take a moment to be noticed), then `umount -l` when the
/// tests run as root. Every test's last resort goes through here, so no
/// one way of unmounting is weaker than another.
pub fn force_unmount(p: &Path) {
    let t = Instant::now();
    while is_mounted(p) && t.elapsed() < Duration::from_secs(5) {
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg("-z")
            .arg(p)
            .output();
        if is_mounted(p) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // SAFETY: geteuid has no preconditions.
    if is_mounted(p) && unsafe { libc::geteuid() } == 0 {
        let _ = Command::new("umount").arg("-l").arg(p).output();
    }
}

/// Every mount point at or below `dir` (from this process's mount table).
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let unescape = |s: &str| {
        s.replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\012", "\n")
            .replace("\\134", "\\")
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(dir))
        .collect()
}

impl Drop for World {
    /// The last guard: whatever way a test mounted below its world (a
    /// guard it forgot, a daemon killed mid-test, a mount made by a shell
    /// script or another user), nothing stays mounted once the world goes.
    fn drop(&mut self) {
        let mut left = mounts_below(self.dir.path());
        // Deepest first: a mount inside another mount goes before it.
        left.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for m in left {
            eprintln!(
                "test {:?} left {} mounted; unmounting it",
                std::thread::current().name().unwrap_or("?"),
                m.display()
            );
            let _ = self.run(&["unmount", m.to_str().unwrap_or_default()]);
            force_unmount(&m);
        }
    }
}

pub fn is_mounted(p: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = p.to_str().unwrap().replace(' ', "\\040");
    text.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// A mounted vault; unmounted (and the daemon awaited) on drop.
pub struct Mounted<'a> {
    pub world: &'a World,
}

impl Mounted<'_> {
    /// The guard for a mount made some other way (a shell script).
    pub fn adopt(world: &World) -> Mounted<'_> {
        assert!(world.is_mounted());
        Mounted { world }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.world.mnt.join(rel)
    }

    /// Unmounts through the CLI and asserts it worked.
    pub fn unmount(self) {
        let o = self
            .world
            .run(&["unmount", self.world.mnt.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "unmount failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!self.world.is_mounted());
        std::mem::forget(self);
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        if !self.world.is_mounted() {
            return;
        }
        let pid = self.world.daemon_pid();
        let _ = self
            .world
            .run(&["unmount", self.world.mnt.to_str().unwrap()]);
        force_unmount(&self.world.mnt);
        if let Some(pid) = pid {
            wait_gone(pid, Duration::from_secs(10));
        }
    }
}

/// Whether `p` itself is a symlink (not followed).
pub fn is_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// `renameat2(RENAME_EXCHANGE)`: swaps two names atomically.
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let x = std::ffi::CString::new(a.as_os_str().as_encoded_bytes()).unwrap();
    let y = std::ffi::CString::new(b.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C strings.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            x.as_ptr(),
            libc::AT_FDCWD,
            y.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub fn wait_gone(pid: i32, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        // SAFETY: signal 0 only checks existence.
        if unsafe { libc::kill(pid, 0) } != 0 || is_zombie(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A dead process its (re)parent has not reaped yet. A killed thread group
/// leader shows as a zombie while its other threads are still exiting, and
/// the last of them still holds the open files (the FUSE device among them):
/// only a zombie with no thread left but itself is gone.
fn is_zombie(pid: i32) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0);
    zombie && threads <= 1
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Runs a shell snippet in `dir`, asserting success; returns stdout.
pub fn sh(dir: &Path, script: &str) -> String {
    let o = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "script failed: {script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts a program is installed (tools/test installs them); a missing
/// program must fail the run, not silently skip the test.
pub fn need(program: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{program} is not installed: run tools/test, which installs it"
    );
}

/// Whether `needle` occurs in any file under `root` (not following symlinks).
pub fn contains_bytes(root: &Path, needle: &[u8]) -> Option<PathBuf> {
    contains_bytes_since(root, needle, std::time::SystemTime::UNIX_EPOCH)
}

/// As [`contains_bytes`], for files modified at or after `since`. The scan
/// runs under a deadline (two minutes): a hung file system fails the test
/// instead of hanging the run (issue 10.6).
pub fn contains_bytes_since(
    root: &Path,
    needle: &[u8],
    since: std::time::SystemTime,
) -> Option<PathBuf> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (root2, needle2) = (root.to_path_buf(), needle.to_vec());
    std::thread::spawn(move || {
        let _ = tx.send(scan(&root2, &needle2, since));
    });
    rx.recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("scanning {} took over two minutes", root.display()))
}

fn scan(root: &Path, needle: &[u8], since: std::time::SystemTime) -> Option<PathBuf> {
    let mut files = Vec::new();
    walk(root, &mut files);
    for f in files {
        let Ok(m) = std::fs::symlink_metadata(&f) else {
            continue;
        };
        if m.modified().map(|t| t < since).unwrap_or(false) {
            continue;
        }
        if !m.is_file() {
            if m.file_type().is_symlink()
                && let Ok(t) = std::fs::read_link(&f)
                && t.as_os_str()
                    .as_encoded_bytes()
                    .windows(needle.len())
                    .any(|w| w == needle)
            {
                return Some(f);
            }
            continue;
        }
        if let Ok(b) = std::fs::read(&f)
            && b.windows(needle.len()).any(|w| w == needle)
        {
            return Some(f);
        }
        if f.as_os_str()
            .as_encoded_bytes()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            return Some(f);
        }
    }
    None
}

/// Drives a program on a pty for [`World::tty`]: argv, then (expect, send)
/// pairs, as JSON arrays. Gives up after 60 s.
const TTY_PY: &str = r#"
import json, os, pty, select, signal, sys, time
argv = json.loads(sys.argv[1]); flat = json.loads(sys.argv[2])
steps = list(zip(flat[0::2], flat[1::2]))
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
buf = b""; pos = 0; deadline = time.time() + 60; status = None
def more(wait=0.2):
    # "data", "idle" (nothing within wait) or "eof"
    global buf
    r, _, _ = select.select([fd], [], [], wait)
    if not r:
        return "idle"
    try:
        d = os.read(fd, 4096)
    except OSError:
        return "eof"
    buf += d
    return "data" if d else "eof"
def drain():
    while time.time() < deadline and more(0.3) == "data":
        pass
def exited():
    global status
    if status is None:
        p, st = os.waitpid(pid, os.WNOHANG)
        if p:
            status = st
    return status is not None
for expect, send in steps:
    e = expect.encode()
    while buf.find(e, pos) < 0 and time.time() < deadline and not exited():
        if more() == "eof":
            break
    if buf.find(e, pos) < 0:
        drain()
    i = buf.find(e, pos)
    if i < 0:
        break
    pos = i + len(e)
    time.sleep(0.05)
    os.write(fd, send.encode() + b"\n")
while time.time() < deadline and not exited():
    if more() == "eof":
        break
drain()
t = time.time() + 5
while time.time() < t and not exited():
    time.sleep(0.05)
if status is None:
    os.kill(pid, signal.SIGKILL)
    status = os.waitpid(pid, 0)[1]
sys.stdout.write(buf.decode(errors="replace"))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"#;

/// Overwrites `len` bytes of `rel` at offset 0 with `byte` from another
/// process that keeps the file open (a program in the middle of a save),
/// then kills the daemon (SIGKILL) and detaches the dead mount. The writer
/// is a separate process: a `fork` of this one would close its copy of
/// the descriptor at `exec`, which FUSE reports as a close (a commit).
pub fn write_then_kill(w: &World, m: Mounted, rel: &str, len: usize, byte: u8) {
    use std::io::BufRead;
    let mut writer = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import os,sys,time\nfd=os.open({:?},os.O_WRONLY)\nos.pwrite(fd,bytes([{byte}])*{len},0)\nprint('ok',flush=True)\ntime.sleep(60)",
            m.path(rel).to_str().unwrap()
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(writer.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ok");
    // The write reaches the daemon (the kernel's cache sends it on).
    std::thread::sleep(Duration::from_millis(1500));
    let pid = w.daemon_pid().expect("daemon pid");
    // SAFETY: plain kill of the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_gone(pid, Duration::from_secs(10)));
    let _ = writer.kill();
    let _ = writer.wait();
    std::mem::forget(m);
    force_unmount(&w.mnt);
}

/// The only entry of the host folder `dir` that `pick` selects and whose
/// name has no dot (Quire's own files and folders, `quire.trash` and the
/// like, have one; encrypted names never do).
fn only(dir: &Path, pick: fn(&Path) -> bool, what: &str) -> PathBuf {
    let mut found = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| pick(p) && !p.file_name().unwrap().to_string_lossy().contains('.'));
    let one = found
        .next()
        .unwrap_or_else(|| panic!("no {what} in {}", dir.display()));
    assert!(
        found.next().is_none(),
        "more than one {what} in {}",
        dir.display()
    );
    one
}

/// The only sub-folder of the host folder `dir`.
pub fn only_folder(dir: &Path) -> PathBuf {
    only(dir, |p| p.is_dir(), "folder")
}

/// The content file of the only note in the host folder `dir`.
pub fn only_note(dir: &Path) -> PathBuf {
    only(dir, |p| p.is_file(), "note")
}

/// A user attribute's value, read through the mount at `mnt`.
pub fn xattr_of(mnt: &Path, rel: &str, name: &str) -> String {
    sh(
        mnt,
        &format!("python3 -c \"import os; print(os.getxattr('{rel}', '{name}').decode())\""),
    )
    .trim()
    .to_string()
}

/// Sets a user attribute through the mount at `mnt`.
pub fn set_xattr(mnt: &Path, rel: &str, name: &str, value: &str) {
    sh(
        mnt,
        &format!("python3 -c \"import os; os.setxattr('{rel}', '{name}', b'{value}')\""),
    );
}

/// Whether the tests run as root (the tests that need a second user).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A command's standard output, as text.
pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's standard error, as text.
pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a shell script as the unprivileged user `nobody` (65534) in `dir`.
pub fn as_nobody(dir: &Path, script: &str) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .current_dir(dir)
        .output()
        .unwrap()
}
