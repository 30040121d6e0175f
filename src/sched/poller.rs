//! The scheduler's hook for an I/O poller (the netpoller of `crate::io`), so that the scheduler
//! never imports the I/O layer: `io` registers itself here on its first fd registration, and the
//! scheduler only calls the two methods of [`Poller`].
//!
//! How the scheduler uses it:
//! - a worker about to go idle polls without blocking ([`poll_now`]);
//! - at most one sleeping worker blocks in the poller instead of `thread::park` ([`claim`] /
//!   [`block`] / [`release`]); whoever wakes that worker also interrupts the poll ([`kick`]);
//! - the monitor polls without blocking when nobody has polled for ~10 ms ([`poll_if_stale`]).
//!
//! A program that never does I/O pays one acquire load of an empty `OnceLock` where the hook is
//! consulted, and nothing else (no epoll instance exists).
//!
//! Invariant (no lost wake-up of the blocked worker): the worker stores `sleeping`, then claims
//! [`BLOCKED`], then (SeqCst fence) checks for work, then blocks; a waker queues work, then
//! (SeqCst fence) reads `sleeping` and [`BLOCKED`]. Either the worker sees the work or the waker
//! sees the claim and interrupts the poll (an interrupt that lands before the poll starts makes
//! it return at once).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// An I/O poller the scheduler can drive.
pub(crate) trait Poller: Sync {
    /// Wait for I/O readiness up to `timeout` (`None`: until interrupted; `Some(ZERO)`: do not
    /// block) and wake the coroutines and threads it made ready. Returns how many it woke.
    fn poll(&self, timeout: Option<Duration>) -> usize;
    /// Make a concurrent or the next blocking [`Poller::poll`] return at once.
    fn wake(&self);
    /// Whether any coroutine waits on I/O (so `run`'s deadlock detector stays quiet).
    fn has_waiters(&self) -> bool;
    /// `(coroutine id, what it waits for)` for every coroutine waiting on I/O, for dumps.
    fn describe_waits(&self) -> Vec<(u64, String)> {
        Vec::new()
    }
}

/// The wait reason of a coroutine parked on I/O (the poller says what on, for dumps).
pub(crate) const IO_WAIT: &str = "IO wait";

static POLLER: OnceLock<&'static dyn Poller> = OnceLock::new();

/// `index + 1` of the worker that blocks (or is about to block) in the poller; 0 = none.
static BLOCKED: AtomicUsize = AtomicUsize::new(0);

/// Coarse ms (the callers' `sched::shared::coarse_now_ms`) of the latest poll that started.
static LAST_POLL_MS: AtomicU64 = AtomicU64::new(0);

/// Install the poller (the first call wins; later ones are ignored).
pub(crate) fn register(p: &'static dyn Poller) {
    let _ = POLLER.set(p);
}

/// The poller, if one is installed.
#[inline]
pub(crate) fn get() -> Option<&'static dyn Poller> {
    POLLER.get().copied()
}

/// Poll without blocking; `now_ms` is the scheduler's coarse clock. Returns how many
/// coroutines or threads were woken.
pub(crate) fn poll_now(now_ms: u64) -> usize {
    match get() {
        Some(p) => {
            LAST_POLL_MS.store(now_ms, Ordering::Relaxed);
            p.poll(Some(Duration::ZERO))
        }
        None => 0,
    }
}

/// Try to become the one worker that blocks in the poller. False when there is no poller or
/// another worker holds the role.
pub(crate) fn claim(index: usize) -> bool {
    get().is_some()
        && BLOCKED
            .compare_exchange(0, index + 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
}

/// Give the role up again (only the worker that claimed it calls this).
pub(crate) fn release(index: usize) {
    let _ = BLOCKED.compare_exchange(index + 1, 0, Ordering::SeqCst, Ordering::Relaxed);
}

/// Block in the poller for up to `timeout` (the caller holds the role); `now_ms` is the
/// scheduler's coarse clock. Returns how many it woke.
pub(crate) fn block(now_ms: u64, timeout: Option<Duration>) -> usize {
    match get() {
        Some(p) => {
            LAST_POLL_MS.store(now_ms, Ordering::Relaxed);
            p.poll(timeout)
        }
        None => 0,
    }
}

/// Interrupt the poll if worker `index` blocks in it. Called by whoever wakes that worker.
#[inline]
pub(crate) fn kick(index: usize) {
    if BLOCKED.load(Ordering::SeqCst) == index + 1 {
        if let Some(p) = get() {
            p.wake();
        }
    }
}

/// The monitor's fallback: poll without blocking when no worker blocks in the poller and the
/// last poll started `stale_ms` or more ago.
pub(crate) fn poll_if_stale(now_ms: u64, stale_ms: u64) {
    if get().is_some()
        && BLOCKED.load(Ordering::SeqCst) == 0
        && now_ms.saturating_sub(LAST_POLL_MS.load(Ordering::Relaxed)) >= stale_ms
    {
        poll_now(now_ms);
    }
}
