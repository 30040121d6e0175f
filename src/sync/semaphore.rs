//! [`Semaphore`]: a counting semaphore whose waiters park, served in FIFO order.
//!
//! Permits and the waiter queue live under one leaf lock. A released permit goes *directly* to
//! the oldest waiter (it never becomes visible as available while someone waits), so a waiter
//! cannot be overtaken by later arrivals. Invariant: `permits > 0` implies the queue is empty.

use std::collections::VecDeque;
use std::sync::Arc;

use super::waiter::Waiter;
use crate::util::lock;

struct State {
    permits: usize,
    waiters: VecDeque<Arc<Waiter>>,
}

/// A counting semaphore (Go's buffered-channel-as-semaphore idiom, or `x/sync/semaphore`).
///
/// ```
/// let sem = goro::sync::Semaphore::new(2);
/// let a = sem.acquire();
/// let _b = sem.acquire();
/// assert!(sem.try_acquire().is_none());
/// drop(a);
/// assert_eq!(sem.available(), 1);
/// ```
pub struct Semaphore {
    state: std::sync::Mutex<State>,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .finish()
    }
}

impl Semaphore {
    /// A semaphore with `permits` permits available.
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: std::sync::Mutex::new(State {
                permits,
                waiters: VecDeque::new(),
            }),
        }
    }

    /// Take one permit, parking until one is available. The guard gives it back when dropped.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        crate::park::coop_spend();
        let mut st = lock(&self.state);
        if st.permits > 0 {
            st.permits -= 1;
            return SemaphoreGuard { sem: self };
        }
        let w = Waiter::new();
        st.waiters.push_back(w.clone());
        drop(st);
        // Woken only by a release that handed its permit to us.
        w.wait("semacquire");
        SemaphoreGuard { sem: self }
    }

    /// Take one permit if one is available now.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        crate::park::coop_spend();
        let mut st = lock(&self.state);
        if st.permits > 0 {
            st.permits -= 1;
            Some(SemaphoreGuard { sem: self })
        } else {
            None
        }
    }

    /// Permits available right now (a snapshot).
    pub fn available(&self) -> usize {
        lock(&self.state).permits
    }

    /// Add `n` permits: the oldest waiters (up to `n`) get one each, the rest become
    /// available. Costs one lock and one wake-up per waiter served, whatever `n` is.
    ///
    /// # Panics
    /// If the available permits would exceed `usize::MAX`; nothing changes then.
    pub fn add_permits(&self, n: usize) {
        let mut st = lock(&self.state);
        let served = n.min(st.waiters.len());
        // Waiters exist only while no permit is available, so only the rest can overflow.
        let Some(permits) = st.permits.checked_add(n - served) else {
            drop(st);
            panic!("Semaphore::add_permits({n}): more than usize::MAX permits available");
        };
        st.permits = permits;
        let woken: Vec<_> = st.waiters.drain(..served).collect();
        drop(st);
        for w in woken {
            w.wake(super::waiter::GRANTED);
        }
    }

    fn release(&self) {
        let mut st = lock(&self.state);
        match st.waiters.pop_front() {
            Some(w) => {
                drop(st);
                w.wake(super::waiter::GRANTED);
            }
            None => match st.permits.checked_add(1) {
                Some(p) => st.permits = p,
                None => {
                    drop(st);
                    panic!("Semaphore: a permit returned with usize::MAX already available");
                }
            },
        }
    }
}

/// One permit of a [`Semaphore`]; returned when dropped.
#[must_use = "if unused the permit is released at once"]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
}

impl SemaphoreGuard<'_> {
    /// Keep the permit taken forever (it is not returned on drop).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        self.sem.release();
    }
}

impl std::fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}
