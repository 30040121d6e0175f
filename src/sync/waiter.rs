//! The waiter record shared by the slow paths of every `sync` primitive.
//!
//! A [`Waiter`] is created by the thread or coroutine that is about to wait, pushed onto the
//! primitive's queue (under the queue lock), and then waited on with [`Waiter::wait`]. A waker
//! pops it from the queue and calls [`Waiter::wake`] exactly once.
//!
//! A `Waiter` is a [`OneShot`] armed for its creator: the outcome is set once, by `wake`,
//! and `OneShot`'s ordering (a Release read-modify-write by the waker, Acquire reads by the
//! waiter) makes whatever the waker wrote before `wake` visible to the waiter after `wait`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::park::{self, OneShot, WaitReason};

/// Woken to retry (e.g. a mutex waiter that must compete for the lock again).
pub(super) const RETRY: usize = 1;
/// Woken with the resource handed over (lock ownership, a permit, a completed event).
pub(super) const GRANTED: usize = 2;

/// One parked (or about to park) coroutine or thread.
pub(super) struct Waiter {
    outcome: OneShot,
}

impl Waiter {
    /// A waiter for the calling coroutine or thread.
    pub(super) fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            outcome: OneShot::with_waiter(park::current()),
        })
    }

    /// Set the outcome and unpark the waiter. Call once, after removing it from its queue.
    pub(super) fn wake(&self, how: usize) {
        self.outcome.set(how);
    }

    /// Park until woken; returns the outcome ([`RETRY`] or [`GRANTED`]).
    pub(super) fn wait(&self, reason: WaitReason) -> usize {
        self.outcome.wait(reason)
    }

    /// Park until woken or until `deadline`; `None` on timeout. The caller must then remove
    /// the waiter from its queue under the queue lock, and if it is no longer there a waker
    /// has taken it: call [`Waiter::wait`] to receive the outcome.
    pub(super) fn wait_until(&self, deadline: Instant, reason: WaitReason) -> Option<usize> {
        self.outcome.wait_until(deadline, reason)
    }
}

/// Remove `w` from `q` if it is still queued; true if it was.
pub(super) fn remove(q: &mut VecDeque<Arc<Waiter>>, w: &Arc<Waiter>) -> bool {
    match q.iter().position(|x| Arc::ptr_eq(x, w)) {
        Some(i) => {
            q.remove(i);
            true
        }
        None => false,
    }
}
