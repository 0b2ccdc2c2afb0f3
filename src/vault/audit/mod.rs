//! The audit log `quire.audit` (docs/FORMAT.md §16): an append-only,
//! encrypted, hash-chained record of what happened to the vault — mounts,
//! saves, renames, deletions, restores, expiries, purges, password changes,
//! recovery-key use — never note content.
//!
//! Every process that changes the vault appends under an exclusive `flock`
//! of the file, so the daemon and a concurrent `quire passwd` extend one
//! chain. The last link is also remembered outside the vault (the *head*,
//! in the user's state folder), so that removing records from the end is
//! noticed on this machine (docs/THREAT_MODEL.md says what this proves).

mod read;

pub use read::{Verdict, read};

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::crypto::{SubKeys, random};
use crate::format::audit::{Event, MAGIC, RECORD, Record};
use crate::format::stream;

/// An open audit log, ready to append. Records are queued and written in
/// batches by a flusher thread within [`FLUSH_DELAY`] (one `flock`, `fstat`
/// and `pwrite` per batch instead of per record), and at once when the log
/// is closed or read.
pub struct AuditLog {
    keys: Arc<SubKeys>,
    head: Option<PathBuf>,
    uid: u32,
    state: Mutex<State>,
    queue: Arc<Queue>,
    flusher: bool,
    /// The crash journal, where each append is noted first (issue 11.8).
    journal: std::sync::OnceLock<std::sync::Weak<crate::vault::journal::Journal>>,
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

struct State {
    file: File,
    id: [u8; 16],
    /// End of the last complete frame.
    end: u64,
    /// Sequence number of the last record (0: none).
    seq: u64,
    /// Link of the last record (zeros: none).
    link: [u8; 32],
    /// The remembered head is ahead of this log (records were removed):
    /// it is never overwritten, so `--verify` keeps reporting it.
    behind: bool,
    /// The head this log last wrote (on its own chain by construction).
    saved: Option<(u64, [u8; 32])>,
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

/// Writes a remembered head file.
fn write_head(p: &Path, seq: u64, link: &[u8; 32]) -> io::Result<()> {
    let text = format!(
        "quire audit head v1\nseq {seq}\nlink {}\n",
        crate::vault::util::hex(link)
    );
    if let Some(dir) = p.parent() {
        crate::store::atomic::private_dir(dir)?;
    }
    crate::store::atomic::write(p, text.as_bytes())
}

/// The head remembered outside the vault: (seq, link).
pub fn read_head(path: &Path) -> Option<(u64, [u8; 32])> {
    let text =
        String::from_utf8(crate::store::safe::read(path, crate::store::safe::MAX_RECORD).ok()?)
            .ok()?;
    let mut seq = None;
    let mut link = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("seq ") {
            seq = v.trim().parse().ok();
        }
        if let Some(v) = line.strip_prefix("link ") {
            link = crate::vault::util::unhex::<32>(v.trim());
        }
    }
    Some((seq?, link?))
}

/// The whole frames of `b` from `from`, as (offset, end), without opening
/// them; stops at the first frame that is malformed or runs past the end.
fn frames(b: &[u8], from: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = from;
    std::iter::from_fn(move || {
        let fh: [u8; 5] = b
            .get(pos..pos + stream::FRAME_HEADER as usize)?
            .try_into()
            .ok()?;
        let (len, _) = stream::parse_frame_header(&fh)?;
        let end = pos + stream::FRAME_HEADER as usize + len as usize;
        if end > b.len() {
            return None;
        }
        let at = pos;
        pos = end;
        Some((at, end))
    })
}

/// Walks the frames of `b` from `from`; returns the offset of the last
/// complete frame (if any) and the end of it.
fn walk(b: &[u8], from: usize) -> (Option<usize>, usize) {
    frames(b, from).fold((None, from), |_, (at, end)| (Some(at), end))
}

impl AuditLog {
    /// Opens (creating) the log at `path`; `head` is where its last link is
    /// remembered outside the vault (none: not remembered).
    ///
    /// With `flusher`, a thread writes queued records (do not ask for one
    /// in a process that is about to fork); without, every append writes.
    pub fn open(
        path: &Path,
        keys: Arc<SubKeys>,
        head: Option<PathBuf>,
        flusher: bool,
    ) -> io::Result<Arc<AuditLog>> {
        let file = crate::store::safe::open_with(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600),
            path,
            crate::store::safe::MAX_AUDIT,
        )?;
        let st = {
            let _l = Flock::take(&file)?;
            if file.metadata()?.len() < stream::HEADER_LEN {
                file.set_len(0)?;
                file.write_all_at(&stream::header(MAGIC, &random::bytes::<16>()), 0)?;
            }
            let mut h = [0u8; stream::HEADER_LEN as usize];
            file.read_exact_at(&mut h, 0)?;
            let id = stream::parse_header(MAGIC, &h).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("quire.audit has a bad header ({e:?})"),
                )
            })?;
            State {
                file,
                id,
                end: stream::HEADER_LEN,
                seq: 0,
                link: [0; 32],
                behind: false,
                saved: None,
            }
        };
        let log = AuditLog {
            keys,
            head,
            // SAFETY: geteuid has no preconditions.
            uid: unsafe { libc::geteuid() },
            state: Mutex::new(st),
            queue: Arc::default(),
            flusher,
            journal: std::sync::OnceLock::new(),
        };
        {
            let mut s = log.state.lock().unwrap_or_else(|e| e.into_inner());
            let _l = Flock::take(&s.file)?;
            log.catch_up(&mut s)?;
            if let Some((seq, link)) = log.head.as_deref().and_then(read_head) {
                if seq > s.seq {
                    log::error!(
                        "the audit log ends at record {} but record {seq} was written on this machine: records were removed (run `quire audit --verify`)",
                        s.seq
                    );
                    s.behind = true;
                } else if !log.on_chain(&s, seq, &link)? {
                    // A log put back from an older copy and extended: longer
                    // than the head, but not the chain the head remembers.
                    log::error!(
                        "record {seq} of the audit log is not the one written on this machine: the log was rewritten or rolled back (run `quire audit --verify`)"
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
                Path::new("quire.audit"),
                len,
                crate::store::safe::MAX_AUDIT,
            ));
        }
        let mut b = vec![0u8; len as usize];
        s.file.read_exact_at(&mut b, 0)?;
        let (last, end) = walk(&b, s.end as usize);
        if let Some(at) = last {
            let fh: [u8; 5] = b[at..at + 5].try_into().expect("5 bytes");
            let (_, kind) = stream::parse_frame_header(&fh).expect("walked");
            let body = stream::open_frame(
                &self.keys.audit,
                MAGIC,
                &s.id,
                at as u64,
                kind,
                &b[at + 5..end],
            )
            .ok()
            .and_then(|p| Record::decode(&p).map(|r| (r, p)));
            match body {
                Some((r, p)) => {
                    s.seq = r.seq;
                    s.link = self.keys.audit_link(&p);
                }
                None => {
                    log::error!(
                        "the last audit record (byte {at}) fails authentication; the chain continues after it"
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

    /// Whether record `seq` of the log (which has at least `seq`
    /// records) has the link `link`: the remembered head is on this
    /// log's chain, so moving it forward keeps the chain it remembers
    /// (issue 17.1). Each record's link covers the link before it, so one
    /// matching link vouches for every record up to it.
    fn on_chain(&self, s: &State, seq: u64, link: &[u8; 32]) -> io::Result<bool> {
        if seq == 0 {
            return Ok(true);
        }
        let mut b = vec![0u8; s.end as usize];
        s.file.read_exact_at(&mut b, 0)?;
        let Some((at, end)) = frames(&b, stream::HEADER_LEN as usize).nth(seq as usize - 1) else {
            return Ok(false);
        };
        let (_, kind) = stream::parse_frame_header(&b[at..at + 5].try_into().expect("5 bytes"))
            .expect("walked");
        let body = stream::open_frame(
            &self.keys.audit,
            MAGIC,
            &s.id,
            at as u64,
            kind,
            &b[at + 5..end],
        );
        Ok(body.is_ok_and(|p| {
            Record::decode(&p).is_some_and(|r| r.seq == seq) && self.keys.audit_link(&p) == *link
        }))
    }

    /// Notes every append in the crash journal first.
    pub(crate) fn set_journal(&self, j: std::sync::Weak<crate::vault::journal::Journal>) {
        let _ = self.journal.set(j);
    }

    /// Appends one record (queued; see [`AuditLog`]). Failures are
    /// logged, never returned: the change being recorded has already
    /// happened.
    pub fn append(&self, event: Event, path: &[u8], to: &[u8], version: u32, detail: &str) {
        let r = Record {
            seq: 0, // numbered and chained when written
            time_ns: now_ns(),
            prev: [0; 32],
            event,
            uid: self.uid,
            version,
            path: path.to_vec(),
            to: to.to_vec(),
            detail: detail.to_string(),
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
                "the audit log has {} bytes past its last record that no interrupted write explains: cut before appending",
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
                RECORD,
                &body,
            ));
            link = self.keys.audit_link(&body);
        }
        let journal = self.journal.get().and_then(std::sync::Weak::upgrade);
        let noted = journal.as_ref().is_some_and(|j| {
            j.note_append(crate::format::undo::TO_AUDIT, s.end, [0; 16], Vec::new())
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

    /// `quire audit --accept`: records that the log as it is now was
    /// reviewed, then makes its end this machine's remembered head, even
    /// behind the old one (issue 10.5). Returns (old head, new head).
    pub fn accept(&self) -> io::Result<(Option<u64>, u64)> {
        let Some(p) = self.head.clone() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no head is remembered for this vault",
            ));
        };
        let old = read_head(&p).map(|(seq, _)| seq);
        let detail = match old {
            Some(seq) => format!("reviewed; the head remembered here was record {seq}"),
            None => "reviewed; no head was remembered here".into(),
        };
        self.append(Event::Accept, b"", b"", 0, &detail);
        self.flush();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        {
            let _l = Flock::take(&s.file)?;
            self.catch_up(&mut s)?;
        }
        s.behind = false;
        write_head(&p, s.seq, &s.link)?;
        s.saved = Some((s.seq, s.link));
        Ok((old, s.seq))
    }

    /// Writes the remembered head (not if the log is behind it).
    pub fn save_head(&self) {
        self.flush();
        let Some(p) = &self.head else { return };
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.behind || s.seq == 0 {
            return;
        }
        // The head moves forward only along the chain it remembers: another
        // process may have written it since this log was opened (issue 17.1).
        if let Some((seq, link)) = read_head(p)
            && s.saved != Some((seq, link))
        {
            let on_chain = {
                let _l = Flock::take(&s.file);
                self.catch_up(&mut s)
                    .and_then(|()| Ok(seq <= s.seq && self.on_chain(&s, seq, &link)?))
            };
            if !on_chain.unwrap_or(false) {
                log::error!(
                    "the audit head remembered on this machine is not on this log's chain: it is kept (run `quire audit --verify`)"
                );
                s.behind = true;
                return;
            }
        }
        match write_head(p, s.seq, &s.link) {
            Ok(()) => s.saved = Some((s.seq, s.link)),
            Err(e) => log::warn!("could not remember the audit log's head ({e})"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn keys() -> Arc<SubKeys> {
        Arc::new(MasterKey::generate().subkeys(&[1u8; 16]))
    }

    fn write(dir: &Path, k: &Arc<SubKeys>, n: usize) {
        let log = AuditLog::open(&dir.join("a"), k.clone(), Some(dir.join("head")), true).unwrap();
        for i in 0..n {
            log.append(
                Event::Save,
                format!("n{i}.md").as_bytes(),
                b"",
                i as u32,
                "",
            );
        }
    }

    fn frames(b: &[u8]) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        let mut pos = stream::HEADER_LEN as usize;
        while pos < b.len() {
            let len = u32::from_be_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
            v.push((pos, pos + 5 + len));
            pos += 5 + len;
        }
        v
    }

    #[test]
    fn a_chain_across_openings_verifies() {
        let d = tempfile::tempdir().unwrap();
        let k = keys();
        write(d.path(), &k, 3);
        // A second process (or a later mount) continues the same chain.
        write(d.path(), &k, 2);
        let (recs, v) = read(&k, &d.path().join("a"), Some(&d.path().join("head"))).unwrap();
        assert_eq!(v.broken, None, "{v:?}");
        assert_eq!(recs.len(), 5);
        assert_eq!(
            recs.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(read_head(&d.path().join("head")).unwrap().0, 5);
        assert!(v.head.contains("record 5"));
    }

    #[test]
    fn editing_removing_reordering_and_cutting_are_detected() {
        let d = tempfile::tempdir().unwrap();
        let k = keys();
        write(d.path(), &k, 4);
        let p = d.path().join("a");
        let head = d.path().join("head");
        let orig = std::fs::read(&p).unwrap();
        let f = frames(&orig);
        let check = |b: &[u8]| {
            std::fs::write(&p, b).unwrap();
            read(&k, &p, Some(&head)).unwrap().1
        };
        // A flipped bit in record 2.
        let mut t = orig.clone();
        t[f[1].0 + 20] ^= 1;
        let v = check(&t);
        assert!(
            v.broken.as_deref().unwrap().starts_with("record 2 "),
            "{v:?}"
        );
        assert_eq!(v.records, 1);
        // Record 2 removed.
        let t = [&orig[..f[1].0], &orig[f[1].1..]].concat();
        assert!(check(&t).broken.unwrap().starts_with("record 2 "));
        // Records 2 and 3 swapped.
        let t = [
            &orig[..f[1].0],
            &orig[f[2].0..f[2].1],
            &orig[f[1].0..f[1].1],
            &orig[f[3].0..],
        ]
        .concat();
        assert!(check(&t).broken.unwrap().starts_with("record 2 "));
        // The last record removed: only the remembered head can tell.
        let t = orig[..f[3].0].to_vec();
        let v = check(&t);
        assert!(v.broken.unwrap().contains("removed from the end"));
        let v = {
            std::fs::write(&p, &t).unwrap();
            read(&k, &p, None).unwrap().1
        };
        assert_eq!(v.broken, None);
        // A torn tail that the crash journal does not explain (a crash's
        // is cut when the journal is replayed): reported.
        let t = orig[..orig.len() - 3].to_vec();
        std::fs::write(&p, &t).unwrap();
        let v = read(&k, &p, None).unwrap().1;
        assert!(v.torn_tail && v.broken.unwrap().contains("no interrupted write"));
        // The whole log deleted.
        std::fs::remove_file(&p).unwrap();
        assert!(
            read(&k, &p, Some(&head))
                .unwrap()
                .1
                .broken
                .unwrap()
                .contains("missing")
        );
        // Intact again: clean.
        std::fs::write(&p, &orig).unwrap();
        assert_eq!(check(&orig).broken, None);
    }

    #[test]
    fn a_torn_tail_is_cut_before_the_next_append_and_a_cut_log_keeps_its_alarm() {
        let d = tempfile::tempdir().unwrap();
        let k = keys();
        write(d.path(), &k, 2);
        let p = d.path().join("a");
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() - 5]).unwrap();
        // The head (written when the log was closed) says 2 records: the
        // log is behind it. Appending goes on; the head is left alone.
        write(d.path(), &k, 1);
        let (recs, v) = read(&k, &p, Some(&d.path().join("head"))).unwrap();
        assert_eq!(recs.len(), 2);
        assert!(v.broken.unwrap().contains("not the one written"));
        assert_eq!(read_head(&d.path().join("head")).unwrap().0, 2);
        // Without the head, the chain itself is whole.
        assert_eq!(read(&k, &p, None).unwrap().1.broken, None);
    }

    #[test]
    fn the_head_moves_forward_only_along_the_chain_it_remembers() {
        let d = tempfile::tempdir().unwrap();
        let k = keys();
        let (p, head) = (d.path().join("a"), d.path().join("head"));
        write(d.path(), &k, 2);
        let old = std::fs::read(&p).unwrap();
        write(d.path(), &k, 2);
        assert_eq!(read_head(&head).unwrap().0, 4);
        // The older log put back, then extended past the head: the head
        // is not on its chain and stays where it was.
        std::fs::write(&p, &old).unwrap();
        write(d.path(), &k, 5);
        assert_eq!(read_head(&head).unwrap().0, 4);
        let v = read(&k, &p, Some(&head)).unwrap().1;
        assert!(v.broken.unwrap().contains("rewritten"));
        write(d.path(), &k, 1);
        assert_eq!(read_head(&head).unwrap().0, 4);
        // Accepted: the head moves to this chain and follows it again.
        let log = AuditLog::open(&p, k.clone(), Some(head.clone()), false).unwrap();
        log.accept().unwrap();
        drop(log);
        let n = read_head(&head).unwrap().0;
        write(d.path(), &k, 1);
        assert_eq!(read_head(&head).unwrap().0, n + 1);
        assert_eq!(read(&k, &p, Some(&head)).unwrap().1.broken, None);
    }
}
