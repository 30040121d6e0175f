//! The one wait/wake primitive of goro, for coroutines and plain threads alike.
//!
//! Every blocking operation in the crate (join, sleep, channels, select, sync, context, signals)
//! is built on the same three calls and the same discipline:
//!
//! 1. take a handle to yourself with [`current`] and *publish* it where a waker will find it
//!    (a channel's waiter list, a mutex queue, a timer);
//! 2. *re-check* the condition you are waiting for (it may have become true before you published);
//! 3. [`park`] (or [`park_until`]) and, when it returns, go back to 2.
//!
//! A waker calls [`Unparker::unpark`] after making the condition true. `unpark` deposits a
//! *token*: if the target is not parked yet (it is between steps 1 and 3), its next `park`
//! returns at once, so a wake-up can never be lost. `park` may also return spuriously (a
//! token left over from an earlier, abandoned wait, or a timer), so callers always loop on
//! their condition; they never treat a return from `park` as proof of anything.
//!
//! On a coroutine, `park` suspends the coroutine and its worker thread runs others; `unpark`
//! makes it runnable again *on the worker it started on* (a started coroutine never migrates:
//! see `sched`). On a plain OS thread, `park` blocks the thread (`std::thread::park`).
//!
//! Invariants:
//! - a token is consumed by exactly one `park` return; tokens do not accumulate (at most one);
//! - `unpark` never blocks, never allocates on the coroutine path, and may be called from any
//!   thread, from a coroutine, or from a timer callback;
//! - an `Unparker` may outlive its target: unparking a finished coroutine or an exited thread
//!   does nothing.

use std::fmt;
use std::time::Instant;

use crate::sched;

/// What a parked coroutine or thread is waiting on, for `runtime::dump()` and deadlock reports.
/// Go's wait reasons ("chan receive", "select", "sleep", "sync.Mutex.Lock", ...) are the model.
pub(crate) type WaitReason = &'static str;

/// A handle that wakes one coroutine or one plain thread. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Unparker {
    target: Target,
}

#[derive(Clone)]
enum Target {
    Coroutine(sched::CoRef),
    Thread(std::thread::Thread),
}

impl Unparker {
    /// Make the target runnable, or make its next `park` return at once.
    pub(crate) fn unpark(&self) {
        match &self.target {
            Target::Coroutine(co) => sched::unpark(co),
            Target::Thread(t) => t.unpark(),
        }
    }

    /// Whether both handles wake the same coroutine or thread.
    pub(crate) fn same_target(&self, other: &Unparker) -> bool {
        match (&self.target, &other.target) {
            (Target::Coroutine(a), Target::Coroutine(b)) => sched::CoRef::ptr_eq(a, b),
            (Target::Thread(a), Target::Thread(b)) => a.id() == b.id(),
            _ => false,
        }
    }

    /// Whether the target is a coroutine (as opposed to a plain thread).
    #[allow(dead_code)]
    pub(crate) fn is_coroutine(&self) -> bool {
        matches!(self.target, Target::Coroutine(_))
    }
}

impl fmt::Debug for Unparker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Coroutine(co) => write!(f, "Unparker(coroutine {})", co.id),
            Target::Thread(t) => write!(f, "Unparker(thread {:?})", t.id()),
        }
    }
}

/// A handle to the calling coroutine, or to the calling thread outside coroutines.
pub(crate) fn current() -> Unparker {
    let target = match sched::current_coroutine() {
        Some(co) => Target::Coroutine(co),
        None => Target::Thread(std::thread::current()),
    };
    Unparker { target }
}

/// Whether the caller runs on a goro coroutine.
pub(crate) fn in_coroutine() -> bool {
    sched::in_coroutine()
}

/// Block until a token is available (consuming it). May return spuriously: loop on your condition.
pub(crate) fn park(reason: WaitReason) {
    if sched::in_coroutine() {
        sched::park_current(reason, None);
    } else {
        sched::thread_blocked(reason, || std::thread::park());
    }
}

/// As [`park`], but returns no later than (about) `deadline`. Returns spuriously too: the caller
/// compares `Instant::now()` with its deadline itself.
pub(crate) fn park_until(deadline: Instant, reason: WaitReason) {
    if sched::in_coroutine() {
        sched::park_current(reason, Some(deadline));
    } else {
        // A thread with a deadline is not "blocked forever": not counted as blocked.
        let _ = reason;
        sched::note_plain_thread();
        let now = Instant::now();
        if deadline > now {
            std::thread::park_timeout(deadline - now);
        }
    }
}

/// Park until `cond()` is true. `cond` is re-checked after every wake-up; the caller must have
/// published [`current()`] where the waker will find it *before* calling this.
#[allow(dead_code)]
pub(crate) fn park_while(reason: WaitReason, mut blocked: impl FnMut() -> bool) {
    while blocked() {
        park(reason);
    }
}
