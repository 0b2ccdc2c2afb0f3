//! Fault injection for tests (HOUSE habit 9): every write, truncate and
//! fsync the vault makes to note content, the undo journal and history
//! streams passes [`point`]; after [`fail_after`]`(k)` the first `k` pass
//! and the next one fails with EIO, as a full or failing disk would.
//! Off unless a test turns it on; costs one atomic load per write.

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};

static LEFT: AtomicI64 = AtomicI64::new(-1);

/// Lets `k` more storage writes succeed, then fails the next one.
pub fn fail_after(k: i64) {
    LEFT.store(k, Ordering::SeqCst);
}

/// Turns fault injection off.
pub fn off() {
    LEFT.store(-1, Ordering::SeqCst);
}

/// Whether the armed fault has fired (or was never armed).
pub fn spent() -> bool {
    LEFT.load(Ordering::SeqCst) < 0
}

/// Called before each storage write; fails when the countdown runs out.
pub fn point() -> io::Result<()> {
    if LEFT.load(Ordering::Relaxed) < 0 {
        return Ok(());
    }
    if LEFT.fetch_sub(1, Ordering::SeqCst) == 0 {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(())
}
