//! The waiting machinery shared by every channel flavor and by `select`.
//!
//! A blocked operation (a `send`, a `recv`, or a whole `select` over many cases) is represented
//! by one [`Context`]: an `Arc` holding
//! - `select`: who won. It starts at [`Selected::Waiting`] and is changed exactly once, by a
//!   compare-and-swap, to `Aborted` (the waiter gave up: timeout), `Disconnected` (a channel
//!   closed) or `Operation(id)` (a partner completed, or will complete, case `id`);
//! - `packet`: for the rendezvous flavor, the address of the message slot the winner hands
//!   over (stored right after the CAS, by the winner);
//! - the waiter's [`Unparker`].
//!
//! Each case of the operation is registered in the channel's [`Waker`] list as an [`Entry`]
//! (case id, packet, context). A partner that wants to complete with a waiter *claims* it with
//! the one CAS on `select`; whoever loses the CAS (a second partner, the waiter's own timeout,
//! another case of the same select) leaves it alone. That single CAS is what makes a value
//! impossible to lose or duplicate: a waiter that times out first CASes `Aborted`; if that
//! fails, some partner claimed it and the waiter must complete that operation, timeout or not.
//!
//! Invariants:
//! - an entry is removed from a waker list either by the partner that claimed it (under the
//!   list's lock) or by its owner after waking (`unregister`); never both;
//! - a waiter is unparked only after the state it must observe is published;
//! - a case id is the address of something on the waiter's stack that lives for the whole
//!   operation, so ids of concurrent operations never collide and never equal 0, 1 or 2.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::park::{self, Unparker};

/// Identifies one case of one blocked operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Operation(usize);

impl Operation {
    /// The id of the case whose token/handle lives at `r`.
    pub(crate) fn hook<T>(r: &mut T) -> Operation {
        let val = r as *mut T as usize;
        // The address of a live, non-zero-sized or not, stack value is never 0, 1 or 2 in practice;
        // make sure (zero-sized values could have a dangling address).
        assert!(val > 2, "goro: operation id collides with a reserved value");
        Operation(val)
    }
}

/// The outcome of a blocked operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Selected {
    Waiting,
    Aborted,
    Disconnected,
    Operation(Operation),
}

impl From<usize> for Selected {
    fn from(v: usize) -> Selected {
        match v {
            0 => Selected::Waiting,
            1 => Selected::Aborted,
            2 => Selected::Disconnected,
            oper => Selected::Operation(Operation(oper)),
        }
    }
}

impl From<Selected> for usize {
    fn from(s: Selected) -> usize {
        match s {
            Selected::Waiting => 0,
            Selected::Aborted => 1,
            Selected::Disconnected => 2,
            Selected::Operation(Operation(v)) => v,
        }
    }
}

struct Inner {
    select: AtomicUsize,
    packet: AtomicPtr<()>,
    /// Who waits. Kept while the context sits in the per-thread cache: the next operation on
    /// this thread is often by the same coroutine, which then reuses it without touching its
    /// reference count (`park::refresh_current`).
    unparker: Option<Unparker>,
}

thread_local! {
    /// One spare context per OS thread (per worker, for coroutines): a blocking operation
    /// takes it, and gives it back when it ends if nobody else holds a reference any more.
    static SPARE: std::cell::Cell<Option<Arc<Inner>>> = const { std::cell::Cell::new(None) };
}

// Accessors of the thread-local: never inlined, and nothing borrowed from the thread-local
// outlives the call, so no TLS address is cached across a coroutine switch.
#[inline(never)]
fn take_spare() -> Option<Arc<Inner>> {
    SPARE.try_with(|s| s.take()).ok().flatten()
}

#[inline(never)]
fn put_spare(inner: Arc<Inner>) {
    let _ = SPARE.try_with(|s| s.set(Some(inner)));
}

/// The state of one blocked operation (see the module docs). Cheap to clone (an `Arc`).
#[derive(Clone)]
pub(crate) struct Context {
    inner: Arc<Inner>,
}

impl Context {
    /// A fresh context for the calling coroutine or thread.
    pub(crate) fn new() -> Context {
        if let Some(mut inner) = take_spare() {
            if let Some(i) = Arc::get_mut(&mut inner) {
                *i.select.get_mut() = 0;
                *i.packet.get_mut() = ptr::null_mut();
                park::refresh_current(&mut i.unparker);
                return Context { inner };
            }
        }
        Context {
            inner: Arc::new(Inner {
                select: AtomicUsize::new(0),
                packet: AtomicPtr::new(ptr::null_mut()),
                unparker: Some(park::current()),
            }),
        }
    }

    /// The operation is over: keep the allocation for the next one if nobody else holds it.
    pub(crate) fn release(self) {
        let mut inner = self.inner;
        if Arc::get_mut(&mut inner).is_some() {
            put_spare(inner);
        }
    }

    /// Claim this context: `Waiting -> select`. `Err` carries the state someone else set.
    pub(crate) fn try_select(&self, select: Selected) -> Result<(), Selected> {
        self.inner
            .select
            .compare_exchange(0, select.into(), Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(Selected::from)
    }

    /// The current state.
    pub(crate) fn selected(&self) -> Selected {
        Selected::from(self.inner.select.load(Ordering::Acquire))
    }

    /// Publish the packet of the operation that claimed this context (winner only).
    pub(crate) fn store_packet(&self, packet: *mut ()) {
        if !packet.is_null() {
            self.inner.packet.store(packet, Ordering::Release);
        }
    }

    /// The packet stored by the winner. The winner stores it right after its CAS, without
    /// blocking in between, so the wait is a few instructions at most.
    pub(crate) fn wait_packet(&self) -> *mut () {
        let backoff = Backoff::new();
        loop {
            let p = self.inner.packet.load(Ordering::Acquire);
            if !p.is_null() {
                return p;
            }
            backoff.snooze();
        }
    }

    /// Wake the waiter.
    pub(crate) fn unpark(&self) {
        if let Some(u) = &self.inner.unparker {
            u.unpark();
        }
    }

    /// Whether both are the same context.
    pub(crate) fn ptr_eq(&self, other: &Context) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Park until the state leaves `Waiting` or the deadline passes (then try to abort).
    pub(crate) fn wait_until(
        &self,
        deadline: Option<Instant>,
        reason: park::WaitReason,
    ) -> Selected {
        // A plain thread spins a little first: a partner is often about to arrive, and a
        // futex round trip costs microseconds. A coroutine parks at once (parking is a switch,
        // and spinning would only keep its partner on the same worker from running).
        if !park::in_coroutine() {
            let backoff = Backoff::new();
            while !backoff.is_completed() {
                let s = self.selected();
                if s != Selected::Waiting {
                    return s;
                }
                backoff.snooze();
            }
        }
        loop {
            let s = self.selected();
            if s != Selected::Waiting {
                return s;
            }
            match deadline {
                None => park::park(reason),
                Some(d) => {
                    if Instant::now() >= d {
                        return match self.try_select(Selected::Aborted) {
                            Ok(()) => Selected::Aborted,
                            Err(s) => s,
                        };
                    }
                    park::park_until(d, reason);
                }
            }
        }
    }
}

/// Park until `flag` is set; the one who sets it unparks us afterwards.
pub(crate) fn wait_flag(flag: &AtomicBool, reason: park::WaitReason) {
    if flag.load(Ordering::Acquire) {
        return;
    }
    if !park::in_coroutine() {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if flag.load(Ordering::Acquire) {
                return;
            }
            backoff.snooze();
        }
    }
    while !flag.load(Ordering::Acquire) {
        park::park(reason);
    }
}

fn not_excluded(exclude: Option<&Context>, cx: &Context) -> bool {
    match exclude {
        Some(x) => !x.ptr_eq(cx),
        None => true,
    }
}

/// One registered case of a blocked operation.
pub(crate) struct Entry {
    pub(crate) oper: Operation,
    pub(crate) packet: *mut (),
    pub(crate) cx: Context,
}

/// The waiters of one side of one channel. Not synchronised itself: see [`SyncWaker`], or the
/// rendezvous flavor, which keeps two of these under its own lock.
pub(crate) struct Waker {
    /// Blocked operations that want to be claimed, oldest first (a deque: claiming the oldest
    /// is O(1) even with a million waiters).
    pub(crate) selectors: VecDeque<Entry>,
    /// `Select::ready` callers that only want to be told.
    pub(crate) observers: Vec<Entry>,
}

impl Waker {
    pub(crate) fn new() -> Waker {
        Waker {
            selectors: VecDeque::new(),
            observers: Vec::new(),
        }
    }

    pub(crate) fn register(&mut self, oper: Operation, cx: &Context) {
        self.register_with_packet(oper, ptr::null_mut(), cx);
    }

    pub(crate) fn register_with_packet(&mut self, oper: Operation, packet: *mut (), cx: &Context) {
        self.selectors.push_back(Entry {
            oper,
            packet,
            cx: cx.clone(),
        });
    }

    pub(crate) fn unregister(&mut self, oper: Operation) -> Option<Entry> {
        let i = self.selectors.iter().position(|e| e.oper == oper)?;
        self.selectors.remove(i)
    }

    /// Claim the oldest waiter that is not `exclude`; its packet is published to it, but it is
    /// *not* unparked: the caller does that once the waiter may proceed.
    pub(crate) fn try_select(&mut self, exclude: Option<&Context>) -> Option<Entry> {
        let i = self.selectors.iter().position(|e| {
            not_excluded(exclude, &e.cx) && e.cx.try_select(Selected::Operation(e.oper)).is_ok()
        })?;
        let entry = self.selectors.remove(i)?;
        entry.cx.store_packet(entry.packet);
        Some(entry)
    }

    /// Whether some waiter other than `exclude` could be claimed now.
    pub(crate) fn can_select(&self, exclude: Option<&Context>) -> bool {
        self.selectors
            .iter()
            .any(|e| not_excluded(exclude, &e.cx) && e.cx.selected() == Selected::Waiting)
    }

    pub(crate) fn watch(&mut self, oper: Operation, cx: &Context) {
        self.observers.push(Entry {
            oper,
            packet: ptr::null_mut(),
            cx: cx.clone(),
        });
    }

    pub(crate) fn unwatch(&mut self, oper: Operation) {
        self.observers.retain(|e| e.oper != oper);
    }

    /// Tell every observer.
    pub(crate) fn notify(&mut self) {
        for e in self.observers.drain(..) {
            if e.cx.try_select(Selected::Operation(e.oper)).is_ok() {
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
    pub(crate) fn disconnect_then(&mut self, mut removed: impl FnMut(Entry)) {
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
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn register(&self, oper: Operation, cx: &Context) {
        let mut w = self.lock();
        w.register(oper, cx);
        self.is_empty.store(false, Ordering::SeqCst);
    }

    pub(crate) fn unregister(&self, oper: Operation) -> Option<Entry> {
        let mut w = self.lock();
        let e = w.unregister(oper);
        self.is_empty.store(w.is_empty(), Ordering::SeqCst);
        e
    }

    pub(crate) fn watch(&self, oper: Operation, cx: &Context) {
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
        token: &mut Token,
        deadline: Option<Instant>,
        reason: park::WaitReason,
        ready: impl FnOnce() -> bool,
    ) {
        let cx = Context::new();
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
            Selected::Waiting => unreachable!(),
        }
        cx.release();
    }

    pub(crate) fn disconnect(&self) {
        let mut w = self.lock();
        w.disconnect();
        self.is_empty.store(w.is_empty(), Ordering::SeqCst);
    }
}

/// Pads and aligns a value to a cache line pair, so that the head and tail of a queue written
/// by different cores do not share one.
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for CachePadded<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

const SPIN_LIMIT: u32 = 6;
const YIELD_LIMIT: u32 = 8;

/// Exponential backoff for the short lock-free retry loops.
pub(crate) struct Backoff {
    step: Cell<u32>,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { step: Cell::new(0) }
    }

    /// Busy-wait a little (a CAS lost to a competitor).
    pub(crate) fn spin(&self) {
        for _ in 0..1u32 << self.step.get().min(SPIN_LIMIT) {
            std::hint::spin_loop();
        }
        if self.step.get() <= SPIN_LIMIT {
            self.step.set(self.step.get() + 1);
        }
    }

    /// Wait for another thread to finish a step it has started (a slot claimed but not yet
    /// written): spin, then yield the OS thread. Coroutines are never preempted between those
    /// two steps, so the other side is always a running thread.
    pub(crate) fn snooze(&self) {
        if self.step.get() <= SPIN_LIMIT {
            for _ in 0..1u32 << self.step.get() {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
        if self.step.get() <= YIELD_LIMIT {
            self.step.set(self.step.get() + 1);
        }
    }

    pub(crate) fn is_completed(&self) -> bool {
        self.step.get() > YIELD_LIMIT
    }
}

/// The per-flavor data a selection hands to the operation that completes it. Type-erased so
/// that one `select` can mix channels of different message types.
#[derive(Default)]
pub(crate) struct Token {
    pub(crate) array: ArrayToken,
    pub(crate) list: ListToken,
    pub(crate) zero: ZeroToken,
}

/// Array flavor: the claimed slot (null: closed) and the stamp to store after the access.
pub(crate) struct ArrayToken {
    pub(crate) slot: *const u8,
    pub(crate) stamp: usize,
}

impl Default for ArrayToken {
    fn default() -> Self {
        ArrayToken {
            slot: ptr::null(),
            stamp: 0,
        }
    }
}

/// List flavor: the claimed block (null: closed) and slot offset in it.
pub(crate) struct ListToken {
    pub(crate) block: *const u8,
    pub(crate) offset: usize,
}

impl Default for ListToken {
    fn default() -> Self {
        ListToken {
            block: ptr::null(),
            offset: 0,
        }
    }
}

/// Rendezvous flavor: the packet (null: closed) and, when we claimed a waiting partner, the
/// partner to wake once the hand-over is done.
pub(crate) struct ZeroToken {
    pub(crate) packet: *mut (),
    pub(crate) partner: Option<Context>,
}

impl Default for ZeroToken {
    fn default() -> Self {
        ZeroToken {
            packet: ptr::null_mut(),
            partner: None,
        }
    }
}
