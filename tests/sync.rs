//! One vault on two computers through two real Syncthing instances (issue
//! 18, Debian's `syncthing`, loopback only, discovery, relays and NAT off,
//! driven through its REST API): strict turns, both mounted editing
//! different notes and the same note in turn, offline edits of one note
//! and edit-vs-delete, a daemon killed while the other computer has the
//! vault mounted, and the password changed on both while apart. No edit
//! is lost: each is in the note, a visible conflict copy or the history.
//!
//! Each computer is a world of its own (HOME, state folder, mount point)
//! with its own copy of the vault folder, which its Syncthing keeps in step
//! with the other's.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A free loopback TCP port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One Syncthing instance, stopped when dropped.
struct Syncthing {
    child: Child,
    gui: u16,
    key: String,
    id: String,
}

impl Drop for Syncthing {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Syncthing {
    fn rest(&self, method: &str, path: &str) -> String {
        let o = Command::new("curl")
            .args(["-s", "-m", "10", "-X", method, "-H"])
            .arg(format!("X-API-Key: {}", self.key))
            .arg(format!("http://127.0.0.1:{}{path}", self.gui))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn scan(&self) {
        self.rest("POST", "/rest/db/scan?folder=vault");
    }

    /// Disconnects from (or reconnects to) the other computer.
    fn pause(&self, other: &Syncthing, paused: bool) {
        let what = if paused { "pause" } else { "resume" };
        self.rest("POST", &format!("/rest/system/{what}?device={}", other.id));
    }

    fn up(&self) -> bool {
        self.rest("GET", "/rest/system/ping").contains("pong")
    }
}

fn device_id(home: &Path) -> String {
    let o = Command::new("syncthing")
        .arg(format!("--home={}", home.display()))
        .arg("--device-id")
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Two Syncthing instances sharing folder `vault` between `a` and `b`.
fn pair(a: &World, b: &World) -> (Syncthing, Syncthing) {
    let homes = [a.dir.path().join("st"), b.dir.path().join("st")];
    for h in &homes {
        let o = Command::new("syncthing")
            .arg("generate")
            .arg(format!("--home={}", h.display()))
            .arg("--no-default-folder")
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
    }
    let ids = [device_id(&homes[0]), device_id(&homes[1])];
    let listen = [free_port(), free_port()];
    let gui = [free_port(), free_port()];
    let folders = [&a.vault, &b.vault];
    let mut out = Vec::new();
    for i in 0..2 {
        std::fs::create_dir_all(folders[i].join(".stfolder")).unwrap();
        let key = format!("quire-test-key-{i}-{}", std::process::id());
        let devices: String = (0..2)
            .map(|j| {
                format!(
                    "<device id=\"{}\" name=\"d{j}\" compression=\"metadata\"><address>tcp://127.0.0.1:{}</address></device>",
                    ids[j], listen[j]
                )
            })
            .collect();
        let config = format!(
            r#"<configuration version="36">
<folder id="vault" label="vault" path="{path}" type="sendreceive" rescanIntervalS="3600" fsWatcherEnabled="true" fsWatcherDelayS="1" ignorePerms="false" autoNormalize="true">
<device id="{a}"></device><device id="{b}"></device>
<minDiskFree unit="%">0</minDiskFree><maxConflicts>-1</maxConflicts>
</folder>
{devices}
<gui enabled="true" tls="false"><address>127.0.0.1:{gui}</address><apikey>{key}</apikey></gui>
<options>
<listenAddress>tcp://127.0.0.1:{listen}</listenAddress>
<globalAnnounceEnabled>false</globalAnnounceEnabled>
<localAnnounceEnabled>false</localAnnounceEnabled>
<relaysEnabled>false</relaysEnabled>
<natEnabled>false</natEnabled>
<startBrowser>false</startBrowser>
<urAccepted>-1</urAccepted>
<autoUpgradeIntervalH>0</autoUpgradeIntervalH>
<crashReportingEnabled>false</crashReportingEnabled>
<minHomeDiskFree unit="%">0</minHomeDiskFree>
<reconnectionIntervalS>1</reconnectionIntervalS>
</options>
</configuration>
"#,
            path = folders[i].display(),
            a = ids[0],
            b = ids[1],
            gui = gui[i],
            listen = listen[i],
        );
        std::fs::write(homes[i].join("config.xml"), config).unwrap();
        let child = Command::new("syncthing")
            .arg("serve")
            .arg(format!("--home={}", homes[i].display()))
            .args(["--no-browser", "--no-restart", "--no-upgrade"])
            .env("STNODEFAULTFOLDER", "1")
            .env("STNOUPGRADE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("syncthing (run tools/test, which installs it)");
        out.push(Syncthing {
            child,
            gui: gui[i],
            key,
            id: ids[i].clone(),
        });
    }
    let b = out.pop().unwrap();
    let a = out.pop().unwrap();
    let t = Instant::now();
    while !(a.up() && b.up()) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "syncthing did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (a, b)
}

/// Every file of a vault folder (Syncthing's own names left out): path →
/// (size, FNV hash of the content).
fn digest(root: &Path) -> BTreeMap<PathBuf, (u64, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".st") || name.starts_with(".syncthing.") {
                continue;
            }
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            match e.file_type() {
                Ok(t) if t.is_dir() => {
                    out.insert(rel, (0, 0));
                    stack.push(p);
                }
                Ok(_) => {
                    let b = std::fs::read(&p).unwrap_or_default();
                    let h = b.iter().fold(0xcbf29ce484222325u64, |h, x| {
                        (h ^ *x as u64).wrapping_mul(0x100000001b3)
                    });
                    out.insert(rel, (b.len() as u64, h));
                }
                Err(_) => {}
            }
        }
    }
    out
}

/// Waits until both folders hold the same files, twice in a row.
fn synced(a: &World, b: &World, sa: &Syncthing, sb: &Syncthing) {
    let t = Instant::now();
    let mut same = 0;
    loop {
        sa.scan();
        sb.scan();
        std::thread::sleep(Duration::from_millis(400));
        let (da, db) = (digest(&a.vault), digest(&b.vault));
        same = if da == db && !da.is_empty() {
            same + 1
        } else {
            0
        };
        if same >= 2 {
            return;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let only_a: Vec<_> = da.iter().filter(|(k, v)| db.get(*k) != Some(v)).collect();
            let only_b: Vec<_> = db.iter().filter(|(k, v)| da.get(*k) != Some(v)).collect();
            panic!("not in sync after 60 s: A has {only_a:?}, B has {only_b:?}");
        }
    }
}

fn eventually(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{what}: not within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read(m: &Mounted, rel: &str) -> String {
    std::fs::read_to_string(m.path(rel)).unwrap_or_default()
}

fn names(w: &World) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&w.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `quire check` on the sealed vault: 0 (clean) or 25 (conflicts only).
fn check(w: &World, want: i32) {
    let o = w.check_sealed();
    assert_eq!(o.status.code(), Some(want), "{}", stdout(&o));
    let o = w.run(&[
        "audit",
        "--verify",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn two_computers_through_real_syncthing_lose_no_edit() {
    need("syncthing");
    need("curl");
    let a = World::new();
    a.init();
    let mut b = World::new();
    b.vault = b.dir.path().join("vault");
    std::fs::create_dir(&b.vault).unwrap();
    let (sa, sb) = pair(&a, &b);
    synced(&a, &b, &sa, &sb);

    // (a) Strict turns.
    {
        let m = a.mount(&[]);
        std::fs::write(m.path("n.md"), "from the desk\n").unwrap();
        std::fs::write(m.path("m.md"), "a second note\n").unwrap();
        // A user xattr travels too (sealed attribute files, issue 18.7).
        set_xattr(&a.mnt, "n.md", "user.xdg.comment", "referral");
        m.unmount();
    }
    synced(&a, &b, &sa, &sb);
    let comment = |w: &World| xattr_of(&w.mnt, "n.md", "user.xdg.comment");
    {
        let m = b.mount(&[]);
        assert_eq!(read(&m, "n.md"), "from the desk\n");
        assert_eq!(comment(&b), "referral");
        let mut t = read(&m, "n.md");
        t.push_str("the laptop adds\n");
        std::fs::write(m.path("n.md"), &t).unwrap();
        m.unmount();
    }
    synced(&a, &b, &sa, &sb);
    {
        let m = a.mount(&[]);
        assert_eq!(read(&m, "n.md"), "from the desk\nthe laptop adds\n");
        assert_eq!(comment(&a), "referral");
        m.unmount();
    }
    synced(&a, &b, &sa, &sb);
    check(&a, 0);
    check(&b, 0);

    // (b) Both mounted, each editing its own note; (c) then one note in
    // turn: each computer sees the other's change while mounted.
    {
        let ma = a.mount(&[]);
        let mb = b.mount(&[]);
        std::fs::write(ma.path("desk.md"), "written on the desk\n").unwrap();
        std::fs::write(mb.path("laptop.md"), "written on the laptop\n").unwrap();
        eventually("B sees the desk's note", || {
            sa.scan();
            read(&mb, "desk.md") == "written on the desk\n"
        });
        eventually("A sees the laptop's note", || {
            sb.scan();
            read(&ma, "laptop.md") == "written on the laptop\n"
        });
        std::fs::write(ma.path("n.md"), "turn one, desk\n").unwrap();
        eventually("B sees the desk's turn", || {
            sa.scan();
            read(&mb, "n.md") == "turn one, desk\n"
        });
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(mb.path("n.md"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"turn two, laptop\n").unwrap();
        drop(f);
        eventually("A sees the laptop's turn", || {
            sb.scan();
            read(&ma, "n.md") == "turn one, desk\nturn two, laptop\n"
        });
        assert!(names(&a).iter().all(|n| !n.contains("(conflict")));
        ma.unmount();
        mb.unmount();
    }
    synced(&a, &b, &sa, &sb);
    check(&a, 0);
    check(&b, 0);

    // (d) Apart: both edit n.md; the desk deletes m.md, the laptop edits it.
    sa.pause(&sb, true);
    sb.pause(&sa, true);
    {
        let m = a.mount(&[]);
        std::fs::write(m.path("n.md"), "offline on the desk\n").unwrap();
        std::fs::remove_file(m.path("m.md")).unwrap();
        m.unmount();
        let m = b.mount(&[]);
        std::fs::write(m.path("n.md"), "offline on the laptop\n").unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(m.path("m.md"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"the laptop's edit\n").unwrap();
        drop(f);
        m.unmount();
    }
    sa.pause(&sb, false);
    sb.pause(&sa, false);
    synced(&a, &b, &sa, &sb);
    for w in [&a, &b] {
        let m = w.mount(&[]);
        let all = names(w);
        let copies: Vec<&String> = all
            .iter()
            .filter(|n| n.starts_with("n (conflict "))
            .collect();
        assert_eq!(copies.len(), 1, "{all:?}");
        let mut both = [read(&m, "n.md"), read(&m, copies[0])];
        both.sort();
        assert_eq!(both, ["offline on the desk\n", "offline on the laptop\n"]);
        // The laptop's edit of the note the desk deleted is kept, and the
        // desk's deletion it undid leaves no trash entry behind.
        assert!(
            read(&m, "m.md").contains("the laptop's edit"),
            "m.md: {:?}; listing {all:?}",
            read(&m, "m.md")
        );
        let trash = stdout(&w.run(&["trash", "--json"]));
        assert!(!trash.contains("m.md"), "{trash}");
        // Search finds both computers' versions (the index catches up in
        // the background after the mount).
        let copy = copies[0].clone();
        eventually("search finds the note and its conflict copy", || {
            let hits = stdout(&w.run(&["search", "offline", "--json"]));
            hits.contains("\"n.md\"") && hits.contains(copy.as_str())
        });
        let o = w.run(&["conflicts", "--json"]);
        assert!(
            stdout(&o).contains("\"original\": \"n.md\""),
            "{}",
            stdout(&o)
        );
        m.unmount();
        check(w, 25);
    }
    {
        // Resolved on the desk: both lines kept, the copy deleted.
        let m = a.mount(&[]);
        let copy = names(&a)
            .into_iter()
            .find(|n| n.starts_with("n (conflict "))
            .unwrap();
        std::fs::write(
            m.path("n.md"),
            "offline on the desk\noffline on the laptop\n",
        )
        .unwrap();
        std::fs::remove_file(m.path(&copy)).unwrap();
        m.unmount();
    }
    // Both computers' versions of n.md are in its history, each naming
    // the computer that saved it (issue 18.3). Each read-write mount
    // merged the copy's versions; the laptop mounts once more so a
    // history copy made by both merging at once is merged too.
    synced(&a, &b, &sa, &sb);
    b.mount(&[]).unmount();
    synced(&a, &b, &sa, &sb);
    for w in [&a, &b] {
        let v = w.vault.to_str().unwrap();
        let pw = w.pwfile.to_str().unwrap();
        let log = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(["--vault", v, "--password-file", pw]);
            let o = w.run(&all);
            assert!(o.status.success(), "{o:?}");
            stdout(&o)
        };
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&log(&["log", "n.md", "--json"])).unwrap();
        let mut texts = Vec::new();
        let mut devices = std::collections::BTreeSet::new();
        for x in &list {
            let n = x["number"].as_u64().unwrap().to_string();
            texts.push(log(&["show", "n.md", "--version", &n]));
            devices.insert(x["device"].as_str().unwrap_or("").to_string());
        }
        for t in ["offline on the desk\n", "offline on the laptop\n"] {
            assert_eq!(
                texts.iter().filter(|x| x.as_str() == t).count(),
                1,
                "{texts:?}"
            );
        }
        devices.remove("");
        assert_eq!(devices.len(), 2, "{list:?}");
    }
    check(&a, 0);
    check(&b, 0);

    // (e) The desk is killed mid-write while the laptop has the vault
    // mounted: the laptop reads a consistent state or an I/O error, never a mix;
    // the desk's next mount rolls the note back, and both agree again.
    {
        let mb = b.mount(&[]);
        let ma = a.mount(&[]);
        write_then_kill(&a, ma, "n.md", 9000, b'x');
        sa.scan();
        std::thread::sleep(Duration::from_secs(3));
        // The desk's state as its daemon left it (the write whole, not yet
        // committed) or the last commit, or EIO: never a mix.
        match std::fs::read_to_string(mb.path("n.md")) {
            Ok(t) => assert!(
                t == "offline on the desk\noffline on the laptop\n" || t == "x".repeat(9000),
                "a mix: {} bytes",
                t.len()
            ),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}"),
        }
        mb.unmount();
        let ma = a.mount(&[]);
        assert_eq!(
            read(&ma, "n.md"),
            "offline on the desk\noffline on the laptop\n"
        );
        ma.unmount();
    }
    synced(&a, &b, &sa, &sb);
    {
        let m = b.mount(&[]);
        assert_eq!(
            read(&m, "n.md"),
            "offline on the desk\noffline on the laptop\n"
        );
        m.unmount();
    }
    check(&a, 0);
    check(&b, 0);

    // (f) The password changed on both while apart: both still open the
    // vault (saying so) until one password is chosen.
    sa.pause(&sb, true);
    sb.pause(&sa, true);
    let pw = |w: &World, name: &str, text: &str| {
        let p = w.dir.path().join(name);
        std::fs::write(&p, format!("{text}\n")).unwrap();
        p.to_str().unwrap().to_string()
    };
    let desk = pw(&a, "desk", "the desk's new password");
    let laptop = pw(&b, "laptop", "the laptop's new password");
    for (w, new) in [(&a, &desk), (&b, &laptop)] {
        let o = w.run(&[
            "passwd",
            w.vault.to_str().unwrap(),
            "--password-file",
            w.pwfile.to_str().unwrap(),
            "--new-password-file",
            new,
            "--kdf-memory",
            "8",
            "--kdf-passes",
            "1",
        ]);
        assert!(o.status.success(), "{o:?}");
    }
    sa.pause(&sb, false);
    sb.pause(&sa, false);
    synced(&a, &b, &sa, &sb);
    let laptop_on_a = pw(&a, "laptop", "the laptop's new password");
    for w in [&a, &b] {
        for p in [&desk, &laptop_on_a] {
            let o = w.run(&[
                "devices",
                "--vault",
                w.vault.to_str().unwrap(),
                "--password-file",
                p,
            ]);
            assert!(o.status.success(), "{p}: {o:?}");
        }
    }
    let agreed = pw(&a, "agreed", "the password we agreed on");
    let o = a.run(&[
        "passwd",
        a.vault.to_str().unwrap(),
        "--password-file",
        &desk,
        "--new-password-file",
        &agreed,
        "--kdf-memory",
        "8",
        "--kdf-passes",
        "1",
    ]);
    assert!(o.status.success(), "{o:?}");
    synced(&a, &b, &sa, &sb);
    for w in [&a, &b] {
        std::fs::copy(&agreed, &w.pwfile).unwrap();
        let o = w.run(&[
            "devices",
            "--vault",
            w.vault.to_str().unwrap(),
            "--password-file",
            &laptop_on_a,
        ]);
        assert_eq!(o.status.code(), Some(10), "{o:?}");
        check(w, 0);
    }
    // Each computer's audit chain names it, and both are in both logs.
    let o = a.run(&[
        "audit",
        "--json",
        "--vault",
        a.vault.to_str().unwrap(),
        "--password-file",
        a.pwfile.to_str().unwrap(),
    ]);
    let recs: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let devices: std::collections::BTreeSet<&str> =
        recs.iter().filter_map(|r| r["device"].as_str()).collect();
    assert_eq!(devices.len(), 2, "{devices:?}");
}
