//! Changes other programs make to the vault folder while it is mounted
//! (issue 18.5): a sync tool renames another computer's version over a
//! note's file, or deletes it. The mount shows the new state at once (the
//! kernel's cached entry is dropped), and a program that still has the
//! old file open never writes into a file no name reaches: its change is
//! kept as a conflict copy beside the note and its close reports EIO.

mod common;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// Host names in the vault's root folder without a dot (content files).
fn hosts(w: &World) -> BTreeSet<PathBuf> {
    std::fs::read_dir(w.vault.join("d"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().contains('.'))
        .collect()
}

/// Writes `rel` through the mount; returns its new host file.
fn create(w: &World, m: &Mounted, rel: &str, text: &str) -> PathBuf {
    let before = hosts(w);
    std::fs::write(m.path(rel), text).unwrap();
    let after = hosts(w);
    let new: Vec<_> = after.difference(&before).cloned().collect();
    assert_eq!(new.len(), 1, "{new:?}");
    new[0].clone()
}

/// What a sync tool does: a temporary file renamed over the name.
fn sync_over(from: &Path, to: &Path) {
    let tmp = to.with_file_name(".syncthing.incoming.tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// What a sync tool does when the note was deleted on the other
/// computer: its file and its side files go.
fn gone(host: &Path) {
    std::fs::remove_file(host).unwrap();
    for ext in [".qh", ".ql"] {
        let mut p = host.as_os_str().to_owned();
        p.push(ext);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn eventually(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{what}: not within 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_note_replaced_under_an_open_writer_keeps_both_versions() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let note = create(&w, &m, "n.md", "desk v1\n");
    let laptop = create(&w, &m, "laptop.md", "laptop version\n");
    // Read once, so the kernel caches the entry and the pages.
    assert_eq!(
        std::fs::read_to_string(m.path("n.md")).unwrap(),
        "desk v1\n"
    );
    // A program appends and keeps the file open.
    let mut writer = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import os,sys\nfd=os.open({:?},os.O_WRONLY|os.O_APPEND)\nos.write(fd,b'my addition\\n')\nprint('ok',flush=True)\nsys.stdin.readline()\nos.write(fd,b'second addition\\n')\ntry:\n    os.close(fd)\n    print('closed',flush=True)\nexcept OSError as e:\n    print('close failed',e.errno,flush=True)",
            m.path("n.md").to_str().unwrap()
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(writer.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ok");
    // The other computer's version arrives.
    sync_over(&laptop, &note);
    eventually("the mount shows the arrived version", || {
        std::fs::read_to_string(m.path("n.md")).unwrap() == "laptop version\n"
    });
    // And search finds it by its new text.
    eventually("search finds the arrived version", || {
        String::from_utf8_lossy(&w.run(&["search", "laptop", "--json"]).stdout)
            .contains("\"path\":\"n.md\"")
    });
    // The program goes on writing and closes: refused, and kept.
    {
        use std::io::Write;
        writer.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("close failed {}", libc::EIO), "{line}");
    writer.wait().unwrap();
    let names: Vec<String> = std::fs::read_dir(&w.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let copy = names
        .iter()
        .find(|n| n.starts_with("n (conflict "))
        .unwrap_or_else(|| panic!("no conflict copy: {names:?}"));
    assert_eq!(
        std::fs::read_to_string(m.path(copy)).unwrap(),
        "desk v1\nmy addition\nsecond addition\n"
    );
    assert_eq!(
        std::fs::read_to_string(m.path("n.md")).unwrap(),
        "laptop version\n"
    );
    m.unmount();
    assert!(w.logs().contains("was replaced by another program"));
    let o = w.check_sealed();
    assert_eq!(
        o.status.code(),
        Some(25),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn a_note_deleted_or_replaced_by_another_program_shows_at_once() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let a = create(&w, &m, "a.md", "a one\n");
    let b = create(&w, &m, "b.md", "b one\n");
    std::fs::create_dir(m.path("sub")).unwrap();
    std::fs::write(m.path("sub/c.md"), "c one\n").unwrap();
    for p in ["a.md", "b.md", "sub/c.md"] {
        assert!(std::fs::metadata(m.path(p)).is_ok());
        std::fs::read(m.path(p)).unwrap();
    }
    // Deleted on the host: gone from the mount within the watcher's delay,
    // not after the kernel's entry timeout.
    gone(&b);
    eventually("b.md gone", || !m.path("b.md").exists());
    // Replaced on the host by another file's content.
    sync_over(&a, &a.clone()); // same bytes, new inode: still readable
    eventually("a.md readable after being replaced", || {
        std::fs::read_to_string(m.path("a.md")).is_ok_and(|t| t == "a one\n")
    });
    // In a folder too (every folder is watched, one made through the
    // mount while mounted as well).
    gone(&only_note(&only_folder(&w.vault.join("d"))));
    let t = Instant::now();
    while m.path("sub/c.md").exists() {
        // Once seen failing in CI (session 11) and not reproduced since:
        // the daemon's log says what the watcher did.
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "sub/c.md not gone within 5 s; daemon log:\n{}",
            w.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    m.unmount();
    assert_eq!(w.check_sealed().status.code(), Some(0));
}
