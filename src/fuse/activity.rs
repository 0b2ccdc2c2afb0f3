//! Activity tracking for `--idle`: when the last operation happened and how
//! many files and directories are open. Uses the monotonic clock, which does
//! not advance while the machine is suspended, so a resume never looks like
//! a long idle period.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Shared between the filesystem and the idle watcher.
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    open: AtomicI64,
    /// Seconds of the idle period that is sealing the vault (0: none).
    idle_seal: AtomicU64,
}

impl Activity {
    /// Starts counting now.
    pub fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            open: AtomicI64::new(0),
            idle_seal: AtomicU64::new(0),
        }
    }

    pub(crate) fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.touch();
    }

    /// Number of open files and directories.
    pub fn open_count(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }

    /// The idle watcher is sealing after `idle` (`None`: it gave up).
    pub fn sealing_idle(&self, idle: Option<Duration>) {
        let secs = idle.map(|d| d.as_secs().max(1)).unwrap_or(0);
        self.idle_seal.store(secs, Ordering::Relaxed);
    }

    /// Why the session is ending, for the audit log's unmount record.
    pub(crate) fn seal_detail(&self) -> String {
        match self.idle_seal.load(Ordering::Relaxed) {
            0 => String::new(),
            s => format!("idle for {s} s"),
        }
    }

    /// Time since the last operation.
    pub fn idle_for(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}
