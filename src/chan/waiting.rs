//! The waiting side of a blocked channel operation: one [`Waiting`] per blocked `send`,
//! `recv` or whole `select`, and the single compare-and-swap that decides it.
//!
//! A [`Waiting`] is an `Arc` holding
//! - `shot`, a [`park::OneShot`] armed for the waiter: who won. It starts unset
//!   ([`Selected::Pending`]) and is *claimed* exactly once, by its compare-and-swap, with
//!   `Aborted` (the waiter gave up: timeout), `Disconnected` (a channel closed) or
//!   `Operation(id)` (a partner completed, or will complete, case `id`);
//! - `packet`: for the rendezvous flavor, the address of the message slot the winner hands
//!   over (stored right after the CAS, by the winner);
//! - `slot`: room for a plain rendezvous operation's packet.
//!
//! Each case of the operation is registered in a channel's waiter list (`waker.rs`). A partner
//! that wants to complete with a waiter *claims* it with the one CAS on `select`; whoever loses
//! the CAS (a second partner, the waiter's own timeout, another case of the same select) leaves
//! it alone. That single CAS is what makes a value impossible to lose or duplicate: a waiter
//! that times out first CASes `Aborted`; if that fails, some partner claimed it and the waiter
//! must complete that operation, timeout or not.
//!
//! Claiming and waking are two steps (`OneShot::claim`, then `OneShot::notify`): a partner
//! claims under a channel lock and wakes the waiter only once the hand-over is complete (for
//! the rendezvous flavor, after writing the packet and setting its `ready` flag), so one unpark
//! serves both waits of the waiter. A `Waiting` is recycled through a per-thread spare and
//! re-armed in place (`OneShot::rearm`), keeping the waiter's handle when the next operation
//! on the thread is by the same coroutine.
//!
//! Invariants:
//! - a waiter is unparked only after the state it must observe is published;
//! - a case id is the address of something on the waiter's stack that lives for the whole
//!   operation, so ids of concurrent operations never collide and never equal one of the
//!   reserved encodings ([`PENDING`], [`ABORTED`], [`DISCONNECTED`]).

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{fence, AtomicPtr, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::Backoff;

use crate::park::{self, OneShot};

/// `shot` value of [`Selected::Aborted`].
const ABORTED: usize = 1;
/// `shot` value of [`Selected::Disconnected`].
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

impl Selected {
    /// The outcome a `shot` value stands for (`None`: not decided yet).
    fn from_shot(v: Option<usize>) -> Selected {
        match v {
            None => Selected::Pending,
            Some(ABORTED) => Selected::Aborted,
            Some(DISCONNECTED) => Selected::Disconnected,
            Some(oper) => Selected::Operation(Operation(oper)),
        }
    }

    /// The `shot` value of a decided outcome.
    fn shot_value(self) -> usize {
        match self {
            Selected::Pending => unreachable!("goro: Pending is not a value to set"),
            Selected::Aborted => ABORTED,
            Selected::Disconnected => DISCONNECTED,
            Selected::Operation(Operation(v)) => v,
        }
    }
}

/// Bytes of room in each [`Waiting`] for a plain blocking operation's packet.
const SLOT_BYTES: usize = 80;

/// Raw, 16-aligned storage for one packet (see [`Waiting::slot`]).
#[repr(C, align(16))]
struct Slot([MaybeUninit<u8>; SLOT_BYTES]);

struct Inner {
    /// Who won, and the waiter's handle. Kept while the context sits in the per-thread cache:
    /// the next operation on this thread is often by the same coroutine, which then re-arms it
    /// without touching its reference count (`OneShot::rearm`). Re-armed only while the
    /// context is unique (taken from the spare slot, see [`Waiting::new`]).
    shot: OneShot,
    packet: AtomicPtr<()>,
    /// A plain blocking rendezvous send or receive keeps its packet here (when it fits), not
    /// on its stack, so that a partner writes only heap memory and the waiter's stack may be
    /// compacted while it waits (`stack::compact`). Used by at most one operation at a time:
    /// the owner of the context, from `Waiting::new` to `release`.
    slot: UnsafeCell<Slot>,
}

// SAFETY: `slot` is raw storage that this type never reads or writes itself (the rendezvous
// flavor's packet protocol orders every access to what it places there, see `zero.rs`);
// `shot` is `Sync` and `packet` atomic.
unsafe impl Sync for Inner {}
// SAFETY: `slot` holds whatever the rendezvous flavor placed there, which is `Send` (it is a
// packet of a `T: Send` message), or nothing; the other fields are `Send`.
unsafe impl Send for Inner {}

/// The manual impls above rely on the state word being thread-safe itself.
const _: () = {
    const fn thread_safe<T: Send + Sync>() {}
    thread_safe::<OneShot>();
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
            // SAFETY: unique (above), and `shot` is only ever used through `with_waiter`,
            // `claim`, `notify` and `rearm` (this file).
            unsafe { inner.shot.rearm() };
            inner.packet.store(ptr::null_mut(), Ordering::Relaxed);
            return Waiting { inner };
        }
        Waiting {
            inner: Arc::new(Inner {
                shot: OneShot::with_waiter(park::current()),
                packet: AtomicPtr::new(ptr::null_mut()),
                slot: UnsafeCell::new(Slot([MaybeUninit::uninit(); SLOT_BYTES])),
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

    /// Claim this context: `Pending -> select` (the waiter is not woken: the claimer calls
    /// [`unpark`](Self::unpark) once the hand-over is done). `Err` carries the state someone
    /// else set.
    pub(crate) fn try_select(&self, select: Selected) -> Result<(), Selected> {
        self.inner
            .shot
            .claim(select.shot_value())
            .map_err(|v| Selected::from_shot(Some(v)))
    }

    /// Claim this context for case `oper` (as [`try_select`](Self::try_select)); whether we
    /// won.
    #[inline(always)]
    pub(crate) fn try_claim(&self, oper: Operation) -> bool {
        self.inner.shot.claim(oper.0).is_ok()
    }

    /// The current state.
    pub(crate) fn selected(&self) -> Selected {
        Selected::from_shot(self.inner.shot.get())
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
        // SAFETY: `shot` was made by `with_waiter` and is re-armed only while the context is
        // unique (`new`), which it is not while we hold this clone; `set`/`try_set` are never
        // used on it.
        unsafe { self.inner.shot.notify() };
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
        let shot = &self.inner.shot;
        if let Some(v) = shot.spin_on_thread() {
            return Selected::from_shot(Some(v));
        }
        // The shot lives in the context's heap allocation, so its waits are idle parks (the
        // waiter's stack may be compacted): every operation that waits here has published only
        // heap memory to its partners — the context itself, case ids that are compared and
        // never dereferenced, select packets in boxes, a plain rendezvous packet in the
        // context's slot or a box.
        match deadline {
            None => Selected::from_shot(Some(shot.wait(reason))),
            Some(d) => match shot.wait_until(d, reason) {
                Some(v) => Selected::from_shot(Some(v)),
                None => match self.try_select(Selected::Aborted) {
                    Ok(()) => Selected::Aborted,
                    Err(s) => s,
                },
            },
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
