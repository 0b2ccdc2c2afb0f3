//! The daemon's indexer: wires the vault's change events to the search
//! index (vault and index never import each other). Changes are debounced
//! (a batch is applied once 250 ms pass without a new one, at most 1 s
//! after the first) and committed together, so a saved note is searchable
//! within about a second. At mount the index is checked against the notes
//! and repaired (after a killed daemon, or changes made while sealed); an
//! index that cannot be opened is rebuilt. Both say so in the log.

use std::collections::HashSet;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::control::{HitOut, SearchRequest, Searcher};
use crate::index::{Doc, Options, SearchIndex, extract};
use crate::vault::events::Change;
use crate::vault::{Notebook, UnlockedVault};

const QUIET: Duration = Duration::from_millis(250);
const MOST: Duration = Duration::from_secs(1);

enum Msg {
    Change(Change),
    Reindex(Sender<Result<u64, String>>),
    /// Apply everything sent before, commit, answer, and stop.
    Drain(Sender<()>),
}

/// How long a seal waits for the indexer to take in the last changes.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// The running indexer, as the control socket sees it.
pub struct Service {
    index: Arc<SearchIndex>,
    tx: std::sync::Mutex<Sender<Msg>>,
    progress: Arc<Progress>,
}

/// (done, total) of a rebuild under way.
#[derive(Default)]
struct Progress(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64);

/// The text of the note at `path` now, with its modification time; `None`
/// if it is gone or has no text to index.
fn current(tree: &Notebook, path: &[u8]) -> Option<(String, i64)> {
    let (dir, name) = tree.resolve(path).ok()?;
    let (node, attr) = tree.lookup(&dir, &name).ok()?;
    // Too large to index (a disk image, a video): not even read.
    if attr.kind != crate::vault::Kind::File || attr.size > extract::MAX_INPUT as u64 {
        return None;
    }
    let bytes = tree.plain_content(&node).ok()?;
    let mtime = attr
        .mtime
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    text(&bytes).map(|t| (t, mtime))
}

/// Extracted text, with one log line per failure or missing helper
/// (never the note's name: the log names no notes).
fn text(bytes: &[u8]) -> Option<String> {
    static WARNED: std::sync::Mutex<Option<HashSet<&'static str>>> = std::sync::Mutex::new(None);
    let warn_once = |what: &'static str, msg: &str| {
        let mut w = WARNED.lock().unwrap_or_else(|e| e.into_inner());
        if w.get_or_insert_with(HashSet::new).insert(what) {
            log::info!("{msg}");
        }
    };
    match extract::kind_of(bytes) {
        extract::Kind::Pdf if !extract::have("pdftotext") => warn_once(
            "pdf",
            "PDFs are not indexed: pdftotext is not installed (apt-get install poppler-utils)",
        ),
        extract::Kind::Image if !extract::have("tesseract") => warn_once(
            "ocr",
            "images are not indexed: tesseract is not installed (apt-get install tesseract-ocr)",
        ),
        _ => {}
    }
    match extract::text_of(bytes) {
        Ok(t) => t,
        Err(e) => {
            log::warn!("an attachment could not be read for the index and was skipped: {e}");
            None
        }
    }
}

/// Indexes every note (and, with history, every older version) into an
/// emptied index; `progress(done, total)`.
pub fn build(
    tree: &Notebook,
    index: &SearchIndex,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, String> {
    index.clear().map_err(|e| e.to_string())?;
    let notes = tree.notes().map_err(|e| e.to_string())?;
    let total = notes.len() as u64;
    for (i, n) in notes.iter().enumerate() {
        put_note(tree, index, &n.path, true);
        progress(i as u64 + 1, total);
        if i % 2000 == 1999 {
            index.commit().map_err(|e| e.to_string())?;
        }
    }
    index.commit().map_err(|e| e.to_string())?;
    index.compact().map_err(|e| e.to_string())?;
    Ok(index.stats().0)
}

/// Indexes a note's current text, and with `versions` its older versions.
fn put_note(tree: &Notebook, index: &SearchIndex, path: &[u8], versions: bool) {
    let p = String::from_utf8_lossy(path).into_owned();
    match current(tree, path) {
        Some((text, mtime_ns)) => {
            let _ = index.put(&Doc {
                path: p.clone(),
                version: 0,
                mtime_ns,
                text,
            });
        }
        None => {
            let _ = index.remove(&p);
            return;
        }
    }
    if !versions || !tree.keeps_history() {
        return;
    }
    let Ok((dir, name)) = tree.resolve(path) else {
        return;
    };
    let Ok(vs) = tree.versions(&dir, &name) else {
        return;
    };
    // The newest version is the current text.
    for v in vs.iter().take(vs.len().saturating_sub(1)) {
        if let Ok(c) = tree.version_content(&dir, &name, v.number)
            && let Some(text) = text(&c)
        {
            let _ = index.put(&Doc {
                path: p.clone(),
                version: v.number as u32,
                mtime_ns: v
                    .time
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as i64)
                    .unwrap_or(0),
                text,
            });
        }
    }
}

/// Indexes version `number` of a note from its history.
fn put_version(tree: &Notebook, index: &SearchIndex, path: &[u8], number: u32) {
    let Ok((dir, name)) = tree.resolve(path) else {
        return;
    };
    let Ok(vs) = tree.versions(&dir, &name) else {
        return;
    };
    let Some(v) = vs.iter().find(|v| v.number == number as usize) else {
        return;
    };
    if let Ok(c) = tree.version_content(&dir, &name, v.number)
        && let Some(text) = text(&c)
    {
        let _ = index.put(&Doc {
            path: String::from_utf8_lossy(path).into_owned(),
            version: number,
            mtime_ns: v
                .time
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0),
            text,
        });
    }
}

/// Brings the index up to date with the notes: new and changed notes are
/// indexed, gone ones removed. Returns (updated, removed).
fn repair(tree: &Notebook, index: &SearchIndex) -> Result<(usize, usize), String> {
    let known = index.known().map_err(|e| e.to_string())?;
    let notes = tree.notes().map_err(|e| e.to_string())?;
    let mut seen = HashSet::new();
    let mut updated = 0;
    for n in &notes {
        let p = String::from_utf8_lossy(&n.path).into_owned();
        if known.get(&p) != Some(&n.mtime_ns) {
            put_note(tree, index, &n.path, false);
            updated += 1;
        }
        seen.insert(p);
    }
    let mut removed = 0;
    for p in known.keys().filter(|p| !seen.contains(*p)) {
        index.remove(p).map_err(|e| e.to_string())?;
        removed += 1;
    }
    index.commit().map_err(|e| e.to_string())?;
    if removed > 0 {
        index.compact().map_err(|e| e.to_string())?;
    }
    Ok((updated, removed))
}

fn apply(tree: &Notebook, index: &SearchIndex, batch: Vec<Change>) -> Result<(), String> {
    let mut gone = false;
    let n = batch.len();
    for (i, c) in batch.iter().enumerate() {
        // A note saved several times in a batch is read once, at its last
        // save; the saves before it are old versions by then.
        if let Change::Saved { path, .. } = c
            && batch[i + 1..n]
                .iter()
                .any(|l| matches!(l, Change::Saved { path: q, .. } if q == path))
        {
            continue;
        }
        match c {
            Change::Saved { path, version } => {
                let p = String::from_utf8_lossy(path).into_owned();
                // The versions this batch saved, oldest first (issue 10.7:
                // the text indexed so far is the version before the
                // *first* of them, not before the last).
                let saved: Vec<u32> = batch[..=i]
                    .iter()
                    .filter_map(|c| match c {
                        Change::Saved { path: q, version } if q == path => Some(*version),
                        _ => None,
                    })
                    .collect();
                let first = saved.first().copied().unwrap_or(*version);
                if first >= 2
                    && let Ok(Some(old)) = index.current_doc(&p)
                {
                    let _ = index.put(&Doc {
                        version: first - 1,
                        ..old
                    });
                }
                // The batch's own earlier saves, from the history.
                for &k in &saved[..saved.len().saturating_sub(1)] {
                    if k > 0 {
                        put_version(tree, index, path, k);
                    }
                }
                put_note(tree, index, path, false);
            }
            Change::Removed { path } | Change::Purged { path } => {
                index
                    .remove(&String::from_utf8_lossy(path))
                    .map_err(|e| e.to_string())?;
                gone = true;
            }
            Change::Renamed { from, to } => index
                .rename(&String::from_utf8_lossy(from), &String::from_utf8_lossy(to))
                .map_err(|e| e.to_string())?,
            Change::Exchanged { a, b } => index
                .exchange(&String::from_utf8_lossy(a), &String::from_utf8_lossy(b))
                .map_err(|e| e.to_string())?,
        }
    }
    index.commit().map_err(|e| e.to_string())?;
    if gone {
        // Deleted text must leave the index files, not only be marked.
        index.compact().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Gives memory freed after a large batch back to the system (the
/// allocator keeps it otherwise, and the daemon's footprint would stay at
/// its peak).
fn trim() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
}

fn run(
    tree: Weak<Notebook>,
    index: Arc<SearchIndex>,
    fresh: bool,
    rx: Receiver<Msg>,
    progress: Arc<Progress>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut report = |done: u64, total: u64| {
        progress.0.store(done, Relaxed);
        progress.1.store(total, Relaxed);
    };
    // Indexing yields to the filesystem: the thread runs at a lower
    // priority than the threads that serve programs on the mount.
    // SAFETY: plain syscalls on this thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
    {
        let Some(t) = tree.upgrade() else { return };
        let started = Instant::now();
        if fresh {
            let r = build(&t, &index, &mut report);
            report(0, 0);
            match r {
                Ok(n) => log::info!(
                    "search index built: {n} documents in {:.1} s",
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => log::error!("building the search index failed: {e}"),
            }
        } else {
            match repair(&t, &index) {
                Ok((0, 0)) => {}
                Ok((u, r)) => log::warn!(
                    "search index repaired: {u} note(s) re-indexed, {r} removed (changes it had missed: a killed daemon, or changes while sealed)"
                ),
                Err(e) => log::error!("checking the search index failed: {e}"),
            }
        }
        trim();
    }
    loop {
        let first = match rx.recv() {
            Ok(m) => m,
            Err(_) => return,
        };
        let mut batch = Vec::new();
        let mut reindex = Vec::new();
        let mut drained = Vec::new();
        let mut take = |m: Msg| match m {
            Msg::Change(c) => {
                batch.push(c);
                true
            }
            Msg::Reindex(r) => {
                reindex.push(r);
                true
            }
            Msg::Drain(d) => {
                drained.push(d);
                false
            }
        };
        let mut more = take(first);
        let start = Instant::now();
        while more && start.elapsed() < MOST {
            match rx.recv_timeout(QUIET) {
                Ok(m) => more = take(m),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let Some(t) = tree.upgrade() else { return };
        if !batch.is_empty()
            && let Err(e) = apply(&t, &index, batch)
        {
            log::error!("updating the search index failed: {e}");
        }
        for r in reindex {
            let started = Instant::now();
            let res = build(&t, &index, &mut report);
            report(0, 0);
            if let Ok(n) = &res {
                log::info!(
                    "search index rebuilt: {n} documents in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            let _ = r.send(res);
        }
        if !drained.is_empty() {
            for d in drained {
                let _ = d.send(());
            }
            return;
        }
        trim();
    }
}

/// Opens (or rebuilds) the vault's index and starts following `tree`.
pub fn start(tree: &Arc<Notebook>, v: &UnlockedVault) -> Option<Arc<Service>> {
    let (root, key) = v.index_access();
    let opened = match SearchIndex::open(&root, key, false) {
        Ok(x) => Ok(x),
        Err(e) => {
            log::warn!("the search index could not be opened ({e}); it is rebuilt");
            SearchIndex::wipe(&root)
                .map_err(|e| crate::index::Error::Index(e.to_string()))
                .and_then(|_| SearchIndex::open(&root, v.index_access().1, false))
        }
    };
    let (index, fresh) = match opened {
        Ok(x) => x,
        Err(e) => {
            log::error!("no search index: {e}");
            return None;
        }
    };
    let index = Arc::new(index);
    let (tx, rx) = channel();
    {
        let tx = std::sync::Mutex::new(tx.clone());
        tree.set_listener(Box::new(move |c| {
            let _ = tx
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(Msg::Change(c));
        }));
    }
    let (weak, idx) = (Arc::downgrade(tree), index.clone());
    let progress = Arc::new(Progress::default());
    let p = progress.clone();
    std::thread::Builder::new()
        .name("quire-index".into())
        .spawn(move || run(weak, idx, fresh, rx, p))
        .ok()?;
    Some(Arc::new(Service {
        index,
        tx: std::sync::Mutex::new(tx),
        progress,
    }))
}

impl Service {
    /// At the seal: applies and commits every change sent so far (deleted
    /// text leaves the index files), then stops the indexer.
    pub fn drain(&self) {
        let (tx, rx) = channel();
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Msg::Drain(tx));
        if sent.is_ok() && rx.recv_timeout(DRAIN_LIMIT).is_err() {
            log::warn!(
                "the search index did not take in the last changes before the seal; the next mount repairs it"
            );
        }
    }
}

/// Changes made through a sealed vault's commands (`quire purge`, `trash
/// restore`/`purge`/`empty`, `restore`) applied to its index before it is
/// closed, so a sealed search never finds text of a note deleted for good
/// (issue 16.2). An index that cannot be opened is left for the next mount
/// to rebuild.
pub fn sync_sealed(tree: &Notebook, v: &UnlockedVault, changes: Vec<Change>) {
    if changes.is_empty() {
        return;
    }
    let (root, key) = v.index_access();
    if !root.exists() {
        return;
    }
    match SearchIndex::open(&root, key, false) {
        Ok((index, _)) => {
            if let Err(e) = apply(tree, &index, changes) {
                log::warn!("the search index was not updated ({e}); the next mount repairs it");
            }
        }
        Err(e) => log::warn!("the search index was not updated ({e}); the next mount rebuilds it"),
    }
}

/// Search on a read-only mount: the index as it was sealed, not updated.
pub struct ReadOnly(SearchIndex);

impl Searcher for ReadOnly {
    fn search(&self, r: &SearchRequest) -> Result<Vec<HitOut>, (i32, String)> {
        search(&self.0, r)
    }

    fn reindex(&self) -> Result<u64, (i32, String)> {
        Err((libc::EROFS, "the vault is mounted read-only".into()))
    }

    fn progress(&self) -> (u64, u64) {
        (0, 0)
    }
}

/// Opens the index of a read-only mount, if there is one.
pub fn open_read_only(v: &UnlockedVault) -> Option<Arc<ReadOnly>> {
    let (root, key) = v.index_access();
    match SearchIndex::open(&root, key, true) {
        Ok((i, _)) => Some(Arc::new(ReadOnly(i))),
        Err(e) => {
            log::info!("no search on this read-only mount: {e}");
            None
        }
    }
}

/// Turns an index hit into what the control socket sends.
pub fn hit_out(h: crate::index::Hit) -> HitOut {
    HitOut {
        path: h.path,
        version: h.version,
        mtime_ns: h.mtime_ns,
        score: h.score,
        snippet: h.snippet,
        highlights: h.highlights,
        lines: h.lines,
    }
}

/// Runs a search request on an index.
pub fn search(index: &SearchIndex, r: &SearchRequest) -> Result<Vec<HitOut>, (i32, String)> {
    let o = Options {
        limit: r.limit,
        path: r.path.clone(),
        since_ns: r.since_ns,
        until_ns: r.until_ns,
        history: r.history,
        all_lines: r.all_lines,
    };
    match index.search(&r.query, &o) {
        Ok(h) => Ok(h.into_iter().map(hit_out).collect()),
        Err(crate::index::Error::Query(e)) => Err((libc::EINVAL, e.to_string())),
        Err(e) => Err((libc::EIO, e.to_string())),
    }
}

impl Searcher for Service {
    fn search(&self, r: &SearchRequest) -> Result<Vec<HitOut>, (i32, String)> {
        search(&self.index, r)
    }

    fn reindex(&self) -> Result<u64, (i32, String)> {
        let (tx, rx) = channel();
        self.tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Msg::Reindex(tx))
            .map_err(|_| (libc::EIO, "the indexer has stopped".to_string()))?;
        rx.recv()
            .map_err(|_| (libc::EIO, "the indexer has stopped".to_string()))?
            .map_err(|e| (libc::EIO, e))
    }

    fn progress(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.progress.0.load(Relaxed), self.progress.1.load(Relaxed))
    }
}
