//! A coroutine's state word (`Co::state`): the state machine, and every transition of it.
//!
//! ```text
//!  FRESH --(a worker takes it)--> RUNNING --park--> PARKED --unpark--> RUNNABLE --owner--> RUNNING
//!                                  |   ^  unpark while running: RUNNING -> NOTIFIED (a token);
//!                                  |   |  park with a token: NOTIFIED -> RUNNING, returns at once
//!                                  +---+--> DONE (body returned; the stack goes back to the pool)
//!  FRESH --(no stack can be had)--> DONE (the body never runs; join reports the error)
//!  PARKED --(its park's deadline passed, on the owner)--> RUNNABLE
//! ```
//! Only `PARKED -> RUNNABLE` (by [`Co::unpark`] or [`Co::wake_on_timeout`]) makes the caller
//! enqueue the coroutine, so it is in at most one run queue at a time, and only its owner
//! worker ever resumes it. Who may call each transition is in its docs; the scheduler
//! (`sched`) decides when, this file decides how (and why the orderings are right). Other
//! modules only *read* the state (dumps, the deadlock detector).

use std::sync::atomic::Ordering;

use super::Co;

pub(crate) const FRESH: u32 = 0;
pub(crate) const RUNNABLE: u32 = 1;
pub(crate) const RUNNING: u32 = 2;
pub(crate) const NOTIFIED: u32 = 3;
pub(crate) const PARKED: u32 = 4;
pub(crate) const DONE: u32 = 5;

impl Co {
    /// `FRESH -> RUNNING`: the worker that took a fresh coroutine starts it (owner set first).
    #[inline]
    pub(crate) fn mark_started(&self) {
        self.state.store(RUNNING, Ordering::Release);
    }

    /// `RUNNING -> DONE` (the body returned, on the owner) or `FRESH -> DONE` (it could not
    /// start, on the worker that took it). It never runs again.
    #[inline]
    pub(crate) fn mark_done(&self) {
        self.state.store(DONE, Ordering::Release);
    }

    /// `NOTIFIED -> RUNNING` on the running coroutine's way into a park: true if a token was
    /// waiting (consumed), so the park returns at once. The load only filters (a stale RUNNING
    /// is caught by the PARKED CAS in [`try_park`](Self::try_park)); the token itself is
    /// always taken by an RMW.
    #[inline]
    pub(crate) fn take_token(&self) -> bool {
        self.state.load(Ordering::Relaxed) == NOTIFIED
            && self
                .state
                .compare_exchange(NOTIFIED, RUNNING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// `RUNNING -> PARKED` by the running coroutine itself: true if it is now parked (the
    /// caller switches away). False if it was unparked on its way here: the token has then
    /// been consumed (`NOTIFIED -> RUNNING`) and the park returns at once.
    #[inline]
    pub(crate) fn try_park(&self) -> bool {
        if self
            .state
            .compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return true;
        }
        // Unparked between the check above and now: the state is NOTIFIED; consume the token.
        // A read-modify-write, not a store: another `unpark` may have rewritten NOTIFIED after
        // the failed CAS read it (the no-op RMW of `unpark`), and only an RMW reads that
        // latest value and so acquires its caller's writes. A plain store here read from no
        // one: the token's first giver could be a stray unpark, the second one the waker that
        // had just made our condition true, and we would re-check it stale and park for good.
        let was = self.state.swap(RUNNING, Ordering::Acquire);
        debug_assert_eq!(was, NOTIFIED, "only the coroutine itself leaves NOTIFIED");
        false
    }

    /// Make the coroutine runnable if it is parked, or leave it a token if it runs; any
    /// thread. True if it was PARKED (now RUNNABLE): the caller must queue it on its owner.
    ///
    /// Every outcome is a read-modify-write of `state`, including the ones that change nothing
    /// (RUNNABLE or NOTIFIED already: it will run and re-check). A plain load there would let the
    /// caller's earlier store (the condition the target waits for) be reordered after it: the
    /// target could consume the old token, re-check before that store is visible, and park for
    /// good (seen as a hang of skynet on 2 workers). The RMW releases the caller's writes to
    /// whoever next acquires `state`: the target's own CAS when it consumes the token, or its
    /// worker's load when it runs it.
    #[inline]
    pub(crate) fn unpark(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let next = match s {
                RUNNING => NOTIFIED,
                PARKED => RUNNABLE,
                RUNNABLE | NOTIFIED => s,
                _ => return false, // FRESH: has not waited on anything yet; DONE: never runs again
            };
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        s == PARKED
    }

    /// `PARKED -> RUNNABLE` when the park's deadline passed (its owner, from its timeout
    /// heap): true if the caller must queue it (it was still parked).
    #[inline]
    pub(crate) fn wake_on_timeout(&self) -> bool {
        self.state
            .compare_exchange(PARKED, RUNNABLE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// `RUNNABLE -> RUNNING` by the owner that popped the started coroutine from its queue
    /// (a coroutine that yielded is queued while RUNNING or NOTIFIED and stays so).
    ///
    /// # Panics
    /// If the coroutine was queued in any other state (a goro bug).
    #[inline]
    pub(crate) fn resume_from_queue(&self) {
        // RUNNABLE -> RUNNING is a read-modify-write, not a store: it acquires the
        // writes of every `unpark` that found it RUNNABLE (see `unpark`). The
        // load first spares a yielded coroutine (RUNNING or NOTIFIED: those states
        // only its own park leaves) a failing locked instruction on every `gosched`.
        match self.state.load(Ordering::Acquire) {
            RUNNING | NOTIFIED => {} // it yielded
            _ => match self.state.compare_exchange(
                RUNNABLE,
                RUNNING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) | Err(RUNNING | NOTIFIED) => {}
                Err(s) => panic!(
                    "goro internal error: coroutine {} queued in state {s}",
                    self.id
                ),
            },
        }
    }

    /// Whether the coroutine is parked now (Acquire).
    #[inline]
    pub(crate) fn is_parked(&self) -> bool {
        self.state.load(Ordering::Acquire) == PARKED
    }
}
