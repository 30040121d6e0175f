//! [`Condvar`]: Go's `sync.Cond` for goro's [`Mutex`](super::Mutex).
//!
//! A waiter enqueues itself *before* releasing the mutex, so a `notify_*` issued by anyone who
//! takes the mutex after that point reaches it (no lost wake-up). Notifications pick waiters in
//! FIFO order. A timed-out waiter removes itself from the queue under the queue lock; if it is
//! no longer there, a notification has claimed it and it reports "not timed out", so a
//! notification is never swallowed by a timeout.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::mutex::MutexGuard;
use super::waiter::{remove, Waiter, RETRY};
use crate::util::lock;

/// A condition variable (Go's `sync.Cond`) used with goro's [`Mutex`](super::Mutex).
///
/// `wait` parks the coroutine (or blocks the plain thread). As with every condition variable,
/// re-check your condition in a loop around `wait`.
#[derive(Default)]
pub struct Condvar {
    waiters: std::sync::Mutex<VecDeque<Arc<Waiter>>>,
}

impl std::fmt::Debug for Condvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

impl Condvar {
    /// A condition variable with no waiters.
    pub const fn new() -> Condvar {
        Condvar {
            waiters: std::sync::Mutex::new(VecDeque::new()),
        }
    }

    /// Atomically unlock `guard`'s mutex and wait for a notification, then lock it again.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex = guard.mutex;
        let w = Waiter::new();
        lock(&self.waiters).push_back(w.clone());
        drop(guard);
        w.wait("sync.Cond.Wait");
        mutex.lock()
    }

    /// Wait while `condition` holds (Go's `for cond { c.Wait() }` idiom).
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// As [`wait`](Self::wait), but gives up after `dur`. Returns the re-locked guard and
    /// whether the wait timed out (`false` means a notification arrived).
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        let deadline = crate::deadline::after(dur);
        let mutex = guard.mutex;
        let w = Waiter::new();
        lock(&self.waiters).push_back(w.clone());
        drop(guard);
        let mut timed_out = false;
        if w.wait_until(deadline, "sync.Cond.Wait").is_none() {
            if remove(&mut lock(&self.waiters), &w) {
                timed_out = true;
            } else {
                // A notifier popped us just as we timed out: its notification is ours.
                w.wait("sync.Cond.Wait");
            }
        }
        (mutex.lock(), timed_out)
    }

    /// Wake the longest-waiting waiter, if any.
    pub fn notify_one(&self) {
        let w = lock(&self.waiters).pop_front();
        if let Some(w) = w {
            w.wake(RETRY);
        }
    }

    /// Wake every current waiter.
    pub fn notify_all(&self) {
        let all = std::mem::take(&mut *lock(&self.waiters));
        for w in all {
            w.wake(RETRY);
        }
    }
}
