//! Channels: Go's `chan` with crossbeam-channel's API, plus Go's `close`, `select!` and timer
//! channels.
//!
//! ```
//! use goro::chan;
//!
//! let (tx, rx) = chan::bounded(1);
//! std::thread::spawn(move || {
//!     for i in 0..3 {
//!         tx.send(i).unwrap();
//!     }
//!     tx.close(); // as Go's close(ch); dropping every Sender does the same
//! });
//! let got: Vec<i32> = rx.iter().collect(); // Go's `for v := range ch`
//! assert_eq!(got, [0, 1, 2]);
//! ```
//!
//! # Design notes
//!
//! (In the spirit of the comment atop Go's `runtime/chan.go`.)
//!
//! *Shape.* A channel is one `Arc<Chan<T>>` shared by every `Sender` and `Receiver`, holding
//! a sender count, a receiver count and one of six flavors:
//! - `zero` — `bounded(0)`: rendezvous. A mutex guards two waiter lists; a message moves
//!   straight from the sender's packet to the receiver (or into the receiver's packet), never
//!   through a buffer.
//! - `array` — `bounded(n)`, `n > 0`: a ring of stamped slots, lock-free on every path that
//!   does not block (no lock, no allocation: one CAS to claim a slot, one store to publish).
//! - `list` — `unbounded()`: a linked list of 31-slot blocks, lock-free likewise; a send
//!   allocates only when it opens a new block.
//!
//! Three more flavors only receive, with crossbeam-channel's semantics:
//! - `at` — `at(when)`, `after(d)`: one message, the deadline, receivable from then on;
//! - `tick` — `tick(d)`: a message whenever the next delivery time has come;
//! - `never` — `never()`: nothing, ever (Go's nil channel).
//!
//! Nothing feeds them: a receiver reads the clock (and parks until the time, if it blocks), and
//! a select over them wakes by their deadline. `goro::time::after` and `time::tick` are these
//! same channels (the crate's contract says they behave as crossbeam-channel's). Go's
//! semantics — the firing instant, a ticker that drops ticks for a slow receiver, Go 1.23
//! `stop`/`reset` — are `goro::time`'s `Timer`, `Ticker` and `after_func`, built above this
//! module: ordinary array channels of capacity 1 that `time` feeds from the shared timer
//! facility through a weak reference (`timer_channel`), so a dropped receiver frees the
//! channel without waiting for its timer.
//!
//! *Dropping the last receiver* drops every buffered message at once (crossbeam-channel's
//! rule: a message can hold a resource its sender waits to see released), not when the last
//! sender goes; see `discard_all` in the buffered flavors for the race with a sender that is
//! still writing.
//!
//! *Blocking.* Everything that waits goes through `waiting.rs` and `waker.rs`: a blocked
//! operation (a send, a receive, or a whole select) creates one `Waiting` and registers one
//! entry per case in the channels' waiter lists, re-checks, then parks with `park.rs` (a
//! coroutine parks, its worker runs others; a thread blocks). A partner completes a waiter by
//! *claiming* its `Waiting` with one CAS (`Pending -> Operation(case)`), so at most one
//! partner — or the waiter's own timeout (`Pending -> Aborted`), or a close
//! (`-> Disconnected`) — ever wins. This is what keeps values from being lost or duplicated
//! when a timeout, a close or another select case races with a hand-over: a waiter whose
//! timeout CAS fails has been claimed and completes that operation (receives the value) even
//! though its deadline passed.
//! For the buffered flavors, a claim only means "retry now" (the value lives in the buffer);
//! for the rendezvous flavor it carries the packet.
//!
//! *Closing.* `close()` (from either side) and the drop of the last sender or of the last
//! receiver all do the same thing, at most once: mark the channel closed (a bit in the array
//! and list tails, a flag in zero) and wake every waiter with `Disconnected`. After that,
//! every send fails and hands its value back; receivers still drain what is buffered, then
//! get `Err`. `close()` tells whether it was the call that closed.
//!
//! *Select.* Every case is tried once in random order (biased: in order); if none is ready, all
//! are registered on one `Waiting`, which the first ready case's partner claims (`select.rs`,
//! the engine; `select_macro.rs`, the macros). Each flavor says what its ends do as a case
//! (`side.rs`, implemented in the flavor's file; `handle.rs` dispatches to it). Cases are
//! completed through a `Token` (`token.rs`: the claimed slot or packet, one part per flavor)
//! so that `select!` evaluates a send case's value only once its case has been chosen: an
//! unchosen value is never moved.
//!
//! *Invariants* (relied on throughout):
//! 1. a waiter is unparked only after the state it will look at has been published;
//! 2. a waiter's stack packet outlives every access to it (it does not return before the
//!    partner sets `ready`);
//! 3. the open/closed transition happens once; closed is forever;
//! 4. the counts: a channel is closed by the drop that takes senders or receivers to zero.

mod array;
mod at;
pub(crate) mod err;
mod handle;
mod list;
mod never;
mod select;
mod select_macro;
mod side;
mod tick;
mod token;
mod waiting;
mod waker;
mod zero;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

pub use err::{
    ReadyTimeoutError, RecvError, RecvTimeoutError, SelectTimeoutError, SendError,
    SendTimeoutError, TryReadyError, TryRecvError, TrySelectError, TrySendError,
};
pub use select::{Select, SelectedOperation};

pub use crate::select;
pub use crate::select_biased;

use token::Token;

pub(crate) enum Flavor<T> {
    Array(array::Channel<T>),
    List(list::Channel<T>),
    Zero(zero::Channel<T>),
    At(at::Channel<T>),
    Tick(tick::Channel<T>),
    Never(never::Channel),
}

pub(crate) struct Chan<T> {
    senders: AtomicUsize,
    receivers: AtomicUsize,
    flavor: Flavor<T>,
}

impl<T> Chan<T> {
    fn new(flavor: Flavor<T>) -> Arc<Chan<T>> {
        Arc::new(Chan {
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            flavor,
        })
    }

    fn disconnect(&self) -> bool {
        match &self.flavor {
            Flavor::Array(c) => c.disconnect(),
            Flavor::List(c) => c.disconnect(),
            Flavor::Zero(c) => c.disconnect(),
            // Timer and never channels cannot be closed (crossbeam has no close; Go cannot
            // close a receive-only channel).
            Flavor::At(_) | Flavor::Tick(_) | Flavor::Never(_) => false,
        }
    }

    fn is_closed(&self) -> bool {
        match &self.flavor {
            Flavor::Array(c) => c.is_disconnected(),
            Flavor::List(c) => c.is_disconnected(),
            Flavor::Zero(c) => c.is_disconnected(),
            Flavor::At(_) | Flavor::Tick(_) | Flavor::Never(_) => false,
        }
    }

    fn len(&self) -> usize {
        match &self.flavor {
            Flavor::Array(c) => c.len(),
            Flavor::List(c) => c.len(),
            Flavor::At(c) => c.len(),
            Flavor::Tick(c) => c.len(),
            Flavor::Zero(_) | Flavor::Never(_) => 0,
        }
    }

    fn capacity(&self) -> Option<usize> {
        match &self.flavor {
            Flavor::Array(c) => Some(c.capacity()),
            Flavor::List(_) => None,
            Flavor::At(_) | Flavor::Tick(_) => Some(1),
            Flavor::Zero(_) | Flavor::Never(_) => Some(0),
        }
    }

    fn is_empty(&self) -> bool {
        match &self.flavor {
            Flavor::Array(c) => c.is_empty(),
            Flavor::List(c) => c.is_empty(),
            Flavor::At(c) => c.is_empty(),
            Flavor::Tick(c) => c.is_empty(),
            Flavor::Zero(_) | Flavor::Never(_) => true,
        }
    }

    fn is_full(&self) -> bool {
        match &self.flavor {
            Flavor::Array(c) => c.is_full(),
            Flavor::List(_) => false,
            Flavor::At(c) => c.is_full(),
            Flavor::Tick(c) => c.is_full(),
            Flavor::Zero(_) | Flavor::Never(_) => true,
        }
    }

    fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        match &self.flavor {
            Flavor::Array(c) => c.try_send(msg),
            Flavor::List(c) => c.send(msg).map_err(TrySendError::Disconnected),
            Flavor::Zero(c) => c.try_send(msg),
            Flavor::At(_) | Flavor::Tick(_) | Flavor::Never(_) => {
                unreachable!("timer and never channels have no sender")
            }
        }
    }

    fn send(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        match &self.flavor {
            Flavor::Array(c) => c.send(msg, deadline),
            Flavor::List(c) => c.send(msg).map_err(SendTimeoutError::Disconnected),
            Flavor::Zero(c) => c.send(msg, deadline),
            Flavor::At(_) | Flavor::Tick(_) | Flavor::Never(_) => {
                unreachable!("timer and never channels have no sender")
            }
        }
    }

    fn try_recv(&self) -> Result<T, TryRecvError> {
        match &self.flavor {
            Flavor::Array(c) => c.try_recv(),
            Flavor::List(c) => c.try_recv(),
            Flavor::Zero(c) => c.try_recv(),
            Flavor::At(c) => c.try_recv(),
            Flavor::Tick(c) => c.try_recv(),
            Flavor::Never(c) => c.try_recv(),
        }
    }

    fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        match &self.flavor {
            Flavor::Array(c) => c.recv(deadline),
            Flavor::List(c) => c.recv(deadline),
            Flavor::Zero(c) => c.recv(deadline),
            Flavor::At(c) => c.recv(deadline),
            Flavor::Tick(c) => c.recv(deadline),
            Flavor::Never(c) => c.recv(deadline),
        }
    }

    /// # Safety
    /// `token` must come from a successful receive selection on this channel.
    unsafe fn read(&self, token: &mut Token) -> Result<T, ()> {
        // SAFETY: forwarded contract (the timer flavors' `read` needs none).
        unsafe {
            match &self.flavor {
                Flavor::Array(c) => c.read(token.part()),
                Flavor::List(c) => c.read(token.part()),
                Flavor::Zero(c) => c.read(token.part()),
                Flavor::At(c) => c.read(token.part()),
                Flavor::Tick(c) => c.read(token.part()),
                Flavor::Never(_) => unreachable!("a never channel is never selected"),
            }
        }
    }

    /// # Safety
    /// `token` must come from a successful send selection on this channel.
    unsafe fn write(&self, token: &mut Token, msg: T) -> Result<(), T> {
        // SAFETY: forwarded contract.
        unsafe {
            match &self.flavor {
                Flavor::Array(c) => c.write(token.part(), msg),
                Flavor::List(c) => c.write(token.part(), msg),
                Flavor::Zero(c) => c.write(token.part(), msg),
                Flavor::At(_) | Flavor::Tick(_) | Flavor::Never(_) => {
                    unreachable!("timer and never channels have no sender")
                }
            }
        }
    }

    /// Whether `self` and `other` are the same channel. Every never channel counts as the same
    /// one (crossbeam's rule): none holds any state that could tell them apart.
    fn same_as(self: &Arc<Self>, other: &Arc<Self>) -> bool {
        Arc::ptr_eq(self, other)
            || matches!(
                (&self.flavor, &other.flavor),
                (Flavor::Never(_), Flavor::Never(_))
            )
    }
}

/// The bytes a buffer of `cap` messages of type `T` would take, if that is addressable.
fn buffer_bytes<T>(cap: usize) -> Option<usize> {
    let slot = std::mem::size_of::<T>().max(1) + std::mem::size_of::<usize>();
    let bytes = cap.checked_mul(slot)?;
    // Positions need two spare bits above the index (the close mark and the lap counter).
    if bytes > isize::MAX as usize || cap > usize::MAX / 4 {
        return None;
    }
    Some(bytes)
}

/// A channel of capacity `cap`: `0` is Go's unbuffered channel (a send completes only when a
/// receiver takes the message), `n > 0` buffers up to `n` messages.
///
/// # Panics
/// If a buffer of `cap` messages cannot be allocated (the message names the capacity).
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let flavor = if cap == 0 {
        Flavor::Zero(zero::Channel::new())
    } else {
        let Some(bytes) = buffer_bytes::<T>(cap) else {
            panic!("goro: channel capacity {cap} is too large: its buffer would not fit in memory");
        };
        // Probe the allocation without aborting the process on failure.
        let mut probe: Vec<u8> = Vec::new();
        if probe.try_reserve_exact(bytes).is_err() {
            panic!("goro: channel capacity {cap} is too large: cannot allocate {bytes} bytes");
        }
        drop(probe);
        Flavor::Array(array::Channel::with_capacity(cap))
    };
    let chan = Chan::new(flavor);
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// A channel without a capacity limit: sends never block.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Chan::new(Flavor::List(list::Channel::new()));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// A receiver that never delivers a message and is never closed (Go's nil channel in a
/// select, crossbeam-channel's `never`). All never channels are [`same_channel`] with each
/// other.
///
/// [`same_channel`]: Receiver::same_channel
pub fn never<T>() -> Receiver<T> {
    Receiver {
        chan: Chan::new(Flavor::Never(never::Channel)),
    }
}

/// A timer channel of `goro::time` (Go's semantics): fed by the shared timer facility through
/// the returned weak reference; it has no `Sender`, so it is never closed by senders going away.
pub(crate) fn timer_channel() -> (Weak<Chan<Instant>>, Receiver<Instant>) {
    let chan = Chan::new(Flavor::Array(array::Channel::with_capacity(1)));
    (Arc::downgrade(&chan), Receiver { chan })
}

/// Deliver `msg` from a timer (never blocks). False if the receivers are gone or closed it.
pub(crate) fn timer_deliver(chan: &Weak<Chan<Instant>>, msg: Instant) -> bool {
    match chan.upgrade() {
        Some(c) => !matches!(c.try_send(msg), Err(TrySendError::Disconnected(_))),
        None => false,
    }
}

/// Whether a timer channel still holds an unreceived message (its receiver has not seen the
/// last tick yet).
pub(crate) fn timer_unreceived(chan: &Weak<Chan<Instant>>) -> bool {
    chan.upgrade().is_some_and(|c| c.is_full())
}

/// A receiver that delivers one message, the instant `when`, once `when` has come
/// (crossbeam-channel's `at`). Then it is empty forever; it is never closed (`close` does
/// nothing). No timer is involved: receivers and selects look at the clock, and a blocked one
/// parks until `when`.
///
/// ```
/// use goro::chan;
/// use std::time::{Duration, Instant};
///
/// let when = Instant::now() + Duration::from_millis(5);
/// assert_eq!(chan::at(when).recv(), Ok(when));
/// ```
pub fn at(when: Instant) -> Receiver<Instant> {
    Receiver {
        chan: Chan::new(Flavor::At(at::Channel::new(when))),
    }
}

/// A receiver that delivers one message after `duration`: the deadline (the instant of the
/// call plus `duration`), not the instant it was received (crossbeam-channel's `after`; as
/// [`at`]). A `duration` too long to represent gives a channel that never delivers
/// ([`goro::time::after`] is this channel but waits a hundred years then). For Go's
/// `time.After` semantics (the firing instant) use a [`goro::time::Timer`].
///
/// In a select, a timer channel whose deadline has passed is ready like any channel holding a
/// message, so of two `after` cases the earlier one wins.
///
/// [`goro::time::after`]: crate::time::after
/// [`goro::time::Timer`]: crate::time::Timer
pub fn after(duration: Duration) -> Receiver<Instant> {
    match Instant::now().checked_add(duration) {
        Some(when) => at(when),
        None => never(),
    }
}

/// A receiver that delivers a message every `duration` (crossbeam-channel's `tick`): each
/// message is the time the tick was due; the next tick is due `duration` after the later of
/// that time and the moment it was received, so a slow receiver misses ticks instead of
/// collecting them. A zero `duration` delivers on every receive. It is never closed.
/// [`goro::time::tick`] is the same channel; for Go's ticker (ticks on the period grid, the
/// firing instant, `stop`/`reset`) use a [`goro::time::Ticker`].
///
/// [`goro::time::tick`]: crate::time::tick
/// [`goro::time::Ticker`]: crate::time::Ticker
pub fn tick(duration: Duration) -> Receiver<Instant> {
    match tick::Channel::new(duration) {
        Some(c) => Receiver {
            chan: Chan::new(Flavor::Tick(c)),
        },
        None => never(),
    }
}

/// The sending side of a channel. Clone it for more senders.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving side of a channel. Clone it for more receivers; each message goes to one.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> std::panic::UnwindSafe for Sender<T> {}
impl<T> std::panic::RefUnwindSafe for Sender<T> {}
impl<T> std::panic::UnwindSafe for Receiver<T> {}
impl<T> std::panic::RefUnwindSafe for Receiver<T> {}

impl<T> Sender<T> {
    /// Send `msg`, blocking while the channel is full (unbuffered: until a receiver takes it).
    /// Fails, handing `msg` back, if the channel is or gets closed.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        crate::park::coop_spend();
        self.chan.send(msg, None).map_err(|e| match e {
            SendTimeoutError::Disconnected(m) => SendError(m),
            SendTimeoutError::Timeout(_) => unreachable!(),
        })
    }

    /// Send without blocking: `Full` if it would block, `Disconnected` if closed.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        crate::park::coop_spend();
        self.chan.try_send(msg)
    }

    /// Send, waiting at most `timeout`.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline(msg, crate::deadline::after(timeout))
    }

    /// Send, waiting until `deadline` at most.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    pub fn send_deadline(&self, msg: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        crate::park::coop_spend();
        self.chan.send(msg, Some(deadline))
    }

    /// Close the channel (Go's `close`). True for the call that closed it, false if it was
    /// already closed. Buffered messages can still be received.
    pub fn close(&self) -> bool {
        self.chan.disconnect()
    }

    /// Whether the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Messages in the buffer.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether the buffer is empty (always true unbuffered).
    pub fn is_empty(&self) -> bool {
        self.chan.is_empty()
    }

    /// Whether the buffer is full (always true unbuffered, never unbounded).
    pub fn is_full(&self) -> bool {
        self.chan.is_full()
    }

    /// The capacity: `Some(n)` for `bounded(n)`, `None` for `unbounded`.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Whether both senders belong to the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    pub(crate) fn as_chan(&self) -> &Chan<T> {
        &self.chan
    }

    /// This channel's identity as a send case of a select: the channel's address with the
    /// low bit set (a `Chan` is aligned to at least 8, so the bit is free). A receive case of
    /// the same channel has the bit clear, so a selected receive can never be completed as a
    /// send or the other way round (its token would name the wrong kind of slot).
    pub(crate) fn case_id(&self) -> usize {
        Arc::as_ptr(&self.chan) as usize | 1
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.disconnect();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Sender { .. }")
    }
}

impl<T> Receiver<T> {
    /// Receive a message, blocking until one is available; `Err` once the channel is closed
    /// and drained.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    pub fn recv(&self) -> Result<T, RecvError> {
        crate::park::coop_spend();
        self.chan.recv(None).map_err(|_| RecvError)
    }

    /// Receive without blocking.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        crate::park::coop_spend();
        self.chan.try_recv()
    }

    /// [`try_recv`](Self::try_recv) without spending the cooperative budget (it never yields):
    /// for goro's own code that drains a channel while it holds a lock.
    pub(crate) fn try_recv_uncounted(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// Receive, waiting at most `timeout`.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline(crate::deadline::after(timeout))
    }

    /// Receive, waiting until `deadline` at most.
    /// Counts against the cooperative budget (see [`crate::gosched`]).
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        crate::park::coop_spend();
        self.chan.recv(Some(deadline))
    }

    /// A blocking iterator; ends when the channel is closed and drained (Go's `range ch`).
    /// Each item counts against the cooperative budget (see [`crate::gosched`]).
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over the messages available now.
    /// Each item counts against the cooperative budget (see [`crate::gosched`]).
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Close the channel from the receiving side: senders fail from now on; buffered
    /// messages can still be received. True for the call that closed it.
    pub fn close(&self) -> bool {
        self.chan.disconnect()
    }

    /// Whether the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Messages in the buffer.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.chan.is_empty()
    }

    /// Whether the buffer is full.
    pub fn is_full(&self) -> bool {
        self.chan.is_full()
    }

    /// The capacity: `Some(n)` for `bounded(n)`, `None` for `unbounded`.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Whether both receivers belong to the same channel (every [`never()`] channel is the
    /// same channel).
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        self.chan.same_as(&other.chan)
    }

    pub(crate) fn as_chan(&self) -> &Chan<T> {
        &self.chan
    }

    /// This channel's identity as a receive case of a select (see `Sender::case_id`).
    pub(crate) fn case_id(&self) -> usize {
        Arc::as_ptr(&self.chan) as usize
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.disconnect();
            // Nobody can receive them any more: drop buffered messages now, not when the last
            // sender goes (crossbeam-channel's rule; users rely on it to release resources).
            // Also after an explicit `close`, which keeps them for the receivers. With no
            // sender left the channel is freed right after this anyway (its `Drop` drops
            // them), and skipping the discard then spares it the wait for a claimed slot that
            // may never be written (a forgotten `SelectedOperation`: see `discard_all`).
            if self.chan.senders.load(Ordering::Acquire) == 0 {
                return;
            }
            match &self.chan.flavor {
                Flavor::Array(c) => c.discard_all(),
                Flavor::List(c) => c.discard_all(),
                Flavor::Zero(_) | Flavor::At(_) | Flavor::Tick(_) | Flavor::Never(_) => {}
            }
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Receiver { .. }")
    }
}

/// Blocking iterator of [`Receiver::iter`].
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Once it has ended the channel is closed and drained, which it stays: it never yields again.
impl<T> std::iter::FusedIterator for Iter<'_, T> {}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Iter { .. }")
    }
}

/// Non-blocking iterator of [`Receiver::try_iter`].
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("TryIter { .. }")
    }
}

/// Owning blocking iterator (`for v in rx`).
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// As for [`Iter`]. (`TryIter` is not fused: it ends whenever the channel is empty, and a
/// later message makes it yield again; crossbeam-channel's is not fused either.)
impl<T> std::iter::FusedIterator for IntoIter<T> {}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("IntoIter { .. }")
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
