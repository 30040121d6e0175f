//! The waiting side of a blocked channel operation: one [`Waiting`] per blocked `send`,
//! `recv` or whole `select`, and the single compare-and-swap that decides it.
//!
//! A [`Waiting`] is an `Arc` holding
//! - `select`: who won. It starts at [`Selected::Pending`] and is changed exactly once, by a
//!   compare-and-swap, to `Aborted` (the waiter gave up: timeout), `Disconnected` (a channel
//!   closed) or `Operation(id)` (a partner completed, or will complete, case `id`);
//! - `packet`: for the rendezvous flavor, the address of the message slot the winner hands
//!   over (stored right after the CAS, by the winner);
//! - the waiter's [`Unparker`].
//!
//! Each case of the operation is registered in a channel's waiter list (`waker.rs`). A partner
//! that wants to complete with a waiter *claims* it with the one CAS on `select`; whoever loses
//! the CAS (a second partner, the waiter's own timeout, another case of the same select) leaves
//! it alone. That single CAS is what makes a value impossible to lose or duplicate: a waiter
//! that times out first CASes `Aborted`; if that fails, some partner claimed it and the waiter
//! must complete that operation, timeout or not.
//!
//! Why not `park::OneShot` (the crate's one "set a word once, wake the waiter" type): here
//! claiming and waking are two steps. A partner claims under a channel lock and wakes the
//! waiter only once the hand-over is complete (for the rendezvous flavor, after writing the
//! packet and setting its `ready` flag), so one unpark serves both waits of the waiter; a
//! `OneShot` wakes at the claim, which would cost the rendezvous path a second park/unpark
//! round. And a `Waiting` is recycled through a per-thread spare (reset in place), which a
//! one-shot cannot be.
//!
//! Invariants:
//! - a waiter is unparked only after the state it must observe is published;
//! - a case id is the address of something on the waiter's stack that lives for the whole
//!   operation, so ids of concurrent operations never collide and never equal one of the
//!   reserved encodings ([`PENDING`], [`ABORTED`], [`DISCONNECTED`]).

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::Backoff;

use crate::park::{self, Unparker};

/// `select` encoding of [`Selected::Pending`]: nobody has decided the operation yet.
const PENDING: usize = 0;
/// `select` encoding of [`Selected::Aborted`].
const ABORTED: usize = 1;
/// `select` encoding of [`Selected::Disconnected`].
const DISCONNECTED: usize = 2;

/// Identifies one case of one blocked operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Operation(usize);

impl Operation {
    /// The id of the case whose token/handle lives at `r`.
    pub(crate) fn hook<T>(r: &mut T) -> Operation {
        let val = r as *mut T as usize;
        // The address of a live, non-zero-sized or not, stack value is never 0, 1 or 2 in practice;
        // make sure (zero-sized values could have a dangling address).
        assert!(
            val > DISCONNECTED,
            "goro: operation id collides with a reserved value"
        );
        Operation(val)
    }
}

/// The outcome of a blocked operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Selected {
    Pending,
    Aborted,
    Disconnected,
    Operation(Operation),
}

impl From<usize> for Selected {
    fn from(v: usize) -> Selected {
        match v {
            PENDING => Selected::Pending,
            ABORTED => Selected::Aborted,
            DISCONNECTED => Selected::Disconnected,
            oper => Selected::Operation(Operation(oper)),
        }
    }
}

impl From<Selected> for usize {
    fn from(s: Selected) -> usize {
        match s {
            Selected::Pending => PENDING,
            Selected::Aborted => ABORTED,
            Selected::Disconnected => DISCONNECTED,
            Selected::Operation(Operation(v)) => v,
        }
    }
}

/// Bytes of room in each [`Waiting`] for a plain blocking operation's packet.
const SLOT_BYTES: usize = 64;

/// Raw, 16-aligned storage for one packet (see [`Waiting::slot`]).
#[repr(C, align(16))]
struct Slot([MaybeUninit<u8>; SLOT_BYTES]);

struct Inner {
    select: AtomicUsize,
    packet: AtomicPtr<()>,
    /// A plain blocking rendezvous send or receive keeps its packet here (when it fits), not
    /// on its stack, so that a partner writes only heap memory and the waiter's stack may be
    /// compacted while it waits (`stack::compact`). Used by at most one operation at a time:
    /// the owner of the context, from `Waiting::new` to `release`.
    slot: UnsafeCell<Slot>,
    /// Who waits. Kept while the context sits in the per-thread cache: the next operation on
    /// this thread is often by the same coroutine, which then reuses it without touching its
    /// reference count (`park::refresh_current`). Written only while the context is unique
    /// (fresh, or taken from the spare slot, see [`Waiting::new`]); read by anyone holding a
    /// clone.
    unparker: UnsafeCell<Option<Unparker>>,
}

// SAFETY: `unparker` is written only through a unique `Arc` (see its docs), so every other
// access is a read that happens after that write; `slot` is raw storage that this type never
// reads or writes itself (the rendezvous flavor's packet protocol orders every access to what
// it places there, see `zero.rs`); the other fields are atomics. `Unparker` is itself
// `Send + Sync`.
unsafe impl Sync for Inner {}
// SAFETY: as above; all fields are `Send`.
unsafe impl Send for Inner {}

/// The manual impls above rely on the handle being thread-safe itself.
const _: () = {
    const fn thread_safe<T: Send + Sync>() {}
    thread_safe::<Unparker>();
};

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
pub(crate) struct Waiting {
    inner: Arc<Inner>,
}

impl Waiting {
    /// A fresh context for the calling coroutine or thread.
    pub(crate) fn new() -> Waiting {
        if let Some(inner) = take_spare() {
            // The spare is unique: `release` parks it only when no other reference is left (and
            // no `Weak` is ever made), and nobody can clone it while it sits in this thread's
            // slot. So plain resets are race-free; no `Arc::get_mut` (a locked CAS) is needed.
            inner.select.store(PENDING, Ordering::Relaxed);
            inner.packet.store(ptr::null_mut(), Ordering::Relaxed);
            // SAFETY: unique (above): no other thread can read `unparker` now.
            park::refresh_current(unsafe { &mut *inner.unparker.get() });
            return Waiting { inner };
        }
        Waiting {
            inner: Arc::new(Inner {
                select: AtomicUsize::new(PENDING),
                packet: AtomicPtr::new(ptr::null_mut()),
                slot: UnsafeCell::new(Slot([MaybeUninit::uninit(); SLOT_BYTES])),
                unparker: UnsafeCell::new(Some(park::current())),
            }),
        }
    }

    /// The operation is over: keep the allocation for the next one if nobody else holds it.
    pub(crate) fn release(self) {
        let inner = self.inner;
        // Unique when the count is 1 (no `Weak` is ever made). The count's last decrement by
        // another holder is a Release RMW; the Acquire fence after reading it orders every
        // access that holder made before our reuse.
        if Arc::strong_count(&inner) == 1 {
            fence(Ordering::Acquire);
            put_spare(inner);
        }
    }

    /// Room for one `P` that lives as long as this context (every clone), or `None` when `P`
    /// is too big or too strictly aligned for it. The storage is uninitialised; the caller owns
    /// it from `new` until `release` and must drop whatever it put there before `release`.
    pub(crate) fn slot<P>(&self) -> Option<*mut P> {
        let fits = std::mem::size_of::<P>() <= SLOT_BYTES
            && std::mem::align_of::<P>() <= std::mem::align_of::<Slot>();
        fits.then(|| self.inner.slot.get().cast::<P>())
    }

    /// Claim this context: `Pending -> select`. `Err` carries the state someone else set.
    pub(crate) fn try_select(&self, select: Selected) -> Result<(), Selected> {
        self.inner
            .select
            .compare_exchange(PENDING, select.into(), Ordering::AcqRel, Ordering::Acquire)
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
        // SAFETY: a shared read; writes happen only while the context is unique (see `Inner`).
        if let Some(u) = unsafe { &*self.inner.unparker.get() } {
            u.unpark();
        }
    }

    /// Whether both are the same context.
    pub(crate) fn ptr_eq(&self, other: &Waiting) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Park until the state leaves `Pending` or the deadline passes (then try to abort).
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
                if s != Selected::Pending {
                    return s;
                }
                backoff.snooze();
            }
        }
        loop {
            let s = self.selected();
            if s != Selected::Pending {
                return s;
            }
            match deadline {
                // Idle parks (the waiter's stack may be compacted): every operation that
                // waits here has published only heap memory to its partners — the context
                // itself, case ids that are compared and never dereferenced, select packets in
                // boxes, a plain rendezvous packet in the context's slot or a box.
                None => park::park_idle(None, reason),
                Some(d) => {
                    if Instant::now() >= d {
                        return match self.try_select(Selected::Aborted) {
                            Ok(()) => Selected::Aborted,
                            Err(s) => s,
                        };
                    }
                    park::park_idle(Some(d), reason);
                }
            }
        }
    }
}

/// Park with nobody to wake the caller until `deadline` passes, or forever with `None` (a timer
/// channel waiting for its time, a receive that can never complete).
pub(crate) fn sleep_until(deadline: Option<Instant>, reason: park::WaitReason) {
    // Nobody can reach the caller at all: an idle park (the stack may be compacted).
    match deadline {
        None => loop {
            park::park_idle(None, reason);
        },
        Some(d) => {
            while Instant::now() < d {
                park::park_idle(Some(d), reason);
            }
        }
    }
}

/// Park until `flag` is set; the one who sets it unparks us afterwards. (Not a `OneShot`: the
/// setter of a packet's flag must not touch the packet after its store, which may free it;
/// see `zero.rs`.)
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
