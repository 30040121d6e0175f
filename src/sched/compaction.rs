//! When idle stacks are compacted (the mechanism and its safety rule: `stack::compact`).
//!
//! Policy: a coroutine waiting in an eligible park (`park::park_idle*`: I/O readiness,
//! `sleep`, channel operations and `select`, `sync` waits and joins; the list and its proof
//! are in `stack::compact`) for at least `GORO_COMPACT_AFTER` (default 100 ms; `off`
//! disables it) has its stack compacted by its owner worker, in that worker's idle time, in one pass over the
//! worker's registry. A short park is never compacted, so the hand-over paths pay nothing
//! but one flag store per eligible park. The owner restores a compacted stack right before
//! it resumes the coroutine (`WorkerLocal::run_co`). Nothing is compacted while the process
//! has a thread that is not goro's (see the rule in `stack::compact`), nor on the corosensei
//! backend (no exact saved stack pointer).
//!
//! Backoff: a coroutine restored less than `SOON` (8) thresholds after it parked doubles its
//! own threshold, and more until it is at least twice that park's length (up to 64 times
//! `GORO_COMPACT_AFTER`), and one that stayed compacted longer halves it again. So a connection busy every few hundred ms stops paying a copy, a page
//! fault and a `madvise` per round trip after a few rounds (peers `conns`, 10 rounds over
//! 10,000 connections, lost a third of its round trips to that), while an idle one is
//! compacted after `GORO_COMPACT_AFTER` as before.
//!
//! Invariant: only the owner worker's thread reads or writes a coroutine's `idle_park`,
//! `compact_backoff` and `compacted` (the coroutine itself runs on that thread too, never at
//! the same time).

use std::sync::atomic::{AtomicU64, Ordering};

use super::shared::{coarse_now_ms, WorkerShared};
use crate::co::PARKED;

/// A coroutine restored after less than `SOON` times its threshold doubles its threshold,
/// up to `MAX_BACKOFF` doublings; one that stayed compacted longer halves it again.
const SOON: u64 = 8;
const MAX_BACKOFF: u8 = 6;
/// How soon a pass refused because a thread outside goro exists is retried, in ms.
const FOREIGN_RETRY_MS: u64 = 100;

/// Compactions and restores so far (process-wide, for tests and dumps).
static COMPACTED: AtomicU64 = AtomicU64::new(0);
static RESTORED: AtomicU64 = AtomicU64::new(0);

/// A coroutine's idle time before compaction: `after` doubled `backoff` times.
fn threshold_ms(after: u64, backoff: u8) -> u64 {
    after.saturating_mul(1 << backoff)
}

/// Compactions and restores so far, for `runtime::dump`.
pub(crate) fn totals() -> (u64, u64) {
    (
        COMPACTED.load(Ordering::Relaxed),
        RESTORED.load(Ordering::Relaxed),
    )
}

/// The idle time (ms) after which an eligible parked coroutine is compacted; `None`: off.
pub(crate) use crate::stack::compact::after_ms;

/// One pass over `shared`'s coroutines at coarse time `now_ms` (owner thread only, while it
/// runs no coroutine): compact every eligible one idle long enough. Returns the ms until the
/// next eligible one becomes due, if any.
pub(crate) fn pass(shared: &WorkerShared, now_ms: u64) -> Option<u64> {
    let after = after_ms()?;
    if crate::census::foreign_threads() {
        // Rule 2 of `stack::compact`. Such a thread may be one of goro's own that is starting
        // or ending (the kernel lists it before and after it counts itself), or a program's
        // own; retry, but no more often than every `FOREIGN_RETRY_MS` (an idle worker then
        // wakes that often for one read of `/proc/self/status`, a few microseconds).
        return Some(after.max(FOREIGN_RETRY_MS));
    }
    let reg = crate::util::lock(&shared.registry);
    let mut next: Option<u64> = None;
    // Flushed after the loop, before any coroutine of this worker can run (and restore).
    let mut release = crate::stack::release::Release::new();
    for co in reg.slots.iter().flatten() {
        if co.state.load(Ordering::Acquire) != PARKED {
            continue; // running, or woken and about to run: not idle
        }
        let inner = co.inner_ptr();
        // SAFETY: we are the owner worker's thread and no coroutine runs now, so nothing else
        // touches the coroutine's `CoInner` (see the module invariant).
        let (eligible, done, backoff) = unsafe {
            let i = &*inner;
            (i.idle_park, i.compacted.is_some(), i.compact_backoff)
        };
        if !eligible || done {
            continue;
        }
        let threshold = threshold_ms(after, backoff);
        let age = now_ms.saturating_sub(co.wait_since.load(Ordering::Relaxed));
        if age < threshold {
            let due = threshold - age;
            next = Some(next.map_or(due, |n| n.min(due)));
            continue;
        }
        // SAFETY: as above; the coroutine is suspended in an eligible park (rule 1), no foreign
        // thread exists (rule 2, checked above after it parked), and on the asm backend (the
        // only one with `after_ms` on) `suspended_sp` is its exact saved stack pointer (rule 3).
        unsafe {
            let Some(stack) = (*inner).stack.as_ref() else {
                continue;
            };
            let Some(ctx) = (*inner).ctx.as_ref() else {
                continue;
            };
            match crate::stack::compact::compact(stack, ctx.suspended_sp(), &mut release) {
                Some(c) => {
                    co.compacted_bytes.store(c.len() as u32, Ordering::Relaxed); // at most MAX_LIVE
                    (*inner).compacted = Some(c);
                    COMPACTED.fetch_add(1, Ordering::Relaxed);
                }
                // Does not pay, or no memory: leave it for this park.
                None => (*inner).idle_park = false,
            }
        }
    }
    drop(reg);
    release.flush();
    next
}

/// Put a compacted coroutine's stack back before it runs (owner thread only). `co` must be
/// the control block of a started coroutine of this worker that is about to be resumed.
pub(crate) fn restore(co: &crate::co::Co) {
    let inner = co.inner_ptr();
    // SAFETY: owner thread, the coroutine is not running (it is about to be resumed); see the
    // module invariant.
    unsafe {
        if let Some(c) = (*inner).compacted.take() {
            let stack = (*inner)
                .stack
                .as_ref()
                .expect("compacted coroutine without stack");
            // SAFETY: `c` came from `compact` on this stack and nothing touched it since.
            crate::stack::compact::restore(stack, c);
            // Woken soon after it was compacted: the copy and the page faults did not pay,
            // so wait longer next time (a connection that is busy every few hundred ms keeps
            // its stack after a few rounds); a long sleep earns the shorter threshold back.
            let after = after_ms().unwrap_or(0);
            let threshold = threshold_ms(after, (*inner).compact_backoff);
            let idle = coarse_now_ms().saturating_sub(co.wait_since.load(Ordering::Relaxed));
            let b = &mut (*inner).compact_backoff;
            if idle < threshold.saturating_mul(SOON) {
                // At least one doubling, and enough of them that a park as long as this one
                // would not be compacted again (twice its length): a connection served every
                // 200 ms is compacted once, not at 100, 200 and 400 ms thresholds in turn.
                let mut nb = *b + 1;
                while nb < MAX_BACKOFF && threshold_ms(after, nb) < idle.saturating_mul(2) {
                    nb += 1;
                }
                *b = nb.min(MAX_BACKOFF);
            } else {
                *b = b.saturating_sub(1);
            }
            co.compacted_bytes.store(0, Ordering::Relaxed);
            RESTORED.fetch_add(1, Ordering::Relaxed);
        }
    }
}
