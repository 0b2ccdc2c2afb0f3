//! Golden vaults are forever: every format version has a committed vault
//! that every test run must open and read exactly (HOUSE habit 4).

mod common;
use common::*;

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&e.path(), &t);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &t).unwrap();
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

#[test]
fn golden_v1_opens_with_password_and_recovery_key() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1");
    let w = World::new();
    // Work on a copy so the test never writes into the source tree.
    copy_dir(&golden.join("vault"), &w.vault);
    std::fs::copy(golden.join("password.txt"), &w.pwfile).unwrap();
    let m = w.mount(&["--read-only"]);
    assert_eq!(
        std::fs::read_to_string(m.path("clients/a-k/anna.md")).unwrap(),
        "Session notes for Anna.\nMood: better.\n"
    );
    let big: Vec<u8> = (0..10000u32).map(|i| ((i * 7) % 251) as u8).collect();
    assert_eq!(std::fs::read(m.path("big.bin")).unwrap(), big);
    // Git does not keep hard links: the link comes back as a second file
    // with the same ciphertext, which must still decrypt.
    assert_eq!(std::fs::read(m.path("big-hardlink.bin")).unwrap(), big);
    assert_eq!(
        std::fs::read_to_string(m.path(&"n".repeat(200))).unwrap(),
        "long name\n"
    );
    assert_eq!(
        std::fs::read_to_string(m.path("Ünïcødé ノート.md")).unwrap(),
        "unicode\n"
    );
    assert_eq!(
        std::fs::read_link(m.path("link-to-anna")).unwrap().to_str(),
        Some("clients/a-k/anna.md")
    );
    let mut names: Vec<String> = std::fs::read_dir(&w.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "{names:?}");
    m.unmount();
    let rk = golden.join("recovery-key.txt");
    let o = w
        .cmd()
        .arg("mount")
        .arg(&w.vault)
        .arg(&w.mnt)
        .arg("--read-only")
        .arg("--recovery-key-file")
        .arg(&rk)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = Mounted { world: &w };
    assert!(m.path("big.bin").exists());
    m.unmount();
}

#[test]
fn golden_v1_history_opens_with_its_versions_and_trash() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1-history");
    let w = World::new();
    copy_dir(&golden.join("vault"), &w.vault);
    std::fs::copy(golden.join("password.txt"), &w.pwfile).unwrap();
    let m = w.mount(&["--read-only"]);
    let note = m.path("clients/anna.md");
    assert_eq!(
        std::fs::read_to_string(&note).unwrap(),
        "Anna, third session.\n"
    );
    let vs: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(m.path(".history/clients/anna.md"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(vs.len(), 3, "{vs:?}");
    for (i, want) in [
        "Anna, first session.\n",
        "Anna, second session.\n",
        "Anna, third session.\n",
    ]
    .iter()
    .enumerate()
    {
        let o = w.run(&[
            "show",
            note.to_str().unwrap(),
            "--version",
            &(i + 1).to_string(),
        ]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), *want);
    }
    assert_eq!(
        std::fs::read_to_string(m.path(".trash/old.md")).unwrap(),
        "deleted note\n"
    );
    m.unmount();
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}
