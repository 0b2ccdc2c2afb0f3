//! Crash safety (issue 3): the daemon is SIGKILLed at random instants while
//! a writer saves, rewrites, renames and deletes files; after each remount
//! every file must read as its last committed content or, for the operation
//! in flight, the new one: never a mix, never an I/O error.

mod common;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }
}

/// What may be found at a name after the crash.
#[derive(Clone)]
enum Expect {
    Content(Vec<u8>),
    Absent,
}

impl std::fmt::Debug for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Absent => write!(f, "absent"),
            Expect::Content(c) => write!(f, "{} bytes {:02x?}", c.len(), &c[..c.len().min(4)]),
        }
    }
}

#[derive(Default)]
struct Model {
    /// Committed state.
    files: BTreeMap<String, Vec<u8>>,
    /// Alternatives allowed for names touched by the operation in flight.
    pending: BTreeMap<String, Vec<Expect>>,
    /// Recent operations, for failure messages.
    log: Vec<String>,
    /// Symlink operations tried.
    link_ops: usize,
}

impl Model {
    /// Names an operation in flight and what each name it touches may hold.
    fn set_pending(&mut self, alts: Vec<(String, Vec<Expect>)>) {
        let desc = format!("{alts:?}");
        self.log.push(desc.chars().take(300).collect());
        self.pending = alts.into_iter().collect();
    }

    /// The operation in flight is done: these names now hold this.
    fn commit(&mut self, changes: Vec<(String, Option<Vec<u8>>)>) {
        for (n, c) in changes {
            match c {
                Some(c) => self.files.insert(n, c),
                None => self.files.remove(&n),
            };
        }
        self.pending.clear();
    }
}

const NAMES: [&str; 6] = ["a.md", "b.md", "c.txt", "d.bin", "e.md", "f.db"];
/// Symlinks (their model content is the target): their binding records
/// (FORMAT §6.1) are rewritten by renames and exchanges.
const LINKS: [&str; 3] = ["l1", "l2", "l3"];

/// What a name holds: a file's content or a symlink's target.
fn read_entry(dir: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    let r = if LINKS.contains(&name) {
        std::fs::read_link(dir.join(name)).map(|t| t.into_os_string().into_encoded_bytes())
    } else {
        std::fs::read(dir.join(name))
    };
    match r {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// One symlink operation: create or replace (by rename over, as `ln -sf`
/// does), rename to another link name, exchange two, or delete.
fn link_step(dir: &Path, m: &Mutex<Model>, rng: &mut Rng) -> std::io::Result<()> {
    let pick = |rng: &mut Rng| LINKS[rng.below(LINKS.len() as u64) as usize].to_string();
    let (a, b) = (pick(rng), pick(rng));
    let now = |n: &str| match m.lock().unwrap().files.get(n) {
        Some(c) => Expect::Content(c.clone()),
        None => Expect::Absent,
    };
    let set_pending = |alts: Vec<(String, Vec<Expect>)>| {
        let mut g = m.lock().unwrap();
        g.link_ops += 1;
        g.set_pending(alts);
    };
    let finish = |changes: Vec<(String, Option<Vec<u8>>)>| m.lock().unwrap().commit(changes);
    let (ea, eb) = (now(&a), now(&b));
    let content = |e: &Expect| match e {
        Expect::Content(c) => Some(c.clone()),
        Expect::Absent => None,
    };
    match rng.below(4) {
        0 => {
            let t = format!("target-{}", rng.below(1_000_000)).into_bytes();
            set_pending(vec![(
                a.clone(),
                vec![ea.clone(), Expect::Content(t.clone())],
            )]);
            let target = std::ffi::OsStr::from_bytes(&t);
            if matches!(ea, Expect::Absent) {
                std::os::unix::fs::symlink(target, dir.join(&a))?;
            } else {
                let tmp = dir.join(format!("{a}.new"));
                // A crash may have left one.
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(target, &tmp)?;
                std::fs::rename(&tmp, dir.join(&a))?;
            }
            finish(vec![(a, Some(t))]);
        }
        1 if a != b && !matches!(ea, Expect::Absent) => {
            set_pending(vec![
                (a.clone(), vec![ea.clone(), Expect::Absent]),
                (b.clone(), vec![eb, ea.clone()]),
            ]);
            std::fs::rename(dir.join(&a), dir.join(&b))?;
            finish(vec![(a, None), (b, content(&ea))]);
        }
        2 if a != b && !matches!(ea, Expect::Absent) && !matches!(eb, Expect::Absent) => {
            set_pending(vec![
                (a.clone(), vec![ea.clone(), eb.clone()]),
                (b.clone(), vec![eb.clone(), ea.clone()]),
            ]);
            exchange(&dir.join(&a), &dir.join(&b))?;
            finish(vec![(a, content(&eb)), (b, content(&ea))]);
        }
        3 if !matches!(ea, Expect::Absent) => {
            set_pending(vec![(a.clone(), vec![ea, Expect::Absent])]);
            std::fs::remove_file(dir.join(&a))?;
            finish(vec![(a, None)]);
        }
        _ => {}
    }
    Ok(())
}

fn with_change(old: &[u8], off: usize, data: &[u8]) -> Vec<u8> {
    let mut v = old.to_vec();
    if v.len() < off + data.len() {
        v.resize(off + data.len(), 0);
    }
    v[off..off + data.len()].copy_from_slice(data);
    v
}

/// close(2) with its error: a close whose flush failed did not commit.
fn close(f: std::fs::File) -> std::io::Result<()> {
    use std::os::fd::IntoRawFd;
    // SAFETY: we own the descriptor.
    if unsafe { libc::close(f.into_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn write_chunked(f: &mut std::fs::File, data: &[u8], rng: &mut Rng) -> std::io::Result<()> {
    let mut pos = 0;
    while pos < data.len() {
        let n = (1 + rng.below(48 * 1024) as usize).min(data.len() - pos);
        f.write_all(&data[pos..pos + n])?;
        pos += n;
    }
    Ok(())
}

/// One random operation. `Err` once the daemon is gone; the pending
/// alternatives are left in the model.
fn step(dir: &Path, m: &Mutex<Model>, rng: &mut Rng) -> std::io::Result<()> {
    if rng.below(5) == 0 {
        return link_step(dir, m, rng);
    }
    let name = NAMES[rng.below(NAMES.len() as u64) as usize].to_string();
    let p = dir.join(&name);
    let old = m.lock().unwrap().files.get(&name).cloned();
    let old_expect = match &old {
        Some(c) => Expect::Content(c.clone()),
        None => Expect::Absent,
    };
    let set_pending = |alts: Vec<(String, Vec<Expect>)>| m.lock().unwrap().set_pending(alts);
    let commit = |changes: Vec<(String, Option<Vec<u8>>)>| m.lock().unwrap().commit(changes);
    match rng.below(6) {
        // Save in place (truncate and write), perhaps with fsync.
        0 | 1 => {
            let new = {
                let n = rng.below(300 * 1024) as usize;
                rng.bytes(n)
            };
            let mut alts = vec![old_expect, Expect::Content(new.clone())];
            if old.is_none() {
                alts.push(Expect::Content(Vec::new()));
            }
            set_pending(vec![(name.clone(), alts)]);
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&p)?;
            write_chunked(&mut f, &new, rng)?;
            if rng.below(3) == 0 {
                f.sync_all()?;
                commit(vec![(name.clone(), Some(new.clone()))]);
            }
            close(f)?;
            commit(vec![(name, Some(new))]);
        }
        // Rewrite a region of an existing file (a database page, say).
        2 => {
            let Some(old) = old else { return Ok(()) };
            let off = rng.below(old.len() as u64 + 4096) as usize;
            let data = {
                let n = 1 + rng.below(100 * 1024) as usize;
                rng.bytes(n)
            };
            let new = with_change(&old, off, &data);
            set_pending(vec![(
                name.clone(),
                vec![Expect::Content(old), Expect::Content(new.clone())],
            )]);
            let f = OpenOptions::new().write(true).open(&p)?;
            let mut pos = 0;
            while pos < data.len() {
                let n = (1 + rng.below(20 * 1024) as usize).min(data.len() - pos);
                f.write_all_at(&data[pos..pos + n], (off + pos) as u64)?;
                pos += n;
            }
            close(f)?;
            commit(vec![(name, Some(new))]);
        }
        // Atomic save: temporary file, then rename over.
        3 => {
            let new = {
                let n = rng.below(200 * 1024) as usize;
                rng.bytes(n)
            };
            set_pending(vec![(
                name.clone(),
                vec![old_expect, Expect::Content(new.clone())],
            )]);
            let tmp = dir.join(format!(".{name}.tmp"));
            let mut f = std::fs::File::create(&tmp)?;
            write_chunked(&mut f, &new, rng)?;
            close(f)?;
            std::fs::rename(&tmp, &p)?;
            commit(vec![(name, Some(new))]);
        }
        // Rename to another name.
        4 => {
            let Some(c) = old else { return Ok(()) };
            let to = NAMES[rng.below(NAMES.len() as u64) as usize].to_string();
            if to == name {
                return Ok(());
            }
            let to_old = match m.lock().unwrap().files.get(&to) {
                Some(c) => Expect::Content(c.clone()),
                None => Expect::Absent,
            };
            set_pending(vec![
                (
                    name.clone(),
                    vec![Expect::Content(c.clone()), Expect::Absent],
                ),
                (to.clone(), vec![to_old, Expect::Content(c.clone())]),
            ]);
            std::fs::rename(&p, dir.join(&to))?;
            commit(vec![(name, None), (to, Some(c))]);
        }
        // Delete.
        _ => {
            if old.is_none() {
                return Ok(());
            }
            set_pending(vec![(name.clone(), vec![old_expect, Expect::Absent])]);
            std::fs::remove_file(&p)?;
            commit(vec![(name, None)]);
        }
    }
    Ok(())
}

/// SIGKILLs the daemon `pid` of the mount `m`, runs `then` once it is gone
/// (the writers finish against a dead connection), and detaches the mount
/// point (the guard is defused: nothing is left to unmount cleanly).
fn kill_daemon(w: &World, pid: i32, m: Mounted, then: impl FnOnce()) {
    // SAFETY: plain kill of the daemon we started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_gone(pid, Duration::from_secs(10)));
    then();
    std::mem::forget(m);
    force_unmount(&w.mnt);
}

fn verify(w: &World, dir: &Path, m: &Model, round: u64) {
    for name in NAMES.iter().chain(LINKS.iter()) {
        let name = *name;
        let found = match read_entry(dir, name) {
            Ok(c) => c,
            Err(e) => {
                // What the daemon logged (the replay of the crash journal,
                // the block that failed) says which step left it so.
                for l in m.log.iter().rev().take(12).rev() {
                    eprintln!("{l}");
                }
                panic!(
                    "round {round}: reading {name} failed: {e}\ndaemon log:\n{}",
                    w.logs()
                )
            }
        };
        let allowed: Vec<Expect> = match m.pending.get(name) {
            Some(alts) => alts.clone(),
            None => vec![match m.files.get(name) {
                Some(c) => Expect::Content(c.clone()),
                None => Expect::Absent,
            }],
        };
        let ok = allowed.iter().any(|a| match (a, &found) {
            (Expect::Absent, None) => true,
            (Expect::Content(c), Some(f)) => c == f,
            _ => false,
        });
        if !ok {
            for l in m.log.iter().rev().take(12).rev() {
                eprintln!("{l}");
            }
            eprintln!(
                "round {round}: {name} wrong: found {:?}",
                found.as_ref().map(|f| f.len())
            );
        }
        assert!(
            ok,
            "round {round}: {name} is neither its committed nor its new content \
             (found {:?} bytes; allowed {:?})",
            found.as_ref().map(|f| f.len()),
            allowed
                .iter()
                .map(|a| match a {
                    Expect::Absent => "absent".to_string(),
                    Expect::Content(c) => format!("{} bytes", c.len()),
                })
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn sigkill_at_random_instants_leaves_old_or_new() {
    let rounds: u64 = std::env::var("QUIRE_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let w = World::new();
    w.init();
    let model = Arc::new(Mutex::new(Model::default()));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let work: PathBuf = w.mnt.join("work");
    for round in 0..rounds {
        let o = w.mount_output(&[]);
        if !o.status.success() {
            let lock = w.vault.clone();
            let holders = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "for p in /proc/[0-9]*; do ls -l $p/fd 2>/dev/null | grep -q '{}' && echo $p $(cat $p/cmdline | tr '\\0' ' ') $(grep -E 'State|Threads' $p/status | tr '\\n' ' '); done",
                    lock.display()
                ))
                .output()
                .unwrap();
            panic!(
                "round {round}: mount failed: {}\nlock holders: {}",
                String::from_utf8_lossy(&o.stderr),
                String::from_utf8_lossy(&holders.stdout)
            );
        }
        let m = Mounted { world: &w };
        if round == 0 {
            std::fs::create_dir(&work).unwrap();
        } else {
            verify(&w, &work, &model.lock().unwrap(), round);
            // The whole vault verifies (through the daemon): blocks, names,
            // history streams and trash entries. Every 25 rounds: the
            // history grows with every round, and so does a full check.
            if round % 25 == 0 {
                let o = w.run(&["check"]);
                assert!(
                    o.status.success(),
                    "round {round}: quire check: {}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            model
                .lock()
                .unwrap()
                .log
                .push(format!("--- crash, round {round}"));
            let mut g = model.lock().unwrap();
            // What is on disk now is the committed state.
            let pending = std::mem::take(&mut g.pending);
            for name in pending.keys() {
                match read_entry(&work, name) {
                    Ok(Some(c)) => {
                        g.files.insert(name.clone(), c);
                    }
                    _ => {
                        g.files.remove(name);
                    }
                }
            }
        }
        let pid = w.daemon_pid().expect("daemon pid");
        let (tm, tw) = (model.clone(), work.clone());
        let seed = rng.next() | 1;
        let t = std::thread::spawn(move || {
            let mut r = Rng(seed);
            loop {
                if step(&tw, &tm, &mut r).is_err() {
                    return;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(5 + rng.below(120)));
        kill_daemon(&w, pid, m, || t.join().unwrap());
    }
    let m = w.mount(&[]);
    verify(&w, &work, &model.lock().unwrap(), rounds);
    let link_ops = model.lock().unwrap().link_ops;
    assert!(
        link_ops > 10,
        "only {link_ops} symlink operations were tried"
    );
    m.unmount();
    // The whole vault verifies: every block, name, version and trash entry.
    let o = w.check_sealed();
    assert!(
        o.status.success(),
        "quire check: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// After a crash, a read-only mount (which rolls nothing back) says so
/// and what to do; a read-write mount then rolls the interrupted change
/// back to the last saved content.
#[test]
fn a_read_only_mount_after_a_crash_says_how_to_roll_back() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("n.md"), "saved\n").unwrap();
    // Asked first: running a program while the file is open closes its
    // inherited descriptor at exec, and a close commits.
    let pid = w.daemon_pid().expect("daemon pid");
    let f = OpenOptions::new().write(true).open(m.path("n.md")).unwrap();
    f.write_all_at(&[b'x'; 10000], 0).unwrap();
    kill_daemon(&w, pid, m, || drop(f));
    assert!(
        w.local().join("quire.undo").exists(),
        "the change was journaled"
    );
    let o = w.mount_output(&["--read-only"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let m = Mounted { world: &w };
    assert!(err.contains("without --read-only"), "{err}");
    m.unmount();
    let o = w.mount_output(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !err.contains("crash"), "{err}");
    let m = Mounted { world: &w };
    let logs = w.run(&["logs"]);
    assert_eq!(
        std::fs::read(m.path("n.md")).unwrap(),
        b"saved\n",
        "{}",
        String::from_utf8_lossy(&logs.stdout)
    );
    m.unmount();
}

/// Issue 16.11: a cut is undone by a crash like any change, holes
/// included: a sparse file cut short, then written past its old end
/// through the same handle, reads after a kill as it was at its last save
/// (its data where it was, zeros in its holes, its old size).
#[test]
fn a_cut_sparse_file_rolls_back_whole_after_a_kill() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let p = m.path("sparse.img");
    const MIB: u64 = 1 << 20;
    {
        let f = std::fs::File::create(&p).unwrap();
        f.write_all_at(&[b'a'; 4096], 0).unwrap();
        f.write_all_at(&[b'b'; 8192], 64 * MIB).unwrap();
        f.write_all_at(&[b'c'; 100], 96 * MIB).unwrap();
    }
    let want = std::fs::read(&p).unwrap();
    let pid = w.daemon_pid().expect("daemon pid");
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(8192).unwrap();
    // Into what were holes and past the old end: not yet saved.
    f.write_all_at(&[b'x'; 8192], 32 * MIB).unwrap();
    f.write_all_at(&[b'y'; 4096], 128 * MIB).unwrap();
    kill_daemon(&w, pid, m, || drop(f));
    let m = w.mount(&[]);
    let got = std::fs::read(m.path("sparse.img")).unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the cut file was not rolled back whole");
    m.unmount();
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}
