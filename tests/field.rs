//! Field fixes (issue 10): each test reproduces what a user or an external
//! suite tripped on, on a real mount.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

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
