//! This device's audit chain, `audit/<device ID hex>` (docs/FORMAT.md
//! §16): opened once per process for appending. Only this device writes
//! it; the daemon and a concurrent CLI command of this device (`quire
//! passwd` while mounted) append under an exclusive `flock` of the file,
//! so they extend one chain.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::read::{frames, open_at};
use super::{ChainId, Heads};
use crate::crypto::SubKeys;
use crate::format::audit::{Event, MAGIC, Record};
use crate::format::stream;
use crate::store::Layout;

/// This device's open audit chain, ready to append. Records are queued
/// and written in batches by a flusher thread within [`FLUSH_DELAY`] (one
/// `flock`, `fstat` and `pwrite` per batch instead of per record), and at
/// once when the log is closed or read.
pub struct AuditLog {
    keys: Arc<SubKeys>,
    layout: Layout,
    chain: ChainId,
    device: [u8; 16],
    heads: Option<Heads>,
    uid: u32,
    state: Mutex<State>,
    queue: Arc<Queue>,
    flusher: bool,
    /// The crash journal, where each append is noted first (issue 11.8).
    journal: std::sync::OnceLock<std::sync::Weak<crate::vault::journal::Journal>>,
    /// The person whose named key slot unlocked the vault (issue 20.2):
    /// every record names them.
    person: std::sync::OnceLock<String>,
}

/// How long a queued record may wait before it is written.
pub const FLUSH_DELAY: std::time::Duration = std::time::Duration::from_millis(20);
/// A queue this long is written at once by the appender.
const FLUSH_AT: usize = 256;

#[derive(Default)]
struct Queue {
    records: Mutex<Vec<Record>>,
    cv: std::sync::Condvar,
    closed: std::sync::atomic::AtomicBool,
}

thread_local! {
    /// The Linux account whose request this thread is serving (see
    /// [`acting_as`]).
    static ACTOR: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

/// While the guard lives, records this thread appends name `uid` as the
/// account that made the change (issue 20.2: a FUSE request from another
/// account on a mount with `--allow-other`), not the daemon's.
pub fn acting_as(uid: u32) -> Acting {
    Acting(ACTOR.with(|a| a.replace(Some(uid))))
}

/// See [`acting_as`].
pub struct Acting(Option<u32>);

impl Drop for Acting {
    fn drop(&mut self) {
        ACTOR.with(|a| a.set(self.0));
    }
}

/// See [`AuditLog::quiet`].
pub struct Quiet<'a>(#[allow(dead_code)] std::sync::MutexGuard<'a, State>);

struct State {
    file: File,
    id: [u8; 16],
    /// End of the last complete frame.
    end: u64,
    /// Sequence number of the last record (0: none).
    seq: u64,
    /// Link of the last record (zeros: none).
    link: [u8; 32],
    /// The remembered head is ahead of this chain (records were removed)
    /// or not on it: it is never overwritten, so `--verify` keeps
    /// reporting it.
    behind: bool,
}

/// Holds an exclusive `flock` on the log (by descriptor, so the state it
/// guards can be borrowed mutably meanwhile).
struct Flock(std::os::fd::RawFd);

impl Flock {
    fn take(f: &File) -> io::Result<Flock> {
        let fd = f.as_raw_fd();
        // SAFETY: flock on a descriptor we own, held open by the caller
        // for as long as the guard lives.
        if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Flock(fd))
    }
}

impl Drop for Flock {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::flock(self.0, libc::LOCK_UN) };
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Walks the frames of `b` from `from`; returns the offset of the last
/// complete frame (if any) and the end of it.
fn walk(b: &[u8], from: usize) -> (Option<(usize, usize)>, usize) {
    frames(b, from).fold((None, from), |_, f| (Some(f), f.1))
}

/// Moves the remembered head of every other chain forward to its end, if
/// the chain still holds the head it remembers (else the head stays, and
/// so does the alarm). Cheap: only the head's record and the last one are
/// opened (`--verify` opens them all).
fn advance_others(layout: &Layout, keys: &SubKeys, heads: &Heads, me: ChainId) -> io::Result<()> {
    let (ids, _) = super::chains(layout)?;
    heads.update(|m| {
        for c in ids.into_iter().filter(|c| *c != me) {
            let Ok(b) = super::read::load(layout, c) else {
                continue;
            };
            let Ok(id) = super::read::header_id(c, &b) else {
                continue;
            };
            let all: Vec<_> = frames(&b, stream::HEADER_LEN as usize).collect();
            let Some(last) = all.last().and_then(|f| open_at(keys, &id, &b, *f)) else {
                continue;
            };
            if last.0.seq != all.len() as u64 {
                continue;
            }
            let keeps_head = match m.get(&c) {
                None => true,
                Some(&(seq, link)) => {
                    seq <= last.0.seq
                        && (seq == 0
                            || all
                                .get(seq as usize - 1)
                                .and_then(|f| open_at(keys, &id, &b, *f))
                                .is_some_and(|(r, l)| r.seq == seq && l == link))
                }
            };
            if keeps_head {
                m.insert(c, (last.0.seq, last.1));
            }
        }
    })
}

impl AuditLog {
    /// Opens (creating) the chain of `device` in the vault laid out as
    /// `layout`; `heads` are the heads this device remembers (none: not
    /// remembered).
    ///
    /// With `flusher`, a thread writes queued records (do not ask for one
    /// in a process that is about to fork); without, every append writes.
    pub fn open(
        layout: &Layout,
        device: [u8; 16],
        keys: Arc<SubKeys>,
        heads: Option<Heads>,
        flusher: bool,
    ) -> io::Result<Arc<AuditLog>> {
        let chain = ChainId::Device(device);
        let path = chain.path(layout);
        crate::store::atomic::private_dir(&layout.audit_dir())?;
        let file = crate::store::safe::open_with(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600),
            &path,
            crate::store::safe::MAX_AUDIT,
        )?;
        let st = {
            let _l = Flock::take(&file)?;
            if file.metadata()?.len() < stream::HEADER_LEN {
                file.set_len(0)?;
                // The stream ID is the device ID (§16).
                file.write_all_at(&stream::header(MAGIC, &device), 0)?;
            }
            let mut h = [0u8; stream::HEADER_LEN as usize];
            file.read_exact_at(&mut h, 0)?;
            let id = super::read::header_id(chain, &h).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the audit chain {}: {e}", path.display()),
                )
            })?;
            State {
                file,
                id,
                end: stream::HEADER_LEN,
                seq: 0,
                link: [0; 32],
                behind: false,
            }
        };
        let log = AuditLog {
            keys,
            layout: layout.clone(),
            chain,
            device,
            heads,
            // SAFETY: geteuid has no preconditions.
            uid: unsafe { libc::geteuid() },
            state: Mutex::new(st),
            queue: Arc::default(),
            flusher,
            journal: std::sync::OnceLock::new(),
            person: std::sync::OnceLock::new(),
        };
        {
            let mut s = log.state.lock().unwrap_or_else(|e| e.into_inner());
            let _l = Flock::take(&s.file)?;
            log.catch_up(&mut s)?;
            if let Some((seq, link)) = log.heads.as_ref().and_then(|h| h.get(chain)) {
                if seq > s.seq {
                    log::error!(
                        "this device's audit chain ends at record {} but record {seq} was written here: records were removed (run `quire audit --verify`)",
                        s.seq
                    );
                    s.behind = true;
                } else if !log.on_chain(&s, seq, &link)? {
                    // A chain put back from an older copy and extended:
                    // longer than the head, but not the chain it remembers.
                    log::error!(
                        "record {seq} of this device's audit chain is not the one written here: the chain was rewritten or rolled back (run `quire audit --verify`)"
                    );
                    s.behind = true;
                }
            }
        }
        let log = Arc::new(log);
        if flusher {
            let (weak, q) = (Arc::downgrade(&log), log.queue.clone());
            std::thread::Builder::new()
                .name("quire-audit".into())
                .spawn(move || flush_loop(weak, q))?;
        }
        Ok(log)
    }

    /// Brings the cached end, sequence number and link up to the file (another
    /// process appended, or a crash left a torn frame, which is cut off).
    /// The caller holds the flock or is opening.
    fn catch_up(&self, s: &mut State) -> io::Result<()> {
        let len = s.file.metadata()?.len();
        if len == s.end {
            return Ok(());
        }
        if len > crate::store::safe::MAX_AUDIT {
            return Err(crate::store::safe::too_large(
                &self.chain.path(&self.layout),
                len,
                crate::store::safe::MAX_AUDIT,
            ));
        }
        let mut b = vec![0u8; len as usize];
        s.file.read_exact_at(&mut b, 0)?;
        let (last, end) = walk(&b, s.end as usize);
        if let Some(f) = last {
            match open_at(&self.keys, &s.id, &b, f) {
                Some((r, link)) => {
                    s.seq = r.seq;
                    s.link = link;
                }
                None => {
                    log::error!(
                        "the last record of this device's audit chain (byte {}) fails authentication; the chain continues after it",
                        f.0
                    );
                    s.seq += 1;
                    s.link = [0; 32];
                }
            }
        }
        // Bytes past the last whole record are left as they are here: a
        // reader (`quire audit --verify`) must not change the log. They
        // are cut before the next append (see `try_flush`).
        s.end = end as u64;
        Ok(())
    }

    /// Whether record `seq` of the chain (which has at least `seq`
    /// records) has the link `link`: the remembered head is on this
    /// chain, so moving it forward keeps the chain it remembers (issue
    /// 17.1). Each record's link covers the link before it, so one
    /// matching link vouches for every record up to it.
    fn on_chain(&self, s: &State, seq: u64, link: &[u8; 32]) -> io::Result<bool> {
        if seq == 0 {
            return Ok(true);
        }
        let mut b = vec![0u8; s.end as usize];
        s.file.read_exact_at(&mut b, 0)?;
        let Some(f) = frames(&b, stream::HEADER_LEN as usize).nth(seq as usize - 1) else {
            return Ok(false);
        };
        Ok(open_at(&self.keys, &s.id, &b, f).is_some_and(|(r, l)| r.seq == seq && l == *link))
    }

    /// Names `person` (the named key slot that unlocked) in every record
    /// from now on; set once.
    pub fn set_person(&self, person: Option<&str>) {
        if let Some(p) = person {
            let _ = self.person.set(p.to_string());
        }
    }

    /// This device's chain.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// Notes every append in the crash journal first.
    pub(crate) fn set_journal(&self, j: std::sync::Weak<crate::vault::journal::Journal>) {
        let _ = self.journal.set(j);
    }

    /// Appends one record (queued; see [`AuditLog`]). Failures are
    /// logged, never returned: the change being recorded has already
    /// happened.
    pub fn append(&self, event: Event, path: &[u8], to: &[u8], version: u32, detail: &str) {
        let uid = ACTOR.with(|a| a.get()).unwrap_or(self.uid);
        self.append_by(uid, event, path, to, version, detail)
    }

    /// [`AuditLog::append`] for what the Linux account `uid` did (another
    /// account than the daemon's, through a mount with `--allow-other`).
    pub fn append_by(
        &self,
        uid: u32,
        event: Event,
        path: &[u8],
        to: &[u8],
        version: u32,
        detail: &str,
    ) {
        let r = Record {
            seq: 0, // numbered and chained when written
            time_ns: now_ns(),
            prev: [0; 32],
            event,
            uid,
            version,
            path: path.to_vec(),
            to: to.to_vec(),
            detail: detail.to_string(),
            person: self.person.get().cloned().unwrap_or_default(),
        };
        let n = {
            let mut q = self.queue.records.lock().unwrap_or_else(|e| e.into_inner());
            q.push(r);
            q.len()
        };
        if !self.flusher || n >= FLUSH_AT {
            self.flush();
        } else if n == 1 {
            self.queue.cv.notify_one();
        }
    }

    /// Writes what is queued, then holds off every write to the chain
    /// until the guard drops (a backup copies it meanwhile, issue 19.2).
    pub fn quiet(&self) -> Quiet<'_> {
        self.flush();
        Quiet(self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Writes every queued record now.
    pub fn flush(&self) {
        if let Err(e) = self.try_flush() {
            log::error!("could not append to the audit log: {e}");
        }
    }

    fn try_flush(&self) -> io::Result<()> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let batch =
            std::mem::take(&mut *self.queue.records.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return Ok(());
        }
        let _l = Flock::take(&s.file)?;
        self.catch_up(&mut s)?;
        let len = s.file.metadata()?.len();
        if len > s.end {
            // A crash's torn record was cut when the journal was replayed:
            // these bytes are unexplained. Reported, then cut so the chain
            // can go on (the records before them verify).
            log::error!(
                "this device's audit chain has {} bytes past its last record that no interrupted write explains: cut before appending",
                len - s.end
            );
            s.file.set_len(s.end)?;
        }
        let (mut seq, mut link) = (s.seq, s.link);
        let mut buf = Vec::new();
        for mut r in batch {
            seq += 1;
            r.seq = seq;
            r.prev = link;
            let body = r.encode();
            let at = s.end + buf.len() as u64;
            buf.extend_from_slice(&stream::seal_frame(
                &self.keys.audit,
                MAGIC,
                &s.id,
                at,
                r.kind(),
                &body,
            ));
            link = self.keys.audit_link(&body);
        }
        let journal = self.journal.get().and_then(std::sync::Weak::upgrade);
        // The journal's folder-ID field names the device's chain (§11).
        let noted = journal.as_ref().is_some_and(|j| {
            j.note_append(
                crate::format::undo::TO_AUDIT,
                s.end,
                self.device,
                Vec::new(),
            )
            .is_ok()
        });
        let written = s.file.write_all_at(&buf, s.end);
        if noted && let Some(j) = &journal {
            j.appended();
        }
        if let Err(e) = written {
            let _ = s.file.set_len(s.end);
            return Err(e);
        }
        s.end += buf.len() as u64;
        s.seq = seq;
        s.link = link;
        Ok(())
    }

    /// `quire audit --accept`: records that the chains as they are now were
    /// reviewed, then makes the end of every chain (this device's and every
    /// other's) the head remembered here, even behind the old one (issue
    /// 10.5); a chain that is gone is forgotten. Returns (this chain's old
    /// head, its new head).
    pub fn accept(&self) -> io::Result<(Option<u64>, u64)> {
        let Some(heads) = &self.heads else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no heads are remembered for this vault",
            ));
        };
        let remembered = heads.load();
        let old = remembered.get(&self.chain).map(|(seq, _)| *seq);
        let others = remembered.keys().filter(|c| **c != self.chain).count();
        let detail = match old {
            Some(seq) => format!(
                "reviewed; the head remembered here was record {seq}, and {others} other chain(s)"
            ),
            None => format!("reviewed; no head was remembered here, and {others} other chain(s)"),
        };
        self.append(Event::Accept, b"", b"", 0, &detail);
        self.flush();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        {
            let _l = Flock::take(&s.file)?;
            self.catch_up(&mut s)?;
        }
        s.behind = false;
        let (ids, _) = super::chains(&self.layout)?;
        let mut ends = Vec::new();
        for c in ids.into_iter().filter(|c| *c != self.chain) {
            let b = super::read::load(&self.layout, c)?;
            let (records, v) = super::read::read_chain(&self.keys, c, &b, None);
            if let (Some(r), Some(l)) = (
                records.last(),
                crate::vault::util::unhex::<32>(&v.last_link),
            ) {
                ends.push((c, (r.seq, l)));
            }
        }
        let own = (s.seq, s.link);
        let me = self.chain;
        heads.update(|m| {
            m.clear();
            m.extend(ends);
            m.insert(me, own);
        })?;
        Ok((old, s.seq))
    }

    /// Writes the remembered heads: this chain's (not if it is behind its
    /// head), and every other chain's that still holds its head.
    pub fn save_head(&self) {
        self.flush();
        let Some(heads) = &self.heads else { return };
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !s.behind && s.seq > 0 {
            {
                let _l = Flock::take(&s.file);
                let _ = self.catch_up(&mut s);
            }
            // The head moves forward only along the chain it remembers:
            // another process of this device may have moved it since
            // (issue 17.1); checked under the heads' lock.
            let me = self.chain;
            let moved = heads.update(|m| match m.get(&me).copied() {
                Some((seq, link))
                    if (seq, link) != (s.seq, s.link)
                        && !(seq <= s.seq && self.on_chain(&s, seq, &link).unwrap_or(false)) =>
                {
                    false
                }
                _ => {
                    m.insert(me, (s.seq, s.link));
                    true
                }
            });
            match moved {
                Ok(true) => {}
                Ok(false) => {
                    log::error!(
                        "the audit head remembered on this device is not on its chain: it is kept (run `quire audit --verify`)"
                    );
                    s.behind = true;
                }
                Err(e) => log::warn!("could not remember the audit chain's head ({e})"),
            }
        }
        drop(s);
        if let Err(e) = advance_others(&self.layout, &self.keys, heads, self.chain) {
            log::warn!("could not remember the other devices' audit heads ({e})");
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.save_head();
        self.queue
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.queue.cv.notify_all();
    }
}

/// The flusher thread: waits for a first queued record, lets a batch
/// gather for [`FLUSH_DELAY`], writes it. Ends when the log is closed.
fn flush_loop(log: std::sync::Weak<AuditLog>, q: Arc<Queue>) {
    use std::sync::atomic::Ordering;
    loop {
        {
            let g = q.records.lock().unwrap_or_else(|e| e.into_inner());
            let (g, _) =
                q.cv.wait_timeout_while(g, std::time::Duration::from_secs(1), |r| {
                    r.is_empty() && !q.closed.load(Ordering::Acquire)
                })
                .unwrap_or_else(|e| e.into_inner());
            if q.closed.load(Ordering::Acquire) {
                return;
            }
            if g.is_empty() {
                continue;
            }
        }
        std::thread::sleep(FLUSH_DELAY);
        match log.upgrade() {
            Some(l) => l.flush(),
            None => return,
        }
    }
}
