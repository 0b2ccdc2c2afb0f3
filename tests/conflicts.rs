//! Sync tools' conflict copies (issue 18.4): a copy Syncthing, Nextcloud,
//! Dropbox, OneDrive or Google Drive made of a note's files when two
//! computers changed it is shown beside the note, readable, with its own
//! history; `quire conflicts` lists it, `check` reports it as a conflict
//! (exit 25), never as damage; deleting it sends it to the trash.
//!
//! The copies are made here as the tools name them (the real Syncthing
//! test is in tests/sync.rs).

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The host files of the only note in the vault's root: (content, history).
fn note_files(w: &World) -> (PathBuf, PathBuf) {
    let qh = std::fs::read_dir(w.vault.join("d"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".qh"))
        .expect("a history stream");
    let content = PathBuf::from(qh.to_string_lossy().strip_suffix(".qh").unwrap());
    (content, qh)
}

fn copy(from: &Path, to: PathBuf) {
    std::fs::copy(from, to).unwrap();
}

#[test]
fn conflict_copies_are_shown_readable_listed_and_resolved_to_the_trash() {
    let w = World::new();
    w.init();
    let v = w.vault.to_str().unwrap().to_string();
    let pw = w.pwfile.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--vault", &v, "--password-file", &pw]);
        w.run(&all)
    };
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("n02.md"), "first line\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::write(m.path("n02.md"), "first line\nthe laptop's line\n").unwrap();
        m.unmount();
    }
    // The laptop's version, as Syncthing keeps it when the desktop's
    // later save wins: the content file and its history under the
    // conflict name.
    let (content, qh) = note_files(&w);
    let laptop = std::fs::read(&content).unwrap();
    let laptop_qh = std::fs::read(&qh).unwrap();
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("n02.md"), "first line\nthe desktop's line\n").unwrap();
        m.unmount();
    }
    let st = |name: &str| {
        let mut p = content.clone().into_os_string();
        p.push(name);
        PathBuf::from(p)
    };
    std::fs::write(st(".sync-conflict-20261204-144500-ABCDEF7"), &laptop).unwrap();
    std::fs::write(st(".sync-conflict-20261204-144500-ABCDEF7.qh"), &laptop_qh).unwrap();
    // Nextcloud's naming too (no dot in it).
    copy(&content, st(" (conflicted copy 2026-12-05 091500)"));
    let shown = "n02 (conflict 2026-12-04 14.45 ABCDEF7).md";
    let nextcloud = "n02 (conflict 2026-12-05 09.15).md";
    {
        let m = w.mount(&[]);
        let mut names: Vec<String> = std::fs::read_dir(&w.mnt)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [shown, nextcloud, "n02.md"]);
        assert_eq!(
            std::fs::read_to_string(m.path(shown)).unwrap(),
            "first line\nthe laptop's line\n"
        );
        assert_eq!(
            std::fs::read_to_string(m.path("n02.md")).unwrap(),
            "first line\nthe desktop's line\n"
        );
        // Its own history (the copy's stream still names the original).
        let versions: Vec<_> = std::fs::read_dir(m.path(&format!(".history/{shown}")))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(versions.len(), 2, "{versions:?}");
        // Listed through the daemon.
        let o = w.run(&["conflicts", "--json"]);
        assert!(o.status.success(), "{o:?}");
        let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(list.len(), 2, "{list:?}");
        assert_eq!(list[0]["path"], shown);
        assert_eq!(list[0]["original"], "n02.md");
        assert_eq!(list[0]["tool"], "Syncthing");
        assert_eq!(list[0]["device"], "ABCDEF7");
        // Resolved: the laptop's line merged into the note, the copies
        // deleted (to the trash).
        std::fs::write(
            m.path("n02.md"),
            "first line\nthe desktop's line\nthe laptop's line\n",
        )
        .unwrap();
        std::fs::remove_file(m.path(nextcloud)).unwrap();
        m.unmount();
    }
    // A conflict, not damage: its own exit code, no PROBLEM line.
    let o = w.check_sealed();
    assert_eq!(o.status.code(), Some(25), "{}", out(&o));
    assert!(
        out(&o).contains(&format!("CONFLICT {shown}")),
        "{}",
        out(&o)
    );
    assert!(!out(&o).contains("PROBLEM"), "{}", out(&o));
    let o = run(&["conflicts"]);
    assert!(
        out(&o).contains("a copy of n02.md kept by Syncthing"),
        "{}",
        out(&o)
    );
    {
        let m = w.mount(&[]);
        std::fs::remove_file(m.path(shown)).unwrap();
        assert!(!m.path(shown).exists());
        m.unmount();
    }
    assert_eq!(w.check_sealed().status.code(), Some(0));
    let o = run(&["trash"]);
    assert!(
        out(&o).contains(shown) && out(&o).contains(nextcloud),
        "{}",
        out(&o)
    );
    let o = run(&["conflicts"]);
    assert!(out(&o).contains("No conflict copies"), "{}", out(&o));
    // The audit log names what was deleted by the name it was shown under.
    let o = run(&["audit"]);
    assert!(out(&o).contains(shown), "{}", out(&o));
}

#[test]
fn a_name_that_only_looks_like_a_copy_is_an_ordinary_note() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let name = "plan (conflict 2026-12-04 14.45 ABC).md";
    std::fs::write(m.path(name), "mine\n").unwrap();
    assert_eq!(std::fs::read_to_string(m.path(name)).unwrap(), "mine\n");
    std::fs::rename(m.path(name), m.path("plan.md")).unwrap();
    assert_eq!(
        std::fs::read_to_string(m.path("plan.md")).unwrap(),
        "mine\n"
    );
    m.unmount();
    assert_eq!(w.check_sealed().status.code(), Some(0));
}

/// Issue 18.6: the password changed on two computers while they were
/// apart. The sync tool keeps one `quire.conf` and the other as a conflict
/// copy; the losing computer's password still opens the vault (through
/// the copy, which holds the same master key), with a warning that says
/// what happened, until `quire passwd` sets one password and removes the
/// copy.
#[test]
fn a_password_changed_on_two_computers_at_once_keeps_working_until_one_is_set() {
    let w = World::new();
    w.init();
    let v = w.vault.to_str().unwrap().to_string();
    let conf = w.vault.join("quire.conf");
    let file = |name: &str, text: &str| {
        let p = w.dir.path().join(name);
        std::fs::write(&p, format!("{text}\n")).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (laptop, desk, agreed) = (
        file("laptop", "the laptop's new password"),
        file("desk", "the desktop's new password"),
        file("agreed", "the password we agreed on"),
    );
    let passwd = |current: &str, new: &str| {
        let o = w.run(&[
            "passwd",
            &v,
            "--password-file",
            current,
            "--new-password-file",
            new,
            "--kdf-memory",
            "8",
            "--kdf-passes",
            "1",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let pw = w.pwfile.to_str().unwrap().to_string();
    let before = std::fs::read(&conf).unwrap();
    passwd(&pw, &laptop);
    let laptops = std::fs::read(&conf).unwrap();
    std::fs::write(&conf, &before).unwrap();
    passwd(&pw, &desk);
    // The sync tool's result: the desktop's won, the laptop's is a copy.
    std::fs::write(
        w.vault
            .join("quire.sync-conflict-20261204-144500-ABCDEF7.conf"),
        &laptops,
    )
    .unwrap();
    let open = |pwf: &str| w.run(&["devices", "--vault", &v, "--password-file", pwf]);
    let o = open(&desk);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).is_empty(), "{o:?}");
    let o = open(&laptop);
    assert!(o.status.success(), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("quire.sync-conflict-20261204-144500-ABCDEF7.conf")
            && err.contains("quire passwd"),
        "{err}"
    );
    // Mounting with it works too.
    let o = w.run(&[
        "mount",
        &v,
        w.mnt.to_str().unwrap(),
        "--password-file",
        &laptop,
    ]);
    assert!(o.status.success(), "{o:?}");
    Mounted::adopt(&w).unmount();
    // The old password of before both changes opens nothing.
    assert_eq!(open(&pw).status.code(), Some(10));
    // One password set: the copy goes, the others stop working.
    passwd(&laptop, &agreed);
    assert!(
        !w.vault
            .join("quire.sync-conflict-20261204-144500-ABCDEF7.conf")
            .exists()
    );
    assert_eq!(open(&laptop).status.code(), Some(10));
    assert_eq!(open(&desk).status.code(), Some(10));
    assert!(open(&agreed).status.success());
    let o = w.run(&["audit", "--vault", &v, "--password-file", &agreed]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("conflicting copy of quire.conf"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Issue 18.4: a folder created under one name on two computers at once
/// has two folder IDs; the sync tool keeps one `quire.dirid` and a copy of
/// the other. A note made in the other computer's copy of the folder is
/// not readable under the kept ID: `check` reports it as a conflict (exit
/// 25, by its name), never as tampering; the next read-write mount merges
/// it in (cryptomator/cryptofs#355 shared one ID between two folders
/// instead).
/// A name too long to be one encrypted host name (FORMAT §5.3).
const LONG: &str = "a name long enough that its encryption does not fit in one host file name, as a clinician's long session title might be.md";

#[test]
fn a_folder_made_on_two_computers_at_once_is_reported_then_merged() {
    let w = World::new();
    w.init();
    {
        let m = w.mount(&[]);
        std::fs::create_dir(m.path("clients")).unwrap();
        std::fs::write(m.path("clients/a.md"), "made on the desk\n").unwrap();
        m.unmount();
    }
    // The laptop: the same vault, where "clients" was made anew (another
    // folder ID) with a note of its own.
    let mut b = World::new();
    b.vault = b.dir.path().join("vault");
    let o = std::process::Command::new("cp")
        .arg("-a")
        .arg(&w.vault)
        .arg(&b.vault)
        .output()
        .unwrap();
    assert!(o.status.success());
    {
        let m = b.mount(&[]);
        std::fs::remove_file(m.path("clients/a.md")).unwrap();
        std::fs::remove_dir(m.path("clients")).unwrap();
        std::fs::create_dir(m.path("clients")).unwrap();
        std::fs::write(m.path("clients/b.md"), "made on the laptop\n").unwrap();
        std::fs::write(m.path("clients/a.md"), "the laptop's a.md\n").unwrap();
        // A symlink and a name too long for one host name (§5.3), too.
        std::os::unix::fs::symlink("b.md", m.path("clients/latest")).unwrap();
        std::fs::write(m.path(&format!("clients/{LONG}")), "long named\n").unwrap();
        m.unmount();
    }
    // What the sync tool makes of it on the desk.
    let (mine, theirs) = (
        only_folder(&w.vault.join("d")),
        only_folder(&b.vault.join("d")),
    );
    assert_eq!(mine.file_name(), theirs.file_name());
    for e in std::fs::read_dir(&theirs).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let to = if name == "quire.dirid" {
            mine.join("quire.sync-conflict-20261204-144500-ABCDEF7.dirid")
        } else {
            mine.join(&name)
        };
        if e.file_type().unwrap().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), to).unwrap();
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
    let o = w.check_sealed();
    assert_eq!(o.status.code(), Some(25), "{}", out(&o));
    for n in ["b.md", "latest", LONG] {
        assert!(
            out(&o).contains(&format!("CONFLICT clients/{n}: made in this folder")),
            "{n}: {}",
            out(&o)
        );
    }
    assert!(
        out(&o).contains("CONFLICT clients/b.md: made in this folder on another computer"),
        "{}",
        out(&o)
    );
    assert!(!out(&o).contains("PROBLEM"), "{}", out(&o));
    // A read-only mount shows the kept folder's notes and says why the
    // others are hidden.
    {
        let m = w.mount(&["--read-only"]);
        let names: Vec<String> = std::fs::read_dir(m.path("clients"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["a.md"]);
        m.unmount();
        assert!(w.logs().contains("'b.md' in"), "{}", w.logs());
    }
    // A read-write mount merges them in (a taken name gets a new one), with
    // their history; the folder has one ID again.
    let m = w.mount(&[]);
    let mut names: Vec<String> = std::fs::read_dir(m.path("clients"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut want = [
        "a (from another computer).md",
        "a.md",
        "b.md",
        "latest",
        LONG,
    ];
    want.sort();
    assert_eq!(names, want);
    assert_eq!(
        std::fs::read_link(m.path("clients/latest")).unwrap(),
        std::path::Path::new("b.md")
    );
    assert_eq!(
        std::fs::read_to_string(m.path("clients/latest")).unwrap(),
        "made on the laptop\n"
    );
    assert_eq!(
        std::fs::read_to_string(m.path(&format!("clients/{LONG}"))).unwrap(),
        "long named\n"
    );
    assert_eq!(
        std::fs::read_to_string(m.path("clients/b.md")).unwrap(),
        "made on the laptop\n"
    );
    assert_eq!(
        std::fs::read_to_string(m.path("clients/a (from another computer).md")).unwrap(),
        "the laptop's a.md\n"
    );
    assert_eq!(
        std::fs::read_dir(m.path(".history/clients/b.md"))
            .unwrap()
            .count(),
        1
    );
    m.unmount();
    assert!(
        !mine
            .join("quire.sync-conflict-20261204-144500-ABCDEF7.dirid")
            .exists()
    );
    let o = w.check_sealed();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = w.run(&[
        "audit",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    assert!(out(&o).contains("merged"), "{}", out(&o));
}

/// The host name (in the vault's root) of the note whose content file is
/// `content`, with `suffix` appended.
fn beside(content: &Path, suffix: &str) -> PathBuf {
    let mut p = content.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// `quire log PATH --json` of a sealed vault: (content, device short ID)
/// of each version, oldest first.
fn versions_of(w: &World, path: &str) -> Vec<(String, String)> {
    let v = w.vault.to_str().unwrap();
    let pw = w.pwfile.to_str().unwrap();
    let o = w.run(&["log", path, "--json", "--vault", v, "--password-file", pw]);
    assert!(o.status.success(), "{o:?}");
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    list.iter()
        .map(|x| {
            let n = x["number"].as_u64().unwrap().to_string();
            let o = w.run(&[
                "show",
                path,
                "--version",
                &n,
                "--vault",
                v,
                "--password-file",
                pw,
            ]);
            assert!(o.status.success(), "{o:?}");
            (out(&o), x["device"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

fn my_device(w: &World) -> String {
    let v = w.vault.to_str().unwrap();
    let pw = w.pwfile.to_str().unwrap();
    let o = w.run(&["devices", "--json", "--vault", v, "--password-file", pw]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let me = list.iter().find(|d| d["this_device"] == true).unwrap();
    me["id"].as_str().unwrap()[..7].to_string()
}

#[test]
fn versions_saved_on_two_computers_all_end_in_the_history() {
    // The desktop (a) and the laptop (b) start from one vault, then work
    // apart: each its own copy of the folder, its own device folder.
    let a = World::new();
    a.init();
    {
        let m = a.mount(&[]);
        std::fs::write(m.path("n.md"), "v1\n").unwrap();
        std::fs::create_dir(m.path("s")).unwrap();
        std::fs::write(m.path("s/m.md"), "m1\n").unwrap();
        m.unmount();
    }
    let mut b = World::new();
    b.vault = b.dir.path().join("laptop-vault");
    sh(
        b.dir.path(),
        &format!("cp -a {} {}", a.vault.display(), b.vault.display()),
    );
    let save = |w: &World, rel: &str, text: &str| {
        let m = w.mount(&[]);
        std::fs::write(m.path(rel), text).unwrap();
        m.unmount();
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    save(&b, "n.md", "v1\nB1\n");
    save(&b, "s/m.md", "m1\nmB\n");
    save(&a, "n.md", "v1\nA1\n");
    save(&a, "n.md", "v1\nA1\nA2\n");
    save(&a, "s/m.md", "m1\nmA\n");
    let (da, db) = (my_device(&a), my_device(&b));
    assert_ne!(da, db);
    // What the sync tool leaves on the desktop: the desktop's files won;
    // the laptop's note `n.md` and its history are kept as conflict copies,
    // and of `m.md` only the history conflicted.
    let (ad, bd) = (a.vault.join("d"), b.vault.join("d"));
    let (an, bn) = (only_note(&ad), only_note(&bd));
    let (am, bm) = (only_note(&only_folder(&ad)), only_note(&only_folder(&bd)));
    let tag = ".sync-conflict-20261204-144500-BBBBBBB";
    copy(&bn, beside(&an, tag));
    copy(&beside(&bn, ".qh"), beside(&an, &format!("{tag}.qh")));
    copy(&beside(&bm, ".qh"), beside(&am, &format!("{tag}.qh")));
    // Before a read-write mount merges them: conflicts, never damage.
    let o = a.check_sealed();
    assert_eq!(o.status.code(), Some(25), "{}", out(&o));
    assert!(
        out(&o).contains("CONFLICT s/m.md") && !out(&o).contains("PROBLEM"),
        "{}",
        out(&o)
    );
    {
        let m = a.mount(&[]);
        let shown = "n (conflict 2026-12-04 14.45 BBBBBBB).md";
        assert_eq!(std::fs::read_to_string(m.path(shown)).unwrap(), "v1\nB1\n");
        // The history-only copy is merged and gone; the note's copy stays
        // until resolved.
        assert!(!beside(&am, &format!("{tag}.qh")).exists());
        assert!(beside(&an, tag).exists());
        std::fs::remove_file(m.path(shown)).unwrap();
        m.unmount();
    }
    let text = |v: &[(String, String)]| v.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    let n = versions_of(&a, "n.md");
    assert_eq!(
        text(&n),
        ["v1\n", "v1\nB1\n", "v1\nA1\n", "v1\nA1\nA2\n"],
        "{n:?}"
    );
    assert_eq!(n[1].1, db, "{n:?}");
    assert_eq!(n[2].1, da, "{n:?}");
    assert_eq!(n[3].1, da, "{n:?}");
    let mm = versions_of(&a, "s/m.md");
    assert_eq!(text(&mm), ["m1\n", "m1\nmB\n", "m1\nmA\n"], "{mm:?}");
    assert_eq!(mm[1].1, db);
    // Merging again (every read-write mount looks) adds nothing twice, and
    // the vault checks clean.
    a.mount(&[]).unmount();
    assert_eq!(versions_of(&a, "n.md").len(), 4);
    assert_eq!(versions_of(&a, "s/m.md").len(), 3);
    let o = a.check_sealed();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let v = a.vault.to_str().unwrap();
    let pw = a.pwfile.to_str().unwrap();
    let o = a.run(&["audit", "--vault", v, "--password-file", pw]);
    assert!(
        out(&o).contains("saved on another computer merged into its history"),
        "{}",
        out(&o)
    );
}

/// Attributes (FORMAT §7.1) belong to the file ID, which a conflict copy
/// shares with its note (it is a byte copy): purging the copy keeps the
/// note's attributes; purging the note too removes its attribute file;
/// removing a folder removes the folder's.
#[test]
fn a_conflict_copy_shares_its_notes_attributes_until_both_are_gone() {
    let w = World::new();
    w.init();
    let set = |rel: &str, name: &str, value: &str| set_xattr(&w.mnt, rel, name, value);
    let get = |rel: &str, name: &str| xattr_of(&w.mnt, rel, name);
    let attr_files = || {
        std::fs::read_dir(w.vault.join("d/quire.xattrs"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("n.md"), "note\n").unwrap();
        set("n.md", "user.color", "blue");
        std::fs::create_dir(m.path("f")).unwrap();
        set("f", "user.tag", "folder");
        m.unmount();
    }
    assert_eq!(attr_files(), 2);
    let content = only_note(&w.vault.join("d"));
    copy(
        &content,
        beside(&content, ".sync-conflict-20261204-144500-ABCDEF7"),
    );
    let shown = "n (conflict 2026-12-04 14.45 ABCDEF7).md";
    let m = w.mount(&[]);
    assert_eq!(get(shown, "user.color"), "blue");
    std::fs::remove_file(m.path(shown)).unwrap();
    std::fs::remove_dir(m.path("f")).unwrap();
    assert_eq!(attr_files(), 1, "the folder's attribute file goes with it");
    let o = w.run(&["purge", "--now", "+61d"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(get("n.md", "user.color"), "blue");
    assert_eq!(attr_files(), 1);
    std::fs::remove_file(m.path("n.md")).unwrap();
    let o = w.run(&["purge", "--now", "+61d"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(attr_files(), 0);
    // A note deleted for good at once (made seconds ago: not trashed)
    // takes its attribute file along.
    std::fs::write(m.path("q.md"), "quick\n").unwrap();
    set("q.md", "user.color", "red");
    assert_eq!(attr_files(), 1);
    std::fs::remove_file(m.path("q.md")).unwrap();
    assert_eq!(attr_files(), 0);
    m.unmount();
    assert_eq!(w.check_sealed().status.code(), Some(0));
}

/// The trash window set on two computers while apart (issue 18.6): the
/// sync tool keeps one `settings` and a copy; the longer window holds
/// (nothing is purged earlier than either computer asked), and a
/// read-write mount settles it and removes the copy.
#[test]
fn a_trash_window_set_on_two_computers_keeps_the_longer() {
    let w = World::new();
    w.init();
    let v = w.vault.to_str().unwrap().to_string();
    let pw = w.pwfile.to_str().unwrap().to_string();
    let trash = w.vault.join("d/quire.trash");
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("n.md"), "old note\n").unwrap();
        std::thread::sleep(std::time::Duration::from_secs(6));
        std::fs::remove_file(m.path("n.md")).unwrap();
        assert!(w.run(&["trash", "keep", "90"]).status.success());
        m.unmount();
    }
    let laptop = std::fs::read(trash.join("settings")).unwrap();
    {
        let m = w.mount(&[]);
        assert!(w.run(&["trash", "keep", "30"]).status.success());
        m.unmount();
    }
    std::fs::write(
        trash.join("settings.sync-conflict-20261204-144500-ABCDEF7"),
        laptop,
    )
    .unwrap();
    // Sealed: the 90 days hold, so the note deleted "70 days ago" stays.
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--vault", &v, "--password-file", &pw]);
        w.run(&all)
    };
    let o = run(&["purge", "--dry-run", "--now", "+70d", "--json"]);
    assert!(o.status.success(), "{o:?}");
    assert!(!out(&o).contains("n.md"), "{}", out(&o));
    let o = run(&["purge", "--dry-run", "--now", "+91d", "--json"]);
    assert!(out(&o).contains("n.md"), "{}", out(&o));
    // A read-write mount settles it: one record, of 90 days.
    w.mount(&[]).unmount();
    let names: Vec<String> = std::fs::read_dir(&trash)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("settings"))
        .collect();
    assert_eq!(names, ["settings"]);
    let o = run(&["purge", "--dry-run", "--now", "+70d", "--json"]);
    assert!(!out(&o).contains("n.md"), "{}", out(&o));
    assert!(w.logs().contains("the longer, 90 days, is kept"));
}

/// Attributes changed on two computers while apart: the sync tool keeps
/// one attribute file and a copy of the other; a read-write mount merges
/// them (every attribute of both) and removes the copy.
#[test]
fn attributes_set_on_two_computers_are_merged() {
    let w = World::new();
    w.init();
    let attrs = w.vault.join("d/quire.xattrs");
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("n.md"), "note\n").unwrap();
        set_xattr(&w.mnt, "n.md", "user.a", "1");
        set_xattr(&w.mnt, "n.md", "user.c", "3");
        m.unmount();
    }
    let file = std::fs::read_dir(&attrs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let laptop = std::fs::read(&file).unwrap();
    {
        let m = w.mount(&[]);
        sh(&w.mnt, "setfattr -x user.c n.md");
        set_xattr(&w.mnt, "n.md", "user.b", "2");
        m.unmount();
    }
    let copy = beside(&file, ".sync-conflict-20261204-144500-ABCDEF7");
    std::fs::write(&copy, laptop).unwrap();
    let m = w.mount(&[]);
    for (name, value) in [("user.a", "1"), ("user.b", "2"), ("user.c", "3")] {
        assert_eq!(xattr_of(&w.mnt, "n.md", name), value, "{name}");
    }
    assert!(!copy.exists());
    m.unmount();
    assert_eq!(w.check_sealed().status.code(), Some(0));
}
