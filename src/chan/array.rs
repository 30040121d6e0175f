//! The buffered flavor, `bounded(n)` with `n > 0`: a fixed ring of slots.
//!
//! Lock-free on every non-blocking path. Each slot carries a *stamp*; `head` and `tail` are
//! positions made of an index and a lap counter (`lap * one_lap + index`). A slot at index `i`
//! is ready to be written when its stamp equals `tail` and ready to be read when its stamp
//! equals `head + 1`. A sender claims a slot by a CAS on `tail`, writes the message, then
//! publishes it by storing `tail + 1` into the stamp; a receiver claims by a CAS on `head`,
//! reads, and frees the slot for the next lap by storing `head + one_lap`. This is the scheme
//! of crossbeam-channel's array flavor (after Dmitry Vyukov's bounded MPMC queue).
//!
//! Closing sets `mark_bit` in `tail`: senders then fail (returning their message), receivers
//! drain what is buffered and then see the channel closed.
//!
//! Invariants: `mark_bit` is above every index and below `one_lap`; a slot's stamp only
//! moves forward; a message is written only into a slot its sender claimed and read only from
//! a slot its receiver claimed, so each message is read exactly once.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{self, AtomicUsize, Ordering};
use std::time::Instant;

use super::err::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use crossbeam_utils::{Backoff, CachePadded};

use super::side::Side;
use super::waiting::{Operation, Waiting};
use super::waker::SyncWaker;

struct Slot<T> {
    stamp: AtomicUsize,
    msg: UnsafeCell<MaybeUninit<T>>,
}

/// Array flavor: the claimed slot (null: closed) and the stamp to store after the access.
pub(crate) struct ArrayToken {
    pub(crate) slot: *const u8,
    pub(crate) stamp: usize,
}

impl Default for ArrayToken {
    fn default() -> Self {
        ArrayToken {
            slot: std::ptr::null(),
            stamp: 0,
        }
    }
}

pub(crate) struct Channel<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    buffer: Box<[Slot<T>]>,
    cap: usize,
    one_lap: usize,
    mark_bit: usize,
    senders: SyncWaker,
    receivers: SyncWaker,
}

// SAFETY: the channel hands each `T` from one thread to another exactly once (slots are
// claimed exclusively through the stamps), so it is Send/Sync when `T: Send`.
unsafe impl<T: Send> Send for Channel<T> {}
// SAFETY: see above; shared access only ever moves whole `T`s between threads.
unsafe impl<T: Send> Sync for Channel<T> {}

impl<T> Channel<T> {
    pub(crate) fn with_capacity(cap: usize) -> Channel<T> {
        assert!(cap > 0, "capacity must be positive");
        let mark_bit = (cap + 1).next_power_of_two();
        let one_lap = mark_bit * 2;
        let buffer: Box<[Slot<T>]> = (0..cap)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                msg: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Channel {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            buffer,
            cap,
            one_lap,
            mark_bit,
            senders: SyncWaker::new(),
            receivers: SyncWaker::new(),
        }
    }

    /// Claim a slot to write. True with `token.slot` null when the channel is closed.
    pub(crate) fn start_send(&self, token: &mut ArrayToken) -> bool {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & self.mark_bit != 0 {
                token.slot = std::ptr::null();
                token.stamp = 0;
                return true;
            }
            let index = tail & (self.mark_bit - 1);
            let lap = tail & !(self.one_lap - 1);
            // SAFETY: `index < cap` because positions only ever hold indexes below `cap`.
            let slot = unsafe { self.buffer.get_unchecked(index) };
            let stamp = slot.stamp.load(Ordering::Acquire);
            if tail == stamp {
                let new_tail = if index + 1 < self.cap {
                    tail + 1
                } else {
                    lap.wrapping_add(self.one_lap)
                };
                match self.tail.compare_exchange_weak(
                    tail,
                    new_tail,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        token.slot = slot as *const Slot<T> as *const u8;
                        token.stamp = tail + 1;
                        return true;
                    }
                    Err(t) => {
                        tail = t;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                // The slot still holds last lap's message: full unless a receiver moved on.
                atomic::fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    return false;
                }
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another sender claimed this slot and has not published yet.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Write into the slot claimed by `start_send`.
    ///
    /// # Safety
    /// `token` must come from a successful `start_send` (or `try_select`) on this channel.
    pub(crate) unsafe fn write(&self, token: &mut ArrayToken, msg: T) -> Result<(), T> {
        if token.slot.is_null() {
            return Err(msg);
        }
        // SAFETY: the token names a slot of this channel that this caller claimed exclusively.
        let slot: &Slot<T> = unsafe { &*(token.slot as *const Slot<T>) };
        // SAFETY: claimed exclusively (see above), and empty: its stamp said so.
        unsafe { slot.msg.get().write(MaybeUninit::new(msg)) };
        slot.stamp.store(token.stamp, Ordering::Release);
        self.receivers.notify();
        Ok(())
    }

    /// Claim a slot to read. True with a null slot when the channel is closed and drained.
    pub(crate) fn start_recv(&self, token: &mut ArrayToken) -> bool {
        let backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let index = head & (self.mark_bit - 1);
            let lap = head & !(self.one_lap - 1);
            // SAFETY: `index < cap`, as above.
            let slot = unsafe { self.buffer.get_unchecked(index) };
            let stamp = slot.stamp.load(Ordering::Acquire);
            if head + 1 == stamp {
                let new = if index + 1 < self.cap {
                    head + 1
                } else {
                    lap.wrapping_add(self.one_lap)
                };
                match self.head.compare_exchange_weak(
                    head,
                    new,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        token.slot = slot as *const Slot<T> as *const u8;
                        token.stamp = head.wrapping_add(self.one_lap);
                        return true;
                    }
                    Err(h) => {
                        head = h;
                        backoff.spin();
                    }
                }
            } else if stamp == head {
                atomic::fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::Relaxed);
                if (tail & !self.mark_bit) == head {
                    if tail & self.mark_bit != 0 {
                        token.slot = std::ptr::null();
                        token.stamp = 0;
                        return true;
                    }
                    return false;
                }
                backoff.spin();
                head = self.head.load(Ordering::Relaxed);
            } else {
                // A receiver of the previous lap has not freed this slot yet.
                backoff.snooze();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Read from the slot claimed by `start_recv`.
    ///
    /// # Safety
    /// `token` must come from a successful `start_recv` (or `try_select`) on this channel.
    pub(crate) unsafe fn read(&self, token: &mut ArrayToken) -> Result<T, ()> {
        if token.slot.is_null() {
            return Err(());
        }
        // SAFETY: the token names a slot of this channel that this caller claimed exclusively.
        let slot: &Slot<T> = unsafe { &*(token.slot as *const Slot<T>) };
        // SAFETY: the slot holds a published message (its stamp said so) that is ours alone.
        let msg = unsafe { slot.msg.get().read().assume_init() };
        slot.stamp.store(token.stamp, Ordering::Release);
        self.senders.notify();
        Ok(msg)
    }

    pub(crate) fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        let token = &mut ArrayToken::default();
        if self.start_send(token) {
            // SAFETY: the token comes from `start_send` on this channel.
            unsafe { self.write(token, msg).map_err(TrySendError::Disconnected) }
        } else {
            Err(TrySendError::Full(msg))
        }
    }

    pub(crate) fn send(
        &self,
        msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let token = &mut ArrayToken::default();
        loop {
            if self.start_send(token) {
                // SAFETY: the token comes from `start_send` on this channel.
                let r = unsafe { self.write(token, msg) };
                return r.map_err(SendTimeoutError::Disconnected);
            }
            if let Some(d) = deadline {
                if Instant::now() >= d {
                    return Err(SendTimeoutError::Timeout(msg));
                }
            }
            self.senders
                .wait_to_retry(token, deadline, "chan send", || {
                    !self.is_full() || self.is_disconnected()
                });
        }
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let token = &mut ArrayToken::default();
        if self.start_recv(token) {
            // SAFETY: the token comes from `start_recv` on this channel.
            unsafe { self.read(token).map_err(|_| TryRecvError::Disconnected) }
        } else {
            Err(TryRecvError::Empty)
        }
    }

    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let token = &mut ArrayToken::default();
        loop {
            if self.start_recv(token) {
                // SAFETY: the token comes from `start_recv` on this channel.
                let r = unsafe { self.read(token) };
                return r.map_err(|_| RecvTimeoutError::Disconnected);
            }
            if let Some(d) = deadline {
                if Instant::now() >= d {
                    return Err(RecvTimeoutError::Timeout);
                }
            }
            self.receivers
                .wait_to_retry(token, deadline, "chan receive", || {
                    !self.is_empty() || self.is_disconnected()
                });
        }
    }

    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) == tail {
                let hix = head & (self.mark_bit - 1);
                let tix = tail & (self.mark_bit - 1);
                return if hix < tix {
                    tix - hix
                } else if hix > tix {
                    self.cap - hix + tix
                } else if (tail & !self.mark_bit) == head {
                    0
                } else {
                    self.cap
                };
            }
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Close: senders fail from now on, receivers drain. True for the call that closed it.
    pub(crate) fn disconnect(&self) -> bool {
        let tail = self.tail.fetch_or(self.mark_bit, Ordering::SeqCst);
        if tail & self.mark_bit == 0 {
            self.senders.disconnect();
            self.receivers.disconnect();
            true
        } else {
            false
        }
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        self.tail.load(Ordering::SeqCst) & self.mark_bit != 0
    }

    /// The last receiver is gone: drop every buffered message now (as crossbeam-channel does),
    /// not when the channel is freed, which the last sender may put off indefinitely.
    ///
    /// Called once, by the drop of the last receiver, after `disconnect`: no receive can be
    /// in progress (every receive borrows a receiver), and no slot can be claimed for sending
    /// any more (the close mark in `tail` fails every later claim). A sender that claimed its
    /// slot before the mark may still be writing: we wait for its stamp, so its message is
    /// dropped here, once (its `send` has returned `Ok`, as it would have for a message that
    /// stayed unreceived). `head` is set to `tail` first, so the channel's own `Drop` finds
    /// nothing, even if a message's destructor panics here (the rest then leak).
    ///
    /// A slot claimed and then abandoned (a select's `SelectedOperation` forgotten with
    /// `mem::forget` while its sender lives on) is never written: this then waits forever, as
    /// a receiver reaching that slot would (and as crossbeam-channel does). Not UB, a wedge.
    pub(crate) fn discard_all(&self) {
        let tail = self.tail.load(Ordering::SeqCst);
        debug_assert!(tail & self.mark_bit != 0, "discard before close");
        let tail = tail & !self.mark_bit;
        // The receivers' count hand-over (AcqRel) orders every earlier receive before this.
        let mut head = self.head.load(Ordering::Acquire);
        // Take every message out of the buffer before dropping any: if a destructor panics,
        // the rest leak (as in crossbeam-channel) instead of being dropped again by `Drop`.
        self.head.store(tail, Ordering::Release);
        let backoff = Backoff::new();
        while head != tail {
            let index = head & (self.mark_bit - 1);
            let lap = head & !(self.one_lap - 1);
            // SAFETY: `index < cap`, as in `start_recv`.
            let slot = unsafe { self.buffer.get_unchecked(index) };
            if slot.stamp.load(Ordering::Acquire) == head.wrapping_add(1) {
                // SAFETY: the stamp says the slot holds a published message; no receiver can
                // claim it (there are none), and the stored head has already moved past it,
                // so nothing else drops it.
                unsafe { (*slot.msg.get()).assume_init_drop() };
                head = if index + 1 < self.cap {
                    head + 1
                } else {
                    lap.wrapping_add(self.one_lap)
                };
            } else {
                // Claimed before the close, not yet written.
                backoff.snooze();
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::SeqCst);
        (tail & !self.mark_bit) == head
    }

    pub(crate) fn is_full(&self) -> bool {
        let tail = self.tail.load(Ordering::SeqCst);
        let head = self.head.load(Ordering::SeqCst);
        head.wrapping_add(self.one_lap) == tail & !self.mark_bit
    }
}

/// The receiving end of an array channel, as a select case.
pub(crate) struct Receiving<'a, T>(pub(crate) &'a Channel<T>);

/// The sending end of an array channel, as a select case.
pub(crate) struct Sending<'a, T>(pub(crate) &'a Channel<T>);

impl<T> Side for Receiving<'_, T> {
    type Token = ArrayToken;

    fn try_select(&self, token: &mut ArrayToken) -> bool {
        self.0.start_recv(token)
    }

    fn register(&self, oper: Operation, cx: &Waiting) -> bool {
        self.0.receivers.register(oper, cx);
        self.is_ready()
    }

    fn unregister(&self, oper: Operation) {
        self.0.receivers.unregister(oper);
    }

    fn accept(&self, token: &mut ArrayToken, _cx: &Waiting) -> bool {
        // A claim only means "retry now": the message is in the buffer.
        self.0.start_recv(token)
    }

    fn is_ready(&self) -> bool {
        !self.0.is_empty() || self.0.is_disconnected()
    }

    fn watch(&self, oper: Operation, cx: &Waiting) -> bool {
        self.0.receivers.watch(oper, cx);
        self.is_ready()
    }

    fn unwatch(&self, oper: Operation) {
        self.0.receivers.unwatch(oper);
    }
}

impl<T> Side for Sending<'_, T> {
    type Token = ArrayToken;

    fn try_select(&self, token: &mut ArrayToken) -> bool {
        self.0.start_send(token)
    }

    fn register(&self, oper: Operation, cx: &Waiting) -> bool {
        self.0.senders.register(oper, cx);
        self.is_ready()
    }

    fn unregister(&self, oper: Operation) {
        self.0.senders.unregister(oper);
    }

    fn accept(&self, token: &mut ArrayToken, _cx: &Waiting) -> bool {
        // A claim only means "retry now": a slot has been freed.
        self.0.start_send(token)
    }

    fn is_ready(&self) -> bool {
        !self.0.is_full() || self.0.is_disconnected()
    }

    fn watch(&self, oper: Operation, cx: &Waiting) -> bool {
        self.0.senders.watch(oper, cx);
        self.is_ready()
    }

    fn unwatch(&self, oper: Operation) {
        self.0.senders.unwatch(oper);
    }
}

impl<T> Drop for Channel<T> {
    fn drop(&mut self) {
        // Walk the positions from head to tail and drop the slots that hold a message. A slot
        // a sender claimed but never wrote (its `SelectedOperation` was forgotten, which safe
        // code may do) is skipped: its stamp was never published.
        let tail = *self.tail.get_mut() & !self.mark_bit;
        let mut head = *self.head.get_mut();
        while head != tail {
            let index = head & (self.mark_bit - 1);
            let lap = head & !(self.one_lap - 1);
            // SAFETY: `index < cap`, as in `start_recv`.
            let slot = unsafe { self.buffer.get_unchecked_mut(index) };
            if *slot.stamp.get_mut() == head.wrapping_add(1) {
                // SAFETY: we own the channel, and the stamp says the slot holds a message.
                unsafe { (*slot.msg.get()).assume_init_drop() };
            }
            head = if index + 1 < self.cap {
                head + 1
            } else {
                lap.wrapping_add(self.one_lap)
            };
        }
    }
}
