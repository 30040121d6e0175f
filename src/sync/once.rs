//! [`Once`]: run a function exactly once; concurrent callers wait until that one call returns.
//!
//! State machine `INCOMPLETE -> RUNNING -> COMPLETE`, one way only. The caller that moves it to
//! `RUNNING` runs the function; a drop guard moves it to `COMPLETE` and wakes the waiters
//! whether the function returned or panicked (Go's rule: a panicking `f` still counts as the
//! one call). Waiters check the state under the queue lock before parking, and the runner sets
//! `COMPLETE` before taking that lock to wake them, so none is missed.

use std::sync::atomic::{AtomicU8, Ordering::*};
use std::sync::Arc;

use super::waiter::{Waiter, GRANTED};
use crate::util::lock;

const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const COMPLETE: u8 = 2;

/// Go's `sync.Once`: [`call_once`](Once::call_once) runs its function exactly once.
///
/// Callers that arrive while the function runs wait (parking) until it has returned. If the
/// function panics, the panic propagates to its caller and the `Once` is nevertheless complete,
/// as in Go: waiting callers return normally, later calls do nothing, and
/// [`is_completed`](Once::is_completed) is true. (This differs from `std::sync::Once`, which
/// poisons.) Calling `call_once` on the same `Once` from inside `f` deadlocks, as in Go.
pub struct Once {
    state: AtomicU8,
    waiters: std::sync::Mutex<Vec<Arc<Waiter>>>,
}

impl Default for Once {
    fn default() -> Self {
        Once::new()
    }
}

impl std::fmt::Debug for Once {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish()
    }
}

struct Complete<'a>(&'a Once);

impl Drop for Complete<'_> {
    fn drop(&mut self) {
        self.0.state.store(COMPLETE, Release);
        let all = std::mem::take(&mut *lock(&self.0.waiters));
        for w in all {
            w.wake(GRANTED);
        }
    }
}

impl Once {
    /// A `Once` that has not run yet.
    pub const fn new() -> Once {
        Once {
            state: AtomicU8::new(INCOMPLETE),
            waiters: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Run `f` if no call has run yet; otherwise wait until the first call has finished.
    pub fn call_once(&self, f: impl FnOnce()) {
        if self.state.load(Acquire) == COMPLETE {
            return;
        }
        self.call_slow(f);
    }

    #[cold]
    fn call_slow(&self, f: impl FnOnce()) {
        if self
            .state
            .compare_exchange(INCOMPLETE, RUNNING, Acquire, Acquire)
            .is_ok()
        {
            let done = Complete(self);
            f();
            drop(done);
            return;
        }
        let mut q = lock(&self.waiters);
        if self.state.load(Acquire) == COMPLETE {
            return;
        }
        let w = Waiter::new();
        q.push(w.clone());
        drop(q);
        w.wait("sync.Once.Do");
        // Pair with the runner's Release store, so its writes are visible to us.
        let _ = self.state.load(Acquire);
    }

    /// Whether the call has finished (returned or panicked).
    pub fn is_completed(&self) -> bool {
        self.state.load(Acquire) == COMPLETE
    }
}
