//! Real programs on a mounted vault must behave as on a local disk.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn files_survive_unmount_and_remount() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::create_dir_all(m.path("clients/a-k")).unwrap();
    std::fs::write(m.path("clients/a-k/anna.md"), "session 1\n").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(m.path("big.bin"), &big).unwrap();
    m.unmount();
    let m = w.mount(&[]);
    assert_eq!(
        std::fs::read_to_string(m.path("clients/a-k/anna.md")).unwrap(),
        "session 1\n"
    );
    assert_eq!(std::fs::read(m.path("big.bin")).unwrap(), big);
    assert_eq!(
        std::fs::metadata(m.path("big.bin")).unwrap().len(),
        3_000_000
    );
}

#[test]
fn editors_save_in_place_and_by_rename() {
    need("vim");
    need("sed");
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let d = w.mnt.as_path();
    sh(d, "printf 'alpha\\nbeta\\n' > note.md");
    // vim's default save (writes a new file and renames it over the old one).
    sh(d, "vim -Es -u NONE -c '%s/alpha/ALPHA/' -c 'wq' note.md");
    // vim saving in place.
    sh(
        d,
        "vim -Es -u NONE -c 'set backupcopy=yes' -c '%s/beta/BETA/' -c 'wq' note.md",
    );
    // sed -i (temp file + rename).
    sh(d, "sed -i 's/ALPHA/gamma/' note.md");
    // Python's tmp + fsync + os.replace.
    sh(
        d,
        "python3 -c \"import os; f=open('.n.tmp','w'); f.write(open('note.md').read()+'delta\\n'); f.flush(); os.fsync(f.fileno()); f.close(); os.replace('.n.tmp','note.md')\"",
    );
    assert_eq!(
        std::fs::read_to_string(m.path("note.md")).unwrap(),
        "gamma\nBETA\ndelta\n"
    );
    let names: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec!["note.md"],
        "editor debris left behind: {names:?}"
    );
}

#[test]
fn git_init_commit_clone() {
    need("git");
    let w = World::new();
    w.init();
    let _m = w.mount(&[]);
    let d = w.mnt.as_path();
    let out = sh(
        d,
        "git init -q repo && cd repo && for i in $(seq 1 30); do echo \"line $i\" > f$i.txt; done \
         && git add . && git commit -qm first && echo more >> f1.txt && git commit -qam second \
         && git gc -q && git fsck --full 2>&1 && cd .. && git clone -q repo clone && cd clone \
         && git log --oneline | wc -l && git status --porcelain | wc -l && cat f1.txt",
    );
    assert!(out.ends_with("2\n0\nline 1\nmore\n"), "{out}");
}

#[test]
fn rsync_cp_tar_round_trips() {
    need("rsync");
    need("tar");
    let w = World::new();
    w.init();
    let _m = w.mount(&[]);
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let d = w.mnt.as_path();
    sh(d, &format!("cp -a {src} cpa && diff -r {src} cpa"));
    sh(
        d,
        &format!(
            "rsync -a {src}/ rs/ && diff -r {src} rs && rsync -a rs/ ../rs-out/ && diff -r {src} ../rs-out"
        ),
    );
    sh(
        d,
        &format!(
            "tar -C {src} -cf ../t.tar . && mkdir tx && tar -C tx -xf ../t.tar && diff -r {src} tx"
        ),
    );
    sh(
        d,
        "tar -C tx -cf - . | tar -C ../tar-out -xf - 2>/dev/null || (mkdir ../tar-out && tar -C tx -cf - . | tar -C ../tar-out -xf -)",
    );
    sh(d, &format!("diff -r {src} ../tar-out"));
    // cp -a keeps modes and times.
    let a = std::fs::metadata(format!("{src}/lib.rs")).unwrap();
    let b = std::fs::metadata(d.join("cpa/lib.rs")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(a.mtime(), b.mtime());
    assert_eq!(a.mode(), b.mode());
}

#[test]
fn sqlite_rollback_and_wal_survive_a_killed_writer() {
    need("sqlite3");
    let w = World::new();
    w.init();
    let _m = w.mount(&[]);
    let d = w.mnt.as_path();
    for mode in ["delete", "wal"] {
        let db = format!("{mode}.db");
        sh(
            d,
            &format!(
                "sqlite3 {db} 'pragma journal_mode={mode}; create table t(x integer, y text); \
                 insert into t values(1, \"one\");' >/dev/null"
            ),
        );
        // A writer in the middle of a large transaction, killed with SIGKILL.
        let mut child = std::process::Command::new("sqlite3")
            .arg(d.join(&db))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let stdin = child.stdin.as_mut().unwrap();
            writeln!(stdin, "begin;").unwrap();
            for i in 0..20_000 {
                writeln!(stdin, "insert into t values({i}, randomblob(100));").unwrap();
            }
            stdin.flush().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        child.kill().unwrap();
        child.wait().unwrap();
        let out = sh(
            d,
            &format!("sqlite3 {db} 'pragma integrity_check; select count(*) from t;'"),
        );
        assert_eq!(out, "ok\n1\n", "{mode}");
        sh(
            d,
            &format!("sqlite3 {db} 'insert into t values(2, \"two\");'"),
        );
        let out = sh(d, &format!("sqlite3 {db} 'select count(*) from t;'"));
        assert_eq!(out, "2\n");
    }
}

#[test]
fn shared_writable_mmap() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    sh(
        &w.mnt,
        "python3 -c \"
import mmap, os
with open('m.bin','wb') as f: f.write(b'\\0'*100000)
with open('m.bin','r+b') as f:
    mm = mmap.mmap(f.fileno(), 100000)
    mm[4090:4110] = b'x'*20
    mm[99990:] = b'y'*10
    mm.flush(); mm.close()
\"",
    );
    let b = std::fs::read(m.path("m.bin")).unwrap();
    assert_eq!(b.len(), 100000);
    assert_eq!(&b[4090..4110], &[b'x'; 20]);
    assert_eq!(&b[99990..], &[b'y'; 10]);
    assert!(b[..4090].iter().all(|&c| c == 0));
}

#[test]
fn links_names_modes_times_xattrs_statfs() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    use std::os::unix::fs::MetadataExt;
    let f = m.path("a.txt");
    std::fs::write(&f, "x".repeat(5000)).unwrap();
    // Sizes right after link(), through both names (git relies on this).
    std::fs::hard_link(&f, m.path("b.txt")).unwrap();
    let (a, b) = (
        std::fs::metadata(&f).unwrap(),
        std::fs::metadata(m.path("b.txt")).unwrap(),
    );
    assert_eq!(
        (a.len(), b.len(), a.nlink(), a.ino()),
        (5000, 5000, 2, b.ino())
    );
    std::fs::write(m.path("b.txt"), "short").unwrap();
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "short");
    std::os::unix::fs::symlink("a.txt", m.path("s")).unwrap();
    assert_eq!(
        std::fs::read_link(m.path("s")).unwrap().to_str(),
        Some("a.txt")
    );
    assert_eq!(std::fs::symlink_metadata(m.path("s")).unwrap().len(), 5);
    assert_eq!(std::fs::read_to_string(m.path("s")).unwrap(), "short");
    for name in [
        "é".repeat(127),
        "x".repeat(255),
        "日本語のノート.md".into(),
        "with space & ü".into(),
    ] {
        std::fs::write(m.path(&name), &name).unwrap();
        assert_eq!(std::fs::read_to_string(m.path(&name)).unwrap(), name);
    }
    let too_long = std::fs::write(m.path(&"y".repeat(256)), "");
    assert_eq!(
        too_long.unwrap_err().raw_os_error(),
        Some(libc::ENAMETOOLONG)
    );
    let listed: std::collections::BTreeSet<String> = std::fs::read_dir(&w.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(listed.contains(&"x".repeat(255)) && listed.contains("日本語のノート.md"));
    sh(
        &w.mnt,
        "chmod 640 a.txt && touch -d '2001-09-09 01:46:40 UTC' a.txt && mkdir -p d/e && rmdir d/e d",
    );
    let a = std::fs::metadata(&f).unwrap();
    assert_eq!((a.mode() & 0o7777, a.mtime()), (0o640, 1_000_000_000));
    sh(
        &w.mnt,
        "python3 -c \"import os; os.setxattr('a.txt','user.color',b'red'); assert os.getxattr('a.txt','user.color')==b'red'; assert os.listxattr('a.txt')==['user.color']; os.removexattr('a.txt','user.color'); assert os.listxattr('a.txt')==[]\"",
    );
    sh(
        &w.mnt,
        "python3 -c \"import os; s=os.statvfs('.'); assert s.f_blocks>0 and s.f_namemax==255; f=os.open('a.txt',os.O_RDWR); os.fsync(f); os.fdatasync(f); os.close(f)\"",
    );
}

#[test]
fn concurrent_appenders() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    sh(
        &w.mnt,
        "for p in 1 2 3 4; do python3 -c \"
import os, sys
fd = os.open('log.txt', os.O_WRONLY|os.O_CREAT|os.O_APPEND, 0o644)
for i in range(500):
    os.write(fd, ('%s:%04d:' % (sys.argv[1], i) + 'z'*50 + '\\n').encode())
os.close(fd)
\" $p & done; wait",
    );
    let text = std::fs::read_to_string(m.path("log.txt")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2000);
    for l in &lines {
        assert_eq!(l.len(), 57, "torn line: {l:?}");
    }
    for p in 1..=4 {
        let mine: Vec<&&str> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("{p}:")))
            .collect();
        assert_eq!(mine.len(), 500);
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "appends of {p} reordered"
        );
    }
}

#[test]
fn sparse_writes_truncate_and_random_io_match_a_model() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    use std::io::{Read, Seek, SeekFrom, Write};
    let p = m.path("f.bin");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    let mut model: Vec<u8> = Vec::new();
    let mut seed = 0x1234_5678u64;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for step in 0..600 {
        match rnd(4) {
            0 | 1 => {
                let off = rnd(300_000);
                let len = rnd(20_000) as usize + 1;
                let byte = (step % 251) as u8 + 1;
                f.seek(SeekFrom::Start(off)).unwrap();
                f.write_all(&vec![byte; len]).unwrap();
                let end = off as usize + len;
                if model.len() < end {
                    model.resize(end, 0);
                }
                model[off as usize..end].fill(byte);
            }
            2 => {
                let n = rnd(320_000);
                f.set_len(n).unwrap();
                model.resize(n as usize, 0);
            }
            _ => {
                let off = rnd(330_000);
                let len = rnd(10_000) as usize;
                f.seek(SeekFrom::Start(off)).unwrap();
                let mut buf = vec![0u8; len];
                let mut got = 0;
                loop {
                    let n = f.read(&mut buf[got..]).unwrap();
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                let s = (off as usize).min(model.len());
                let e = (off as usize + len).min(model.len());
                assert_eq!(&buf[..got], &model[s..e], "step {step}");
            }
        }
        assert_eq!(
            f.metadata().unwrap().len(),
            model.len() as u64,
            "size at step {step}"
        );
    }
    drop(f);
    assert_eq!(std::fs::read(&p).unwrap(), model);
}

#[test]
fn nano_saves_through_a_terminal() {
    need("nano");
    need("tmux");
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("nano.md"), "first line\n").unwrap();
    let session = format!("quire-nano-{}", std::process::id());
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(["-L", &session])
            .args(args)
            .status()
            .unwrap()
    };
    assert!(
        tmux(&[
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "80",
            "-y",
            "24",
            "-c",
            w.mnt.to_str().unwrap(),
            "nano",
            "--ignorercfiles",
            "nano.md",
        ])
        .success()
    );
    struct Kill<'a>(&'a dyn Fn(&[&str]) -> std::process::ExitStatus);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            (self.0)(&["kill-server"]);
        }
    }
    let _k = Kill(&tmux);
    std::thread::sleep(Duration::from_millis(700));
    tmux(&["send-keys", "-t", &session, "M-/", "added by nano", "C-o"]);
    std::thread::sleep(Duration::from_millis(400));
    tmux(&["send-keys", "-t", &session, "Enter"]);
    std::thread::sleep(Duration::from_millis(400));
    tmux(&["send-keys", "-t", &session, "C-x"]);
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(
            m.path("nano.md")
        )
        .map(|s| s.contains("added by nano"))
        .unwrap_or(false)),
        "nano did not save: {:?}",
        std::fs::read_to_string(m.path("nano.md"))
    );
    let s = std::fs::read_to_string(m.path("nano.md")).unwrap();
    assert!(s.starts_with("first line\n"), "{s:?}");
}
