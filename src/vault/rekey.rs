//! Re-keying a vault (issue 20.1, `quire user remove NAME --rekey`,
//! `quire rekey`): a new random master key, so that a person who kept a
//! copy of the old one (or of a password slot that opened it) can read
//! nothing of the vault from then on, neither what is written later nor
//! what was there.
//!
//! Every record is keyed from the master key, so re-keying writes the
//! whole vault again: a new vault folder is made beside the old one (a new
//! vault ID, the same feature flags, the password that unlocked and a new
//! recovery key), and filled from the old vault through both trees, with
//! no feature following the copy: every folder, note, link, symlink and
//! attribute with its mode, owner and times; every version of every note
//! (its time, origin and device kept); the trash, entry by entry; the
//! dates; every device's audit chain, record by record with its links
//! computed anew; the device records. The copy is then checked whole and
//! compared with the old vault's check (files, folders, versions, trash
//! entries, bytes) before the two folders are swapped in one atomic
//! `renameat2(RENAME_EXCHANGE)`; the old folder is then deleted. Until the
//! swap nothing of the old vault changes; a crash leaves a hidden
//! `.<name>.rekey-<hex>` folder beside it, deleted by the next re-keying.
//! Other people's slots cannot be carried over (each wraps the master key
//! under its own password): they are listed, to be added again.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::check::Report;
use super::features::Features;
use super::node::{Attr, Kind, Node};
use super::tree::Tree;
use super::{Error, UnlockedVault, init, io_err, recovery};
use crate::crypto::{Key32, MasterKey, Password};
use crate::format::audit::Event;
use crate::format::config::{Config, Opener, Slot};
use crate::format::history as hfmt;
use crate::store::host::Time;

/// What re-keying did.
pub struct Rekeyed {
    /// The new recovery key, to show once (the old one opens nothing).
    pub recovery_key: recovery::RecoveryText,
    /// People whose passwords were not carried over: to be added again.
    pub dropped: Vec<String>,
    /// Whether the shared (unnamed) password was not carried over.
    pub dropped_shared: bool,
    /// The re-keyed vault's check.
    pub report: Report,
}

/// A scratch vault folder and its device folder, deleted when dropped:
/// the half-made copy after a failure, the old vault after the swap.
struct Scratch(PathBuf, PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn refused(why: impl Into<String>) -> Error {
    Error::Refused(why.into())
}

/// The vault folder's own entries; anything else in it (a sync tool's
/// marker folder) moves to the re-keyed folder as it is.
const OWN: [&str; 5] = [
    crate::store::CONFIG,
    crate::store::DATA,
    crate::store::AUDIT_DIR,
    crate::store::AUDIT,
    crate::store::DEVICES,
];

impl UnlockedVault {
    /// Re-keys this vault (see the module). The caller holds the vault's
    /// lock and unlocked it with `password` (the unlocking slot's own):
    /// that password and a new recovery key open the result. `progress`
    /// hears each step.
    ///
    /// `remove`: a person's slot (`Some(None)`: the shared password's) to
    /// remove first, once the vault checked clean, so that a vault that
    /// cannot be re-keyed keeps everyone.
    pub fn rekey(
        mut self,
        password: &Password,
        remove: Option<Option<&str>>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Rekeyed, Error> {
        // The folder itself, not a symlink to it: the swap exchanges
        // directory entries.
        let root = std::fs::canonicalize(self.layout.root())
            .map_err(io_err("finding the vault folder"))?;
        let (name, break_glass) = match &self.opener {
            Opener::Recovery => {
                return Err(refused(
                    "re-keying keeps the password that unlocks it: unlock with your password, not the recovery key",
                ));
            }
            Opener::Password => (None, false),
            Opener::Person { name, break_glass } => (Some(name.clone()), *break_glass),
        };
        let at = match &name {
            Some(n) => self.config.named(n),
            None => self
                .config
                .slots
                .iter()
                .position(|s| matches!(s, Slot::Password { .. })),
        };
        let params = at
            .and_then(|i| self.config.slots[i].params())
            .ok_or_else(|| refused("the password that unlocked has no slot of its own"))?;
        remove_leftovers(&root);
        for e in std::fs::read_dir(&root).map_err(io_err("reading the vault folder"))? {
            let n = e.map_err(io_err("reading the vault folder"))?.file_name();
            let n = n.to_string_lossy();
            if n != crate::store::CONFIG && n.starts_with("quire") && n.ends_with(".conf") {
                return Err(refused(format!(
                    "the vault folder holds {n}, a sync tool's copy of quire.conf: run `quire passwd` on this computer first to settle the password"
                )));
            }
        }

        progress("checking the vault");
        // Opened read-write (a crash's journal is replayed first) with no
        // feature following it: nothing is recorded in the old vault.
        let old_nb = self.open_tree(false, true)?;
        let before = old_nb
            .check(&mut |_| {})
            .map_err(io_err("checking the vault"))?;
        if let Some(p) = before.problems.first() {
            return Err(refused(format!(
                "`quire check` finds {} problem(s) in this vault (the first: {}: {}); only a vault that checks clean is re-keyed",
                before.problems.len(),
                p.path,
                p.problem
            )));
        }
        if !before.conflicts.is_empty() {
            return Err(refused(
                "a sync tool left conflict copies in the vault: settle them first (`quire conflicts`)",
            ));
        }
        if let Some(who) = remove {
            self.remove_person(who)?;
            match who {
                Some(n) => progress(&format!("{n}'s password no longer opens the vault")),
                None => progress("the shared password no longer opens the vault"),
            }
        }
        // This device's chain as it is now (the removal's record written,
        // its head remembered), and no record appended to the old vault's
        // chain from here on: the copy below reads it.
        if let Some(a) = self.audit.take() {
            a.save_head();
        }
        // Quire is not the only writer of the folder: a sync tool may
        // bring another computer's changes while the copy is made. They
        // would be lost with the old folder, so the swap needs the folder
        // as it was when the copy began.
        let began = fingerprint(&root).map_err(io_err("reading the vault folder"))?;

        let master = MasterKey::generate();
        let rk = Key32::random();
        let mut config = Config::new();
        config.flags = self.config.flags;
        match &name {
            Some(n) => config
                .add_named_slot(&master, n, break_glass, password, params)
                .map_err(refused)?,
            None => config.add_password_slot(&master, password, params),
        }
        config.add_recovery_slot(&master, &rk);
        config.seal_slots(&master);
        let mut dropped = Vec::new();
        let mut dropped_shared = false;
        for (i, s) in self.config.slots.iter().enumerate() {
            if Some(i) == at {
                continue;
            }
            match s {
                Slot::Named { name, .. } => dropped.push(name.clone()),
                Slot::Password { .. } => dropped_shared = true,
                Slot::Recovery { .. } => {}
            }
        }

        let scratch_path = scratch_name(&root);
        use std::os::unix::fs::PermissionsExt;
        let root_mode = std::fs::metadata(self.layout.data())
            .map_err(io_err("reading the data folder"))?
            .permissions()
            .mode()
            & 0o7777;
        let new = init::init_with(&scratch_path, config, master, root_mode)?;
        let scratch = Scratch(scratch_path.clone(), new.layout.local().to_path_buf());

        progress("writing every note, version and trash entry under the new key");
        {
            let new_nb = new.open_tree(false, true)?;
            let mut c = Copy {
                old: old_nb.tree(),
                new: new_nb.tree(),
                of: old_nb.features(),
                nf: new_nb.features(),
                links: Default::default(),
            };
            c.run().map_err(io_err("writing the re-keyed copy"))?;
        }
        drop(old_nb);
        progress("sealing the audit log and device records under the new key");
        self.copy_records(&new)?;

        progress("checking the re-keyed copy");
        let after = {
            let nb = new.tree(true)?;
            nb.check(&mut |_| {})
                .map_err(io_err("checking the re-keyed copy"))?
        };
        let same = (
            before.files,
            before.folders,
            before.versions,
            before.trash_entries,
            before.bytes,
        ) == (
            after.files,
            after.folders,
            after.versions,
            after.trash_entries,
            after.bytes,
        );
        if !after.problems.is_empty() || !same {
            return Err(Error::Damaged(format!(
                "the re-keyed copy does not check the same as the vault ({} files, {} versions, {} trash entries, {} bytes, {} problems, against {}, {}, {}, {}): the vault was not re-keyed",
                after.files,
                after.versions,
                after.trash_entries,
                after.bytes,
                after.problems.len(),
                before.files,
                before.versions,
                before.trash_entries,
                before.bytes
            )));
        }

        if fingerprint(&root).map_err(io_err("reading the vault folder"))? != began {
            return Err(refused(
                "the vault folder changed while it was being re-keyed (a sync tool bringing another computer's changes?): let the sync tool finish, make sure the vault is unmounted on every computer, then re-key again",
            ));
        }
        // Whatever else is in the vault folder (a sync tool's marker
        // folder) stays with it.
        for e in std::fs::read_dir(&root).map_err(io_err("reading the vault folder"))? {
            let n = e.map_err(io_err("reading the vault folder"))?.file_name();
            if !OWN.iter().any(|o| OsStr::new(o) == n) {
                std::fs::rename(root.join(&n), scratch_path.join(&n))
                    .map_err(io_err("moving a file of the vault folder"))?;
            }
        }
        progress("swapping the re-keyed vault in");
        let parent = root.parent().unwrap_or(Path::new("/"));
        let (Some(from), Some(to)) = (scratch_path.file_name(), root.file_name()) else {
            return Err(refused("the vault folder has no name"));
        };
        crate::store::host::Handle::open_path(parent)
            .and_then(|h| h.rename_child(from, &h, to, libc::RENAME_EXCHANGE))
            .map_err(io_err("swapping the re-keyed vault in"))?;
        // The old vault is now the scratch folder: deleted with it. This
        // device keeps its ID in the re-keyed vault's device folder (its
        // audit chain goes on); the old key's index, log and group sums
        // go with the old device folder.
        let local = crate::store::device_dir(&super::tree::hex(&new.config.vault_id), &root);
        let _ = crate::store::atomic::private_dir(&local);
        for f in ["device", "device.machine", "unlock.failures"] {
            let _ = std::fs::copy(self.layout.local().join(f), local.join(f));
        }
        let _ = std::fs::remove_dir_all(self.layout.local());
        drop(scratch);
        Ok(Rekeyed {
            recovery_key: recovery::encode(&rk),
            dropped,
            dropped_shared,
            report: after,
        })
    }

    /// The audit chains and device records, sealed again under `new`'s keys.
    fn copy_records(&self, new: &UnlockedVault) -> Result<(), Error> {
        let (chains, _) =
            super::audit::chains(&self.layout).map_err(io_err("listing audit chains"))?;
        for chain in chains {
            let from = chain.path(&self.layout);
            let b = crate::store::safe::read(&from, crate::store::safe::MAX_AUDIT)
                .map_err(io_err("reading an audit chain"))?;
            let out =
                super::audit::transcode_chain(&self.keys, &new.keys, chain, &b).map_err(refused)?;
            let to = chain.path(&new.layout);
            if let Some(d) = to.parent() {
                crate::store::atomic::private_dir(d).map_err(io_err("making audit/"))?;
            }
            crate::store::atomic::write(&to, &out).map_err(io_err("writing an audit chain"))?;
        }
        let dir = self.layout.devices();
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        crate::store::atomic::private_dir(&new.layout.devices())
            .map_err(io_err("making devices/"))?;
        for e in rd {
            let e = e.map_err(io_err("reading devices/"))?;
            let n = e.file_name().to_string_lossy().into_owned();
            let Some(id) = crate::format::devices::parse_file_name(&n) else {
                continue;
            };
            let b = crate::store::safe::read(&e.path(), 1 << 20)
                .map_err(io_err("reading a device record"))?;
            let r = crate::format::devices::open(&self.keys.device, &id, &b)
                .map_err(|e| refused(format!("device record {n} does not open ({e:?})")))?;
            let sealed = crate::format::devices::seal(&new.keys.device, &id, &r);
            crate::store::atomic::write(&new.layout.devices().join(&n), &sealed)
                .map_err(io_err("writing a device record"))?;
        }
        Ok(())
    }

    /// Records the re-keying in this device's audit chain.
    pub fn record_rekey(&self, detail: &str) {
        self.record_unlock(Event::Rekey, detail);
    }
}

/// `.<name>.rekey-<8 hex>` beside the vault folder (the same file system,
/// so the two can be swapped).
fn scratch_name(root: &Path) -> PathBuf {
    let name = root.file_name().unwrap_or(OsStr::new("vault"));
    let tag = super::tree::hex(&crate::crypto::random::bytes::<4>());
    let mut n = OsString::from(".");
    n.push(name);
    n.push(format!(".rekey-{tag}"));
    root.with_file_name(n)
}

/// Deletes what an interrupted re-keying left beside the vault folder: a
/// half-made copy, or the old vault (whole, or partly deleted) after the
/// swap; the vault folder itself is whole either way. Only Quire's own
/// entries and the folder's device folders are deleted; anything else in
/// it (a sync tool's marker moved there) goes back to the vault folder.
fn remove_leftovers(root: &Path) {
    let (Some(parent), Some(name)) = (root.parent(), root.file_name()) else {
        return;
    };
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".rekey-");
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        let n = e.file_name();
        let tag = &n.as_bytes()[prefix.len().min(n.len())..];
        if !n.as_bytes().starts_with(prefix.as_bytes())
            || tag.len() != 8
            || !tag.iter().all(u8::is_ascii_hexdigit)
            || !e.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let left = e.path();
        log::warn!(
            "deleting {} left by an interrupted re-keying",
            left.display()
        );
        // Its device folders (named by a vault ID and its place).
        let suffix = format!("-{}", crate::store::place(&left));
        if let Some(base) = crate::store::device_dir("x", &left).parent()
            && let Ok(rd) = std::fs::read_dir(base)
        {
            for d in rd.flatten() {
                if d.file_name().to_string_lossy().ends_with(&suffix) {
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
        }
        for own in OWN {
            let p = left.join(own);
            let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
        }
        if let Ok(rest) = std::fs::read_dir(&left) {
            for r in rest.flatten() {
                let back = root.join(r.file_name());
                if std::fs::symlink_metadata(&back).is_err() {
                    let _ = std::fs::rename(r.path(), back);
                }
            }
        }
        let _ = std::fs::remove_dir(&left);
    }
}

/// What a sync tool's change to the vault folder would change: every
/// path with its size, modification time and inode.
/// A path of the vault folder with its size, mtime (s, ns) and inode.
type Seen = (Vec<u8>, u64, i64, i64, u64);

fn fingerprint(root: &Path) -> io::Result<Vec<Seen>> {
    use std::os::unix::fs::MetadataExt;
    Ok(super::backup::walk(root)?
        .into_iter()
        .map(|(p, m)| (p, m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
        .collect())
}

/// One copy from the old tree into the new one.
struct Copy<'a> {
    old: &'a Tree,
    new: &'a Tree,
    of: &'a Features,
    nf: &'a Features,
    /// Files with other links already copied: host inode → new node.
    links: std::collections::HashMap<u64, Arc<Node>>,
}

impl Copy<'_> {
    fn run(&mut self) -> io::Result<()> {
        let (o, n) = (self.old.root(), self.new.root());
        self.folder(&o, &n)?;
        self.xattrs(&o, &n, Kind::Dir)?;
        let ra = self.old.getattr(&o)?;
        self.meta(&n, &ra, true)?;
        for e in self.of.trash.trash_entries(self.old)? {
            let content = if e.has_content {
                let src = self.of.trash.open_trash_entry(self.old, &e.id)?;
                let a = self.old.getattr(src.node())?;
                let name = OsString::from(format!(".quire-rekey-{}", e.id));
                let (node, host) = self.file(&self.new.root(), &name, &src, &a)?;
                self.old.release(&src)?;
                Some((node, host))
            } else {
                None
            };
            let root = self.new.root();
            let h = root.handle()?;
            let c = content.as_ref().map(|(_, host)| (h, host.as_os_str()));
            self.nf
                .trash
                .import_entry(self.new, &self.of.trash, self.old, &e, c)?;
        }
        let days = self.of.trash.trash_policy(self.old).keep.as_secs() / 86_400;
        if days != u64::from(super::trash::DEFAULT_KEEP_DAYS) {
            self.nf.trash.set_trash_days(self.new, days as u32)?;
        }
        Ok(())
    }

    /// Copies the folder `o` into `n` (both exist).
    fn folder(&mut self, o: &Arc<Node>, n: &Arc<Node>) -> io::Result<()> {
        let mut hosts = std::collections::HashSet::new();
        for e in self.old.read_dir(o)? {
            let (on, a) = self.old.lookup_entry(o, &e)?;
            hosts.insert(e.host().to_owned());
            let on = Arc::new(on);
            let nn = match a.kind {
                Kind::Dir => {
                    let (nn, _) = self.new.mkdir(n, &e.name, 0o700, None)?;
                    let nn = Arc::new(nn);
                    self.folder(&on, &nn)?;
                    nn
                }
                Kind::File if a.nlink > 1 && self.links.contains_key(&a.ino) => {
                    // Another name of a file already copied: the name's own
                    // history and dates go with it.
                    self.new.link(&self.links[&a.ino], n, &e.name)?;
                    let host = self.new.host_name_of(n, &e.name)?;
                    self.note_records(o, e.host(), n, &host)?;
                    continue;
                }
                Kind::File => {
                    let src = self.old.open(on.clone(), false)?;
                    let (nn, host) = self.file(n, &e.name, &src, &a)?;
                    self.old.release(&src)?;
                    self.note_records(o, e.host(), n, &host)?;
                    if a.nlink > 1 {
                        self.links.insert(a.ino, nn.clone());
                    }
                    nn
                }
                Kind::Symlink => {
                    let target = self.old.readlink(&on)?;
                    let (nn, _) = self
                        .new
                        .symlink(n, &e.name, OsStr::from_bytes(&target), None)?;
                    Arc::new(nn)
                }
                _ => {
                    let mode = kind_bits(a.kind) | u32::from(a.perm);
                    let (nn, _) = self.new.mknod(n, &e.name, mode, u64::from(a.rdev), None)?;
                    Arc::new(nn)
                }
            };
            self.xattrs(&on, &nn, a.kind)?;
            self.meta(&nn, &a, a.kind != Kind::Symlink)?;
        }
        // History streams of notes no longer there (kept beside their
        // folder's notes until the folder goes).
        for h in o.handle()?.read_names()? {
            let Some(stem) = hfmt_stem(&h) else {
                continue;
            };
            if hosts.contains(stem) {
                continue;
            }
            let Some(plain) = self.old.plain_name(o, stem) else {
                continue;
            };
            let host = self.new.host_name_of(n, OsStr::from_bytes(&plain))?;
            self.history(o, stem, n, &host)?;
        }
        Ok(())
    }

    /// The extended attributes of `o` (a `kind`) set on `n`.
    fn xattrs(&self, o: &Node, n: &Node, kind: Kind) -> io::Result<()> {
        match self.old.list_xattr(o) {
            Ok(names) => {
                for x in names {
                    let x = OsStr::from_bytes(&x);
                    let v = self.old.get_xattr(o, x)?;
                    self.new.set_xattr(n, x, &v, 0)?;
                }
                Ok(())
            }
            Err(err) if kind == Kind::Symlink && is_unsupported(&err) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// A regular file `name` in `n` with the content of `src` (attributes
    /// `a`): written in its data runs (holes stay holes). Returns its node
    /// and host name.
    fn file(
        &self,
        n: &Arc<Node>,
        name: &OsStr,
        src: &super::content::OpenFile,
        a: &Attr,
    ) -> io::Result<(Arc<Node>, OsString)> {
        let (nn, _, f) = self.new.create(n, name, 0o600, true, None)?;
        let nn = Arc::new(nn);
        let dst = self.new.open_created(nn.clone(), f);
        let res = (|| {
            let mut off = 0;
            while off < a.size {
                let start = match self.old.seek_data(src, off, true) {
                    Ok(d) => d,
                    Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break,
                    Err(e) => return Err(e),
                };
                let end = match self.old.seek_data(src, start, false) {
                    Ok(h) => h.min(a.size),
                    Err(e) if e.raw_os_error() == Some(libc::ENXIO) => a.size,
                    Err(e) => return Err(e),
                };
                let mut at = start;
                while at < end {
                    let len = (end - at).min(1 << 20) as u32;
                    let wrote = self
                        .old
                        .read_with(src, at, len, |b| self.new.write(&dst, at, b))??;
                    if wrote == 0 {
                        return Err(io::Error::from_raw_os_error(libc::EIO));
                    }
                    at += wrote as u64;
                }
                off = end.max(start + 1);
            }
            self.new.truncate(&dst, a.size)
        })();
        let released = self.new.release(&dst);
        res?;
        released?;
        let host = self.new.host_name_of(n, name)?;
        self.meta(&nn, a, true)?;
        Ok((nn, host))
    }

    /// A note's history and dates: from `oh` in `o` to `nh` in `n`.
    fn note_records(&self, o: &Arc<Node>, oh: &OsStr, n: &Arc<Node>, nh: &OsStr) -> io::Result<()> {
        self.history(o, oh, n, nh)?;
        let dates = self.of.lifecycle.dates_at(self.old, o, oh)?;
        if !dates.is_empty() {
            self.nf.lifecycle.write_dates_at(self.new, n, nh, &dates)?;
        }
        Ok(())
    }

    fn history(&self, o: &Arc<Node>, oh: &OsStr, n: &Arc<Node>, nh: &OsStr) -> io::Result<()> {
        let Some(s) = self.of.history.stream_at(self.old, o, oh)? else {
            return Ok(());
        };
        let owner = if self.new.bound {
            Some(hfmt::owner_body(&self.new.dir_id(n)?, nh.as_bytes()))
        } else {
            None
        };
        let side = super::history::stream_name(nh);
        self.nf.history.copy_stream(
            self.new,
            &self.of.history,
            &s,
            n.handle()?,
            &side,
            owner.as_deref(),
        )?;
        Ok(())
    }

    /// Owner, mode (`perm`) and times of `a` on `n`.
    fn meta(&self, n: &Node, a: &Attr, perm: bool) -> io::Result<()> {
        let now = self.new.getattr(n)?;
        if (now.uid, now.gid) != (a.uid, a.gid) {
            match self.new.chown(n, Some(a.uid), Some(a.gid)) {
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
                r => r?,
            }
        }
        if perm {
            self.new.chmod(n, u32::from(a.perm))?;
        }
        let t = |s: std::time::SystemTime| match s.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Time::At(d.as_secs() as i64, i64::from(d.subsec_nanos())),
            Err(_) => Time::At(0, 0),
        };
        match self.new.utimens(n, t(a.atime), t(a.mtime)) {
            Err(e) if !perm && is_unsupported(&e) => Ok(()),
            r => r,
        }
    }
}

/// The note a history stream's host name belongs to.
fn hfmt_stem(h: &OsStr) -> Option<&OsStr> {
    let b = h.as_bytes();
    b.strip_suffix(hfmt::SUFFIX.as_bytes())
        .filter(|s| !s.is_empty())
        .map(OsStr::from_bytes)
}

fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOTSUP) | Some(libc::EPERM) | Some(libc::EINVAL) | Some(libc::ENODATA)
    )
}

fn kind_bits(k: Kind) -> u32 {
    match k {
        Kind::Fifo => libc::S_IFIFO,
        Kind::Socket => libc::S_IFSOCK,
        Kind::CharDev => libc::S_IFCHR,
        Kind::BlockDev => libc::S_IFBLK,
        Kind::Dir => libc::S_IFDIR,
        Kind::Symlink => libc::S_IFLNK,
        Kind::File => libc::S_IFREG,
    }
}
