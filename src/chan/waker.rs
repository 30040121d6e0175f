//! The waiter lists of one side of one channel: [`Waker`] (unsynchronised, for the rendezvous
//! flavor, which keeps two under its own lock) and [`SyncWaker`] (behind a lock, with a
//! lock-free "anyone there?" flag, for the buffered flavors).
//!
//! Each case of a blocked operation is registered as a [`WaitEntry`] (case id, packet, the
//! operation's [`Waiting`]). A partner claims an entry through its `Waiting` (see
//! `waiting.rs`); readiness observers (`Select::ready`) are kept apart and only told.
//!
//! Invariant: an entry is removed from a list either by the partner that claimed it (under the
//! list's lock) or by its owner after waking (`unregister`); never both.

use std::collections::VecDeque;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::waiting::{Operation, Selected, Waiting};
use crate::{park, util};

fn not_excluded(exclude: Option<&Waiting>, cx: &Waiting) -> bool {
    match exclude {
        Some(x) => !x.ptr_eq(cx),
        None => true,
    }
}

/// One registered case of a blocked operation.
pub(crate) struct WaitEntry {
    pub(crate) oper: Operation,
    pub(crate) packet: *mut (),
    pub(crate) cx: Waiting,
}

/// The waiters of one side of one channel. Not synchronised itself: see [`SyncWaker`], or the
/// rendezvous flavor, which keeps two of these under its own lock.
pub(crate) struct Waker {
    /// Blocked operations that want to be claimed, oldest first (a deque: claiming the oldest
    /// is O(1) even with a million waiters).
    pub(crate) selectors: VecDeque<WaitEntry>,
    /// `Select::ready` callers that only want to be told.
    pub(crate) observers: Vec<WaitEntry>,
}

impl Waker {
    pub(crate) fn new() -> Waker {
        Waker {
            selectors: VecDeque::new(),
            observers: Vec::new(),
        }
    }

    pub(crate) fn register(&mut self, oper: Operation, cx: &Waiting) {
        self.register_with_packet(oper, ptr::null_mut(), cx);
    }

    pub(crate) fn register_with_packet(&mut self, oper: Operation, packet: *mut (), cx: &Waiting) {
        self.selectors.push_back(WaitEntry {
            oper,
            packet,
            cx: cx.clone(),
        });
    }

    pub(crate) fn unregister(&mut self, oper: Operation) -> Option<WaitEntry> {
        let i = self.selectors.iter().position(|e| e.oper == oper)?;
        self.take(i)
    }

    /// Remove entry `i`; the oldest (the usual case: claims go oldest first) without the
    /// general shifting path.
    #[inline]
    fn take(&mut self, i: usize) -> Option<WaitEntry> {
        if i == 0 {
            self.selectors.pop_front()
        } else {
            self.selectors.remove(i)
        }
    }

    /// Claim the waiter at `i` of the selectors (its `Waiting` already won), removing it.
    pub(crate) fn take_claimed(&mut self, i: usize) -> Option<WaitEntry> {
        self.take(i)
    }

    /// Claim the oldest waiter that is not `exclude`; its packet is published to it, but it is
    /// *not* unparked: the caller does that once the waiter may proceed.
    pub(crate) fn try_select(&mut self, exclude: Option<&Waiting>) -> Option<WaitEntry> {
        // An index loop: the list is usually one entry long, and this is the hand-over path.
        let mut i = 0;
        loop {
            let e = self.selectors.get(i)?;
            if not_excluded(exclude, &e.cx) && e.cx.try_claim(e.oper) {
                break;
            }
            i += 1;
        }
        let entry = self.take(i)?;
        entry.cx.store_packet(entry.packet);
        Some(entry)
    }

    /// Whether some waiter other than `exclude` could be claimed now.
    pub(crate) fn can_select(&self, exclude: Option<&Waiting>) -> bool {
        self.selectors
            .iter()
            .any(|e| not_excluded(exclude, &e.cx) && e.cx.selected() == Selected::Pending)
    }

    pub(crate) fn watch(&mut self, oper: Operation, cx: &Waiting) {
        self.observers.push(WaitEntry {
            oper,
            packet: ptr::null_mut(),
            cx: cx.clone(),
        });
    }

    pub(crate) fn unwatch(&mut self, oper: Operation) {
        self.observers.retain(|e| e.oper != oper);
    }

    /// Tell every observer.
    #[inline]
    pub(crate) fn notify(&mut self) {
        if !self.observers.is_empty() {
            self.notify_observers();
        }
    }

    #[cold]
    fn notify_observers(&mut self) {
        for e in self.observers.drain(..) {
            if e.cx.try_claim(e.oper) {
                e.cx.unpark();
            }
        }
    }

    /// The channel closed: wake everyone and empty the list. A woken waiter's `unregister` then
    /// finds nothing to scan (closing under a million waiters stays linear); entries claimed
    /// earlier through another channel (a select) are dropped here too — their owner's
    /// `unregister` of this case finds nothing, which it tolerates.
    pub(crate) fn disconnect(&mut self) {
        self.disconnect_then(|_| {});
    }

    /// As [`disconnect`](Self::disconnect), handing each entry taken off the list to `removed`
    /// (after its waiter was woken), for flavors whose entries own memory: the owner's later
    /// `unregister` finds nothing, so it cannot free it. No partner uses such an entry's packet:
    /// a claimed entry is removed by its claimer, under the same lock as this call.
    pub(crate) fn disconnect_then(&mut self, mut removed: impl FnMut(WaitEntry)) {
        for e in self.selectors.drain(..) {
            if e.cx.try_select(Selected::Disconnected).is_ok() {
                e.cx.unpark();
            }
            removed(e);
        }
        self.notify();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.selectors.is_empty() && self.observers.is_empty()
    }
}

/// A [`Waker`] behind a lock with a lock-free "anyone there?" flag, for the buffered flavors:
/// a send or receive that wakes nobody costs one atomic load here.
pub(crate) struct SyncWaker {
    inner: Mutex<Waker>,
    is_empty: AtomicBool,
}

impl SyncWaker {
    pub(crate) fn new() -> SyncWaker {
        SyncWaker {
            inner: Mutex::new(Waker::new()),
            is_empty: AtomicBool::new(true),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waker> {
        util::lock(&self.inner)
    }

    pub(crate) fn register(&self, oper: Operation, cx: &Waiting) {
        let mut w = self.lock();
        w.register(oper, cx);
        self.is_empty.store(false, Ordering::SeqCst);
    }

    pub(crate) fn unregister(&self, oper: Operation) -> Option<WaitEntry> {
        let mut w = self.lock();
        let e = w.unregister(oper);
        self.is_empty.store(w.is_empty(), Ordering::SeqCst);
        e
    }

    pub(crate) fn watch(&self, oper: Operation, cx: &Waiting) {
        let mut w = self.lock();
        w.watch(oper, cx);
        self.is_empty.store(false, Ordering::SeqCst);
    }

    pub(crate) fn unwatch(&self, oper: Operation) {
        let mut w = self.lock();
        w.unwatch(oper);
        self.is_empty.store(w.is_empty(), Ordering::SeqCst);
    }

    /// Something changed (a message arrived or a slot freed): wake one waiter and every
    /// observer. The waiter retries its operation.
    ///
    /// The early return on a plain load is a Dekker pair, sound only because every access in
    /// it is SeqCst: the notifier claims its slot with a SeqCst CAS on `tail`/`head` and then
    /// loads `is_empty` (SeqCst); a waiter stores `is_empty = false` (SeqCst, in `register`)
    /// and then re-checks the channel with SeqCst loads of `head`/`tail` (`is_empty`/`is_full`).
    /// In the single total order one of the two loads comes last and sees the other side's
    /// write. Weakening any of those four orderings loses wake-ups.
    #[inline]
    pub(crate) fn notify(&self) {
        if !self.is_empty.load(Ordering::SeqCst) {
            self.notify_slow();
        }
    }

    #[cold]
    fn notify_slow(&self) {
        let mut w = self.lock();
        if !self.is_empty.load(Ordering::SeqCst) {
            let woken = w.try_select(None);
            w.notify();
            self.is_empty.store(w.is_empty(), Ordering::SeqCst);
            drop(w);
            if let Some(e) = woken {
                e.cx.unpark();
            }
        }
    }

    /// Block until it is worth retrying an operation that just found nothing to do (a full or
    /// empty buffer): register as `token`'s operation, re-check `ready` after publishing (a
    /// partner may have acted in between, and would not have seen us), then park until a
    /// partner wakes us, the channel closes or `deadline` passes. The caller retries, and
    /// checks the deadline itself.
    pub(crate) fn wait_to_retry(
        &self,
        token: &mut impl Sized,
        deadline: Option<Instant>,
        reason: park::WaitReason,
        ready: impl FnOnce() -> bool,
    ) {
        let cx = Waiting::new();
        let oper = Operation::hook(token);
        self.register(oper, &cx);
        if ready() {
            let _ = cx.try_select(Selected::Aborted);
        }
        match cx.wait_until(deadline, reason) {
            Selected::Aborted | Selected::Disconnected => {
                self.unregister(oper);
            }
            // Woken by a partner, which removed our entry.
            Selected::Operation(_) => {}
            Selected::Pending => unreachable!(),
        }
        cx.release();
    }

    pub(crate) fn disconnect(&self) {
        let mut w = self.lock();
        w.disconnect();
        self.is_empty.store(w.is_empty(), Ordering::SeqCst);
    }
}
