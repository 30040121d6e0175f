//! [`Mutex`]: a mutual-exclusion lock whose waiters park (coroutine or thread) and that cannot
//! starve a waiter.
//!
//! # Design
//! The lock is one state word plus a FIFO of parked waiters (guarded by a leaf `std` mutex).
//! State bits:
//! - `LOCKED`: somebody holds the lock;
//! - `WOKEN`: one contender is awake and competing (a spinner, or a waiter just woken by an
//!   unlock), so an unlock need not wake another one;
//! - `STARVING`: hand-off mode (see below);
//! - `WAITERS`: the queue is non-empty (changed only under the queue lock, so it always equals
//!   `!queue.is_empty()` whenever the queue lock is free).
//!
//! *Normal mode* favours throughput: `lock` is one CAS `0 -> LOCKED` (and a second CAS, still
//! inline, when waiters are parked but the lock is free); `unlock` is one `fetch_sub`, and it
//! looks further only when a wake-up or a hand-off is due: if there are waiters and nobody is
//! awake it marks `WOKEN` and wakes the oldest waiter, which must then *compete* with
//! newly arriving lockers (who usually win: they are already running). Before parking, a
//! contender on a plain thread spins briefly (several CPUs only; a coroutine parks at once, see
//! `can_spin`), marking itself `WOKEN` so that unlocks do not pay for a wake-up it does not
//! need. A woken waiter that loses goes back to the *front* of the queue.
//!
//! *Starvation mode*: a waiter that has waited more than 1 ms (Go's threshold) sets `STARVING`
//! (only while the lock is held, so there is an unlock coming that will see it). While
//! `STARVING` is set nobody barges: arrivals queue at the back, and `unlock` hands ownership
//! directly to the head waiter (`LOCKED` stays clear until the grantee sets it: the lock counts
//! as held while `STARVING` is set). The grantee turns starvation mode off when it is the last
//! waiter or waited less than 1 ms. Hence a waiter is overtaken for at most about 1 ms plus the
//! queue ahead of it.
//!
//! Invariants: `STARVING` is set and cleared only under the queue lock (by a waiter that queues
//! itself while the lock is held, by a grantee, or by a starving unlock that finds the queue
//! empty), so a waiter that sees `STARVING` under the queue lock can always rely on some future
//! unlock or grant to reach it. `WOKEN` has at most one owner at a time.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::{Waiter, GRANTED};
use crate::util::lock;

const LOCKED: u32 = 1;
const WOKEN: u32 = 2;
const STARVING: u32 = 4;
const WAITERS: u32 = 8;

/// A waiter that has waited this long switches the mutex to hand-off mode.
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);
/// Spin rounds before parking (each round spins twice as long as the previous one).
const SPIN_ROUNDS: u32 = 5;

/// Whether to spin before parking: only on a plain OS thread on a multi-CPU machine.
///
/// A plain thread's park is a futex sleep and wake (microseconds), so a brief spin while the
/// holder runs on another CPU pays off. A coroutine's park is a cheap user-space switch that lets
/// its worker run other coroutines; spinning there mostly lets the spinner grab the lock and keep
/// two workers fighting over one cache line (Go avoids that by spinning only with an empty local
/// run queue, which goro's scheduler does not expose). Measured on the peers' `mutex` workload
/// (2 workers, 25 runs each): median 5.0 ns/op without coroutine spinning, 6.5 ns/op with it.
fn can_spin() -> bool {
    static NCPU: AtomicUsize = AtomicUsize::new(0);
    let mut n = NCPU.load(Relaxed);
    if n == 0 {
        n = std::thread::available_parallelism().map_or(1, |n| n.get());
        NCPU.store(n, Relaxed);
    }
    n > 1 && !crate::park::in_coroutine()
}

fn spin(round: u32) {
    for _ in 0..(4u32 << round) {
        std::hint::spin_loop();
    }
}

/// The lock without the data: shared by [`Mutex`] and [`Condvar`](super::Condvar).
pub(crate) struct RawMutex {
    state: AtomicU32,
    queue: std::sync::Mutex<VecDeque<Arc<Waiter>>>,
}

impl RawMutex {
    pub(crate) const fn new() -> RawMutex {
        RawMutex {
            state: AtomicU32::new(0),
            queue: std::sync::Mutex::new(VecDeque::new()),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) {
        // One CAS from 0 (no load first: measurably cheaper when nobody waits). If it fails
        // only because waiters are parked while the lock is free, one more CAS from the value
        // it returned takes the lock (normal mode lets a running locker barge) without a call.
        if let Err(s) = self
            .state
            .compare_exchange_weak(0, LOCKED, Acquire, Relaxed)
        {
            if s & (LOCKED | STARVING) != 0
                || self
                    .state
                    .compare_exchange_weak(s, s | LOCKED, Acquire, Relaxed)
                    .is_err()
            {
                self.lock_slow();
            }
        }
    }

    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let mut s = self.state.load(Relaxed);
        loop {
            if s & (LOCKED | STARVING) != 0 {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s | LOCKED, Acquire, Relaxed)
            {
                Ok(_) => return true,
                Err(cur) => s = cur,
            }
        }
    }

    /// Release the lock. The caller must hold it.
    #[inline]
    pub(crate) fn unlock(&self) {
        let new = self.state.fetch_sub(LOCKED, Release).wrapping_sub(LOCKED);
        // Only a hand-off (STARVING) or a wake-up (waiters, none awake, lock still free) needs
        // the slow path.
        if new & STARVING != 0 || new & (WAITERS | WOKEN | LOCKED) == WAITERS {
            self.unlock_slow(new);
        }
    }

    #[cold]
    fn lock_slow(&self) {
        let mut spins = 0u32;
        let mut awoke = false; // we own the WOKEN bit
        let mut starving = false;
        let mut since: Option<Instant> = None;
        // Decided lazily: most slow-path entries (waiters parked, lock free) never need it,
        // and asking the scheduler costs more than the whole uncontended lock.
        let mut may_spin: Option<bool> = None;
        loop {
            let s = self.state.load(Relaxed);
            if s & STARVING == 0 {
                if s & LOCKED == 0 {
                    let new = if awoke {
                        (s | LOCKED) & !WOKEN
                    } else {
                        s | LOCKED
                    };
                    if self
                        .state
                        .compare_exchange_weak(s, new, Acquire, Relaxed)
                        .is_ok()
                    {
                        return;
                    }
                    continue;
                }
                if spins < SPIN_ROUNDS && *may_spin.get_or_insert_with(can_spin) {
                    if !awoke
                        && s & (WOKEN | WAITERS) == WAITERS
                        && self
                            .state
                            .compare_exchange_weak(s, s | WOKEN, Relaxed, Relaxed)
                            .is_ok()
                    {
                        awoke = true;
                    }
                    spin(spins);
                    spins += 1;
                    continue;
                }
            }
            // Queue up and park.
            let mut q = lock(&self.queue);
            let s = self.state.load(Relaxed);
            if s & (LOCKED | STARVING) == 0 {
                continue; // released meanwhile: compete again (drops `q`)
            }
            let mut new = s | WAITERS;
            if awoke {
                new &= !WOKEN;
            }
            if starving && s & LOCKED != 0 {
                new |= STARVING;
            }
            if self
                .state
                .compare_exchange(s, new, Relaxed, Relaxed)
                .is_err()
            {
                continue;
            }
            let w = Waiter::new();
            if since.is_some() {
                q.push_front(w.clone()); // a woken waiter that lost keeps its place
            } else {
                q.push_back(w.clone());
            }
            let start = *since.get_or_insert_with(Instant::now);
            drop(q);
            if w.wait("sync.Mutex.Lock") == GRANTED {
                // Hand-off in starvation mode: the lock is ours; mark it held, and leave
                // starvation mode if nobody else is waiting or we did not wait long.
                let q = lock(&self.queue);
                let leave = q.is_empty() || start.elapsed() < STARVATION_THRESHOLD;
                let mut s = self.state.load(Relaxed);
                loop {
                    let mut new = s | LOCKED;
                    if leave {
                        new &= !STARVING;
                    }
                    match self.state.compare_exchange_weak(s, new, Acquire, Relaxed) {
                        Ok(_) => break,
                        Err(cur) => s = cur,
                    }
                }
                drop(q);
                return;
            }
            // RETRY: we now own WOKEN and compete again.
            awoke = true;
            spins = 0;
            starving = starving || start.elapsed() >= STARVATION_THRESHOLD;
        }
    }

    #[cold]
    fn unlock_slow(&self, mut s: u32) {
        if s & STARVING != 0 {
            // Hand the lock to the oldest waiter (LOCKED stays clear; STARVING keeps others out).
            let mut q = lock(&self.queue);
            match q.pop_front() {
                Some(w) => {
                    if q.is_empty() {
                        self.state.fetch_and(!WAITERS, Relaxed);
                    }
                    drop(q);
                    w.wake(GRANTED);
                }
                None => {
                    // Our waiter was woken by an earlier normal-mode unlock: back to normal.
                    self.state.fetch_and(!STARVING, Release);
                }
            }
            return;
        }
        loop {
            if s & WAITERS == 0 || s & (LOCKED | WOKEN | STARVING) != 0 {
                return;
            }
            match self
                .state
                .compare_exchange_weak(s, s | WOKEN, Relaxed, Relaxed)
            {
                Ok(_) => {
                    let mut q = lock(&self.queue);
                    let w = q.pop_front();
                    if q.is_empty() {
                        self.state.fetch_and(!WAITERS, Relaxed);
                    }
                    drop(q);
                    match w {
                        Some(w) => w.wake(super::waiter::RETRY),
                        None => {
                            self.state.fetch_and(!WOKEN, Relaxed);
                        }
                    }
                    return;
                }
                Err(cur) => s = cur,
            }
        }
    }

    fn is_locked(&self) -> bool {
        self.state.load(Relaxed) & (LOCKED | STARVING) != 0
    }
}

/// A mutual-exclusion lock protecting a `T` (Go's `sync.Mutex`, shaped like `std::sync::Mutex`).
///
/// Waiting parks the calling coroutine (its worker runs other coroutines) or blocks the calling
/// plain thread. There is no poisoning: a panic while the guard is held just unlocks. The lock
/// cannot starve a waiter: after 1 ms of waiting, ownership is handed over in FIFO order (Go's
/// starvation mode). Uncontended, `lock` and `unlock` are one atomic operation each.
///
/// ```
/// let m = goro::sync::Mutex::new(0);
/// *m.lock() += 1;
/// assert_eq!(*m.lock(), 1);
/// ```
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out access to `T` to one holder at a time, so it may be shared
// between threads when `T` may be sent between them (same bounds as std's Mutex).
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: moving the mutex moves the `T`; the lock state contains no thread-bound data.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consume the mutex and return the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Acquire the lock, parking until it is available.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        crate::park::coop_spend();
        self.raw.lock();
        MutexGuard {
            mutex: self,
            _not_send: PhantomData,
        }
    }

    /// Acquire the lock if it is free right now (never waits).
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        crate::park::coop_spend();
        if self.raw.try_lock() {
            Some(MutexGuard {
                mutex: self,
                _not_send: PhantomData,
            })
        } else {
            None
        }
    }

    /// Whether somebody holds the lock now (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Mutable access without locking (the `&mut` proves nobody else can hold the lock).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        // Not `try_lock`: formatting must not spend the budget (and so never yields).
        let g = self.raw.try_lock().then(|| MutexGuard {
            mutex: self,
            _not_send: PhantomData,
        });
        match g {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Access to the data of a locked [`Mutex`]; unlocks when dropped. `!Send`, like std's guard.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    pub(crate) mutex: &'a Mutex<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`, so sharing it is fine exactly when `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock, so no `&mut T` exists elsewhere.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves we hold the lock exclusively; `&mut self` makes this the
        // only live reference derived from it.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.raw.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
