//! The daemon: hardens the process, mounts the FUSE session, watches for
//! signals and idleness, and seals the vault when the session ends.
//!
//! In the background the process forks *before* any thread starts (fuser's
//! worker threads, the signal thread), and the parent waits on a pipe until
//! the mount is usable or has failed, so `quire mount` returns only then.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::exit::{Code, fail};
use super::{logger, paths, runtime};
use crate::fuse::{Activity, QuireFs};
use crate::store::lock::VaultLock;
use crate::vault::{UnlockedVault, logfile};

/// How to serve a vault.
pub struct Options {
    pub mountpoint: PathBuf,
    pub read_only: bool,
    pub allow_other: bool,
    pub idle: Option<Duration>,
    pub threads: usize,
    /// Keep no search index this session (measurements; it catches up at
    /// the next mount).
    pub no_index: bool,
}

/// Keeps secrets out of core dumps and swap, and allows one open host
/// handle per node the kernel remembers.
fn harden() {
    // SAFETY: plain syscalls on this process with valid arguments.
    unsafe {
        // Files of our own (state, logs, the undo journal) are private
        // whatever the caller's umask; the modes the kernel sends for notes
        // are already masked by the caller's umask, and the vault sets them
        // exactly after creating (`vault::tree`), so this umask never
        // strips a note's mode (issue 11.2).
        libc::umask(0o077);
    }
    super::password::no_core_dumps();
    // SAFETY: plain syscalls on this process with valid arguments.
    unsafe {
        let mut nofile = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut nofile) == 0 {
            // Root may go up to the kernel's nr_open; others to their hard limit.
            let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|s| s.trim().parse::<libc::rlim_t>().ok())
                .unwrap_or(nofile.rlim_max);
            let want = libc::rlimit {
                rlim_cur: nr_open.max(nofile.rlim_max),
                rlim_max: nr_open.max(nofile.rlim_max),
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                nofile = want;
            }
            nofile.rlim_cur = nofile.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &nofile);
        }
    }
}

fn mount_config(o: &Options) -> fuser::Config {
    use fuser::MountOption as M;
    let mut c = fuser::Config::default();
    c.mount_options = vec![
        M::FSName("quire".into()),
        M::Subtype("quire".into()),
        M::DefaultPermissions,
        M::NoSuid,
        M::NoDev,
        if o.read_only { M::RO } else { M::RW },
    ];
    c.acl = if o.allow_other {
        fuser::SessionACL::All
    } else {
        fuser::SessionACL::Owner
    };
    c.n_threads = Some(o.threads);
    c.clone_fd = true;
    c
}

fn mount_error(e: &std::io::Error, o: &Options) -> (Code, String) {
    let s = e.to_string();
    if s.contains("user_allow_other") {
        return (
            Code::MountPoint,
            "--allow-other needs `user_allow_other` in /etc/fuse.conf (ask the machine's administrator)".into(),
        );
    }
    // SAFETY: valid C string; access(2) only reads it.
    let fuse_ok = unsafe { libc::access(c"/dev/fuse".as_ptr(), libc::R_OK | libc::W_OK) } == 0;
    if e.kind() == std::io::ErrorKind::PermissionDenied && !fuse_ok {
        // Not the mount point's fault (issue 16.8).
        return (
            Code::NoFuse,
            "no access to /dev/fuse (permission denied): FUSE is not open to your account on this machine. Ask its administrator to allow it (`sudo chmod 0666 /dev/fuse`, which Debian and Ubuntu do by default, or install fuse3 so that fusermount3 mounts for you)".into(),
        );
    }
    if e.kind() == std::io::ErrorKind::NotFound && s.contains("fusermount") {
        return (
            Code::NoFuse,
            "fusermount3 is not installed: sudo apt-get install fuse3".into(),
        );
    }
    (
        Code::MountPoint,
        format!("cannot mount at {}: {s}", o.mountpoint.display()),
    )
}

/// The mount point's own folder (the one the mount covers), held open from
/// before the mount: while sealed it is read-only to its owner (0500), so
/// an editor still open on a note cannot save it there as plaintext after
/// the vault seals (issue 16.1). fusermount3 needs write access to mount,
/// so it is 0700 only for the moment of mounting; the descriptor reaches
/// the covered folder under the mount and after a lazy unmount.
/// (Root ignores modes: docs/THREAT_MODEL.md.)
pub(super) struct SealedMountpoint(Option<std::fs::File>);

/// Mode of a sealed mount point.
pub(super) const SEALED_MODE: u32 = 0o500;

impl SealedMountpoint {
    /// Opens `mp` and makes it mountable (0700).
    pub(super) fn open(mp: &Path) -> SealedMountpoint {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(mp)
            .inspect_err(|e| {
                log::warn!(
                    "the mount point's own folder cannot be made read-only while sealed ({e})"
                )
            })
            .ok();
        let g = SealedMountpoint(f);
        g.set(0o700);
        g
    }

    fn set(&self, mode: u32) {
        use std::os::fd::AsRawFd;
        if let Some(f) = &self.0 {
            // SAFETY: valid descriptor.
            if unsafe { libc::fchmod(f.as_raw_fd(), mode) } != 0 {
                log::warn!(
                    "could not set the mount point's own mode to {mode:o} ({})",
                    std::io::Error::last_os_error()
                );
            }
        }
    }

    /// Read-only to its owner: nothing can be saved into it while sealed.
    pub(super) fn seal(&self) {
        self.set(SEALED_MODE);
    }
}

/// Mounts and serves until unmounted. `ready` is told once the mount is usable.
fn serve(
    v: UnlockedVault,
    lock: VaultLock,
    o: Options,
    ready: impl FnOnce(Result<(), (Code, String)>),
) -> Result<()> {
    harden();
    v.relock_keys();
    let tree = match v.tree(o.read_only) {
        Ok(t) => t,
        Err(e) => {
            let msg = e.to_string();
            ready(Err((Code::Format, msg.clone())));
            return Err(e.into());
        }
    };
    // This device's record says it has the vault mounted until it seals
    // (docs/FORMAT.md §18): another device that finds a file of ours
    // half-written names us.
    let device = if o.read_only {
        None
    } else {
        match tree.devices() {
            Ok(d) => {
                if let Err(e) = d.set_state(crate::format::devices::State::Mounted) {
                    log::warn!("could not write this device's record ({e})");
                }
                Some(d)
            }
            Err(e) => {
                log::warn!("{e}");
                None
            }
        }
    };
    // The control socket lives there: refuse to mount rather than serve
    // from a folder another user controls (issue 11.1).
    if let Err(e) = runtime::ensure_dir() {
        let msg = e.to_string();
        ready(Err((Code::Io, msg.clone())));
        return Err(fail(Code::Io, msg));
    }
    let activity = Arc::new(Activity::new());
    let tree = Arc::new(tree);
    let weak = Arc::downgrade(&tree);
    // Held past the session's end, until the indexer has taken in the last
    // changes (issue 16.2); dropped before the keys are declared wiped.
    let kept = tree.clone();
    let fs = QuireFs::new(tree, activity.clone())?;
    let pressure = fs.pressure();
    let sweeper = fs.sweeper();
    {
        let p = pressure.clone();
        crate::store::host::on_fd_pressure(move || p.wake());
    }
    let covered = SealedMountpoint::open(&o.mountpoint);
    let session = fuser::Session::new(fs, &o.mountpoint, &mount_config(&o));
    // Mounted or not, the covered folder is read-only again at once.
    covered.seal();
    let mut session = match session {
        Ok(s) => s,
        Err(e) => {
            let (code, msg) = mount_error(&e, &o);
            ready(Err((code, msg.clone())));
            return Err(fail(code, msg));
        }
    };
    if let Err(e) = runtime::write(&o.mountpoint, v.path(), o.idle) {
        log::warn!("could not record the mount ({e})");
    }
    let sweep: Arc<crate::control::Sweep> = {
        let (s, n) = (sweeper.clone(), session.notifier());
        Arc::new(move |t, p, now| s.apply(t, p, now, Some(&n)))
    };
    let indexer = match weak.upgrade() {
        Some(t) if !o.read_only && !o.no_index => super::indexer::start(&t, &v),
        _ => None,
    };
    let searcher: Option<Arc<dyn crate::control::Searcher>> = if o.read_only {
        super::indexer::open_read_only(&v).map(|s| s as _)
    } else {
        indexer.clone().map(|s| s as _)
    };
    if let Err(e) = crate::control::serve(
        &runtime::socket_path(&o.mountpoint),
        weak.clone(),
        sweep,
        searcher,
    ) {
        log::warn!("no control socket ({e}): history and trash commands need the vault sealed");
    }
    let waker = weak.upgrade().map(|t| {
        t.audit(
            crate::vault::AuditEvent::Mount,
            b"",
            b"",
            0,
            &match &device {
                Some(d) => format!(
                    "pid {} on {} ({})",
                    std::process::id(),
                    d.my_name(),
                    crate::format::devices::short(&d.me())
                ),
                None => format!("pid {}", std::process::id()),
            },
        );
        t.lifecycle_waker()
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if !o.read_only
        && let Some(w) = &waker
    {
        start_lifecycle(
            weak.clone(),
            sweeper.clone(),
            session.notifier(),
            w.clone(),
            stop.clone(),
        );
    }
    log::info!("mounted (pid {})", std::process::id());

    // Signals seal the vault: unmount (lazily), and the session loop ends.
    let mut unmounter = session.unmount_callable();
    let mut signals =
        signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM, libc::SIGHUP])?;
    std::thread::Builder::new()
        .name("quire-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                log::info!("signal {sig} received: sealing");
                if let Err(e) = unmounter.unmount() {
                    log::error!("unmount after signal failed: {e}");
                }
            }
        })?;
    if let Some(idle) = o.idle {
        let mp = o.mountpoint.clone();
        std::thread::Builder::new()
            .name("quire-idle".into())
            .spawn(move || idle_watch(&activity, idle, &mp))?;
    }
    // Other programs changing the vault folder (a sync tool): the kernel
    // forgets what no longer matches (issue 18.5).
    if let Some(t) = weak.upgrade() {
        // Folders made under one name on two computers at once (issue 18.4).
        if !o.read_only {
            let merged = {
                let _change = t.change();
                t.merge_from_other_computers()
            };
            match merged {
                Ok((0, 0)) => {}
                Ok((n, v)) => log::warn!(
                    "merged what another computer made: {n} note(s) in folders both created, {v} version(s) kept in conflict copies"
                ),
                Err(e) => log::error!("could not merge what another computer made ({e})"),
            }
        }
        match t.watch_outside() {
            Ok(w) => {
                log::info!(
                    "watching {} folder(s) for changes by other programs",
                    w.folders()
                );
                let read_only = o.read_only;
                let (weak, sweeper, notifier, stop) = (
                    weak.clone(),
                    sweeper.clone(),
                    session.notifier(),
                    stop.clone(),
                );
                std::thread::Builder::new()
                    .name("quire-watch".into())
                    .spawn(move || {
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            // Waits without holding the tree: unmounting
                            // never waits for this thread.
                            let events = w.wait(500);
                            let Some(t) = weak.upgrade() else { return };
                            // A sync tool brought another computer's ID of
                            // a folder both created, or a history stream
                            // (maybe a conflict copy of one): merge them in.
                            // Only the folders it happened in are looked at:
                            // another computer's every save brings a `.qh`.
                            if !read_only && let Ok(ev) = &events {
                                for dir in w.folders_of(ev, |n| {
                                    let n = n.to_string_lossy();
                                    n.ends_with(".dirid") || n.ends_with(".qh")
                                }) {
                                    let merged = {
                                        let _change = t.change();
                                        t.merge_folder_from_other_computers(&dir)
                                    };
                                    if let Err(e) = merged {
                                        log::error!(
                                            "could not merge what another computer made ({e})"
                                        );
                                    }
                                }
                            }
                            let translated = events.map(|e| w.translate(&t, e));
                            // Events were lost: every folder is watched
                            // again and every cached entry checked.
                            if w.overflowed.swap(false, std::sync::atomic::Ordering::AcqRel) {
                                w.rewatch(&t);
                                let n = sweeper.recheck_all(&t, &notifier);
                                log::warn!(
                                    "the watcher's queue overflowed (many changes at once): every folder is watched again, {n} stale name(s) dropped from the kernel's cache"
                                );
                                if !read_only
                                    && let Err(e) = {
                                        let _change = t.change();
                                        t.merge_from_other_computers()
                                    }
                                {
                                    log::error!("could not merge what another computer made ({e})");
                                }
                            }
                            match translated {
                                Ok(changes) => {
                                    for c in &changes {
                                        t.changed_outside(c);
                                    }
                                    let n = sweeper.outside(&t, &changes, &notifier);
                                    if n > 0 {
                                        log::info!(
                                            "{n} name(s) changed by another program (a sync tool?): the kernel's cache of them was dropped"
                                        );
                                    }
                                }
                                Err(e) => {
                                    log::warn!("watching the vault folder failed ({e})");
                                    return;
                                }
                            }
                        }
                    })?;
            }
            Err(e) => log::warn!("cannot watch the vault folder for changes ({e})"),
        }
    }
    // Keep the nodes' host descriptors under the open-file limit.
    {
        let notifier = session.notifier();
        // Sets the high-water mark before the first request can arrive.
        pressure.relieve(open_file_limit(), &notifier);
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("quire-pressure".into())
            .spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    pressure.wait(Duration::from_millis(200));
                    let n = pressure.relieve(open_file_limit(), &notifier);
                    if n > 0 {
                        log::debug!("asked the kernel to drop {n} cached entries");
                    }
                }
            })?;
    }
    ready(Ok(()));
    let r = session.run();
    covered.seal();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(w) = waker {
        w.wake();
    }
    // The sealed index is exactly current: deletes, purges and the last
    // saves are in it before the keys go (issue 16.2).
    if let Some(ix) = &indexer {
        ix.drain();
    }
    drop(kept);
    runtime::remove(&o.mountpoint);
    // `run` consumed the session: the filesystem, its tree (journal
    // closed) and the tree's keys are gone already.
    v.close_audit();
    if let Some(d) = device {
        if let Err(e) = d.set_state(crate::format::devices::State::Sealed) {
            log::warn!("could not write this device's record ({e})");
        }
        drop(d);
    }
    drop(v);
    drop(lock);
    log::info!("unmounted and sealed: keys wiped");
    r.map_err(|e| fail(Code::Io, format!("the filesystem session failed: {e}")))
}

/// Expires notes and purges the trash (docs/FORMAT.md §15) at mount and
/// then at least once a minute: sooner when something falls due, and at
/// once when a note's dates change. Also remembers the audit log's head.
fn start_lifecycle(
    tree: std::sync::Weak<crate::vault::Notebook>,
    sweeper: crate::fuse::Sweeper,
    notifier: fuser::Notifier,
    waker: crate::vault::events::Waker,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let _ = std::thread::Builder::new()
        .name("quire-lifecycle".into())
        .spawn(move || {
            loop {
                let wait = {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let Some(t) = tree.upgrade() else { return };
                    if let Ok(n) = {
                        let _change = t.change();
                        t.tidy_trash()
                    } && n > 0
                    {
                        log::info!("removed {n} leftovers of interrupted moves to the trash");
                    }
                    // A disk running full: the trash gives way first.
                    if let Err(e) = {
                        let _change = t.change();
                        t.purge_for_space()
                    } {
                        log::error!("could not purge the trash for space: {e}");
                    }
                    let now = std::time::SystemTime::now();
                    let next = match t.plan_lifecycle(now) {
                        Ok(plan) => {
                            if !plan.expire.is_empty() || !plan.purge.is_empty() {
                                match sweeper.apply(&t, &plan, now, Some(&notifier)) {
                                    Ok(done) => log::info!(
                                        "lifecycle: {} note(s) expired to the trash, {} trash entries purged",
                                        done.expired.len(),
                                        done.purged
                                    ),
                                    Err(e) => log::error!("lifecycle sweep failed: {e}"),
                                }
                            }
                            if !plan.held.is_empty() {
                                log::info!(
                                    "lifecycle: {} expired note(s) kept by their retention date",
                                    plan.held.len()
                                );
                            }
                            plan.next_due
                        }
                        Err(e) => {
                            log::error!("lifecycle planning failed: {e}");
                            None
                        }
                    };
                    t.save_audit_head();
                    let mut wait = Duration::from_secs(60);
                    if let Some(due) = next {
                        let until = due.duration_since(now).unwrap_or_default();
                        wait = wait.min(until + Duration::from_millis(100));
                    }
                    wait
                };
                waker.wait(wait);
            }
        });
}

/// The current soft limit on open files.
fn open_file_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_cur
    } else {
        1024
    }
}

/// Seals after `idle` without activity, but only with nothing open: a
/// regular (not lazy) unmount fails while any program has a file open or its
/// working folder inside the mount, and is then retried later.
fn idle_watch(a: &Activity, idle: Duration, mp: &Path) {
    let tick = (idle / 10).clamp(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        std::thread::sleep(tick);
        if a.open_count() > 0 || a.idle_for() < idle {
            continue;
        }
        a.sealing_idle(Some(idle));
        match unmount_cmd(mp, false) {
            Ok(()) => {
                log::info!("idle for {}s: sealed", idle.as_secs());
                return;
            }
            Err(e) => {
                a.sealing_idle(None);
                log::info!("idle, but the mount is in use; staying mounted ({e})")
            }
        }
    }
}

/// Runs `fusermount3 -u` (or `umount` as root without fusermount3).
pub fn unmount_cmd(mp: &Path, lazy: bool) -> std::result::Result<(), String> {
    let mut c = Command::new("fusermount3");
    c.arg("-u");
    if lazy {
        c.arg("-z");
    }
    c.arg("--").arg(mp);
    let out = match c.output() {
        Ok(o) => o,
        Err(_) => {
            let mut u = Command::new("umount");
            if lazy {
                u.arg("-l");
            }
            u.arg(mp).output().map_err(|e| e.to_string())?
        }
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

pub fn run_foreground(v: UnlockedVault, lock: VaultLock, o: Options) -> Result<()> {
    logger::to_stderr();
    let mp = o.mountpoint.clone();
    serve(v, lock, o, |r| {
        if r.is_ok() {
            eprintln!(
                "Mounted at {}. Press Ctrl-C (or run `quire unmount`) to seal.",
                mp.display()
            );
        }
    })
}

pub fn run_background(v: UnlockedVault, lock: VaultLock, o: Options) -> Result<()> {
    let mut fds = [0; 2];
    // SAFETY: valid out-array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: fresh descriptors we own.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: no other thread exists yet in this process (nothing before
    // this point spawns one), so fork is sound.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    if pid > 0 {
        drop(wr);
        drop(v);
        drop(lock);
        // One line: "OK" or "ERR <code> <message>"; EOF means the child died.
        let mut msg = Vec::new();
        let mut f = std::fs::File::from(rd);
        let mut b = [0u8; 1];
        while let Ok(1) = f.read(&mut b) {
            if b[0] == b'\n' {
                break;
            }
            msg.push(b[0]);
        }
        let msg = String::from_utf8_lossy(&msg).into_owned();
        let mp = o.mountpoint.display();
        let msg = msg.trim();
        if msg == "OK" {
            eprintln!("Mounted at {mp}. Run `quire unmount` to seal.");
            // Export files kept past their date (issue 19.1).
            super::export::warn_overdue_at(&o.mountpoint);
            return Ok(());
        }
        if let Some(rest) = msg.strip_prefix("ERR ") {
            let (code, text) = rest.split_once(' ').unwrap_or(("1", rest));
            eprintln!("quire: {}", text.trim());
            std::process::exit(code.parse::<i32>().unwrap_or(1));
        }
        return Err(fail(
            Code::Other,
            "the background daemon exited before the mount was ready (see `quire logs`)",
        ));
    }
    // Child: the daemon.
    drop(rd);
    // SAFETY: setsid has no preconditions.
    unsafe { libc::setsid() };
    if let Ok(f) = logfile::LogFile::open(&v) {
        logger::to_file(f);
    }
    let mut wr = std::fs::File::from(wr);
    detach_stdio();
    let r = serve(v, lock, o, |r| {
        let line = match r {
            Ok(()) => "OK\n".to_string(),
            Err((code, msg)) => format!("ERR {} {}\n", code as i32, msg.replace('\n', " ")),
        };
        let _ = wr.write_all(line.as_bytes());
    });
    if let Err(e) = &r {
        log::error!("daemon stopped: {e:#}");
    }
    std::process::exit(if r.is_ok() { 0 } else { 1 });
}

fn detach_stdio() {
    let _ = std::env::set_current_dir("/");
    // SAFETY: open/dup2 on valid descriptors.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
}

/// Arguments of `quire logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Vault folder (default: the vault found as for `quire log`: the
    /// mount you are in, else the default vault).
    #[arg(value_name = "VAULT")]
    folder: Option<PathBuf>,
    #[command(flatten)]
    target: super::target::TargetArgs,
}

/// `quire logs`: the daemon's log, decrypted, with note paths where the
/// log has host paths. Through the daemon while mounted (issue 10.8);
/// a sealed vault is opened here with the password.
pub fn logs(a: LogsArgs) -> Result<()> {
    let mut t = a.target;
    if let Some(v) = a.folder {
        let v = paths::absolute(&v);
        match runtime::mounts()
            .into_iter()
            .find(|m| m.vault.as_deref() == Some(v.as_path()))
        {
            Some(m) => t.mountpoint = Some(m.mountpoint),
            None => t.vault = Some(v),
        }
    }
    let (c, _) = super::target::connect(&t, None)?;
    let lines = match c.call(crate::control::Request::Logs)? {
        crate::control::Response::Lines { lines } => lines,
        _ => return Err(fail(Code::Io, "unexpected answer from the daemon")),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "Vault: {}", c.describe())?;
    for l in lines {
        writeln!(out, "{l}")?;
    }
    Ok(())
}
