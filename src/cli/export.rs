//! `quire export` and `quire disclosures` (issue 19.1): notes taken out of
//! the vault for a referral, a client's request or an auditor, as one
//! archive encrypted with the age format (to a passphrase or to
//! recipients), written 0600 outside the mount, and accounted for: every
//! export is in the audit log (what, to which file, for whom, why, the
//! file's hash, until when it may be kept), `quire disclosures` lists
//! them, and `--dispose` removes a file and records it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clap::Args;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::exit::{Code, fail};
use super::target::{Conn, TargetArgs, connect};
use crate::control::export::{ExportNote, Exported};
use crate::control::{AuditOut, Request, Response};

/// Exports are kept this long unless `--keep-until` says otherwise.
const DEFAULT_KEEP: Duration = Duration::from_secs(30 * 86_400);

/// `quire export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Notes or folders to export (paths in the mount, or in the vault with
    /// --vault).
    #[arg(required_unless_present_any = ["dispose"])]
    paths: Vec<PathBuf>,
    /// The export file to write (outside the mount and the vault folder).
    #[arg(long, value_name = "FILE", required_unless_present_any = ["dispose"])]
    to: Option<PathBuf>,
    /// Every saved version too, not only each note as it is now.
    #[arg(long)]
    with_history: bool,
    /// Encrypt to a passphrase read from the first line of FILE (else it is
    /// asked twice on the terminal).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Encrypt to an age recipient (`age1…`) or an SSH public key
    /// (`ssh-ed25519 …`, `ssh-rsa …`); repeatable.
    #[arg(long, value_name = "KEY")]
    recipient: Vec<String>,
    /// Encrypt to the recipients listed in FILE, one per line; repeatable.
    #[arg(long, value_name = "FILE")]
    recipient_file: Vec<PathBuf>,
    /// Why, for the record ("referral to Dr X").
    #[arg(long, value_name = "TEXT")]
    purpose: Option<String>,
    /// Until when the export file may be kept (default: 30 days);
    /// `quire disclosures` and `quire mount` warn once it is past.
    #[arg(long, value_name = "DATE")]
    keep_until: Option<String>,
    /// Write the archive unencrypted (asks first; recorded as plaintext).
    #[arg(long)]
    plaintext: bool,
    /// Do not ask (with --plaintext).
    #[arg(long)]
    yes: bool,
    /// Replace an existing file at --to.
    #[arg(long)]
    force: bool,
    /// Remove the file of the export ID and record its disposal.
    #[arg(long, value_name = "ID", conflicts_with_all = ["paths", "to"])]
    dispose: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// `quire disclosures`.
#[derive(Args, Debug)]
pub struct DisclosuresArgs {
    /// Only exports that took this note or folder (path in the vault).
    #[arg(long, value_name = "PATH")]
    client: Option<String>,
    /// Only exports since this date.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Judge keep-until dates as at WHEN (`+30d`, a date): which files
    /// will be overdue then.
    #[arg(long, value_name = "WHEN")]
    now: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// What an export record's detail holds (docs/FORMAT.md §16).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The export's ID (16 hex digits).
    pub export: String,
    /// The file written.
    pub file: String,
    /// For whom: the recipients, "passphrase" or "plaintext".
    #[serde(rename = "for")]
    pub whom: String,
    /// Why.
    #[serde(default)]
    pub purpose: String,
    /// SHA-256 of the file as written.
    pub sha256: String,
    /// Until when it may be kept, ns since the epoch.
    pub keep_until_ns: i64,
    /// Written unencrypted.
    #[serde(default)]
    pub plaintext: bool,
    /// Every version, not only the current ones.
    #[serde(default)]
    pub history: bool,
}

/// One disclosure as listed.
#[derive(Debug, Clone, Serialize)]
pub struct Disclosure {
    /// The export's ID (empty for a `quire show`).
    pub export: String,
    /// When, ns since the epoch.
    pub time_ns: i64,
    /// Which computer.
    pub device: String,
    /// The notes and versions taken.
    pub notes: Vec<Exported>,
    /// The record's fields (none for a `quire show` to the terminal).
    pub record: Option<Record>,
    /// When it was disposed of, if it was.
    pub disposed_ns: Option<i64>,
    /// Whether the file is still on this computer.
    pub file_present: bool,
    /// Whether it is past its keep-until date and still present.
    pub overdue: bool,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn ns_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A date as `quire expire` takes them (`2027-01-15`, `+30d`, …), as ns
/// since the epoch.
fn when(s: &str) -> Result<i64> {
    let d = crate::vault::lifecycle::dates::Date::parse(s, SystemTime::now())
        .map_err(|e| fail(Code::Usage, e.to_string()))?;
    Ok(ns_of(d.instant()))
}

fn date_of(ns: i64) -> String {
    super::runtime::format_time((ns.max(0) / 1_000_000_000) as u64)
}

/// `quire export`.
pub fn export(a: ExportArgs) -> Result<()> {
    if let Some(id) = &a.dispose {
        return dispose(&a, id);
    }
    let to = absolute(a.to.as_deref().expect("required by clap"))?;
    check_destination(&to, a.force)?;
    // How it is sealed: exactly one way.
    let ways = usize::from(a.plaintext)
        + usize::from(a.passphrase_file.is_some())
        + usize::from(!a.recipient.is_empty() || !a.recipient_file.is_empty());
    if ways > 1 {
        return Err(fail(
            Code::Usage,
            "choose one of --recipient/--recipient-file, --passphrase-file and --plaintext",
        ));
    }
    let recipients = recipients(&a)?;
    if a.plaintext
        && !a.yes
        && !super::password::confirm(
            "Write the notes UNENCRYPTED? Anyone who gets the file can read them.",
        )
    {
        return Err(fail(
            Code::Cancelled,
            "nothing was exported (a plaintext export needs a yes on a terminal, or --yes)",
        ));
    }
    let keep_until = match &a.keep_until {
        Some(s) => when(s)?,
        None => ns_of(SystemTime::now() + DEFAULT_KEEP),
    };
    if keep_until <= now_ns() {
        return Err(fail(Code::Usage, "--keep-until is in the past"));
    }
    let first = a.paths.first().expect("required by clap");
    let (c, first_rel) = connect(&a.target, Some(first))?;
    let mut rels = vec![first_rel];
    for p in &a.paths[1..] {
        rels.push(rel_of(&c, p));
    }
    let passphrase = if recipients.is_empty() && !a.plaintext {
        Some(super::password::new_password(
            a.passphrase_file.as_deref(),
            None,
            "Passphrase for the export",
        )?)
    } else {
        None
    };
    let notes = match c.call(Request::ExportNotes {
        paths: rels,
        with_history: a.with_history,
    })? {
        Response::ExportNotes { notes } => notes,
        _ => return Err(fail(Code::Io, "unexpected answer from the daemon")),
    };
    if notes.is_empty() {
        return Err(fail(Code::NotFound, "no note there to export"));
    }
    let whom = if a.plaintext {
        "plaintext".to_string()
    } else if recipients.is_empty() {
        "passphrase".to_string()
    } else {
        recipients
            .iter()
            .map(|(text, _)| text.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let id: String = crate::crypto::random::bytes::<8>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let archive = build_archive(&notes, &id, &whom, a.purpose.as_deref(), a.with_history)?;
    // Written under a temporary name beside the file, then put in place
    // once the audit log holds the record.
    let dir = to.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(".quire-export-{id}.tmp"));
    let sha256 = match write_sealed(
        &tmp,
        &archive,
        &recipients,
        passphrase.as_ref(),
        a.plaintext,
    ) {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let record = Record {
        export: id.clone(),
        file: to.to_string_lossy().into_owned(),
        whom: whom.clone(),
        purpose: a.purpose.clone().unwrap_or_default(),
        sha256: sha256.clone(),
        keep_until_ns: keep_until,
        plaintext: a.plaintext,
        history: a.with_history,
    };
    let exported: Vec<Exported> = notes
        .iter()
        .map(|n| Exported {
            path: n.path.clone(),
            version: n.current,
        })
        .collect();
    let recorded = c.call(Request::RecordExport {
        notes: exported.clone(),
        detail: serde_json::to_string(&record)?,
    });
    if let Err(e) = recorded.and_then(|r| match r {
        Response::Ok => Ok(()),
        _ => Err(fail(Code::Io, "unexpected answer from the daemon")),
    }) {
        let _ = std::fs::remove_file(&tmp);
        return Err(
            e.context("the export could not be recorded in the audit log, so it was not written")
        );
    }
    let placed = if a.force {
        std::fs::rename(&tmp, &to)
    } else {
        std::fs::hard_link(&tmp, &to).and_then(|_| std::fs::remove_file(&tmp))
    };
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(
            Code::Io,
            format!(
                "could not put the export at {} ({e}); it is recorded as export {id}, but no file was left",
                to.display()
            ),
        ));
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    let versions: usize = notes.iter().map(|n| n.versions.len()).sum();
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "export": id, "file": to, "notes": exported, "versions": versions, "sha256": sha256, "for": whom, "keep_until_ns": keep_until })
        );
    } else {
        eprintln!(
            "Exported {} note(s) ({} version(s)) to {}{}.\nExport ID {id}, recorded in the audit log; keep it until {} (then `quire export --dispose {id}`).",
            notes.len(),
            versions,
            to.display(),
            if a.plaintext {
                ", UNENCRYPTED".to_string()
            } else {
                format!(", encrypted for {whom}")
            },
            date_of(keep_until)
        );
    }
    Ok(())
}

/// A path given for another note of the same vault: relative to its
/// mount, or as a path in the vault.
fn rel_of(c: &Conn, p: &Path) -> String {
    if let Some(mp) = c.mountpoint()
        && let Ok(abs) = absolute(p)
        && let Ok(r) = abs.strip_prefix(mp)
    {
        return r.to_string_lossy().into_owned();
    }
    p.to_string_lossy().trim_matches('/').to_string()
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// Refuses a destination inside a mounted vault or a vault folder (the
/// plaintext or the archive would be written into the vault), an existing
/// file (unless `force`), or a folder that is not there.
fn check_destination(to: &Path, force: bool) -> Result<()> {
    let dir = to.parent().filter(|d| d.is_dir()).ok_or_else(|| {
        fail(
            Code::NotFound,
            format!("{}: its folder does not exist", to.display()),
        )
    })?;
    super::paths::outside_vaults(
        to,
        dir,
        "an export goes out of the vault (a USB disk, a folder to send from)",
    )?;
    if !force && std::fs::symlink_metadata(to).is_ok() {
        return Err(fail(
            Code::Exists,
            format!(
                "{} exists: choose another name, or --force to replace it",
                to.display()
            ),
        ));
    }
    Ok(())
}

type Recipients = Vec<(String, Box<dyn age::Recipient + Send>)>;

/// The recipients of `--recipient` and `--recipient-file`.
fn recipients(a: &ExportArgs) -> Result<Recipients> {
    let mut texts: Vec<String> = a.recipient.clone();
    for f in &a.recipient_file {
        let t = std::fs::read_to_string(f)
            .map_err(|e| fail(Code::NotFound, format!("{}: {e}", f.display())))?;
        texts.extend(
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    let mut out: Recipients = Vec::new();
    for t in texts {
        let r: Box<dyn age::Recipient + Send> = if let Ok(r) = t.parse::<age::x25519::Recipient>() {
            Box::new(r)
        } else if let Ok(r) = t.parse::<age::ssh::Recipient>() {
            Box::new(r)
        } else {
            return Err(fail(
                Code::Usage,
                format!(
                    "`{t}` is not an age recipient (age1…) or an SSH public key (ssh-ed25519 …, ssh-rsa …)"
                ),
            ));
        };
        // What the record names: the key itself, short enough to read.
        let shown = t.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        out.push((shown, r));
    }
    Ok(out)
}

/// The archive (tar, in memory): `MANIFEST.json`, then `notes/<path>` for
/// each note as it is now and, with history, `history/<path>/<N>` for
/// each saved version.
fn build_archive(
    notes: &[ExportNote],
    id: &str,
    whom: &str,
    purpose: Option<&str>,
    with_history: bool,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut files: Vec<(String, i64, Zeroizing<Vec<u8>>)> = Vec::new();
    let mut manifest = Vec::new();
    for n in notes {
        let mut versions = Vec::new();
        for v in &n.versions {
            let data = Zeroizing::new(B64.decode(v.data.as_bytes())?);
            let sha = hex(&Sha256::digest(&data[..]));
            let current = v.number == n.current || n.versions.len() == 1;
            if current {
                files.push((format!("notes/{}", n.path), v.time_ns, data.clone()));
            }
            if with_history && v.number > 0 {
                files.push((
                    format!("history/{}/{}", n.path, v.number),
                    v.time_ns,
                    data.clone(),
                ));
            }
            versions.push(serde_json::json!({
                "version": v.number,
                "saved_ns": v.time_ns,
                "saved": date_of(v.time_ns),
                "bytes": data.len(),
                "sha256": sha,
                "current": current,
            }));
        }
        manifest.push(serde_json::json!({ "path": n.path, "versions": versions }));
    }
    let m = serde_json::to_vec_pretty(&serde_json::json!({
        "quire_export": 1,
        "export": id,
        "exported_ns": now_ns(),
        "exported": date_of(now_ns()),
        "for": whom,
        "purpose": purpose.unwrap_or(""),
        "with_history": with_history,
        "notes": manifest,
    }))?;
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, mtime: i64, data: &[u8]| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_mtime((mtime.max(0) / 1_000_000_000) as u64);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data)?;
        Ok(())
    };
    add("MANIFEST.json", now_ns(), &m)?;
    for (name, t, data) in &files {
        add(name, *t, data)?;
    }
    Ok(Zeroizing::new(b.into_inner()?))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A writer that hashes what passes through it.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `archive` to `path` (created exclusively, 0600, fsync'd), sealed
/// with age to the recipients or the passphrase, or as it is with
/// `plaintext`; returns SHA-256 of the file.
fn write_sealed(
    path: &Path,
    archive: &[u8],
    recipients: &Recipients,
    passphrase: Option<&crate::crypto::secret::Password>,
    plaintext: bool,
) -> Result<String> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| fail(Code::Io, format!("{}: {e}", path.display())))?;
    let mut out = Hashing {
        inner: std::io::BufWriter::new(file),
        hash: Sha256::new(),
    };
    if plaintext {
        out.write_all(archive)?;
    } else {
        let enc = match passphrase {
            Some(p) => age::Encryptor::with_user_passphrase(age::secrecy::SecretString::from(
                String::from_utf8_lossy(p.expose()).into_owned(),
            )),
            None => age::Encryptor::with_recipients(
                recipients
                    .iter()
                    .map(|(_, r)| r.as_ref() as &dyn age::Recipient),
            )
            .map_err(|e| {
                fail(
                    Code::Usage,
                    format!("cannot encrypt to these recipients: {e}"),
                )
            })?,
        };
        let mut w = enc.wrap_output(&mut out)?;
        w.write_all(archive)?;
        w.finish()?;
    }
    out.flush()?;
    let hash = hex(&out.hash.finalize_reset());
    let f = out.inner.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(hash)
}

/// Every disclosure the audit log records, grouped by export, with the
/// disposals and the state of each file on this computer.
fn disclosures(c: &Conn, now: i64) -> Result<Vec<Disclosure>> {
    let records = match c.call(Request::Audit)? {
        Response::Audit { records, .. } => records,
        _ => return Err(fail(Code::Io, "unexpected answer from the daemon")),
    };
    let mut out: Vec<Disclosure> = Vec::new();
    let mut disposed: Vec<(String, i64)> = Vec::new();
    for r in &records {
        match r.event.as_str() {
            "dispose" => {
                if let Ok(d) = serde_json::from_str::<serde_json::Value>(&r.detail)
                    && let Some(id) = d["dispose"].as_str()
                {
                    disposed.push((id.to_string(), r.time_ns));
                }
            }
            "export" => add_export(&mut out, r),
            _ => {}
        }
    }
    for d in &mut out {
        d.disposed_ns = disposed
            .iter()
            .find(|(id, _)| *id == d.export)
            .map(|(_, t)| *t);
        if let Some(r) = &d.record {
            d.file_present = d.disposed_ns.is_none() && Path::new(&r.file).exists();
            d.overdue = d.file_present && r.keep_until_ns < now;
        }
    }
    Ok(out)
}

fn add_export(out: &mut Vec<Disclosure>, r: &AuditOut) {
    let record: Option<Record> = serde_json::from_str(&r.detail).ok();
    let note = Exported {
        path: r.path.clone(),
        version: r.version as usize,
    };
    let id = record
        .as_ref()
        .map(|x| x.export.clone())
        .unwrap_or_default();
    if !id.is_empty()
        && let Some(d) = out.iter_mut().find(|d| d.export == id)
    {
        d.notes.push(note);
        return;
    }
    out.push(Disclosure {
        export: id,
        time_ns: r.time_ns,
        device: if r.device_name.is_empty() {
            r.device.clone()
        } else {
            r.device_name.clone()
        },
        notes: vec![note],
        record,
        disposed_ns: None,
        file_present: false,
        overdue: false,
    });
}

/// Exports whose file is still here past its keep-until date (for `quire
/// mount` and `quire status` to warn about).
pub fn overdue(c: &Conn) -> Vec<Disclosure> {
    disclosures(c, now_ns())
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.overdue)
        .collect()
}

/// Prints a warning line per overdue export.
pub fn warn_overdue(c: &Conn) {
    for d in overdue(c) {
        if let Some(r) = &d.record {
            eprintln!(
                "warning: export {} ({}) was to be kept until {}; it is still there: `quire export --dispose {}` removes it",
                d.export,
                r.file,
                date_of(r.keep_until_ns),
                d.export
            );
        }
    }
}

/// [`warn_overdue`] for the vault just mounted at `mountpoint` (a
/// failure to ask says nothing: the mount itself went well).
pub fn warn_overdue_at(mountpoint: &Path) {
    let t = TargetArgs {
        vault: None,
        mountpoint: Some(mountpoint.to_path_buf()),
        password: Default::default(),
    };
    if let Ok((c, _)) = connect(&t, None) {
        warn_overdue(&c);
    }
}

/// `quire export --dispose ID`.
fn dispose(a: &ExportArgs, id: &str) -> Result<()> {
    let (c, _) = connect(&a.target, None)?;
    let all = disclosures(&c, now_ns())?;
    let d = all.iter().find(|d| d.export == id).ok_or_else(|| {
        fail(
            Code::NotFound,
            format!("no export {id} in the audit log (see `quire disclosures`)"),
        )
    })?;
    let r = d
        .record
        .as_ref()
        .expect("an export with an ID has a record");
    if d.disposed_ns.is_some() {
        return Err(fail(
            Code::Exists,
            format!("export {id} was already disposed of"),
        ));
    }
    let file = Path::new(&r.file);
    let existed = std::fs::symlink_metadata(file).is_ok_and(|m| m.is_file());
    if existed {
        if r.plaintext {
            // Overwritten before it goes (what a file system keeps of
            // freed blocks is beyond reach: see the README).
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(file) {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                let zeros = vec![0u8; 1 << 16];
                let mut left = len;
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    if f.write_all(&zeros[..n]).is_err() {
                        break;
                    }
                    left -= n as u64;
                }
                let _ = f.sync_all();
            }
        }
        std::fs::remove_file(file)
            .map_err(|e| fail(Code::Io, format!("{}: {e}", file.display())))?;
    }
    let detail = serde_json::json!({ "dispose": id, "file": r.file, "was_present": existed });
    match c.call(Request::RecordDispose {
        detail: detail.to_string(),
    })? {
        Response::Ok => {}
        _ => return Err(fail(Code::Io, "unexpected answer from the daemon")),
    }
    eprintln!(
        "Export {id} disposed of: {} ({}), recorded in the audit log.",
        r.file,
        if existed {
            "removed"
        } else {
            "it was no longer there"
        }
    );
    Ok(())
}

/// `quire disclosures`.
pub fn list(a: DisclosuresArgs) -> Result<()> {
    let (c, _) = connect(&a.target, None)?;
    let since = a.since.as_deref().map(when).transpose()?;
    let now = match &a.now {
        Some(s) => when(s)?,
        None => now_ns(),
    };
    let client = a.client.as_deref().map(|p| p.trim_matches('/').to_string());
    let all: Vec<Disclosure> = disclosures(&c, now)?
        .into_iter()
        .filter(|d| since.is_none_or(|s| d.time_ns >= s))
        .filter(|d| {
            client.as_ref().is_none_or(|p| {
                d.notes
                    .iter()
                    .any(|n| n.path == *p || n.path.starts_with(&format!("{p}/")))
            })
        })
        .collect();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "Vault: {}", c.describe())?;
    if all.is_empty() {
        writeln!(out, "No disclosures recorded.")?;
        return Ok(());
    }
    for d in &all {
        match &d.record {
            Some(r) => {
                writeln!(
                    out,
                    "{}  export {}  on {}  for {}{}",
                    date_of(d.time_ns),
                    d.export,
                    d.device,
                    r.whom,
                    if r.purpose.is_empty() {
                        String::new()
                    } else {
                        format!("  purpose: {}", r.purpose)
                    }
                )?;
                let state = match (d.disposed_ns, d.file_present, d.overdue) {
                    (Some(t), _, _) => format!("disposed of {}", date_of(t)),
                    (None, true, true) => {
                        format!("OVERDUE: keep until {} passed", date_of(r.keep_until_ns))
                    }
                    (None, true, false) => format!("keep until {}", date_of(r.keep_until_ns)),
                    (None, false, _) => "not on this computer".to_string(),
                };
                writeln!(out, "    file {}  sha256 {}  ({state})", r.file, r.sha256)?;
            }
            None => writeln!(
                out,
                "{}  printed by `quire show` on {}",
                date_of(d.time_ns),
                d.device
            )?,
        }
        for n in &d.notes {
            writeln!(out, "    {} (version {})", n.path, n.version)?;
        }
    }
    Ok(())
}
