//! The commit gate (issue 19.2): every change to the vault folder (a FUSE
//! operation, a control request, the lifecycle timer, a merge) runs
//! inside it; a backup closes it for a moment, when no change is half
//! made, to take a consistent snapshot. Re-entrant per thread (a change
//! that starts another inside it never waits on itself), and a change
//! already inside is always let finish.

use std::cell::Cell;
use std::sync::{Condvar, Mutex};

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

#[derive(Default)]
struct State {
    inside: usize,
    closed: bool,
}

/// See the module documentation.
#[derive(Default)]
pub struct Gate {
    s: Mutex<State>,
    cv: Condvar,
}

/// A change in progress (see [`Gate::enter`]).
pub struct Inside<'a>(&'a Gate);

/// The gate closed, nothing inside (see [`Gate::close`]).
pub struct Closed<'a>(&'a Gate);

impl Gate {
    /// Enters (waits while a backup holds the gate closed).
    pub fn enter(&self) -> Inside<'_> {
        if DEPTH.with(|d| d.get()) == 0 {
            let mut s = self.s.lock().unwrap_or_else(|e| e.into_inner());
            while s.closed {
                s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            s.inside += 1;
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
        let mut s = self.s.lock().unwrap_or_else(|e| e.into_inner());
        while s.closed {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.closed = true;
        while s.inside > 0 {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        Ok(Closed(self))
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
            let mut s = self.0.s.lock().unwrap_or_else(|e| e.into_inner());
            s.inside -= 1;
            if s.inside == 0 && s.closed {
                self.0.cv.notify_all();
            }
        }
    }
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        let mut s = self.0.s.lock().unwrap_or_else(|e| e.into_inner());
        s.closed = false;
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
