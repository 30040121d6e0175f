//! The cooperative budget: a coroutine that keeps calling goro operations which never park
//! lets the other coroutines of its worker run now and then.
//!
//! goro cannot preempt a coroutine, so a coroutine runs until it parks, yields or finishes. A
//! loop of operations that always succeed at once — `try_send`/`try_recv`/`try_iter`, a send on
//! an unbounded channel, a buffered send or receive that never has to wait, a `select!` with a
//! `default` arm, an uncontended `sync::Mutex`, a socket read that finds data — never does, so
//! a coroutine it woke on the same worker never ran: a producer spinning on `try_send` until
//! its consumer signals "done" livelocked, and one spinning on an unbounded `send` grew memory
//! until the OOM killer came (issue 9). tokio has the same problem and the same answer (its
//! coop budget); this is goro's version, without tokio's task-local plumbing:
//!
//! * Each worker thread has one counter, refilled to [`BUDGET`] whenever a coroutine is
//!   switched in (so a coroutine that parks or yields starts its next run with a full budget).
//! * Every such goro operation spends one unit on entry ([`spend`], inlined: a thread-local
//!   load, decrement and store, and a branch never taken until the budget is gone).
//! * When the budget is gone, the operation first yields as `gosched` does — but only if
//!   something else is runnable on this worker (its run queues, `runnext`, inbox, yielded slot,
//!   an expired timeout, or the global queue); otherwise it refills and carries on, so a
//!   coroutine alone on its worker pays nothing and still shows up in the monitor's "running
//!   without yielding" report if it spins (operations are not progress; only switches are).
//!   That check lives in `sched/mod.rs` (`budget_spent`), this file holds only the counter.
//!
//! What counts: channel sends, receives and selections (`Sender`/`Receiver` operations,
//! `Select`, `select!`), `sync::Mutex`/`RwLock` lock and try-lock and `Semaphore` acquire (one
//! unit per critical section: a coroutine that locks and unlocks a mutex in a loop would
//! otherwise keep the waiter it woke from ever running, and Go's starvation mode cannot help a
//! waiter that never runs), and every `goro::io`/`goro::net` operation (a syscall each, so the
//! unit is free). What does not: observers (`len`, `is_closed`, `Context::err`), unlocks, and
//! goro's internal uses of these operations (timers draining their channel under a lock must not
//! yield there).
//!
//! Plain threads spend too (the counter exists on every thread) but never yield: their
//! exhausted budget is just refilled. Because an operation may now yield, do not hold a `std`
//! lock (or a `RefCell` borrow of a thread-local) across a goro operation that another
//! coroutine of the same worker could want — the rule for every blocking goro call already.
//!
//! Soundness of the inlined thread-local access: the rule that runtime thread-locals are read
//! through `#[inline(never)]` accessors exists because a cached thread-local address must never
//! outlive a move to another thread; a started coroutine never leaves its worker, and the
//! counter is only read and written between switches (no reference to it is held), so even a
//! cached address would still be this thread's.

use std::cell::Cell;

/// Operations that did not park a coroutine may perform before it offers to yield. 128, as
/// tokio: enough that the check and an occasional switch cost nothing measurable, few enough
/// that a woken partner waits at most a few microseconds.
pub(crate) const BUDGET: u32 = 128;

thread_local! {
    static LEFT: Cell<u32> = const { Cell::new(BUDGET) };
}

/// Spend one unit. True when that was the last one: the caller must [`refill`] and then offer
/// to yield. Written as a decrement and a test for zero so that it compiles to two
/// instructions (`sub $1, %fs:…` and a branch), with the refill out of line.
#[inline]
pub(crate) fn take() -> bool {
    LEFT.with(|l| {
        let n = l.get().wrapping_sub(1);
        l.set(n);
        n == 0
    })
}

/// Give the coroutine about to run on this thread a full budget (worker loop, at switch-in;
/// and after [`take`] used the last unit).
#[inline]
pub(crate) fn refill() {
    LEFT.with(|l| l.set(BUDGET));
}
