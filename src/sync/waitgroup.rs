//! [`WaitGroup`]: Go's `sync.WaitGroup`, a counter that `wait` blocks on until it reaches zero.
//!
//! The counter is atomic; waiters queue under a leaf lock after re-checking the counter under
//! that lock, and whoever brings the counter to zero takes the lock and wakes every queued
//! waiter, so a waiter either sees zero or is queued before the zeroing `add` drains the queue.

use std::sync::atomic::{AtomicIsize, Ordering::*};
use std::sync::Arc;

use super::waiter::{Waiter, GRANTED};
use crate::util::lock;

struct Inner {
    count: AtomicIsize,
    waiters: std::sync::Mutex<Vec<Arc<Waiter>>>,
}

/// Go's `sync.WaitGroup`: wait for a collection of coroutines (or threads) to finish.
///
/// Clones share one counter (hand a clone to each worker). A counter below zero panics with
/// "sync: negative WaitGroup counter", as in Go.
///
/// ```
/// let wg = goro::sync::WaitGroup::new();
/// for _ in 0..3 {
///     wg.add(1);
///     let wg = wg.clone();
///     std::thread::spawn(move || wg.done());
/// }
/// wg.wait();
/// ```
#[derive(Clone)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

impl Default for WaitGroup {
    fn default() -> Self {
        WaitGroup::new()
    }
}

impl std::fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}

impl WaitGroup {
    /// A wait group with counter zero.
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Arc::new(Inner {
                count: AtomicIsize::new(0),
                waiters: Default::default(),
            }),
        }
    }

    /// Add `delta` (may be negative) to the counter; at zero every waiter is released.
    ///
    /// # Panics
    /// If the counter would go below zero ("sync: negative WaitGroup counter") or overflow;
    /// the counter is left unchanged then, so waiters and later calls still see a valid count.
    pub fn add(&self, delta: isize) {
        let mut cur = self.inner.count.load(Acquire);
        let new = loop {
            let new = match cur.checked_add(delta) {
                Some(n) if n >= 0 => n,
                Some(_) => panic!("sync: negative WaitGroup counter"),
                None => panic!("sync: WaitGroup counter overflow"),
            };
            match self
                .inner
                .count
                .compare_exchange_weak(cur, new, AcqRel, Acquire)
            {
                Ok(_) => break new,
                Err(now) => cur = now,
            }
        };
        if new == 0 && delta != 0 {
            let all = std::mem::take(&mut *lock(&self.inner.waiters));
            for w in all {
                w.wake(GRANTED);
            }
        }
    }

    /// Decrement the counter by one (`add(-1)`).
    pub fn done(&self) {
        self.add(-1);
    }

    /// Park until the counter is zero.
    pub fn wait(&self) {
        if self.inner.count.load(Acquire) == 0 {
            return;
        }
        let mut q = lock(&self.inner.waiters);
        if self.inner.count.load(Acquire) == 0 {
            return;
        }
        let w = Waiter::new();
        q.push(w.clone());
        drop(q);
        w.wait("sync.WaitGroup.Wait");
    }

    /// Run `f` in a new coroutine counted by this group (Go 1.25's `WaitGroup.Go`): `add(1)`
    /// now, `done()` when `f` returns, panics or calls `goexit`.
    pub fn go<F>(&self, f: F) -> crate::JoinHandle<()>
    where
        F: FnOnce() + Send + 'static,
    {
        struct DoneOnDrop(WaitGroup);
        impl Drop for DoneOnDrop {
            fn drop(&mut self) {
                self.0.done();
            }
        }
        self.add(1);
        let guard = DoneOnDrop(self.clone());
        crate::spawn(move || {
            let _guard = guard;
            f()
        })
    }

    /// The counter now (a snapshot; Go has no such call, but it helps tests and debugging).
    pub fn count(&self) -> isize {
        self.inner.count.load(Acquire)
    }
}
