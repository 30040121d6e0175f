//! [`RwLock`]: a reader-writer lock that cannot starve writers (nor readers).
//!
//! # Design
//! One state word plus two queues of parked waiters (readers, writers) under a leaf lock.
//! State: `WRITER` (a writer holds it), `WRITER_WAITING` (the writer queue is non-empty),
//! `READERS_WAITING` (the reader queue is non-empty), and the count of active readers in the
//! bits above (`READER` units).
//!
//! - `read` fast path: one CAS adding a reader, allowed only while no writer holds *or waits*
//!   (so a stream of readers cannot starve a writer). Otherwise the reader queues.
//! - `write` fast path: one CAS `0 -> WRITER`. Otherwise the writer queues.
//! - the last reader to leave while a writer waits hands the lock to the first queued writer;
//! - a writer's unlock first admits *every* queued reader at once (so a stream of writers
//!   cannot starve readers), else hands off to the next writer, else just unlocks.
//!
//! Hand-offs are direct: the waker updates the state on the waiter's behalf (reader count or
//! `WRITER`) before waking it, so a woken waiter never competes again.
//!
//! Invariants: the two `*_WAITING` bits change only under the queue lock and then equal
//! "that queue is non-empty"; readers queue only while `WRITER` or `WRITER_WAITING` is set.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;

use super::waiter::Waiter;
use crate::util::lock;

const WRITER: usize = 1;
const WRITER_WAITING: usize = 2;
const READERS_WAITING: usize = 4;
const READER: usize = 8;

#[derive(Default)]
struct Queues {
    readers: Vec<Arc<Waiter>>,
    writers: VecDeque<Arc<Waiter>>,
}

struct RawRwLock {
    state: AtomicUsize,
    queues: std::sync::Mutex<Queues>,
}

impl RawRwLock {
    const fn new() -> Self {
        RawRwLock {
            state: AtomicUsize::new(0),
            queues: std::sync::Mutex::new(Queues {
                readers: Vec::new(),
                writers: VecDeque::new(),
            }),
        }
    }

    /// Apply `f` to the state atomically (slow paths only).
    fn update(&self, order: std::sync::atomic::Ordering, f: impl Fn(usize) -> usize) {
        let mut s = self.state.load(Relaxed);
        while let Err(cur) = self.state.compare_exchange_weak(s, f(s), order, Relaxed) {
            s = cur;
        }
    }

    #[inline]
    fn try_read(&self) -> bool {
        let mut s = self.state.load(Relaxed);
        loop {
            if s & (WRITER | WRITER_WAITING) != 0 {
                return false;
            }
            let new = s
                .checked_add(READER)
                .expect("goro: too many RwLock readers");
            match self.state.compare_exchange_weak(s, new, Acquire, Relaxed) {
                Ok(_) => return true,
                Err(cur) => s = cur,
            }
        }
    }

    #[inline]
    fn read(&self) {
        let s = self.state.load(Relaxed);
        if s & (WRITER | WRITER_WAITING | READERS_WAITING) != 0
            || self
                .state
                .compare_exchange_weak(s, s + READER, Acquire, Relaxed)
                .is_err()
        {
            self.read_slow();
        }
    }

    #[cold]
    fn read_slow(&self) {
        loop {
            if self.try_read() {
                return;
            }
            let mut q = lock(&self.queues);
            let s = self.state.load(Relaxed);
            if s & (WRITER | WRITER_WAITING) == 0 {
                continue; // became readable: retry (drops `q`)
            }
            if self
                .state
                .compare_exchange(s, s | READERS_WAITING, Relaxed, Relaxed)
                .is_err()
            {
                continue;
            }
            let w = Waiter::new();
            q.readers.push(w.clone());
            drop(q);
            // Woken only by a writer's unlock, which has counted us in.
            w.wait("sync.RWMutex.RLock");
            return;
        }
    }

    #[inline]
    fn read_unlock(&self) {
        let prev = self.state.fetch_sub(READER, Release);
        if prev & !(READER - 1) == READER && prev & WRITER_WAITING != 0 {
            self.read_unlock_slow();
        }
    }

    #[cold]
    fn read_unlock_slow(&self) {
        let mut q = lock(&self.queues);
        let s = self.state.load(Relaxed);
        if s & WRITER != 0 || s >= READER || s & WRITER_WAITING == 0 {
            return; // someone else already took care of it
        }
        let w = q
            .writers
            .pop_front()
            .expect("WRITER_WAITING implies a queued writer");
        let empty = q.writers.is_empty();
        self.update(Acquire, |s| {
            let s = s | WRITER;
            if empty {
                s & !WRITER_WAITING
            } else {
                s
            }
        });
        drop(q);
        w.wake(super::waiter::GRANTED);
    }

    #[inline]
    fn try_write(&self) -> bool {
        self.state
            .compare_exchange(0, WRITER, Acquire, Relaxed)
            .is_ok()
    }

    #[inline]
    fn write(&self) {
        if self
            .state
            .compare_exchange_weak(0, WRITER, Acquire, Relaxed)
            .is_err()
        {
            self.write_slow();
        }
    }

    #[cold]
    fn write_slow(&self) {
        loop {
            let mut q = lock(&self.queues);
            let s = self.state.load(Relaxed);
            if s & WRITER == 0 && s < READER {
                if self
                    .state
                    .compare_exchange(s, s | WRITER, Acquire, Relaxed)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            if self
                .state
                .compare_exchange(s, s | WRITER_WAITING, Relaxed, Relaxed)
                .is_err()
            {
                continue;
            }
            let w = Waiter::new();
            q.writers.push_back(w.clone());
            drop(q);
            // Woken only by a hand-off that set WRITER for us.
            w.wait("sync.RWMutex.Lock");
            return;
        }
    }

    #[inline]
    fn write_unlock(&self) {
        if self
            .state
            .compare_exchange(WRITER, 0, Release, Relaxed)
            .is_err()
        {
            self.write_unlock_slow();
        }
    }

    #[cold]
    fn write_unlock_slow(&self) {
        let mut q = lock(&self.queues);
        if !q.readers.is_empty() {
            let readers = std::mem::take(&mut q.readers);
            let n = readers.len();
            self.update(AcqRel, |s| (s & !(WRITER | READERS_WAITING)) + n * READER);
            drop(q);
            for r in readers {
                r.wake(super::waiter::GRANTED);
            }
        } else if let Some(w) = q.writers.pop_front() {
            if q.writers.is_empty() {
                self.state.fetch_and(!WRITER_WAITING, Relaxed);
            }
            drop(q);
            w.wake(super::waiter::GRANTED);
        } else {
            self.state.fetch_and(!WRITER, Release);
        }
    }
}

/// A reader-writer lock (Go's `sync.RWMutex`, shaped like `std::sync::RwLock`).
///
/// Any number of readers or one writer. Waiting parks the coroutine or blocks the plain thread.
/// Writer-preferring without starving readers: once a writer waits, new readers queue behind it;
/// when a writer unlocks, all readers that queued meanwhile go first. Not reentrant: a reader
/// that takes `read` again while a writer waits deadlocks (as in Go). No poisoning.
pub struct RwLock<T: ?Sized> {
    raw: RawRwLock,
    data: UnsafeCell<T>,
}

// SAFETY: readers on several threads share `&T` (needs `T: Sync`), a writer gets `&mut T` on any
// thread (needs `T: Send`): the same bounds as std's RwLock.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}
// SAFETY: moving the lock moves the `T`; the state contains no thread-bound data.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}

impl<T> RwLock<T> {
    /// A new unlocked lock holding `value`.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            raw: RawRwLock::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consume the lock and return the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, parking while a writer holds or waits for the lock.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        crate::park::coop_spend();
        self.raw.read();
        RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Exclusive access, parking until all readers and writers are gone.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    #[inline]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        crate::park::coop_spend();
        self.raw.write();
        RwLockWriteGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Shared access if available now (no writer holds or waits).
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        crate::park::coop_spend();
        self.raw.try_read().then(|| RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// Exclusive access if the lock is free now.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        crate::park::coop_spend();
        self.raw.try_write().then(|| RwLockWriteGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// Mutable access without locking (the `&mut` proves nobody else holds the lock).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> Self {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        // Not `try_read`: formatting must not spend the budget (and so never yields).
        let g = self.raw.try_read().then(|| RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        });
        match g {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Shared access to an [`RwLock`]'s data; releases the read lock when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

/// Exclusive access to an [`RwLock`]'s data; releases the write lock when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared read guard only gives `&T`: shareable exactly when `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: a shared write guard only gives `&T`: shareable exactly when `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold a read lock, so no writer (no `&mut T`) exists until we drop it.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.read_unlock();
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the write lock: no other reference to the data exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: we hold the write lock exclusively and `&mut self` is the only path to it.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
