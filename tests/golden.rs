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

/// A world holding a copy of the golden vault `name` (tests never write
/// into the source tree) and its password; also the golden folder.
fn golden_world(name: &str) -> (World, std::path::PathBuf) {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let w = World::new();
    copy_dir(&golden.join("vault"), &w.vault);
    std::fs::copy(golden.join("password.txt"), &w.pwfile).unwrap();
    (w, golden)
}

/// The feature flags in a golden vault's `quire.conf`.
fn golden_flags(golden: &std::path::Path) -> u32 {
    let conf = std::fs::read(golden.join("vault/quire.conf")).unwrap();
    u32::from_be_bytes(conf[10..14].try_into().unwrap())
}

#[test]
fn golden_v1_opens_with_password_and_recovery_key() {
    let (w, golden) = golden_world("v1");
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
    let (w, _) = golden_world("v1-history");
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

#[test]
fn golden_v1_lifecycle_opens_with_its_dates_expired_note_and_audit_log() {
    let (w, _) = golden_world("v1-lifecycle");
    let m = w.mount(&["--read-only"]);
    assert_eq!(
        std::fs::read_to_string(m.path("clients/ben.md")).unwrap(),
        "Intake for Ben.\n"
    );
    // Dates set with the CLI and by front matter.
    let getf = |f: &str, n: &str| {
        sh(
            &w.mnt,
            &format!("getfattr --only-values -n user.quire.{n} {f}"),
        )
    };
    assert_eq!(getf("clients/ben.md", "retain-until"), "2099-01-01");
    assert_eq!(getf("clients/ben.md", "expires"), "2100-01-01");
    assert_eq!(getf("fm.md", "expires"), "2098-05-01");
    let o = w.run(&["expiring", "--all", "--json"]);
    let s = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(s.contains("clients/ben.md") && s.contains("fm.md"), "{s}");
    // The note that expired is in the trash, marked so.
    assert!(!m.path("referral.md").exists());
    let o = w.run(&["trash", "--json"]);
    let s = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        s.contains("referral.md") && s.contains("\"reason\":\"expired\""),
        "{s}"
    );
    // The audit log verifies and tells the story.
    let o = w.run(&["audit", "--verify"]);
    assert!(o.status.success(), "{o:?}");
    let o = w.run(&["audit", "--json"]);
    let s = String::from_utf8_lossy(&o.stdout).to_string();
    for ev in [
        "mount", "mkdir", "create", "save", "dates", "expire", "unmount",
    ] {
        assert!(s.contains(&format!("\"event\":\"{ev}\"")), "{ev}: {s}");
    }
    m.unmount();
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn vaults_from_before_expiry_refuse_dates_clearly() {
    let (w, _) = golden_world("v1-history");
    let o = w.run(&[
        "expire",
        "clients/anna.md",
        "+30d",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(23), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("earlier Quire"),
        "{o:?}"
    );
}

/// The sparse vault (feature flag 0x40, docs/FORMAT.md §4): holes from a
/// write past the end, a punched range and a truncate that grew a file.
/// Git stores the holes as written zeros, which must read the same.
#[test]
fn golden_v1_sparse_reads_its_holes_as_zeros() {
    let (w, golden) = golden_world("v1-sparse");
    assert_eq!(golden_flags(&golden), 0x7F);
    let m = w.mount(&["--read-only"]);
    let mut want = b"head of the file\n".to_vec();
    want.resize(1 << 18, 0);
    want.extend_from_slice(b"tail at 256 KiB\n");
    assert!(std::fs::read(m.path("sparse.bin")).unwrap() == want);
    let mut punched: Vec<u8> = (0..40000u32).map(|i| ((i * 7) % 251) as u8).collect();
    punched[8192..8192 + 16384].fill(0);
    assert!(std::fs::read(m.path("punched.bin")).unwrap() == punched);
    assert!(std::fs::read(m.path("grown.bin")).unwrap() == vec![0u8; 100_000]);
    m.unmount();
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

/// The vault with the slot MAC (feature flag 0x80, docs/FORMAT.md §2.2):
/// opens with its password and with its recovery key.
#[test]
fn golden_v1_slotmac_opens_and_its_slot_list_is_sealed() {
    let (w, golden) = golden_world("v1-slotmac");
    assert_eq!(golden_flags(&golden), 0xFF);
    assert_eq!(
        std::fs::read(golden.join("vault/quire.conf"))
            .unwrap()
            .len(),
        261
    );
    let m = w.mount(&["--read-only"]);
    assert_eq!(
        std::fs::read_to_string(m.path("note.md")).unwrap(),
        "Sealed slot list.\n"
    );
    m.unmount();
    let rk = golden.join("recovery-key.txt");
    let o = w.run(&[
        "log",
        "--vault",
        w.vault.to_str().unwrap(),
        "--recovery-key-file",
        rk.to_str().unwrap(),
        "note.md",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The vault with bound records (feature flag 0x100, docs/FORMAT.md §2.1):
/// a note renamed after two saves (its stream has two OWNER frames), a
/// note with dates bound to its name, a deleted note whose stream is bound
/// to its trash entry, and an empty note with its header. A stream moved
/// onto another note of the copy is refused.
#[test]
fn golden_v1_bound_opens_and_its_records_stay_bound() {
    let (w, golden) = golden_world("v1-bound");
    assert_eq!(golden_flags(&golden), 0x1FF);
    let o = w.check_sealed();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("4 versions, 1 trash entries"), "{out}");
    {
        let m = w.mount(&["--read-only"]);
        assert_eq!(
            std::fs::read_to_string(m.path("note.md")).unwrap(),
            "Bound, version two.\n"
        );
        assert_eq!(std::fs::read(m.path("empty.md")).unwrap(), b"");
        let mut vs: Vec<_> = std::fs::read_dir(m.path(".history/note.md"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        vs.sort();
        assert_eq!(vs.len(), 2);
        assert_eq!(
            std::fs::read_to_string(&vs[0]).unwrap(),
            "Bound, version one.\n"
        );
        let o = w.run(&["expiring", "--all", "--json"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("2099-01-01") && out.contains("2027-01-01"),
            "{out}"
        );
        m.unmount();
    }
    // The dated note's record renamed onto the other note: refused.
    let d = w.vault.join("d");
    let mut ql: Vec<_> = Vec::new();
    let mut stack = vec![d.clone()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap().path();
            if e.is_dir() {
                stack.push(e);
            } else if e.to_string_lossy().ends_with(".ql") && e.parent() == Some(d.as_path()) {
                ql.push(e);
            }
        }
    }
    assert_eq!(ql.len(), 1, "{ql:?}");
    let other = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let s = p.to_string_lossy();
            p.is_file()
                && !s.contains('.')
                && Some(p.as_path()) != ql[0].with_extension("").as_path().into()
                && std::fs::metadata(p).unwrap().len() == 18
        })
        .expect("the empty note's host file");
    std::fs::rename(&ql[0], other.with_extension("ql")).unwrap();
    let out = w.check_problems("");
    assert!(out.contains("empty.md"), "{out}");
}

/// The vault with the block MAC (feature flag 0x200, docs/FORMAT.md
/// §4.2): 78-byte headers; a note renamed after two saves, a sparse file,
/// a note edited in place, an empty note and a dated one all read back and
/// verify.
#[test]
fn golden_v1_blockmac_opens_and_verifies_its_block_macs() {
    let (w, golden) = golden_world("v1-blockmac");
    assert_eq!(golden_flags(&golden), 0x3FF);
    let o = w.check_sealed();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("5 files, 2 folders, 4 versions"), "{out}");
    let m = w.mount(&["--read-only"]);
    assert_eq!(
        std::fs::read_to_string(m.path("note.md")).unwrap(),
        "Block MAC, version two.\n"
    );
    assert_eq!(std::fs::read(m.path("empty.md")).unwrap(), b"");
    let mut sparse = b"start".repeat(1000);
    sparse.resize(65536, 0);
    sparse.extend_from_slice(b"end");
    assert!(std::fs::read(m.path("sparse.bin")).unwrap() == sparse);
    let mut edited: Vec<u8> = (0..2000)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    edited[5000..5006].copy_from_slice(b"EDITED");
    assert!(std::fs::read(m.path("edited.txt")).unwrap() == edited);
    assert_eq!(
        std::fs::read_dir(m.path(".history/note.md"))
            .unwrap()
            .count(),
        2
    );
    assert_eq!(
        std::fs::read_to_string(m.path("folder/dated.md")).unwrap(),
        "in a folder\n"
    );
    m.unmount();
}

/// The vault with symlink binding records (feature flag 0x400, docs/
/// FORMAT.md §6.1): symlinks renamed, hard-linked (git keeps them as two
/// symlinks, each with its record), in a folder, dangling and with a long
/// name all read back; a target copied onto another name is refused.
#[test]
fn golden_v1_symlinks_open_and_stay_bound_to_their_names() {
    let (w, golden) = golden_world("v1-symlinks");
    assert_eq!(golden_flags(&golden), 0x7FF);
    let o = w.check_sealed();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("6 files, 2 folders"), "{out}");
    let long = "a-rather-long-symlink-name-".repeat(6);
    {
        let m = w.mount(&["--read-only"]);
        for (n, t) in [
            ("link", "note.md"),
            ("alias", "note.md"),
            ("folder/up", "../note.md"),
            ("folder/dangling", "../../nowhere/at/all"),
            (long.as_str(), "folder/up"),
        ] {
            assert_eq!(
                std::fs::read_link(m.path(n)).unwrap(),
                std::path::Path::new(t),
                "{n}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(m.path(&long)).unwrap(),
            "Symlinked note.\n"
        );
        m.unmount();
    }
    // The folder's dangling target put under the other symlink's name.
    let folder = std::fs::read_dir(w.vault.join("d"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let links: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| is_symlink(p))
        .collect();
    assert_eq!(links.len(), 2);
    let t = std::fs::read_link(&links[0]).unwrap();
    std::fs::remove_file(&links[1]).unwrap();
    std::os::unix::fs::symlink(t, &links[1]).unwrap();
    let out = w.check_problems("");
    assert!(out.contains("folder/"), "{out}");
}

/// The hole-marker rules (FORMAT §4.1) on their own, in the SPARSE vault
/// made before the block MAC (which would refuse these files first): a
/// zeroed marker, a zeroed data block, a marker moved to another slot and
/// a file cut inside a run of holes all read as EIO and fail the check.
#[test]
fn golden_v1_sparse_damaged_holes_read_as_eio() {
    let (w, _) = golden_world("v1-sparse");
    // sparse.bin: data in slot 0, holes, the run's marker in slot 63, the
    // final block in slot 64 (18-byte header, 4,124-byte slots).
    let host = std::fs::read_dir(w.vault.join("d"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::metadata(p).unwrap().len() == 263_998)
        .expect("sparse.bin's host file");
    let good = std::fs::read(&host).unwrap();
    let slot = |n: usize| 18 + n * 4124..18 + (n + 1) * 4124;
    let moved = {
        let mut b = good.clone();
        let marker = b[slot(63)].to_vec();
        b[slot(30)].copy_from_slice(&marker);
        b[slot(63)].fill(0);
        b
    };
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        (
            "zeroed marker",
            {
                let mut b = good.clone();
                b[slot(63)].fill(0);
                b
            },
            10 * 4096,
        ),
        (
            "zeroed data block",
            {
                let mut b = good.clone();
                b[slot(0)].fill(0);
                b
            },
            0,
        ),
        ("marker moved to another slot", moved, 20 * 4096),
        ("cut inside the run", good[..slot(40).start].to_vec(), 0),
    ];
    for (what, bytes, at) in cases {
        std::fs::write(&host, &bytes).unwrap();
        let out = w.check_problems(what);
        assert!(out.contains("sparse.bin"), "{what}: {out}");
        let m = w.mount(&["--read-only"]);
        let f = std::fs::File::open(m.path("sparse.bin")).unwrap();
        let mut b = [0u8; 16];
        use std::os::unix::fs::FileExt;
        let e = if what.starts_with("cut") {
            std::fs::read(m.path("sparse.bin")).unwrap_err()
        } else {
            f.read_exact_at(&mut b, at).unwrap_err()
        };
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "{what}: {e}");
        drop(f);
        m.unmount();
    }
    std::fs::write(&host, &good).unwrap();
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

/// Golden vault for `LONG_SYMLINKS` (flags 0xFFF, FORMAT §6.2): a
/// 4095-byte target that leads to a note, a hard link of it in a folder and
/// a dangling 3004-byte target; a fresh checkout must open it forever.
#[test]
fn golden_v1_longsymlinks_open_and_read_their_long_targets() {
    let (w, golden) = golden_world("v1-longsymlinks");
    assert_eq!(golden_flags(&golden), 0xFFF);
    let o = w.check_sealed();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    let long = format!("{}note.md", "./".repeat(2044));
    let dangling = format!("{}gone", "x/".repeat(1500));
    let m = w.mount(&["--read-only"]);
    for (n, t) in [
        ("long", long.as_str()),
        ("folder/hard", long.as_str()),
        ("dangling", dangling.as_str()),
    ] {
        assert_eq!(
            std::fs::read_link(m.path(n)).unwrap(),
            std::path::Path::new(t),
            "{n}"
        );
        assert_eq!(
            std::fs::symlink_metadata(m.path(n)).unwrap().len(),
            t.len() as u64
        );
    }
    assert_eq!(
        std::fs::read_to_string(m.path("long")).unwrap(),
        "Long symlink note.\n"
    );
    m.unmount();
}

/// Two computers (issue 18): each its own audit chain and device record,
/// a note saved on both while apart, the laptop's copy kept by Syncthing
/// and its version merged into the note's history, each version naming
/// the computer that saved it (BY frames, FORMAT §12.1).
#[test]
fn golden_v1_devices_opens_with_both_computers_history_and_its_conflict() {
    let (w, golden) = golden_world("v1-devices");
    assert_eq!(golden_flags(&golden), 0xFFF);
    let v = w.vault.to_str().unwrap();
    let pw = w.pwfile.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--vault", v, "--password-file", pw]);
        let o = w.run(&all);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let o = w.check_sealed();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(25), "{out}");
    assert!(
        out.contains("CONFLICT n (conflict 2026-12-05 12.45 DBCD4E2).md")
            && !out.contains("PROBLEM"),
        "{out}"
    );
    let want = [
        ("first\n", "8528423", "Desktop"),
        ("first\nlaptop\n", "dbcd4e2", "Laptop"),
        ("first\ndesktop\n", "8528423", "Desktop"),
    ];
    let check_log = || {
        let (code, out) = run(&["log", "n.md", "--json"]);
        assert_eq!(code, Some(0), "{out}");
        let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(list.len(), want.len(), "{list:?}");
        for (i, (x, (text, dev, name))) in list.iter().zip(want).enumerate() {
            assert_eq!(x["device"], dev, "{list:?}");
            assert_eq!(x["device_name"], name, "{list:?}");
            let (_, shown) = run(&["show", "n.md", "--version", &(i + 1).to_string()]);
            assert_eq!(shown, text);
        }
    };
    check_log();
    let (code, out) = run(&["audit", "--verify"]);
    assert_eq!(code, Some(0), "{out}");
    let (_, out) = run(&["audit"]);
    assert!(out.contains("Laptop") && out.contains("Desktop"), "{out}");
    // A read-write mount merges again: nothing twice.
    let m = w.mount(&[]);
    assert_eq!(
        std::fs::read_to_string(m.path("n (conflict 2026-12-05 12.45 DBCD4E2).md")).unwrap(),
        "first\nlaptop\n"
    );
    m.unmount();
    check_log();
}

/// A vault made before sealed attribute files (flags 0xFFF): its user
/// xattrs are host xattrs, which git does not keep, so they are stored
/// beside it as a `getfattr` dump and put back on the copy. A read-only
/// mount reads them where they are; the first read-write mount moves them
/// into sealed attribute files (FORMAT §7.1), adds `SEALED_XATTRS` and
/// removes the host ones; a copy that carries no xattrs (`cp -r`) then
/// keeps them.
#[test]
fn golden_v1_hostxattrs_move_into_sealed_files_at_the_first_write_mount() {
    need("setfattr");
    let (w, golden) = golden_world("v1-hostxattrs");
    assert_eq!(golden_flags(&golden), 0xFFF);
    sh(
        w.dir.path(),
        &format!(
            "setfattr --restore={}",
            golden.join("xattrs.dump").display()
        ),
    );
    let host_attrs = |root: &std::path::Path| {
        sh(
            root,
            "getfattr -R -d -m '^user.q\\.' . 2>/dev/null | grep -c '^user.q' || true",
        )
        .trim()
        .to_string()
    };
    assert_eq!(host_attrs(&w.vault), "4");
    {
        let m = w.mount(&["--read-only"]);
        assert_eq!(xattr_of(&w.mnt, "n.md", "user.color"), "blue");
        m.unmount();
    }
    assert_eq!(host_attrs(&w.vault), "4");
    assert!(!w.vault.join("d/quire.xattrs").exists());
    {
        let m = w.mount(&[]);
        assert_eq!(xattr_of(&w.mnt, "n.md", "user.color"), "blue");
        assert_eq!(
            xattr_of(&w.mnt, "n.md", "user.xdg.comment"),
            "referral letter"
        );
        assert_eq!(xattr_of(&w.mnt, "f", "user.tag"), "folder");
        m.unmount();
    }
    // Moved: the flag is set, no host attribute is left, one sealed file
    // per owner (the note, the folder, the note in the trash).
    assert_eq!(golden_flags(w.dir.path()), 0x1FFF);
    assert_eq!(host_attrs(&w.vault), "0");
    assert_eq!(
        std::fs::read_dir(w.vault.join("d/quire.xattrs"))
            .unwrap()
            .count(),
        3
    );
    assert_eq!(w.check_sealed().status.code(), Some(0));
    // A copy that keeps no xattrs keeps them now; the trashed note gets
    // its attribute back when restored.
    let copy = World::new();
    sh(
        copy.dir.path(),
        &format!("cp -r {} {}", w.vault.display(), copy.vault.display()),
    );
    std::fs::copy(&w.pwfile, &copy.pwfile).unwrap();
    let v = copy.vault.to_str().unwrap();
    let pw = copy.pwfile.to_str().unwrap();
    let o = copy.run(&[
        "trash",
        "restore",
        "f/t.md",
        "--vault",
        v,
        "--password-file",
        pw,
    ]);
    assert!(o.status.success(), "{o:?}");
    let m = copy.mount(&[]);
    assert_eq!(xattr_of(&copy.mnt, "n.md", "user.color"), "blue");
    assert_eq!(xattr_of(&copy.mnt, "f", "user.tag"), "folder");
    assert_eq!(xattr_of(&copy.mnt, "f/t.md", "user.kind"), "trashed");
    m.unmount();
}

/// Golden vault for `SEALED_XATTRS` (flags 0x1FFF, FORMAT §7.1): user
/// xattrs of a note (one of 4,000 bytes) and a folder, in sealed
/// attribute files and nowhere else.
#[test]
fn golden_v1_sealedxattrs_reads_its_attribute_files() {
    let (w, golden) = golden_world("v1-sealedxattrs");
    assert_eq!(golden_flags(&golden), 0x1FFF);
    assert_eq!(
        std::fs::read_dir(w.vault.join("d/quire.xattrs"))
            .unwrap()
            .count(),
        2
    );
    let o = w.check_sealed();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let m = w.mount(&["--read-only"]);
    assert_eq!(xattr_of(&w.mnt, "n.md", "user.color"), "blue");
    assert_eq!(
        xattr_of(&w.mnt, "n.md", "user.xdg.comment"),
        "referral letter"
    );
    assert_eq!(xattr_of(&w.mnt, "n.md", "user.big"), "x".repeat(4000));
    assert_eq!(xattr_of(&w.mnt, "f", "user.tag"), "folder");
    let names = sh(
        &w.mnt,
        "python3 -c \"import os; print(sorted(os.listxattr('n.md')))\"",
    );
    assert_eq!(
        names.trim(),
        "['user.big', 'user.color', 'user.xdg.comment']"
    );
    m.unmount();
}

/// Issue 20.1: a vault with named key slots (flag NAMED_SLOTS, kind-3
/// slots, one of them break-glass) and audit records that name the person
/// (frame kind 2), made by the version that introduced them.
#[test]
fn golden_v1_people_opens_as_each_person_and_names_them() {
    let (w, golden) = golden_world("v1-people");
    assert_eq!(golden_flags(&golden), 0x3FFF);
    let v = w.vault.to_str().unwrap();
    let pw = |f: &str| golden.join(f).to_str().unwrap().to_string();
    let o = w.run(&["user", "list", v, "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["password", "recovery-key", "person", "break-glass"]);
    for (file, code) in [
        ("password.txt", 0),
        ("ana-password.txt", 0),
        ("glass-password.txt", 0),
    ] {
        let o = w.run(&["check", v, "--password-file", &pw(file)]);
        assert_eq!(o.status.code(), Some(code), "{file}: {}", err(&o));
    }
    let o = w.run(&["check", v, "--recovery-key-file", &pw("recovery-key.txt")]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let o = w.run(&[
        "audit",
        "--json",
        "--vault",
        v,
        "--password-file",
        &pw("ana-password.txt"),
        "--verify",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let o = w.run(&[
        "audit",
        "--json",
        "--vault",
        v,
        "--password-file",
        &pw("ana-password.txt"),
    ]);
    let records: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let by: Vec<(String, String)> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["event"].as_str().unwrap().to_string(),
                r["person"].as_str().unwrap().to_string(),
            )
        })
        .take(9)
        .collect();
    let want = [
        ("user", ""),
        ("user", "Ana Reyes"),
        ("mount", "Ana Reyes"),
        ("create", "Ana Reyes"),
        ("save", "Ana Reyes"),
        ("mkdir", "Ana Reyes"),
        ("create", "Ana Reyes"),
        ("save", "Ana Reyes"),
        ("unmount", "Ana Reyes"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(by, want);
    let m = w.mount(&["--read-only"]);
    assert_eq!(
        std::fs::read_to_string(m.path("ana.md")).unwrap(),
        "Ana's note.\n"
    );
    assert_eq!(
        std::fs::read_to_string(m.path("f/b.md")).unwrap(),
        "second\n"
    );
    m.unmount();
}
