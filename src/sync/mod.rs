//! Go's `sync` package for coroutines and plain threads: [`WaitGroup`], [`Mutex`], [`RwLock`],
//! [`Condvar`], [`Once`], [`Semaphore`] and [`Pool`].
//!
//! Every wait goes through `park/mod.rs` (the crate's one wait/wake primitive): a blocked coroutine
//! is suspended and its worker thread runs other coroutines; a blocked plain thread blocks.
//! Both kinds may meet on the same primitive.
//!
//! Lock and acquire calls (`Mutex`, `RwLock`, `Semaphore`, their `try_` forms) count against
//! the cooperative budget (see [`crate::gosched`]): a coroutine that locks and unlocks in a
//! loop yields now and then, so the waiter its unlock woke on the same worker gets to run.
//!
//! Common shape of the slow paths: each primitive keeps its waiters in a small queue guarded by
//! a `std::sync::Mutex` that is held only for a few instructions and never across a park. A
//! waiter is an `Arc<Waiter>` (a `park::OneShot` armed for it: its `Unparker` plus a state word). It is pushed onto the queue
//! *before* the waiter re-checks and parks, and the waker changes its state *before* unparking
//! it, so a wake-up can never be lost; the waiter loops on its state word, so spurious returns
//! from `park` are harmless.
//!
//! Invariants shared by all primitives here:
//! - no poisoning: a panic while a guard is held unlocks (the guard's `Drop` runs);
//! - a waker removes a waiter from its queue before waking it, so each queued waiter is woken
//!   at most once per enqueue;
//! - the internal queue locks are leaf locks: no user code and no other lock runs under them.

mod condvar;
mod mutex;
mod once;
mod pool;
mod rwlock;
mod semaphore;
mod waiter;
mod waitgroup;

pub use condvar::Condvar;
pub use mutex::{Mutex, MutexGuard};
pub use once::Once;
pub use pool::{Pool, PoolGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphoreGuard};
pub use waitgroup::WaitGroup;
