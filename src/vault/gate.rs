//! The commit gate (issue 19.2): every change to the vault folder (a FUSE
//! operation, a control request, the lifecycle timer, a merge) runs
//! inside it; a backup closes it for a moment, when no change is half
//! made, to take a consistent snapshot. Re-entrant per thread (a change
//! that starts another inside it never waits on itself), and a change
//! already inside is always let finish.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// The high bit of the state: a backup holds the gate closed.
const CLOSED: u64 = 1 << 63;

/// See the module documentation. Entering and leaving an open gate is one
/// atomic operation each (every FUSE write passes it); the mutex and
/// condition variable are only for waiting while it is closed.
#[derive(Default)]
pub struct Gate {
    /// [`CLOSED`] ‖ the number of changes inside.
    state: AtomicU64,
    /// One closer at a time; waits happen under it.
    m: Mutex<()>,
    cv: Condvar,
}

/// A change in progress (see [`Gate::enter`]).
pub struct Inside<'a>(&'a Gate);

/// The gate closed, nothing inside (see [`Gate::close`]).
pub struct Closed<'a>(&'a Gate, #[allow(dead_code)] std::sync::MutexGuard<'a, ()>);

impl Gate {
    /// Enters (waits while a backup holds the gate closed).
    pub fn enter(&self) -> Inside<'_> {
        if DEPTH.with(|d| d.get()) == 0 {
            loop {
                let s = self.state.load(Ordering::Acquire);
                if s & CLOSED == 0 {
                    if self
                        .state
                        .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        break;
                    }
                    continue;
                }
                // Closed: wait for the closer to open it (checked again
                // under the mutex, which the opener notifies under).
                let g = self.m.lock().unwrap_or_else(|e| e.into_inner());
                let _g = self
                    .cv
                    .wait_while(g, |_| self.state.load(Ordering::Acquire) & CLOSED != 0)
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
        DEPTH.with(|d| d.set(d.get() + 1));
        Inside(self)
    }

    /// Closes the gate and waits until every change inside has left. Not
    /// to be called from inside (it would wait on itself): refused then.
    pub fn close(&self) -> std::io::Result<Closed<'_>> {
        if DEPTH.with(|d| d.get()) != 0 {
            return Err(std::io::Error::other(
                "the commit gate cannot be closed from inside it",
            ));
        }
        // Held until the gate opens: one closer at a time.
        let g = self.m.lock().unwrap_or_else(|e| e.into_inner());
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        let g = self
            .cv
            .wait_while(g, |_| self.state.load(Ordering::Acquire) != CLOSED)
            .unwrap_or_else(|e| e.into_inner());
        Ok(Closed(self, g))
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        let left = DEPTH.with(|d| {
            let n = d.get() - 1;
            d.set(n);
            n
        });
        if left == 0 {
            let was = self.0.state.fetch_sub(1, Ordering::AcqRel);
            if was == CLOSED + 1 {
                // The last one out of a closed gate: the closer waits.
                let _g = self.0.m.lock().unwrap_or_else(|e| e.into_inner());
                self.0.cv.notify_all();
            }
        }
    }
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        self.0.state.fetch_and(!CLOSED, Ordering::AcqRel);
        self.0.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn close_waits_for_changes_inside_and_holds_new_ones() {
        let g = Arc::new(Gate::default());
        let inside = g.enter();
        let _again = g.enter(); // re-entrant
        let closed = Arc::new(AtomicBool::new(false));
        let (g2, c2) = (g.clone(), closed.clone());
        let closer = std::thread::spawn(move || {
            let c = g2.close().unwrap();
            c2.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            drop(c);
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !closed.load(Ordering::SeqCst),
            "closed while a change was inside"
        );
        assert!(g.close().is_err(), "closed from inside");
        drop(_again);
        drop(inside);
        while !closed.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        // A new change waits until the gate opens again.
        let t = std::time::Instant::now();
        let _late = g.enter();
        assert!(
            t.elapsed() >= Duration::from_millis(50),
            "entered a closed gate"
        );
        closer.join().unwrap();
    }
}
