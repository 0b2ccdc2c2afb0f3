//! `quire backup` (issue 19.2) and emergency access (19.3), through real
//! mounts: a backup taken while a note is saved 50 times a second and
//! another is half written is consistent (every snapshot checks clean,
//! no torn note, the drill passes); a tampered backup is named by
//! `backup verify` without the password; a restore goes into a new folder
//! only, which another user mounts with the recovery key; backups are
//! incremental and thinned by a rule.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

fn ok(o: std::process::Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}{}", out(&o), err(&o));
    out(&o)
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn snapshots(w: &World, dest: &Path) -> Vec<String> {
    let v = json(&ok(
        w.run(&["backup", "list", dest.to_str().unwrap(), "--json"]),
        "list",
    ));
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// Saves `n.md` about 50 times a second (each save: open with O_TRUNC,
/// three writes, close) until `stop` exists; each version is
/// `version NNNNNN ` repeated, 6 KB (two blocks).
const WRITER: &str = r#"
import os, sys, time
p, stop = sys.argv[1], sys.argv[2]
i = 0
while not os.path.exists(stop):
    i += 1
    body = (b"version %06d " % i) * 400
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for k in range(3):
        os.write(fd, body[k * 2000:(k + 1) * 2000])
    os.close(fd)
    time.sleep(0.02)
print(i)
"#;

/// Opens `held.md`, overwrites its start without closing (a change not
/// committed), says so, and closes only when `stop` exists.
const HOLDER: &str = r#"
import os, sys, time
p, ready, stop = sys.argv[1], sys.argv[2], sys.argv[3]
fd = os.open(p, os.O_RDWR)
os.pwrite(fd, b"UNCOMMITTED " * 700, 0)
open(ready, "w").close()
while not os.path.exists(stop):
    time.sleep(0.02)
os.close(fd)
"#;

/// A note as a snapshot holds it: one whole version, never a mix.
fn whole_version(b: &[u8]) -> bool {
    if b.len() != 6000 {
        return false;
    }
    let first = &b[..15];
    b.chunks(15).all(|c| c == first) && first.starts_with(b"version ")
}

#[test]
fn a_backup_taken_while_notes_are_saved_is_consistent_and_its_drill_passes() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let dir = w.dir.path().to_path_buf();
    let dest = dir.join("usb/quire");
    std::fs::create_dir(dir.join("usb")).unwrap();
    std::fs::write(m.path("held.md"), b"committed held ".repeat(400)).unwrap();
    std::fs::create_dir(m.path("clients")).unwrap();
    for i in 0..20 {
        std::fs::write(m.path(&format!("clients/c{i}.md")), format!("client {i}\n")).unwrap();
    }
    let stop = dir.join("stop");
    let ready = dir.join("ready");
    let writer = std::process::Command::new("python3")
        .args(["-c", WRITER])
        .arg(m.path("n.md"))
        .arg(&stop)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut holder = std::process::Command::new("python3")
        .args(["-c", HOLDER])
        .arg(m.path("held.md"))
        .arg(&ready)
        .arg(&stop)
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !ready.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the holder never wrote"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // Backups while both write: five at least, for three seconds at least.
    let mut reports = Vec::new();
    let t = Instant::now();
    while reports.len() < 5 || t.elapsed() < Duration::from_secs(3) {
        let r = json(&ok(
            w.run(&["backup", dest.to_str().unwrap(), "--json"]),
            "backup while writing",
        ));
        reports.push(r);
        std::thread::sleep(Duration::from_millis(150));
    }
    std::fs::write(&stop, b"").unwrap();
    let saves: u64 = {
        let o = writer.wait_with_output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    holder.wait().unwrap();
    assert!(saves > 50, "the writer saved only {saves} times");
    // Every snapshot stored the half-written note as at its last save.
    for r in &reports {
        assert!(r["undone"].as_u64().unwrap() >= 1, "{r}");
    }
    assert!(reports[1]["copied"].as_u64().unwrap() < reports[0]["files"].as_u64().unwrap());
    let ids = snapshots(&w, &dest);
    assert_eq!(ids.len(), reports.len(), "{ids:?}");
    // Each snapshot, restored: `check` is clean, n.md is one whole
    // version, held.md is its last committed content.
    for id in &ids {
        let to = dir.join(format!("restored-{id}"));
        ok(
            w.run(&[
                "backup",
                "restore",
                dest.to_str().unwrap(),
                "--snapshot",
                id,
                "--to",
                to.to_str().unwrap(),
            ]),
            "restore",
        );
        let pw = w.pwfile.to_str().unwrap();
        let c = w.run(&[
            "check",
            "--vault",
            to.to_str().unwrap(),
            "--password-file",
            pw,
        ]);
        assert_eq!(
            c.status.code(),
            Some(0),
            "snapshot {id}: {}{}",
            out(&c),
            err(&c)
        );
        let n = ok(
            w.run(&[
                "show",
                "n.md",
                "--vault",
                to.to_str().unwrap(),
                "--password-file",
                pw,
            ]),
            "show n.md",
        );
        assert!(
            whole_version(n.as_bytes()),
            "snapshot {id}: torn n.md: {n:.80}"
        );
        let h = ok(
            w.run(&[
                "show",
                "held.md",
                "--vault",
                to.to_str().unwrap(),
                "--password-file",
                pw,
            ]),
            "show held.md",
        );
        assert_eq!(
            h.as_bytes(),
            &b"committed held ".repeat(400)[..],
            "snapshot {id}"
        );
        std::fs::remove_dir_all(&to).unwrap();
    }
    let vaults = dir.join(".local/state/quire/vaults");
    let device_folders = std::fs::read_dir(&vaults).unwrap().count();
    // The drill of the newest: every note read from a read-only mount of
    // the restored copy and found in the vault (now or in its history).
    let d = w.run(&[
        "backup",
        "drill",
        dest.to_str().unwrap(),
        "--json",
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    let d = json(&ok(d, "drill"));
    assert_eq!(d["passed"], true, "{d}");
    assert_eq!(d["notes"].as_u64(), Some(22), "{d}");
    assert!(d["versions"].as_u64().unwrap() >= 22, "{d}");
    assert!(
        d["older"].as_u64().unwrap() >= 2,
        "n.md and held.md changed since: {d}"
    );
    assert_eq!(d["unreadable"].as_array().unwrap().len(), 0, "{d}");
    // The drill left no mount, no temporary folder and no device folder.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("quire-drill-"), "{mounts}");
    assert!(
        std::fs::read_dir(&w.tmp)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("quire-drill-")),
        "a drill folder was left"
    );
    assert_eq!(
        std::fs::read_dir(&vaults).unwrap().count(),
        device_folders,
        "a drill's device folder was left"
    );
    // Recorded: the audit log and `quire status`.
    let a = ok(w.run(&["audit"]), "audit");
    assert!(a.contains("backup") && a.contains("drill"), "{a}");
    let s = ok(w.run(&["status"]), "status");
    assert!(
        s.contains("last backup:") && s.contains("last restore drill:"),
        "{s}"
    );
    // The backup folder never saw plaintext.
    assert_eq!(contains_bytes(&dest, b"version 0"), None);
    assert_eq!(contains_bytes(&dest, b"client 1"), None);
    assert_eq!(contains_bytes(&dest, b"clients"), None);
    m.unmount();
    assert_eq!(w.check_sealed().status.code(), Some(0));
}

#[test]
fn a_tampered_backup_is_named_without_the_password() {
    let w = World::new();
    w.init();
    let dest = w.dir.path().join("backups");
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("a.md"), "alpha\n").unwrap();
        std::fs::write(m.path("b.md"), "bravo\n").unwrap();
        ok(w.run(&["backup", dest.to_str().unwrap()]), "backup");
        m.unmount();
    }
    let d = dest.to_str().unwrap();
    // Sealed vault, no password anywhere: clean.
    let v = w.run(&["backup", "verify", d]);
    assert_eq!(v.status.code(), Some(0), "{}{}", out(&v), err(&v));
    assert!(out(&v).contains("the folder's own key"), "{}", out(&v));
    let fp = out(&v)
        .split("key ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    // One stored file changed: named, with the snapshot.
    let objects: Vec<PathBuf> = {
        let mut v = Vec::new();
        walk(&dest.join("objects"), &mut v);
        v
    };
    let victim = &objects[objects.len() / 2];
    let mut b = std::fs::read(victim).unwrap();
    let keep = b.clone();
    let i = b.len() / 2;
    b[i] ^= 0x20;
    std::fs::write(victim, &b).unwrap();
    let v = w.run(&["backup", "verify", d]);
    assert_eq!(v.status.code(), Some(21), "{}", out(&v));
    assert!(
        out(&v).contains("was changed (SHA-256 differs)"),
        "{}",
        out(&v)
    );
    // A restore refuses it, naming it, and leaves no half folder behind
    // to be taken for a vault... but says which file.
    let to = w.dir.path().join("r1");
    let r = w.run(&["backup", "restore", d, "--to", to.to_str().unwrap()]);
    assert!(!r.status.success());
    assert!(err(&r).contains("stored copy is damaged"), "{}", err(&r));
    std::fs::write(victim, &keep).unwrap();
    // Missing: named.
    std::fs::rename(victim, w.dir.path().join("away")).unwrap();
    let v = w.run(&["backup", "verify", d]);
    assert_eq!(v.status.code(), Some(21));
    assert!(out(&v).contains("stored copy is missing"), "{}", out(&v));
    std::fs::rename(w.dir.path().join("away"), victim).unwrap();
    // A manifest changed: its snapshot named.
    let snap = std::fs::read_dir(dest.join("snapshots"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&snap).unwrap();
    std::fs::write(&snap, text.replacen("F 600", "F 644", 1)).unwrap();
    let v = w.run(&["backup", "verify", d]);
    assert_eq!(v.status.code(), Some(21));
    assert!(out(&v).contains("signature does not verify"), "{}", out(&v));
    std::fs::write(&snap, &text).unwrap();
    // The folder's key replaced (a forger re-signing everything): with
    // the vault's fingerprint, refused.
    let marker = dest.join("quire-backup");
    let mt = std::fs::read_to_string(&marker).unwrap();
    let forged = mt
        .lines()
        .map(|l| {
            if l.starts_with("key ") {
                format!("key {}", "ab".repeat(32))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(&marker, forged).unwrap();
    let v = w.run(&["backup", "verify", d, "--key", &fp]);
    assert_eq!(v.status.code(), Some(21), "{}", out(&v));
    assert!(out(&v).contains("signed by someone else"), "{}", out(&v));
    // Taking a new backup into it is refused (another key).
    {
        let _m = w.mount(&[]);
        let b = w.run(&["backup", d]);
        assert!(!b.status.success());
        assert!(err(&b).contains("another key"), "{}", err(&b));
        std::fs::write(&marker, &mt).unwrap();
        // Refused destinations: inside the mount, inside the vault, a
        // folder with other files.
        for bad in [w.mnt.join("bk"), w.vault.join("bk")] {
            let b = w.run(&["backup", bad.to_str().unwrap()]);
            assert_eq!(b.status.code(), Some(23), "{bad:?}: {}", err(&b));
            assert!(!bad.exists());
        }
        let other = w.dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("x"), "x").unwrap();
        let b = w.run(&["backup", other.to_str().unwrap()]);
        assert!(
            err(&b).contains("not empty and is not a Quire backup folder"),
            "{}",
            err(&b)
        );
        assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
    }
    let v = w.run(&["backup", "verify", d, "--key", &fp]);
    assert_eq!(v.status.code(), Some(0), "{}", out(&v));
}

/// Issue 19.3: the laptop is lost. A restored backup on a new machine (a
/// second user here, with its own home) is opened with the recovery key,
/// given a new password, and mounted. A restore never goes over a folder
/// with files in it.
#[test]
fn a_restored_backup_opens_on_a_new_machine_with_the_recovery_key() {
    let w = World::new();
    let rk = w.init();
    let dest = w.dir.path().join("backups");
    {
        let m = w.mount(&[]);
        std::fs::create_dir(m.path("clients")).unwrap();
        std::fs::write(m.path("clients/anna.md"), "first session\n").unwrap();
        std::fs::write(m.path("clients/anna.md"), "first session\nsecond\n").unwrap();
        // A note with two names stays one file when restored.
        std::fs::hard_link(m.path("clients/anna.md"), m.path("anna-link.md")).unwrap();
        ok(w.run(&["backup", dest.to_str().unwrap()]), "backup");
        // Into a folder with files in it, or the mount: refused.
        let busy = w.dir.path().join("busy");
        std::fs::create_dir(&busy).unwrap();
        std::fs::write(busy.join("keep.txt"), "mine").unwrap();
        let r = w.run(&[
            "backup",
            "restore",
            dest.to_str().unwrap(),
            "--to",
            busy.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(18), "{}", err(&r));
        assert!(err(&r).contains("never over a vault"), "{}", err(&r));
        assert_eq!(
            std::fs::read_to_string(busy.join("keep.txt")).unwrap(),
            "mine"
        );
        let r = w.run(&[
            "backup",
            "restore",
            dest.to_str().unwrap(),
            "--to",
            m.path("restored").to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(23), "{}", err(&r));
        m.unmount();
    }
    // The new machine: the backup disk is plugged into another account.
    if !is_root() {
        eprintln!("skipped the second-user half: needs root");
        return;
    }
    let home = w.dir.path().join("newmachine");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("rk"), format!("{rk}\n")).unwrap();
    std::fs::write(home.join("newpw"), "a new password 1\n").unwrap();
    sh(
        w.dir.path(),
        &format!("chmod 755 . && chown -R 65534:65534 {}", home.display()),
    );
    sh(w.dir.path(), &format!("chmod -R a+rX {}", dest.display()));
    let script = format!(
        "set -e; cd {home}; Q={q}; export HOME={home} XDG_RUNTIME_DIR={home}/run
         mkdir -m 700 run
         $Q backup verify {dest}
         $Q backup restore {dest} --to {home}/vault
         $Q passwd {home}/vault --recovery-key-file rk --new-password-file newpw
         mkdir m; $Q mount {home}/vault m --password-file newpw
         trap '$Q unmount m >/dev/null 2>&1 || fusermount3 -u -z m' EXIT
         cat m/clients/anna.md; echo links=$(stat -c %h m/anna-link.md)
         ls m/.history/clients/anna.md | wc -l",
        home = home.display(),
        dest = dest.display(),
        q = quire_bin().display()
    );
    let o = as_nobody(&home, &script);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(text.contains("first session\nsecond\n"), "{text}");
    assert!(text.contains("links=2"), "{text}");
    assert_eq!(text.lines().last().map(str::trim), Some("2"), "{text}");
    assert!(!is_mounted(&home.join("m")));
}

#[test]
fn backups_are_incremental_and_thinned_by_a_rule() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    for i in 0..30 {
        std::fs::write(
            m.path(&format!("n{i}.md")),
            format!("note {i}\n").repeat(100),
        )
        .unwrap();
    }
    let dest = w.dir.path().join("bk");
    let d = dest.to_str().unwrap();
    let first = json(&ok(w.run(&["backup", d, "--json"]), "first"));
    let files = first["files"].as_u64().unwrap();
    assert!(first["copied"].as_u64().unwrap() >= files, "{first}");
    // Nothing changed but the audit log (the backup record): little read.
    let second = json(&ok(w.run(&["backup", d, "--json"]), "second"));
    assert!(second["copied"].as_u64().unwrap() <= 3, "{second}");
    std::fs::write(m.path("n3.md"), "changed\n").unwrap();
    let third = json(&ok(w.run(&["backup", d, "--json"]), "third"));
    assert!(third["copied"].as_u64().unwrap() <= 6, "{third}");
    assert_eq!(snapshots(&w, &dest).len(), 3);
    // A sync tool brings another computer's version: same size, and the
    // mtime it had there (here: the old one), renamed over the file. The
    // next backup reads it (a new inode and ctime), not the old object.
    let host = {
        let mut v = Vec::new();
        walk(&w.vault.join("d"), &mut v);
        v.into_iter()
            .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "quire.dirid"))
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .unwrap()
    };
    let script = r#"
import os, sys
p = sys.argv[1]
st = os.stat(p)
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xFF
t = p + ".syncthing.tmp"
open(t, "wb").write(bytes(b))
os.utime(t, ns=(st.st_atime_ns, st.st_mtime_ns))
os.rename(t, p)
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&host)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    ok(
        w.run(&["backup", d]),
        "backup after a sync tool's replacement",
    );
    let newest = snapshots(&w, &dest).pop().unwrap();
    let manifest = std::fs::read_to_string(dest.join("snapshots").join(&newest)).unwrap();
    let want = {
        use sha2::Digest;
        let h = sha2::Sha256::digest(std::fs::read(&host).unwrap());
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert!(
        manifest.contains(&want),
        "the replaced file's new bytes were not stored"
    );
    assert_eq!(snapshots(&w, &dest).len(), 4);
    // Keep the last two: the older ones go, and the files only they used
    // (n3.md as it was), not one a kept snapshot needs (verify is clean).
    let r = json(&ok(w.run(&["backup", d, "--keep", "2n", "--json"]), "keep"));
    assert_eq!(r["removed"].as_array().unwrap().len(), 3, "{r}");
    assert!(r["objects_removed"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(snapshots(&w, &dest).len(), 2);
    assert_eq!(w.run(&["backup", "verify", d]).status.code(), Some(0));
    // A bad rule: refused, nothing removed.
    let b = w.run(&["backup", d, "--keep", "7x"]);
    assert!(!b.status.success());
    assert!(err(&b).contains("unit"), "{}", err(&b));
    // --existing: only into a folder made before.
    let fresh = w.dir.path().join("unplugged/quire");
    std::fs::create_dir(w.dir.path().join("unplugged")).unwrap();
    let b = w.run(&["backup", fresh.to_str().unwrap(), "--existing"]);
    assert_eq!(b.status.code(), Some(22), "{}", err(&b));
    assert!(err(&b).contains("plugged in"), "{}", err(&b));
    assert!(!fresh.exists());
    ok(
        w.run(&["backup", d, "--existing"]),
        "--existing into a backup folder",
    );
    // Not mounted: --if-mounted does nothing and succeeds.
    m.unmount();
    let b = w.run(&["backup", d, "--if-mounted"]);
    assert!(b.status.success(), "{}", err(&b));
    assert_eq!(snapshots(&w, &dest).len(), 3);
    // A sealed vault is backed up with its password.
    ok(
        w.run(&[
            "backup",
            d,
            "--vault",
            w.vault.to_str().unwrap(),
            "--password-file",
            w.pwfile.to_str().unwrap(),
        ]),
        "sealed backup",
    );
    assert_eq!(snapshots(&w, &dest).len(), 4);
}

/// A full backup disk: the snapshot fails with a clear message, the ones
/// already there stay whole, nothing half written is left, and the vault
/// goes on.
#[test]
fn a_full_backup_disk_loses_nothing() {
    if !is_root() {
        eprintln!("skipped: needs root (a small tmpfs)");
        return;
    }
    let w = World::new();
    w.init();
    let disk = w.dir.path().join("usb");
    std::fs::create_dir(&disk).unwrap();
    sh(
        w.dir.path(),
        &format!(
            "mount -t tmpfs -o size=256k quire-test-usb {}",
            disk.display()
        ),
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _u = Unmount(disk.clone());
    let dest = disk.join("quire");
    let d = dest.to_str().unwrap();
    let m = w.mount(&[]);
    std::fs::write(m.path("small.md"), "small\n").unwrap();
    ok(w.run(&["backup", d]), "first backup");
    // Random bytes (encrypted notes do not compress anyway): 400 KiB.
    let big: Vec<u8> = (0..400 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(m.path("big.bin"), &big).unwrap();
    let b = w.run(&["backup", d]);
    assert!(!b.status.success());
    assert!(err(&b).contains("is full"), "{}", err(&b));
    assert_eq!(snapshots(&w, &dest).len(), 1);
    assert_eq!(
        std::fs::read_dir(dest.join("tmp")).unwrap().count(),
        0,
        "a half-written file was left"
    );
    assert_eq!(w.run(&["backup", "verify", d]).status.code(), Some(0));
    // The vault is unharmed and still saves.
    std::fs::write(m.path("after.md"), "after\n").unwrap();
    assert_eq!(std::fs::read(m.path("big.bin")).unwrap(), big);
    m.unmount();
    assert_eq!(w.check_sealed().status.code(), Some(0));
}
