//! Bad input gets a clear error and a documented exit code, and loses nothing.

mod common;
use common::*;

/// A content file's header length in new vaults (FORMAT §4.2: with the
/// block MAC).
const HDR: usize = 78;
use std::os::unix::fs::FileExt;

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn wrong_password_is_exit_10_and_changes_nothing() {
    let w = World::new();
    w.init();
    let before = std::fs::read(w.vault.join("quire.conf")).unwrap();
    std::fs::write(&w.pwfile, "not it\n").unwrap();
    let o = w.mount_output(&[]);
    assert_eq!(code(&o), 10, "{}", stderr(&o));
    assert!(stderr(&o).contains("wrong password"));
    assert!(!w.is_mounted());
    assert_eq!(std::fs::read(w.vault.join("quire.conf")).unwrap(), before);
}

#[test]
fn second_mount_of_the_same_vault_is_refused() {
    let w = World::new();
    w.init();
    let _m = w.mount(&[]);
    let other = w.dir.path().join("mnt2");
    std::fs::create_dir(&other).unwrap();
    let o = w
        .cmd()
        .arg("mount")
        .arg(&w.vault)
        .arg(&other)
        .arg("--password-file")
        .arg(&w.pwfile)
        .output()
        .unwrap();
    assert_eq!(code(&o), 13, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("already mounted at {}", w.mnt.display())),
        "{}",
        stderr(&o)
    );
    assert!(!is_mounted(&other));
}

#[test]
fn not_a_vault_missing_vault_and_bad_configs() {
    let w = World::new();
    // Missing vault, no terminal to offer creation: exit 11.
    let o = w.mount_output(&[]);
    assert_eq!(code(&o), 11, "{}", stderr(&o));
    assert!(stderr(&o).contains("quire init"));
    // A folder that is not a vault.
    std::fs::create_dir_all(&w.vault).unwrap();
    std::fs::write(w.vault.join("something"), "x").unwrap();
    let o = w.mount_output(&[]);
    assert_eq!(code(&o), 11, "{}", stderr(&o));
    std::fs::remove_dir_all(&w.vault).unwrap();
    w.init();
    let conf = w.vault.join("quire.conf");
    let good = std::fs::read(&conf).unwrap();
    // A newer format version (with a valid checksum): "upgrade Quire".
    let mut newer = good.clone();
    newer[8..10].copy_from_slice(&2u16.to_be_bytes());
    fix_checksum(&mut newer);
    std::fs::write(&conf, &newer).unwrap();
    let o = w.mount_output(&[]);
    assert_eq!(code(&o), 12, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("newer") && stderr(&o).contains("upgrade"),
        "{}",
        stderr(&o)
    );
    // An unknown feature flag.
    let mut flags = good.clone();
    flags[10] |= 0x80;
    fix_checksum(&mut flags);
    std::fs::write(&conf, &flags).unwrap();
    let o = w.mount_output(&[]);
    assert_eq!(code(&o), 12);
    assert!(stderr(&o).contains("features"), "{}", stderr(&o));
    // A corrupt config.
    let mut bad = good.clone();
    bad[40] ^= 0xff;
    std::fs::write(&conf, &bad).unwrap();
    let o = w.mount_output(&[]);
    assert_eq!(code(&o), 12);
    assert!(
        stderr(&o).contains("corrupt") && stderr(&o).contains("backup"),
        "{}",
        stderr(&o)
    );
    // A missing config.
    std::fs::remove_file(&conf).unwrap();
    let o = w.mount_output(&[]);
    assert_eq!(code(&o), 11);
    // The original config still opens the vault.
    std::fs::write(&conf, &good).unwrap();
    w.mount(&[]).unmount();
}

fn fix_checksum(b: &mut [u8]) {
    use sha2::Digest;
    let n = b.len() - 32;
    let sum = sha2::Sha256::digest(&b[..n]);
    b[n..].copy_from_slice(&sum);
}

/// The single content file in the vault's root folder.
fn only_file(w: &World) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(w.vault.join("d"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_str().unwrap().contains('.'))
        .collect();
    assert_eq!(files.len(), 1);
    files[0].clone()
}

fn read_err(p: &std::path::Path) -> Option<i32> {
    std::fs::read(p).err().and_then(|e| e.raw_os_error())
}

#[test]
fn tampered_truncated_swapped_zeroed_blocks_read_as_eio() {
    let w = World::new();
    w.init();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 200) as u8 + 1).collect();
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("note.bin"), &data).unwrap();
        m.unmount();
    }
    let f = only_file(&w);
    let good = std::fs::read(&f).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flipped bit", {
            let mut b = good.clone();
            b[HDR + 4124 + 100] ^= 1;
            b
        }),
        (
            "truncated to a block boundary",
            good[..HDR + 4 * 4124].to_vec(),
        ),
        ("truncated mid-block", good[..good.len() - 7].to_vec()),
        ("swapped blocks", {
            let mut b = good.clone();
            let (x, y) = (HDR..HDR + 4124, HDR + 4124..HDR + 2 * 4124);
            let bx = b[x.clone()].to_vec();
            let by = b[y.clone()].to_vec();
            b[x].copy_from_slice(&by);
            b[y].copy_from_slice(&bx);
            b
        }),
        ("zeroed block", {
            let mut b = good.clone();
            b[HDR..HDR + 4124].fill(0);
            b
        }),
        ("bad header", {
            let mut b = good.clone();
            b[5] ^= 0x40;
            b
        }),
    ];
    for (what, bytes) in cases {
        std::fs::write(&f, &bytes).unwrap();
        let m = w.mount(&[]);
        assert_eq!(read_err(&m.path("note.bin")), Some(libc::EIO), "{what}");
        m.unmount();
    }
    // Restored ciphertext reads again: nothing was lost.
    std::fs::write(&f, &good).unwrap();
    let m = w.mount(&[]);
    assert_eq!(std::fs::read(m.path("note.bin")).unwrap(), data);
    m.unmount();
    // The daemon logged the failure, naming the host file (never the plain
    // name on disk); `quire logs` shows it as the note's path.
    let o = w
        .cmd()
        .args(["logs"])
        .arg(&w.vault)
        .arg("--password-file")
        .arg(&w.pwfile)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(
        log.lines()
            .any(|l| l.contains("failed authentication") && l.contains("file note.bin")),
        "{log}"
    );
    let raw = std::fs::read(w.local().join("quire.log")).unwrap();
    assert!(!raw.windows(8).any(|x| x == b"note.bin"));
}

#[test]
fn tampered_name_and_symlink() {
    let w = World::new();
    w.init();
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("keep.md"), "keep").unwrap();
        std::fs::write(m.path("victim.md"), "v").unwrap();
        std::os::unix::fs::symlink("keep.md", m.path("link")).unwrap();
        m.unmount();
    }
    let d = w.vault.join("d");
    let mut entries: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.contains('.') {
            continue;
        }
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            let t = std::fs::read_link(&p).unwrap();
            let mut s = t.to_str().unwrap().to_string().into_bytes();
            s[20] = if s[20] == b'A' { b'B' } else { b'A' };
            std::fs::remove_file(&p).unwrap();
            std::os::unix::fs::symlink(String::from_utf8(s).unwrap(), &p).unwrap();
        }
    }
    let m = w.mount(&[]);
    assert_eq!(
        std::fs::read_link(m.path("link"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EIO)
    );
    // Rename a host file to another valid-looking name: it is hidden, not garbage.
    let n_before = std::fs::read_dir(&w.mnt).unwrap().count();
    assert_eq!(n_before, 3);
    m.unmount();
    let victim = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let m = std::fs::symlink_metadata(p).unwrap();
            m.is_file() && m.len() == HDR as u64 + 1 + 28
        })
        .unwrap();
    let mut name = victim
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
        .into_bytes();
    name[3] = if name[3] == b'A' { b'B' } else { b'A' };
    std::fs::rename(&victim, d.join(String::from_utf8(name).unwrap())).unwrap();
    let m = w.mount(&[]);
    let names: Vec<_> = std::fs::read_dir(&w.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(!m.path("victim.md").exists());
    assert_eq!(std::fs::read_to_string(m.path("keep.md")).unwrap(), "keep");
}

#[test]
fn full_disk_gives_enospc_and_keeps_earlier_data() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to mount a small tmpfs");
        return;
    }
    let w = World::new();
    std::fs::create_dir_all(&w.vault).unwrap();
    sh(
        w.dir.path(),
        &format!(
            "mount -t tmpfs -o size=4m quire-test-tmpfs {}",
            w.vault.display()
        ),
    );
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _u = Umount(w.vault.clone());
    w.init();
    // A note from an earlier mount: deleting it later goes to the trash.
    let m = w.mount(&[]);
    std::fs::write(m.path("old.md"), vec![b'o'; 300_000]).unwrap();
    m.unmount();
    let m = w.mount(&[]);
    let keep: Vec<u8> = (0..100_000u32).map(|i| (i % 97) as u8).collect();
    std::fs::write(m.path("keep.bin"), &keep).unwrap();
    // Grow an existing file until the disk is full.
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(m.path("grow.bin"))
        .unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let mut written = 0u64;
    let err = loop {
        use std::io::Write;
        match f.write_all(&chunk) {
            Ok(()) => written += chunk.len() as u64,
            Err(e) => break e,
        }
        assert!(written < 8 << 20, "never ran out of space");
    };
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    drop(f);
    assert_eq!(std::fs::read(m.path("keep.bin")).unwrap(), keep);
    let g = std::fs::read(m.path("grow.bin")).unwrap();
    assert!(g.len() as u64 >= written && g.iter().all(|&b| b == 7));
    // Deleting still works on a full disk (the trash cannot grow, so the
    // note is deleted for good rather than refused).
    std::fs::remove_file(m.path("old.md")).unwrap();
    // Overwriting in place still works; freeing space lets writes continue.
    std::fs::remove_file(m.path("grow.bin")).unwrap();
    std::fs::write(m.path("after.txt"), "ok").unwrap();
    m.unmount();
    let m = w.mount(&[]);
    assert_eq!(std::fs::read(m.path("keep.bin")).unwrap(), keep);
}

#[test]
fn nonempty_or_missing_mountpoint_is_refused_clearly() {
    let w = World::new();
    w.init();
    std::fs::write(w.mnt.join("existing"), "x").unwrap();
    let o = w.mount_output(&[]);
    assert_eq!(code(&o), 14, "{}", stderr(&o));
    assert!(stderr(&o).contains("not empty"));
    let o = w
        .cmd()
        .arg("mount")
        .arg(&w.vault)
        .arg("/nonexistent/deeper/mnt")
        .arg("--password-file")
        .arg(&w.pwfile)
        .output()
        .unwrap();
    assert_eq!(code(&o), 14, "{}", stderr(&o));
}

#[test]
fn unmount_when_nothing_is_mounted_and_init_over_existing() {
    let w = World::new();
    let o = w.run(&["unmount", w.mnt.to_str().unwrap()]);
    assert_eq!(code(&o), 16);
    w.init();
    let o = w
        .cmd()
        .arg("init")
        .arg(&w.vault)
        .arg("--password-file")
        .arg(&w.pwfile)
        .output()
        .unwrap();
    assert_eq!(code(&o), 18, "{}", stderr(&o));
    // A partial read of a file (open without writing) never changes the ciphertext.
    let f = w.vault.join("quire.conf");
    let mut b = [0u8; 4];
    std::fs::File::open(&f)
        .unwrap()
        .read_exact_at(&mut b, 0)
        .unwrap();
    assert_eq!(&b, b"QUIR");
}

#[test]
fn tampered_xattr_value_reads_as_eio() {
    let w = World::new();
    w.init();
    {
        let m = w.mount(&[]);
        std::fs::write(m.path("n.md"), "n").unwrap();
        sh(
            &w.mnt,
            "python3 -c \"import os; os.setxattr('n.md','user.tag',b'private')\"",
        );
        m.unmount();
    }
    // Its attribute file (FORMAT §7.1), one byte of the sealed value flipped.
    let files: Vec<_> = std::fs::read_dir(w.vault.join("d/quire.xattrs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let mut v = std::fs::read(&files[0]).unwrap();
    assert_eq!(contains_bytes(&w.vault, b"private"), None);
    v[14] ^= 1;
    std::fs::write(&files[0], v).unwrap();
    let m = w.mount(&[]);
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg("import os,sys\ntry:\n os.getxattr(sys.argv[1],'user.tag'); print('read')\nexcept OSError as e: print(e.errno)")
        .arg(m.path("n.md"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        libc::EIO.to_string()
    );
}
