//! History, trash and their commands (issue 3), on a real mount with real
//! programs.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Versions of a note as `quire log --json` numbers them.
fn versions(w: &World, path: &Path) -> Vec<(usize, u64)> {
    let o = w.run(&["log", "--json", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    v.iter()
        .map(|x| {
            (
                x["number"].as_u64().unwrap() as usize,
                x["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Waits until the note has `n` versions (a version is recorded when the
/// kernel releases the file, just after `close` returns).
fn wait_versions(w: &World, path: &Path, n: usize) -> Vec<(usize, u64)> {
    let mut last = Vec::new();
    wait_until(Duration::from_secs(5), || {
        last = versions(w, path);
        last.len() >= n
    });
    last
}

fn ls(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn every_save_is_a_version_browsable_with_ls_cat_diff_and_grep() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let note = m.path("session.md");
    for (i, text) in ["first draft\n", "second draft\n", "third draft\n"]
        .iter()
        .enumerate()
    {
        std::fs::write(&note, text).unwrap();
        wait_versions(&w, &note, i + 1);
        std::thread::sleep(Duration::from_millis(1100));
    }
    // Saving the same content again stores nothing new.
    std::fs::write(&note, "third draft\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(versions(&w, &note).len(), 3);

    // .history is reachable by name only, and its name is taken.
    assert!(!ls(&w.mnt).contains(&".history".to_string()));
    let e = std::fs::create_dir(m.path(".history")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    assert!(std::fs::write(m.path(".trash"), "x").is_err());
    assert!(std::fs::rename(&note, m.path(".trash")).is_err());
    let hist = m.path(".history/session.md");
    let names = ls(&hist);
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names[0].len() == 19 && names[0].as_bytes()[10] == b'T',
        "{names:?}"
    );
    assert_eq!(
        std::fs::read_to_string(hist.join(&names[0])).unwrap(),
        "first draft\n"
    );
    let d = sh(
        &w.mnt,
        &format!("diff .history/session.md/{} session.md || true", names[0]),
    );
    assert!(
        d.contains("< first draft") && d.contains("> third draft"),
        "{d}"
    );
    let g = sh(&w.mnt, "grep -r -l 'second draft' .history/ || true");
    assert!(g.contains(&names[1]), "{g}");
    // grep over the mount does not walk old versions.
    let g = sh(&w.mnt, "grep -r -l 'second draft' . || true");
    assert!(g.trim().is_empty(), "{g}");
    // Read-only.
    assert!(std::fs::write(hist.join(&names[0]), "x").is_err());
    assert!(std::fs::remove_file(hist.join(&names[0])).is_err());

    // CLI: show, diff, restore (a new version; nothing destroyed).
    let o = w.run(&["show", note.to_str().unwrap(), "--version", "1"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "first draft\n");
    let o = w.run(&["diff", note.to_str().unwrap(), "1", "2"]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("-first draft") && text.contains("+second draft"),
        "{text}"
    );
    let o = w.run(&["restore", note.to_str().unwrap(), "--version", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&note).unwrap(), "first draft\n");
    assert_eq!(wait_versions(&w, &note, 4).len(), 4);
    // Bad input: a version that does not exist, a bad date.
    let o = w.run(&["show", note.to_str().unwrap(), "--version", "9"]);
    assert_eq!(o.status.code(), Some(22));
    let o = w.run(&["show", note.to_str().unwrap(), "--at", "tomorrow"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a date"));
    m.unmount();

    // The sealed vault answers the same, with the password.
    let o = w.run(&[
        "log",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
        "session.md",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A header naming the vault, then five versions.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("Vault: the sealed vault "), "{out}");
    assert_eq!(out.lines().count(), 6, "{out}");
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn editors_save_into_one_history_and_leave_no_debris() {
    need("vim");
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let note = m.path("note.md");
    std::fs::write(&note, "line one\n").unwrap();
    wait_versions(&w, &note, 1);
    // vim's default save (rename the original to note.md~, write anew,
    // delete the backup), with its swap file and 4913 probe.
    for word in ["two", "three"] {
        std::thread::sleep(Duration::from_millis(1100));
        sh(
            &w.mnt,
            &format!(
                "vim -Nu NONE -es -c 'set backup writebackup backupcopy=no swapfile' -c 'normal Go{word}' -c wq note.md"
            ),
        );
    }
    // sed -i, Python's atomic replace, gedit's .goutputstream-, JetBrains.
    std::thread::sleep(Duration::from_millis(1100));
    sh(&w.mnt, "sed -i 's/one/ONE/' note.md");
    std::thread::sleep(Duration::from_millis(1100));
    sh(
        &w.mnt,
        "python3 -c \"import os; f=open('.goutputstream-AB12CD','w'); f.write(open('note.md').read()+'py\\n'); f.close(); os.replace('.goutputstream-AB12CD','note.md')\"",
    );
    std::thread::sleep(Duration::from_millis(1100));
    sh(
        &w.mnt,
        "cp note.md note.md___jb_tmp___ && echo jb >> note.md___jb_tmp___ && mv note.md note.md___jb_old___ && mv note.md___jb_tmp___ note.md && rm note.md___jb_old___",
    );
    let vs = wait_versions(&w, &note, 6);
    assert_eq!(vs.len(), 6, "{vs:?}");
    let latest = std::fs::read_to_string(&note).unwrap();
    assert!(latest.contains("ONE") && latest.contains("three") && latest.ends_with("py\njb\n"));
    // No history, no trash for the debris.
    assert_eq!(ls(&m.path(".history")), vec!["note.md".to_string()]);
    let trash = w.run(&["trash", "--json"]);
    assert_eq!(String::from_utf8_lossy(&trash.stdout).trim(), "[]");
    // A rename carries the history; editing after it continues it.
    sh(&w.mnt, "mkdir -p clients && mv note.md clients/renamed.md");
    let renamed = m.path("clients/renamed.md");
    assert_eq!(versions(&w, &renamed).len(), 6);
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&renamed, "after the rename\n").unwrap();
    assert_eq!(wait_versions(&w, &renamed, 7).len(), 7);
    // A folder rename carries it too.
    sh(&w.mnt, "mv clients people");
    assert_eq!(versions(&w, &m.path("people/renamed.md")).len(), 7);
}

#[test]
fn deleted_notes_go_to_the_trash_with_their_history() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    sh(
        &w.mnt,
        "mkdir -p a/b && echo one > a/b/n.md && echo keep > top.md && echo x > quick.md",
    );
    wait_versions(&w, &m.path("a/b/n.md"), 1);
    // A file removed within seconds of its creation is not kept.
    sh(&w.mnt, "rm quick.md");
    std::thread::sleep(Duration::from_secs(6));
    sh(&w.mnt, "echo two >> a/b/n.md");
    wait_versions(&w, &m.path("a/b/n.md"), 2);
    sh(&w.mnt, "rm a/b/n.md top.md");
    assert_eq!(
        ls(&m.path(".trash")),
        vec!["a".to_string(), "top.md".to_string()]
    );
    assert_eq!(
        std::fs::read_to_string(m.path(".trash/a/b/n.md")).unwrap(),
        "one\ntwo\n"
    );
    let o = w.run(&["trash", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    // rm -rf of a folder: its notes are trashed, the folder goes.
    sh(&w.mnt, "mkdir d && echo in > d/in.md");
    std::thread::sleep(Duration::from_secs(6));
    sh(&w.mnt, "rm -rf d");
    assert!(!m.path("d").exists());
    assert!(ls(&m.path(".trash")).contains(&"d".to_string()));
    // Restore: back at its path with its history.
    let o = w.run(&["trash", "restore", m.path("a/b/n.md").to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(m.path("a/b/n.md")).unwrap(),
        "one\ntwo\n"
    );
    assert_eq!(versions(&w, &m.path("a/b/n.md")).len(), 2);
    // Restoring onto a taken name keeps both.
    std::fs::write(m.path("top.md"), "new top\n").unwrap();
    let o = w.run(&["trash", "restore", "top.md"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let names = ls(&w.mnt);
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("top (restored ") && n.ends_with(").md")),
        "{names:?}"
    );
    assert_eq!(
        std::fs::read_to_string(m.path("top.md")).unwrap(),
        "new top\n"
    );
    // Purge within the window: nothing; emptying: gone from the vault.
    let o = w.run(&["trash", "purge", "--dry-run", "--json"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    let o = w.run(&["trash", "empty", "--yes"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(ls(&m.path(".trash")).is_empty());
    let left: Vec<_> = w
        .vault_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("quire.trash/"))
        .filter(|p| !p.ends_with("settings"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let o = w.run(&["trash", "restore", "nothing-here.md"]);
    assert_eq!(o.status.code(), Some(22));
}

#[test]
fn tampered_history_and_trash_are_reported_never_shown() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    sh(&w.mnt, "echo one > a.md && echo gone > b.md");
    wait_versions(&w, &m.path("a.md"), 1);
    std::thread::sleep(Duration::from_millis(1100));
    sh(&w.mnt, "echo two > a.md");
    wait_versions(&w, &m.path("a.md"), 2);
    std::thread::sleep(Duration::from_secs(5));
    sh(&w.mnt, "rm b.md");
    m.unmount();
    // Flip one bit in the middle of the history stream, and in the trash record.
    let files = w.vault_files();
    let qh = files
        .iter()
        .find(|p| {
            p.extension().is_some_and(|e| e == "qh") && !p.to_string_lossy().contains("quire.trash")
        })
        .unwrap();
    let mut b = std::fs::read(qh).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x10;
    std::fs::write(qh, &b).unwrap();
    let meta = files.iter().find(|p| p.ends_with("m")).unwrap();
    let mut b = std::fs::read(meta).unwrap();
    b[20] ^= 1;
    std::fs::write(meta, &b).unwrap();
    let o = w.check_sealed();
    assert_eq!(o.status.code(), Some(21));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("PROBLEM  a.md:"), "{out}");
    assert!(out.contains("trash entry"), "{out}");
    // The note itself still reads; its damaged history is an error, not garbage.
    let m = w.mount(&[]);
    assert_eq!(std::fs::read_to_string(m.path("a.md")).unwrap(), "two\n");
    let o = w.run(&["show", m.path("a.md").to_str().unwrap(), "--version", "1"]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not authenticate"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::read_dir(m.path(".history/a.md")).is_err());
    // The tampered trash entry is hidden (and logged), not shown as garbage.
    let o = w.run(&["trash", "--json"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
}

#[test]
fn a_busy_database_gets_few_versions_and_two_mounts_need_a_choice() {
    need("sqlite3");
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    // 200 transactions, each fsync'd by SQLite (rollback journal and WAL
    // side files are debris), in one process that keeps the file open.
    let mut script = String::from("PRAGMA journal_mode=DELETE; CREATE TABLE t(x);\n");
    for i in 0..200 {
        script.push_str(&format!("INSERT INTO t VALUES ({i});\n"));
    }
    std::fs::write(w.dir.path().join("s.sql"), &script).unwrap();
    sh(
        &w.mnt,
        &format!(
            "sqlite3 db.sqlite < {}",
            w.dir.path().join("s.sql").display()
        ),
    );
    let n = sh(&w.mnt, "sqlite3 db.sqlite 'SELECT count(*) FROM t'");
    assert_eq!(n.trim(), "200");
    std::thread::sleep(Duration::from_millis(300));
    let vs = versions(&w, &m.path("db.sqlite"));
    assert!(
        !vs.is_empty() && vs.len() <= 4,
        "{} versions for 200 transactions",
        vs.len()
    );
    assert_eq!(ls(&m.path(".history")), vec!["db.sqlite".to_string()]);

    // A second vault mounted: a path inside either mount finds its vault;
    // a bare path needs --mountpoint.
    let mut w2 = World::new();
    w2.runtime = w.runtime.clone();
    std::fs::create_dir_all(&w2.mnt).unwrap();
    w2.init();
    let m2 = w2.mount(&[]);
    std::fs::write(m2.path("other.md"), "other vault\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let o = w.run(&["log", m2.path("other.md").to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = w.run(&["log", "other.md"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--mountpoint"));
    let o = w.run(&["log", "--mountpoint", w2.mnt.to_str().unwrap(), "other.md"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    m2.unmount();
    m.unmount();
}
