//! [`ThreadSlot`]: the handle of the OS thread that runs a worker now, for waking it.
//!
//! A retired worker's thread exits once it hosts no coroutine, and a later `gomaxprocs` raise
//! starts a new thread for the same worker, so the handle must be replaceable while wakers
//! read it without a lock. A replaced handle is leaked, never freed: a waker may still hold a
//! reference to it (unparking an ended thread is harmless). That costs one small allocation
//! per worker restart.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::thread::Thread;

pub(crate) struct ThreadSlot(AtomicPtr<Thread>);

impl ThreadSlot {
    pub(crate) const fn new() -> ThreadSlot {
        ThreadSlot(AtomicPtr::new(std::ptr::null_mut()))
    }

    /// The thread to wake, once one was published.
    pub(crate) fn get(&self) -> Option<&Thread> {
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: a non-null pointer came from `Box::into_raw` in `set` and is never freed.
        unsafe { p.as_ref() }
    }

    /// Publish `t` as the thread to wake (a no-op if it is published already).
    pub(crate) fn set(&self, t: Thread) {
        if self.get().is_some_and(|cur| cur.id() == t.id()) {
            return;
        }
        let _leaked = self.0.swap(Box::into_raw(Box::new(t)), Ordering::AcqRel);
    }
}
