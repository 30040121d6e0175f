//! [`Pool`]: Go's `sync.Pool`, a set of reusable objects.
//!
//! A lock-free queue (`crossbeam_queue::SegQueue`) of idle objects plus a constructor. `get`
//! pops an idle object or makes a new one; the returned [`PoolGuard`] pushes it back when
//! dropped. Unlike Go's pool (which the GC may empty at any time), objects stay until reused or
//! the pool is dropped; the pool never holds more than [`Pool::MAX_IDLE`] idle objects (extra
//! ones are dropped), so a burst does not pin memory forever.
//!
//! Invariant: each object is owned by exactly one of the idle queue, one live guard, or the
//! caller (after `into_inner`, or before `put`); the pool never hands one object out twice.

use std::fmt;
use std::ops::{Deref, DerefMut};

use crossbeam_queue::ArrayQueue;

/// A pool of reusable `T`s (Go's `sync.Pool`). `Send + Sync` when `T: Send`.
///
/// ```
/// let pool = goro::sync::Pool::new(Vec::<u8>::new);
/// {
///     let mut buf = pool.get();
///     buf.extend_from_slice(b"hello");
/// } // back into the pool
/// let buf = pool.get();
/// assert_eq!(&buf[..], b"hello"); // reused, as is (reset it yourself, as in Go)
/// ```
pub struct Pool<T> {
    idle: ArrayQueue<T>,
    make: Box<dyn Fn() -> T + Send + Sync>,
}

impl<T> Pool<T> {
    /// The most idle objects a pool keeps.
    pub const MAX_IDLE: usize = 1024;

    /// An empty pool that calls `make` when it has no idle object to hand out.
    pub fn new(make: impl Fn() -> T + Send + Sync + 'static) -> Pool<T> {
        Pool {
            idle: ArrayQueue::new(Self::MAX_IDLE),
            make: Box::new(make),
        }
    }

    /// An idle object, or a new one; it returns to the pool when the guard is dropped.
    pub fn get(&self) -> PoolGuard<'_, T> {
        let value = self.idle.pop().unwrap_or_else(|| (self.make)());
        PoolGuard {
            pool: self,
            value: Some(value),
        }
    }

    /// Add an object to the pool (dropped if the pool is full).
    pub fn put(&self, value: T) {
        let _ = self.idle.push(value);
    }

    /// Number of idle objects now (a snapshot).
    pub fn idle(&self) -> usize {
        self.idle.len()
    }
}

impl<T> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.idle.len())
            .finish_non_exhaustive()
    }
}

/// An object borrowed from a [`Pool`]; goes back to the pool when dropped.
pub struct PoolGuard<'a, T> {
    pool: &'a Pool<T>,
    value: Option<T>,
}

impl<T> PoolGuard<'_, T> {
    /// Keep the object: it will not return to the pool.
    pub fn into_inner(mut self) -> T {
        self.value
            .take()
            .expect("PoolGuard holds a value until dropped")
    }
}

impl<T> Deref for PoolGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
            .as_ref()
            .expect("PoolGuard holds a value until dropped")
    }
}

impl<T> DerefMut for PoolGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
            .as_mut()
            .expect("PoolGuard holds a value until dropped")
    }
}

impl<T> Drop for PoolGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(v) = self.value.take() {
            self.pool.put(v);
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for PoolGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
