//! `quire backup` (issue 19.2): snapshots of the sealed vault folder into
//! a backup folder (a USB disk, a NAS), incremental and thinned by a
//! retention rule; `verify` checks them without the password (`--deep`
//! decrypts a snapshot with it); `restore` brings one back into a new
//! folder; `drill` restores one, mounts it read-only, reads every note and
//! version, compares them with the live vault and records the drill.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};

use super::exit::{Code, fail};
use super::target::{Conn, TargetArgs, connect};
use crate::control::{Request, Response};
use crate::format::backup as fmt;
use crate::store::backup::Repo;
use crate::vault::backup::verify;

/// `quire backup`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    cmd: Option<Sub>,
    /// The backup folder (made if missing; a folder of its own per vault).
    #[arg(required = true, value_name = "DEST")]
    dest: Option<PathBuf>,
    /// Then keep only the newest snapshot of each of the last N hours,
    /// days, weeks, months, years (h, d, w, m, y) or the last N snapshots
    /// (n), as in `7d,4w,12m`; the others and their unused files go.
    #[arg(long, value_name = "RULE")]
    keep: Option<String>,
    /// Do nothing (and succeed) when the vault is not mounted: for a timer
    /// that runs whether or not anyone is working.
    #[arg(long)]
    if_mounted: bool,
    /// Only into a backup folder made before (by a first `quire backup`):
    /// a USB disk that is not plugged in leaves its empty mount point, and
    /// a timer must not fill the computer's own disk there instead.
    #[arg(long)]
    existing: bool,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// List the snapshots in a backup folder (no password needed).
    List {
        /// The backup folder.
        dest: PathBuf,
    },
    /// Check every snapshot without the password: each manifest's
    /// signature and every stored file's SHA-256. With --deep (and the
    /// password), also restore a snapshot to a temporary folder and
    /// decrypt every note, version and record in it.
    Verify {
        /// The backup folder.
        dest: PathBuf,
        /// Also decrypt a snapshot (the newest, or --snapshot).
        #[arg(long)]
        deep: bool,
        /// The snapshot --deep decrypts.
        #[arg(long, value_name = "ID")]
        snapshot: Option<String>,
        /// The key fingerprint the snapshots must be signed with (as
        /// `quire backup` prints it); else the mounted vault's, if it is
        /// mounted.
        #[arg(long, value_name = "FINGERPRINT")]
        key: Option<String>,
    },
    /// Restore a snapshot into a NEW folder (never over a vault): mount
    /// that folder to read it, copy back what you need.
    Restore {
        /// The backup folder.
        dest: PathBuf,
        /// The snapshot (default: the newest).
        #[arg(long, value_name = "ID")]
        snapshot: Option<String>,
        /// The new folder (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// A restore drill: restore a snapshot to a temporary folder, mount it
    /// read-only, read every note and version, compare each note with the
    /// mounted vault (as it is now, or in its history), print a report and
    /// record the drill in the audit log.
    Drill {
        /// The backup folder.
        dest: PathBuf,
        /// The snapshot (default: the newest).
        #[arg(long, value_name = "ID")]
        snapshot: Option<String>,
    },
}

pub fn run(a: BackupArgs) -> Result<()> {
    match a.cmd {
        None => take(&a),
        Some(Sub::List { ref dest }) => list(dest, a.json),
        Some(Sub::Verify {
            ref dest,
            deep,
            ref snapshot,
            ref key,
        }) => check(&a, dest, deep, snapshot.as_deref(), key.as_deref()),
        Some(Sub::Restore {
            ref dest,
            ref snapshot,
            ref to,
        }) => restore(dest, snapshot.as_deref(), to, a.json),
        Some(Sub::Drill {
            ref dest,
            ref snapshot,
        }) => drill(&a, dest, snapshot.as_deref()),
    }
}

fn human_bytes(n: u64) -> String {
    super::status::human_bytes(n)
}

fn when(secs: u64) -> String {
    super::runtime::format_time(secs)
}

fn io_fail(e: std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => fail(Code::NotFound, e.to_string()),
        std::io::ErrorKind::AlreadyExists => fail(Code::Exists, e.to_string()),
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
            fail(Code::Refused, e.to_string())
        }
        _ => fail(Code::Io, e.to_string()),
    }
}

/// A spinner line on a terminal while the daemon works.
struct Spinner {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    t: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    fn start(what: &'static str, quiet: bool) -> Spinner {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let t = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let marks = ['|', '/', '-', '\\'];
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    eprint!(
                        "\r{what} {} {} s",
                        marks[i % 4],
                        started.elapsed().as_secs()
                    );
                    i += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                eprint!("\r{}\r", " ".repeat(what.len() + 12));
            })
        });
        Spinner { stop, t }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.t.take() {
            let _ = t.join();
        }
    }
}

/// `quire backup DEST`.
fn take(a: &BackupArgs) -> Result<()> {
    let dest = super::paths::absolute(a.dest.as_deref().expect("required by clap"));
    let parent = dest.parent().filter(|p| p.is_dir()).ok_or_else(|| {
        fail(
            Code::NotFound,
            format!(
                "{}: its folder does not exist (is the disk plugged in?)",
                dest.display()
            ),
        )
    })?;
    super::paths::outside_vaults(
        &dest,
        parent,
        "a backup goes to another disk or folder, outside the vault",
    )?;
    if a.existing && !dest.join(crate::store::backup::MARKER).is_file() {
        return Err(fail(
            Code::NotFound,
            format!(
                "{} is not a backup folder yet (--existing): is the backup disk plugged in? Run `quire backup {}` once by hand to make it",
                dest.display(),
                dest.display()
            ),
        ));
    }
    if a.if_mounted
        && a.target.vault.is_none()
        && !super::runtime::mounts().iter().any(|m| m.pid.is_some())
    {
        if !a.json {
            eprintln!("No vault is mounted: nothing backed up now (--if-mounted).");
        } else {
            println!("null");
        }
        return Ok(());
    }
    let (c, _) = connect(&a.target, None)?;
    let r = {
        let _s = Spinner::start("Backing up", a.json);
        match c.call(Request::Backup {
            dest: dest.clone(),
            keep: a.keep.clone(),
        })? {
            Response::Backup { report } => report,
            _ => return Err(fail(Code::Io, "unexpected answer from the daemon")),
        }
    };
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    println!(
        "Snapshot {} in {}: {} files, {}; {} read and stored this time ({}).",
        r.id,
        dest.display(),
        r.files,
        human_bytes(r.bytes),
        r.copied,
        human_bytes(r.copied_bytes)
    );
    if r.undone > 0 {
        println!(
            "  {} note(s) being written were stored as at their last save.",
            r.undone
        );
    }
    if !r.removed.is_empty() {
        println!(
            "  --keep removed {} older snapshot(s) and {} file(s) no snapshot uses.",
            r.removed.len(),
            r.objects_removed
        );
    }
    println!(
        "  Signed with key {}: `quire backup verify {}` checks it without the password.",
        r.fingerprint,
        dest.display()
    );
    Ok(())
}

fn repo_of(dest: &Path) -> Result<(Repo, [u8; 16], [u8; 32])> {
    let repo = Repo::at(&super::paths::absolute(dest));
    let (vault, key) = verify::identity(&repo).map_err(io_fail)?;
    Ok((repo, vault, key))
}

/// `quire backup list DEST`.
fn list(dest: &Path, json: bool) -> Result<()> {
    let (repo, vault, key) = repo_of(dest)?;
    let mut rows = Vec::new();
    for id in repo.snapshots().map_err(io_fail)? {
        match verify::manifest(&repo, &id, &key) {
            Ok(m) => {
                let (mut files, mut bytes) = (0u64, 0u64);
                for e in &m.entries {
                    if let fmt::Kind::File { size, .. } = e.kind {
                        files += 1;
                        bytes += size;
                    }
                }
                rows.push(serde_json::json!({
                    "id": id, "time": m.time, "files": files, "bytes": bytes,
                    "device": fmt::hex(&m.device), "ok": true,
                }));
            }
            Err(e) => rows.push(serde_json::json!({"id": id, "ok": false, "error": e.to_string()})),
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    println!(
        "Backups of vault {} (key {}):",
        &fmt::hex(&vault)[..8],
        fmt::fingerprint(&key)
    );
    if rows.is_empty() {
        println!("  no snapshot yet");
    }
    for r in rows {
        if r["ok"] == true {
            println!(
                "  {}  {}  {} files, {}",
                r["id"].as_str().unwrap_or(""),
                when(r["time"].as_u64().unwrap_or(0)),
                r["files"],
                human_bytes(r["bytes"].as_u64().unwrap_or(0))
            );
        } else {
            println!(
                "  {}  UNREADABLE: {}",
                r["id"].as_str().unwrap_or(""),
                r["error"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// The key the snapshots must carry: `--key` (a fingerprint), else the
/// mounted vault's (when the vault mounted is this folder's vault), else
/// none (the folder's own key is then all there is, and the report says
/// so). `Err(fingerprint)`: `--key` names another key than the folder's.
fn trusted_key(
    a: &BackupArgs,
    key: Option<&str>,
    vault: &[u8; 16],
    folder_key: &[u8; 32],
) -> std::result::Result<Option<[u8; 32]>, String> {
    if let Some(k) = key {
        let want = k.trim().to_lowercase();
        return if fmt::fingerprint(folder_key) == want {
            Ok(Some(*folder_key))
        } else {
            Err(want)
        };
    }
    if (a.target.vault.is_some() || super::runtime::mounts().iter().any(|m| m.pid.is_some()))
        && let Ok((c, _)) = connect(&a.target, None)
        && let Ok(Response::BackupKey { key, vault: v }) = c.call(Request::BackupKey)
        && v == fmt::hex(vault)
        && let Some(k) = fmt::unhex(&key).and_then(|b| <[u8; 32]>::try_from(b).ok())
    {
        return Ok(Some(k));
    }
    Ok(None)
}

/// `quire backup verify DEST`.
fn check(
    a: &BackupArgs,
    dest: &Path,
    deep: bool,
    snapshot: Option<&str>,
    key: Option<&str>,
) -> Result<()> {
    let (repo, vault, folder_key) = repo_of(dest)?;
    let trust = trusted_key(a, key, &vault, &folder_key);
    let trusted = trust.clone().ok().flatten();
    let started = Instant::now();
    let mut c = {
        let _s = Spinner::start("Verifying", a.json);
        verify::verify(&repo, trusted.as_ref()).map_err(io_fail)?
    };
    if let Err(want) = &trust {
        c.problems.insert(
            0,
            verify::Problem {
                snapshot: String::new(),
                path: String::new(),
                what: format!(
                    "the folder's key {} is not {want} (the --key given): its snapshots were signed by someone else",
                    c.fingerprint
                ),
            },
        );
    }
    let mut deep_report = None;
    if deep && c.problems.is_empty() {
        let id = pick(&repo, snapshot)?;
        let tmp = scratch_dir()?;
        let restored = tmp.path().join("vault");
        verify::restore(&repo, &id, &restored, Some(&folder_key)).map_err(io_fail)?;
        let conn = super::target::open_sealed(&restored, &a.target.password)?;
        let r = match conn.call(Request::Check)? {
            Response::Check { report, .. } => report,
            _ => return Err(fail(Code::Io, "unexpected answer")),
        };
        drop(conn);
        forget_state(&restored);
        deep_report = Some((id, r));
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "checked": c,
                "trusted_key": trusted.is_some(),
                "deep": deep_report.as_ref().map(|(id, r)| serde_json::json!({"snapshot": id, "report": r})),
                "secs": started.elapsed().as_secs_f64(),
            })
        );
    } else {
        println!(
            "{} snapshot(s), {} stored file(s), {} checked in {:.1} s; key {}{}.",
            c.snapshots.len(),
            c.objects,
            human_bytes(c.bytes),
            started.elapsed().as_secs_f64(),
            c.fingerprint,
            match trusted {
                Some(_) => " (checked against the vault's key)",
                None => {
                    " (the folder's own key: give --key, or mount the vault, to check it is the vault's)"
                }
            }
        );
        for p in &c.problems {
            match (p.snapshot.is_empty(), p.path.is_empty()) {
                (true, _) => println!("  PROBLEM: {}", p.what),
                (false, true) => println!("  PROBLEM in snapshot {}: {}", p.snapshot, p.what),
                (false, false) => println!(
                    "  PROBLEM in snapshot {}: {}: {}",
                    p.snapshot, p.path, p.what
                ),
            }
        }
        if let Some((id, r)) = &deep_report {
            println!(
                "Snapshot {id} decrypted: {} notes and files, {} versions, {} trash entries, {}; {} problem(s).",
                r.files,
                r.versions,
                r.trash_entries,
                human_bytes(r.bytes),
                r.problems.len()
            );
            for p in &r.problems {
                println!("  PROBLEM: {}: {}", p.path, p.problem);
            }
        }
    }
    let deep_bad = deep_report
        .as_ref()
        .is_some_and(|(_, r)| !r.problems.is_empty());
    if !c.problems.is_empty() || deep_bad {
        return Err(fail(
            Code::CheckFailed,
            "the backup folder has problems (listed above): keep it, take a new backup into another folder, and see README \"Backups and restore drills\"",
        ));
    }
    Ok(())
}

/// The snapshot `id`, or the newest.
fn pick(repo: &Repo, id: Option<&str>) -> Result<String> {
    let all = repo.snapshots().map_err(io_fail)?;
    match id {
        Some(i) if all.iter().any(|s| s == i) => Ok(i.to_string()),
        Some(i) => Err(fail(
            Code::NotFound,
            format!("no snapshot {i} there (`quire backup list` shows them)"),
        )),
        None => all
            .last()
            .cloned()
            .ok_or_else(|| fail(Code::NotFound, "that backup folder has no snapshot yet")),
    }
}

/// A private temporary folder (only ciphertext goes there), removed on
/// drop unless something is still mounted in it.
struct Scratch(PathBuf);

impl Scratch {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mounted = super::runtime::find(&self.0.join("mnt")).is_some();
        if !mounted {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn scratch_dir() -> Result<Scratch> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    for _ in 0..8 {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).map_err(|e| fail(Code::Io, e.to_string()))?;
        let p = base.join(format!("quire-drill-{}", fmt::hex(&r)));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(Scratch(p)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(fail(Code::Io, "cannot make a temporary folder"))
}

/// Removes what this machine keeps about a vault folder that was only
/// restored for a moment (its device folder: log, index, device ID).
fn forget_state(restored: &Path) {
    if let Ok(locked) = crate::vault::LockedVault::open(restored) {
        let _ = std::fs::remove_dir_all(crate::store::device_dir(&locked.id_hex(), restored));
    }
}

/// `quire backup restore DEST --to DIR`.
fn restore(dest: &Path, snapshot: Option<&str>, to: &Path, json: bool) -> Result<()> {
    let (repo, _, key) = repo_of(dest)?;
    let id = pick(&repo, snapshot)?;
    let to = super::paths::absolute(to);
    let parent = to.parent().filter(|p| p.is_dir()).ok_or_else(|| {
        fail(
            Code::NotFound,
            format!("{}: its folder does not exist", to.display()),
        )
    })?;
    super::paths::outside_vaults(
        &to,
        parent,
        "a snapshot is restored into a new folder of its own",
    )?;
    let files = verify::restore(&repo, &id, &to, Some(&key)).map_err(io_fail)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"snapshot": id, "to": to.to_string_lossy(), "files": files})
        );
    } else {
        println!(
            "Restored snapshot {id} into {} ({files} files). Mount it with `quire mount --read-only {} DIR` and copy back what you need: see README \"Backups and restore drills\".",
            to.display(),
            to.display()
        );
    }
    Ok(())
}

/// What a drill found.
#[derive(Default, serde::Serialize)]
struct Drill {
    snapshot: String,
    notes: u64,
    versions: u64,
    bytes: u64,
    /// Notes equal to the live vault's note now.
    same: u64,
    /// Notes equal to a version in the live vault's history.
    older: u64,
    /// Notes the live vault has neither now nor in its history.
    missing: Vec<String>,
    /// Notes or versions the restored copy could not read.
    unreadable: Vec<String>,
    secs: f64,
    passed: bool,
}

fn sha(p: &Path) -> std::io::Result<([u8; 32], u64)> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((h.finalize().into(), n))
}

/// Every regular file under `root` (relative paths), not entering
/// `.history`/`.trash` (never listed) or following symlinks.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(r),
                Ok(t) if t.is_file() => out.push(r),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Mounts `vault` read-only at `mp` with `quire mount` (the real mount
/// path, with the password choice given to this command).
fn mount_copy(vault: &Path, mp: &Path, pw: &[OsString]) -> Result<()> {
    let exe = std::env::current_exe()?;
    let st = std::process::Command::new(exe)
        .arg("mount")
        .arg("--read-only")
        .arg(vault)
        .arg(mp)
        .args(pw)
        // Its notes (another device had the vault mounted when the
        // snapshot was taken, …) are about the copy, not the vault; the
        // password prompt goes to the terminal itself.
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()?;
    if !st.status.success() {
        eprint!("{}", String::from_utf8_lossy(&st.stderr));
        return Err(fail(
            Code::Io,
            "the restored copy could not be mounted (see above)",
        ));
    }
    Ok(())
}

fn unmount_copy(mp: &Path) {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("quire"));
    let ok = std::process::Command::new(exe)
        .arg("unmount")
        .arg(mp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _ = super::daemon::unmount_cmd(mp, true);
    }
}

/// `quire backup drill DEST`.
fn drill(a: &BackupArgs, dest: &Path, snapshot: Option<&str>) -> Result<()> {
    let started = Instant::now();
    let dest = &super::paths::absolute(dest);
    let (repo, _, folder_key) = repo_of(dest)?;
    let id = pick(&repo, snapshot)?;
    // The live vault: it must be mounted (the drill compares with it and
    // is recorded in its audit log).
    let (live, _) = connect(&a.target, None)?;
    let Conn::Remote {
        mountpoint: live_mp,
        ..
    } = &live
    else {
        return Err(fail(
            Code::NotMounted,
            "a drill compares the backup with your mounted vault and records itself there: mount the vault first",
        ));
    };
    let key = match live.call(Request::BackupKey)? {
        Response::BackupKey { key, .. } => fmt::unhex(&key)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| fail(Code::Io, "unexpected answer from the daemon"))?,
        _ => return Err(fail(Code::Io, "unexpected answer from the daemon")),
    };
    if key != folder_key {
        return Err(fail(
            Code::CheckFailed,
            format!(
                "{} is signed by key {}, not this vault's {}: it is another vault's backup, or was changed",
                dest.display(),
                fmt::fingerprint(&folder_key),
                fmt::fingerprint(&key)
            ),
        ));
    }
    let tmp = scratch_dir()?;
    let restored = tmp.path().join("vault");
    let mp = tmp.path().join("mnt");
    std::fs::create_dir(&mp)?;
    if !a.json {
        eprintln!("Restoring snapshot {id} into a temporary folder…");
    }
    verify::restore(&repo, &id, &restored, Some(&key)).map_err(io_fail)?;
    if !a.json {
        eprintln!("Mounting it read-only (the vault's password is asked if needed)…");
    }
    mount_copy(&restored, &mp, &a.target.password.forward())?;
    let mut d = Drill {
        snapshot: id.clone(),
        ..Drill::default()
    };
    {
        let notes = files_under(&mp);
        let tty = std::io::stderr().is_terminal() && !a.json;
        for (i, rel) in notes.iter().enumerate() {
            if tty && i % 20 == 0 {
                eprint!("\rReading {}/{} notes", i, notes.len());
            }
            d.notes += 1;
            let shown = rel.to_string_lossy().into_owned();
            let Ok((h, n)) = sha(&mp.join(rel)) else {
                d.unreadable.push(shown);
                continue;
            };
            d.bytes += n;
            // Its versions in the restored copy.
            let hist = mp.join(".history").join(rel);
            if let Ok(rd) = std::fs::read_dir(&hist) {
                for v in rd.flatten() {
                    d.versions += 1;
                    match sha(&v.path()) {
                        Ok((_, n)) => d.bytes += n,
                        Err(_) => d.unreadable.push(format!(
                            "{shown} (version {})",
                            v.file_name().to_string_lossy()
                        )),
                    }
                }
            }
            // The live vault: the note now, else a version of it.
            if sha(&live_mp.join(rel)).is_ok_and(|(l, _)| l == h) {
                d.same += 1;
                continue;
            }
            let in_history = std::fs::read_dir(live_mp.join(".history").join(rel))
                .map(|rd| {
                    rd.flatten()
                        .any(|v| sha(&v.path()).is_ok_and(|(l, _)| l == h))
                })
                .unwrap_or(false);
            if in_history {
                d.older += 1;
            } else {
                d.missing.push(shown);
            }
        }
        if tty {
            eprint!("\r{}\r", " ".repeat(40));
        }
    }
    unmount_copy(&mp);
    forget_state(&restored);
    d.secs = started.elapsed().as_secs_f64();
    d.passed = d.unreadable.is_empty() && d.missing.is_empty();
    let detail = serde_json::json!({
        "drill": dest.to_string_lossy(),
        "snapshot": d.snapshot,
        "notes": d.notes,
        "versions": d.versions,
        "bytes": d.bytes,
        "same": d.same,
        "older": d.older,
        "missing": d.missing.len(),
        "unreadable": d.unreadable.len(),
        "passed": d.passed,
        "secs": d.secs,
    })
    .to_string();
    live.call(Request::RecordDrill { detail })?;
    if a.json {
        println!("{}", serde_json::to_string(&d)?);
    } else {
        println!(
            "Restore drill of snapshot {} from {}:",
            d.snapshot,
            dest.display()
        );
        println!(
            "  {} notes and {} versions read ({}) from a read-only mount of the restored copy",
            d.notes,
            d.versions,
            human_bytes(d.bytes)
        );
        println!(
            "  {} as they are in the vault now, {} as an earlier version kept in its history",
            d.same, d.older
        );
        for m in &d.missing {
            println!("  NOT IN THE VAULT (neither now nor in its history): {m}");
        }
        for u in &d.unreadable {
            println!("  UNREADABLE in the backup: {u}");
        }
        println!(
            "  {} in {:.1} s; recorded in the audit log.",
            if d.passed { "PASSED" } else { "FAILED" },
            d.secs
        );
    }
    if !d.passed {
        return Err(fail(
            Code::CheckFailed,
            "the drill failed (see above): keep this backup folder, take a new backup into another one, and look into what is listed",
        ));
    }
    Ok(())
}
