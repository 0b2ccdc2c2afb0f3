//! POSIX semantics in the spirit of pjdfstest: renames, removals, links,
//! errors, times, and permissions for another user.

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;

fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.unwrap_err().raw_os_error().unwrap()
}

#[test]
fn rename_semantics() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let p = |s: &str| m.path(s);
    std::fs::write(p("a"), "A").unwrap();
    std::fs::write(p("b"), "B").unwrap();
    std::fs::rename(p("a"), p("b")).unwrap();
    assert_eq!(std::fs::read_to_string(p("b")).unwrap(), "A");
    assert!(!p("a").exists());
    std::fs::create_dir_all(p("d1/sub")).unwrap();
    std::fs::write(p("d1/sub/f"), "deep").unwrap();
    std::fs::create_dir(p("empty")).unwrap();
    std::fs::create_dir(p("full")).unwrap();
    std::fs::write(p("full/x"), "x").unwrap();
    // Directory over an empty directory replaces it; over a full one fails.
    std::fs::rename(p("d1"), p("empty")).unwrap();
    assert_eq!(std::fs::read_to_string(p("empty/sub/f")).unwrap(), "deep");
    assert_eq!(
        errno(std::fs::rename(p("empty"), p("full"))),
        libc::ENOTEMPTY
    );
    assert_eq!(errno(std::fs::rename(p("b"), p("full"))), libc::EISDIR);
    assert_eq!(errno(std::fs::rename(p("full"), p("b"))), libc::ENOTDIR);
    // Moving a directory into another keeps its children readable.
    std::fs::rename(p("empty"), p("full/moved")).unwrap();
    assert_eq!(
        std::fs::read_to_string(p("full/moved/sub/f")).unwrap(),
        "deep"
    );
    // Long names: rename long <-> short, across directories; no stray sidecars.
    let long = "L".repeat(240);
    std::fs::write(p(&long), "long").unwrap();
    std::fs::rename(p(&long), p("full/short")).unwrap();
    std::fs::rename(p("full/short"), p(&format!("full/{long}"))).unwrap();
    std::fs::hard_link(p(&format!("full/{long}")), p(&"M".repeat(250))).unwrap();
    std::fs::remove_file(p(&format!("full/{long}"))).unwrap();
    assert_eq!(
        std::fs::read_to_string(p(&"M".repeat(250))).unwrap(),
        "long"
    );
    std::fs::create_dir(p(&"D".repeat(200))).unwrap();
    std::fs::write(p(&format!("{}/inner", "D".repeat(200))), "i").unwrap();
    std::fs::rename(p(&"D".repeat(200)), p(&"E".repeat(201))).unwrap();
    assert_eq!(
        std::fs::read_to_string(p(&format!("{}/inner", "E".repeat(201)))).unwrap(),
        "i"
    );
    // Renaming one name of an inode onto another name of it does nothing.
    let (l1, l2) = ("P".repeat(230), "Q".repeat(230));
    std::fs::write(p(&l1), "same").unwrap();
    std::fs::hard_link(p(&l1), p(&l2)).unwrap();
    std::fs::rename(p(&l1), p(&l2)).unwrap();
    assert_eq!(std::fs::read_to_string(p(&l1)).unwrap(), "same");
    assert_eq!(std::fs::read_to_string(p(&l2)).unwrap(), "same");
    // renameat2 NOREPLACE and EXCHANGE.
    std::fs::write(p("x"), "X").unwrap();
    std::fs::write(p("y"), "Y").unwrap();
    sh(
        &w.mnt,
        "python3 -c \"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
AT=-100
r = libc.renameat2(AT, b'x', AT, b'y', 1)
assert r == -1 and ctypes.get_errno() == 17, (r, ctypes.get_errno())
assert libc.renameat2(AT, b'x', AT, b'y', 2) == 0
assert open('x').read() == 'Y' and open('y').read() == 'X'
\"",
    );
    std::fs::create_dir(p("crashed")).unwrap();
    m.unmount();
    // Leftovers of an interrupted mkdir and an orphan sidecar inside a
    // folder do not keep it from being removed.
    let host_dir = std::fs::read_dir(w.vault.join("d"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .find(|p| std::fs::read_dir(p).unwrap().count() == 1)
        .expect("the empty folder `crashed`");
    std::fs::create_dir(host_dir.join(".quire-mkdir-0011223344556677")).unwrap();
    std::fs::write(
        host_dir.join(".quire-mkdir-0011223344556677/quire.dirid"),
        [0u8; 16],
    )
    .unwrap();
    std::fs::write(host_dir.join(format!("{}.lng.name", "A".repeat(43))), "x").unwrap();
    let m = w.mount(&[]);
    std::fs::remove_dir(m.path("crashed")).unwrap();
    m.unmount();
    // Every sidecar in the vault belongs to an existing long entry.
    for f in w.vault_files() {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(stem) = name.strip_suffix(".lng.name") {
            assert!(
                f.with_file_name(format!("{stem}.lng")).exists(),
                "orphan sidecar {name}"
            );
        }
    }
}

#[test]
fn removal_errors_links_and_open_unlinked_files() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let p = |s: &str| m.path(s);
    std::fs::create_dir(p("d")).unwrap();
    std::fs::write(p("d/f"), "f").unwrap();
    assert_eq!(errno(std::fs::create_dir(p("d"))), libc::EEXIST);
    assert_eq!(errno(std::fs::remove_dir(p("d"))), libc::ENOTEMPTY);
    assert_eq!(errno(std::fs::remove_dir(p("d/f"))), libc::ENOTDIR);
    assert_eq!(errno(std::fs::remove_file(p("d"))), libc::EISDIR);
    assert_eq!(
        errno(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p("d/f"))
        ),
        libc::EEXIST
    );
    assert_eq!(errno(std::fs::read(p("nope"))), libc::ENOENT);
    std::fs::hard_link(p("d/f"), p("g")).unwrap();
    assert_eq!(std::fs::metadata(p("g")).unwrap().nlink(), 2);
    std::fs::remove_file(p("d/f")).unwrap();
    assert_eq!(std::fs::metadata(p("g")).unwrap().nlink(), 1);
    std::fs::remove_dir(p("d")).unwrap();
    // An unlinked file stays readable and writable through an open handle.
    use std::io::{Read, Seek, Write};
    let mut fh = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p("g"))
        .unwrap();
    std::fs::remove_file(p("g")).unwrap();
    fh.write_all(b"more").unwrap();
    fh.rewind().unwrap();
    let mut s = String::new();
    fh.read_to_string(&mut s).unwrap();
    assert_eq!(s, "more");
    drop(fh);
    assert!(!p("g").exists());
    // O_TRUNC, special files, long symlink targets.
    std::fs::write(p("t"), "0123456789").unwrap();
    std::fs::write(p("t"), "ab").unwrap();
    assert_eq!(std::fs::read_to_string(p("t")).unwrap(), "ab");
    sh(
        &w.mnt,
        "mkfifo fifo && test -p fifo && python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.bind('sock')\" && test -S sock",
    );
    let target = "t/".repeat(1400);
    std::os::unix::fs::symlink(&target, p("longlink")).unwrap();
    assert_eq!(
        std::fs::read_link(p("longlink")).unwrap().to_str().unwrap(),
        target
    );
    assert_eq!(
        // 4095 bytes is the limit since LONG_SYMLINKS (issue 16.15).
        errno(std::os::unix::fs::symlink("x".repeat(4096), p("toolong"))),
        libc::ENAMETOOLONG
    );
    // Times: a write moves mtime and ctime; a read does not move mtime.
    sh(&w.mnt, "touch -d '2020-01-01' t");
    let before = std::fs::metadata(p("t")).unwrap();
    std::fs::read(p("t")).unwrap();
    assert_eq!(std::fs::metadata(p("t")).unwrap().mtime(), before.mtime());
    std::fs::OpenOptions::new()
        .append(true)
        .open(p("t"))
        .unwrap()
        .write_all(b"c")
        .unwrap();
    let after = std::fs::metadata(p("t")).unwrap();
    assert!(after.mtime() > before.mtime() && after.ctime() >= before.ctime());
}

#[test]
fn other_users_get_their_own_files_and_permission_checks() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (allow_other and a second user)");
        return;
    }
    let w = World::new();
    w.init();
    let m = w.mount(&["--allow-other"]);
    std::fs::set_permissions(&w.dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&w.mnt, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::write(m.path("root-only"), "secret").unwrap();
    std::fs::set_permissions(
        m.path("root-only"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let as_nobody = |script: &str| {
        std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
                script,
            ])
            .current_dir(&w.mnt)
            .output()
            .unwrap()
    };
    let o = as_nobody("umask 022; echo mine > nobody.txt && mkdir nd && cat nobody.txt");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::metadata(m.path("nobody.txt")).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o777),
        (65534, 65534, 0o644)
    );
    assert_eq!(std::fs::metadata(m.path("nd")).unwrap().uid(), 65534);
    let o = as_nobody("cat root-only");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("Permission denied"));
    let o = as_nobody("chmod 777 root-only");
    assert!(!o.status.success());
}

#[test]
fn an_unprivileged_user_mounts_and_uses_a_vault() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Already unprivileged: every other test covers this case.
        return;
    }
    let w = World::new();
    std::fs::set_permissions(&w.dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let script = format!(
        "set -e; cd {dir}; Q={q}; export HOME={dir} XDG_RUNTIME_DIR={dir}/nrun
         echo pw > npw; $Q init nv --password-file npw --kdf-memory 8 --kdf-passes 1 --recovery-key-out nrk 2>/dev/null
         mkdir nm; $Q mount nv nm --password-file npw
         trap '$Q unmount nm >/dev/null 2>&1 || fusermount3 -u -z nm' EXIT
         echo hello > nm/a.txt; mkdir nm/d; ln nm/a.txt nm/d/b
         python3 -c \"import os; os.setxattr('nm/a.txt','user.x',b'1'); assert os.getxattr('nm/a.txt','user.x')==b'1'\"
         chmod 200 nm/a.txt; echo more >> nm/a.txt; chmod 600 nm/a.txt
         mkdir nm/ro; chmod 555 nm/ro; rmdir nm/ro
         cat nm/d/b",
        dir = w.dir.path().display(),
        q = quire_bin().display()
    );
    let o = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().last(),
        Some("more")
    );
    assert!(!is_mounted(&w.dir.path().join("nm")));
}

#[test]
fn concurrent_writers_on_one_file_and_parallel_trees() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    // Four threads, four handles, interleaved unaligned regions of one file:
    // the read-modify-write of shared blocks must not lose anyone's bytes.
    let path = m.path("shared.bin");
    std::fs::write(&path, vec![0u8; 4 * 50 * 1000]).unwrap();
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                use std::os::unix::fs::FileExt;
                let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                for i in 0..50u64 {
                    // Regions of 1000 bytes: neighbours share 4 KiB blocks.
                    let off = (i * 4 + t as u64) * 1000;
                    f.write_all_at(&[t + 1; 1000], off).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let b = std::fs::read(&path).unwrap();
    for (k, chunk) in b.chunks(1000).enumerate() {
        assert!(
            chunk.iter().all(|&c| c == (k % 4) as u8 + 1),
            "region {k} lost a write"
        );
    }
    // Parallel creates, renames and deletes in separate folders.
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let root = m.path(&format!("w{t}"));
            std::thread::spawn(move || {
                std::fs::create_dir(&root).unwrap();
                for i in 0..200 {
                    let p = root.join(format!("n{i}"));
                    std::fs::write(&p, format!("{t}-{i}")).unwrap();
                    if i % 3 == 0 {
                        std::fs::rename(&p, root.join(format!("r{i}"))).unwrap();
                    } else if i % 3 == 1 {
                        std::fs::remove_file(&p).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in workers {
        t.join().unwrap();
    }
    for t in 0..4 {
        let mut names: Vec<String> = std::fs::read_dir(m.path(&format!("w{t}")))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 133, "w{t}");
        assert_eq!(
            std::fs::read_to_string(m.path(&format!("w{t}/r99"))).unwrap(),
            format!("{t}-99")
        );
        assert_eq!(
            std::fs::read_to_string(m.path(&format!("w{t}/n2"))).unwrap(),
            format!("{t}-2")
        );
    }
}

#[test]
fn more_files_than_the_open_file_limit() {
    // The daemon keeps one host descriptor per file the kernel remembers;
    // under a small limit it must hand entries back to the kernel instead
    // of failing with EMFILE.
    need("prlimit");
    let w = World::new();
    w.init();
    let o = std::process::Command::new("prlimit")
        .args(["--nofile=500:500", "--"])
        .arg(quire_bin())
        .arg("mount")
        .arg(&w.vault)
        .arg(&w.mnt)
        .arg("--password-file")
        .arg(&w.pwfile)
        .env("XDG_RUNTIME_DIR", &w.runtime)
        .env("HOME", w.dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _m = Mounted { world: &w };
    let out = sh(
        &w.mnt,
        "for d in $(seq 1 10); do mkdir d$d; for f in $(seq 1 300); do echo \"note $d $f\" > d$d/f$f; done; done; \
         ls -lR . | grep -c '^-'; grep -rl 'note 7 ' . | wc -l; cat d3/f150; rm -rf d*; ls | wc -l",
    );
    assert_eq!(out, "3000\n300\nnote 3 150\n0\n");
}

#[test]
fn nodes_follow_renames_links_and_exchanges() {
    // Regression test for lazily opened nodes: every operation below
    // reaches a file through the kernel's cached entry, after its name
    // changed, without a fresh lookup.
    let w = World::new();
    w.init();
    let _m = w.mount(&[]);
    let out = sh(
        &w.mnt,
        "python3 -c \"
import os, ctypes
libc = ctypes.CDLL(None, use_errno=True)
def check(p, data, mode):
    os.chmod(p, mode)
    os.setxattr(p, 'user.k', p.encode())
    assert os.getxattr(p, 'user.k') == p.encode(), p
    assert open(p).read() == data, p
    assert os.stat(p).st_mode & 0o777 == mode, p
open('a', 'w').write('A'); os.stat('a')
os.rename('a', 'b'); check('b', 'A', 0o600)
os.mkdir('d'); open('d/f', 'w').write('F'); os.stat('d/f')
os.rename('d', 'e'); check('e/f', 'F', 0o640)
open('x', 'w').write('X'); os.link('x', 'y'); os.stat('x'); os.stat('y')
os.unlink('x'); check('y', 'X', 0o604)
open('p', 'w').write('P'); os.link('p', 'q'); open('z', 'w').write('Z')
os.stat('p'); os.stat('q'); os.stat('z')
os.rename('z', 'p'); check('q', 'P', 0o644); check('p', 'Z', 0o600)
open('m', 'w').write('M'); open('n', 'w').write('N'); os.stat('m'); os.stat('n')
assert libc.renameat2(-100, b'm', -100, b'n', 2) == 0
check('m', 'N', 0o611); check('n', 'M', 0o622)
fd = os.open('gone', os.O_CREAT | os.O_RDWR, 0o600); os.write(fd, b'G')
os.unlink('gone'); os.fchmod(fd, 0o640); assert os.fstat(fd).st_mode & 0o777 == 0o640
os.lseek(fd, 0, 0); assert os.read(fd, 1) == b'G'; os.close(fd)
print('ok')
\"",
    );
    assert_eq!(out, "ok\n");
}
