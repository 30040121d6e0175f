//! The rendezvous flavor, `bounded(0)` (Go's `make(chan T)`): a send completes only when a
//! receiver takes the message, hand to hand.
//!
//! One short critical section per operation: a mutex guards the two waiter lists and the
//! closed flag. A sender that finds a waiting receiver claims it (the waiter CAS, see
//! `waiting.rs`), leaves the lock, writes the message into the receiver's *packet* and unparks it;
//! with no receiver waiting it registers its own packet (holding the message) and parks until
//! a receiver takes it. Receivers mirror this.
//!
//! Packets: a plain blocking `send`/`recv` keeps its packet in its `Waiting`'s slot (or in a
//! box when the message is too big for it), never on its stack, so a parked waiter's stack can
//! be compacted; a blocked `select` case gets a boxed packet, empty even for a send case (the
//! value is evaluated only if the case is chosen). Who does what:
//! - claimer receives from a plain packet: take the message, set `ready`, unpark the sender;
//! - claimer receives from a heap (select send) packet: before the CAS, store its own unparker
//!   in the packet; after, unpark the sender, park until `ready`, take the message, free it;
//! - claimer sends: write the message, set `ready`, unpark the receiver (which frees a heap
//!   packet itself);
//! - a claimed blocking sender/receiver parks until `ready` (its plain packet is in use until
//!   then); a claimed select send case writes its message, sets `ready`, unparks the waiter
//!   stored in the packet.
//!
//! `ready` is a `park::OneShot` that nobody arms, set with `OneShot::publish` (a plain Release
//! store) and waited on with `OneShot::wait_published`: whoever sets `ready` hands the packet
//! back, and its owner may drop it (a plain packet) or free it (a select case's box) the moment
//! it sees the flag, so the setter must not touch the packet after its store. The setter
//! therefore takes the handle it will unpark *before* the store (the claimed waiter's
//! `Waiting`, an `Arc` it holds, or the unparker stored in a heap packet); `set`, which reads
//! the waiter slot after its read-modify-write, would here be a use after free (and an extra
//! locked instruction per hand-over).
//!
//! Invariants: a packet is touched by at most two parties, its owner and the claimer that won
//! the CAS; `ready` is set last by whoever completes the hand-over, and a plain packet's
//! owner does not return before `ready`; a heap packet is freed exactly once, by the receiving
//! side after reading, or by `unregister` when nobody claimed it.

use std::cell::UnsafeCell;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::err::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use super::side::Side;
use super::waiting::{Operation, Selected, Waiting};
use super::waker::{WaitEntry, Waker};
use crate::park::{self, OneShot, Unparker};

/// The value `ready` is published with.
const READY: usize = 1;
use crate::util;

pub(crate) struct Packet<T> {
    /// The packet of a plain blocking `send`/`recv`, placed and dropped by that operation
    /// ([`PlainPacket`]); false: a select case's box, freed by whoever completes it last.
    plain: bool,
    /// Set (published) by whoever completes the hand-over; see the module docs. For boxed
    /// packets of select send cases, its waiter slot holds the receiver that claimed it, to
    /// wake once the message is written (`OneShot::put_waiter`).
    ready: OneShot,
    msg: UnsafeCell<Option<T>>,
}

impl<T> Packet<T> {
    fn new(plain: bool, msg: Option<T>) -> Packet<T> {
        Packet {
            plain,
            ready: OneShot::new(),
            msg: UnsafeCell::new(msg),
        }
    }

    /// An empty packet for a select case, in a box of its own.
    fn for_select() -> *mut Packet<T> {
        Box::into_raw(Box::new(Packet::new(false, None)))
    }
}

/// The packet of a plain blocking send or receive: in its [`Waiting`]'s slot when it fits,
/// else in a box of its own; never on the caller's stack, which a partner would then write
/// while the waiter's stack may be compacted (`stack::compact`). Dropped by its operation once
/// no partner can touch it any more: after `ready`, or after the operation's abort or
/// disconnect won the context's CAS and the entry left the waiter list.
struct PlainPacket<T> {
    ptr: *mut Packet<T>,
    boxed: bool,
}

impl<T> PlainPacket<T> {
    /// Place a fresh packet holding `msg` for the operation that owns `cx`, which must
    /// outlive the result (the slot is part of `cx`).
    fn place(cx: &Waiting, msg: Option<T>) -> PlainPacket<T> {
        let packet = Packet::new(true, msg);
        match cx.slot::<Packet<T>>() {
            Some(p) => {
                // SAFETY: `slot` gives storage that fits a `Packet<T>`, owned by the operation
                // that owns `cx` (ours) and holding nothing live: the previous operation that
                // used it dropped its packet before it released the context.
                unsafe { p.write(packet) };
                PlainPacket {
                    ptr: p,
                    boxed: false,
                }
            }
            None => PlainPacket {
                ptr: Box::into_raw(Box::new(packet)),
                boxed: true,
            },
        }
    }

    fn get(&self) -> &Packet<T> {
        // SAFETY: placed in `place` and valid until `drop`; partners only write through the
        // packet's cells and atomics, never move or free it.
        unsafe { &*self.ptr }
    }

    fn as_ptr(&self) -> *mut () {
        self.ptr.cast()
    }
}

impl<T> Drop for PlainPacket<T> {
    fn drop(&mut self) {
        if self.boxed {
            // SAFETY: from `Box::into_raw` in `place`, freed only here; no partner can touch it
            // any more (the type's docs: its operation drops it only after that).
            drop(unsafe { Box::from_raw(self.ptr) });
        } else {
            // SAFETY: written in `place` and not dropped since; the slot outlives this value
            // (`place`'s contract) and no partner touches the packet any more (as above).
            unsafe { std::ptr::drop_in_place(self.ptr) };
        }
    }
}

struct Inner {
    senders: Waker,
    receivers: Waker,
    closed: bool,
}

/// Rendezvous flavor: the packet (null: closed) and, when we claimed a waiting partner, the
/// partner to wake once the hand-over is done.
pub(crate) struct ZeroToken {
    pub(crate) packet: *mut (),
    pub(crate) partner: Option<Waiting>,
}

impl Default for ZeroToken {
    fn default() -> Self {
        ZeroToken {
            packet: std::ptr::null_mut(),
            partner: None,
        }
    }
}

pub(crate) struct Channel<T> {
    inner: Mutex<Inner>,
    _marker: std::marker::PhantomData<T>,
}

// SAFETY: messages move between threads through packets, each owned by one party at a time.
unsafe impl<T: Send> Send for Channel<T> {}
// SAFETY: see above.
unsafe impl<T: Send> Sync for Channel<T> {}

impl<T> Channel<T> {
    pub(crate) fn new() -> Channel<T> {
        Channel {
            inner: Mutex::new(Inner {
                senders: Waker::new(),
                receivers: Waker::new(),
                closed: false,
            }),
            _marker: std::marker::PhantomData,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        util::lock(&self.inner)
    }

    /// Claim a waiting sender (under the lock). For a select send case, publish our unparker
    /// in its packet first, so that it can wake us once it has written its message.
    fn claim_sender(inner: &mut Inner, exclude: Option<&Waiting>) -> Option<(*mut (), Waiting)> {
        let mut me: Option<Unparker> = None;
        let list = &inner.senders.selectors;
        let i = (0..list.len()).find(|&i| {
            let e = &list[i];
            if exclude.is_some_and(|x| x.ptr_eq(&e.cx)) {
                return false;
            }
            let p = e.packet as *mut Packet<T>;
            // SAFETY: entries' packets are live while registered; the waiter slot of a heap
            // packet's `ready` is only touched under this lock until the CAS below hands the
            // packet to its sender, and nobody arms `ready`.
            unsafe {
                if !(*p).plain {
                    let me = me.get_or_insert_with(park::current).clone();
                    (*p).ready.put_waiter(me);
                }
            }
            e.cx.try_claim(e.oper)
        })?;
        let e = inner.senders.take_claimed(i)?;
        e.cx.store_packet(e.packet);
        Some((e.packet, e.cx))
    }

    fn claim_receiver(inner: &mut Inner, exclude: Option<&Waiting>) -> Option<(*mut (), Waiting)> {
        let e = inner.receivers.try_select(exclude)?;
        Some((e.packet, e.cx))
    }

    /// Complete a receive whose token came from claiming a sender or from being claimed.
    ///
    /// # Safety
    /// `token` must come from a successful receive selection on this channel.
    pub(crate) unsafe fn read(&self, token: &mut ZeroToken) -> Result<T, ()> {
        let p = token.packet as *mut Packet<T>;
        if p.is_null() {
            return Err(());
        }
        match token.partner.take() {
            Some(sender) => {
                // SAFETY: we won the CAS on the sender, so its packet is ours to complete.
                let packet = unsafe { &*p };
                if packet.plain {
                    // SAFETY: the sender is parked until `ready`; its message is in place.
                    let msg = unsafe { (*packet.msg.get()).take() };
                    // SAFETY: nobody arms `ready`, and we are its one setter (we won the CAS);
                    // we touch the packet no more.
                    unsafe { packet.ready.publish(READY) };
                    sender.unpark();
                    Ok(msg.expect("goro: rendezvous packet without a message"))
                } else {
                    // A select send case: wake it so that it evaluates and writes its message.
                    sender.unpark();
                    packet.ready.wait_published("chan receive");
                    // SAFETY: `ready` is set: the message is written and the sender is done
                    // with the packet, which is now ours to free.
                    let msg = unsafe { (*packet.msg.get()).take() };
                    // SAFETY: heap packets come from `Box::into_raw` and are freed once.
                    drop(unsafe { Box::from_raw(p) });
                    Ok(msg.expect("goro: rendezvous packet without a message"))
                }
            }
            None => {
                // We were claimed by a sender, which writes our packet and sets `ready`.
                // SAFETY: our own packet, live until we return or free it.
                let packet = unsafe { &*p };
                packet.ready.wait_published("chan receive");
                // SAFETY: `ready`: the sender wrote the message and no longer touches it.
                let msg = unsafe { (*packet.msg.get()).take() };
                if !packet.plain {
                    // SAFETY: heap packets come from `Box::into_raw` and are freed once.
                    drop(unsafe { Box::from_raw(p) });
                }
                Ok(msg.expect("goro: rendezvous packet without a message"))
            }
        }
    }

    /// Complete a send whose token came from claiming a receiver or from being claimed.
    ///
    /// # Safety
    /// `token` must come from a successful send selection on this channel.
    pub(crate) unsafe fn write(&self, token: &mut ZeroToken, msg: T) -> Result<(), T> {
        let p = token.packet as *mut Packet<T>;
        if p.is_null() {
            return Err(msg);
        }
        match token.partner.take() {
            Some(receiver) => {
                // SAFETY: we won the CAS on the receiver; it waits for `ready`.
                unsafe {
                    *(*p).msg.get() = Some(msg);
                    // Nobody arms `ready`; we are its one setter; the packet is not touched
                    // after this store.
                    (*p).ready.publish(READY);
                }
                receiver.unpark();
            }
            None => {
                // We are a select send case a receiver claimed; it stored its unparker here
                // before the CAS and waits for `ready`, then frees the packet.
                // SAFETY: the packet is live until we set `ready`; we are its one publisher, and
                // the receiver put its handle there under the channel lock before its claim,
                // which our wake-up is ordered after.
                let waiter = unsafe { (*p).ready.take_waiter() };
                // SAFETY: as above.
                unsafe {
                    *(*p).msg.get() = Some(msg);
                    // Nobody arms `ready`; we are its one setter; the packet is not touched
                    // after this store (the waiter was taken above).
                    (*p).ready.publish(READY);
                }
                if let Some(w) = waiter {
                    w.unpark();
                }
            }
        }
        Ok(())
    }

    pub(crate) fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        let mut inner = self.lock();
        if let Some((packet, cx)) = Self::claim_receiver(&mut inner, None) {
            drop(inner);
            let mut token = ZeroToken {
                packet,
                partner: Some(cx),
            };
            // SAFETY: the token comes from claiming a receiver of this channel.
            unsafe {
                self.write(&mut token, msg)
                    .map_err(TrySendError::Disconnected)
            }
        } else if inner.closed {
            Err(TrySendError::Disconnected(msg))
        } else {
            Err(TrySendError::Full(msg))
        }
    }

    pub(crate) fn send(
        &self,
        msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let mut token = ZeroToken::default();
        let mut inner = self.lock();
        if let Some((packet, cx)) = Self::claim_receiver(&mut inner, None) {
            drop(inner);
            token.packet = packet;
            token.partner = Some(cx);
            // SAFETY: the token comes from claiming a receiver of this channel.
            return unsafe {
                self.write(&mut token, msg)
                    .map_err(SendTimeoutError::Disconnected)
            };
        }
        if inner.closed {
            return Err(SendTimeoutError::Disconnected(msg));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(SendTimeoutError::Timeout(msg));
        }
        let cx = Waiting::new();
        let oper = Operation::hook(&mut token);
        let packet = PlainPacket::place(&cx, Some(msg));
        inner
            .senders
            .register_with_packet(oper, packet.as_ptr(), &cx);
        inner.receivers.notify();
        drop(inner);
        let result = match cx.wait_until(deadline, "chan send") {
            Selected::Aborted => {
                // `disconnect` may have emptied the list already.
                let _ = self.lock().senders.unregister(oper);
                // SAFETY: nobody claimed the packet (our abort CAS won); it is ours again.
                let msg = unsafe { (*packet.get().msg.get()).take() }.expect("message");
                Err(SendTimeoutError::Timeout(msg))
            }
            Selected::Disconnected => {
                // `disconnect` may have emptied the list already.
                let _ = self.lock().senders.unregister(oper);
                // SAFETY: the disconnect won the CAS, so no receiver claimed the packet, and
                // the entry is gone from the list (under the lock just taken).
                let msg = unsafe { (*packet.get().msg.get()).take() }.expect("message");
                Err(SendTimeoutError::Disconnected(msg))
            }
            Selected::Operation(_) => {
                // A receiver claimed us and is taking the message: wait until it is done.
                packet.get().ready.wait_published("chan send");
                Ok(())
            }
            Selected::Pending => unreachable!(),
        };
        drop(packet); // before the context (and its slot) can be reused
        cx.release();
        result
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut inner = self.lock();
        if let Some((packet, cx)) = Self::claim_sender(&mut inner, None) {
            drop(inner);
            let mut token = ZeroToken {
                packet,
                partner: Some(cx),
            };
            // SAFETY: the token comes from claiming a sender of this channel.
            unsafe {
                self.read(&mut token)
                    .map_err(|_| TryRecvError::Disconnected)
            }
        } else if inner.closed {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut token = ZeroToken::default();
        let mut inner = self.lock();
        if let Some((packet, cx)) = Self::claim_sender(&mut inner, None) {
            drop(inner);
            token.packet = packet;
            token.partner = Some(cx);
            // SAFETY: the token comes from claiming a sender of this channel.
            return unsafe {
                self.read(&mut token)
                    .map_err(|_| RecvTimeoutError::Disconnected)
            };
        }
        if inner.closed {
            return Err(RecvTimeoutError::Disconnected);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(RecvTimeoutError::Timeout);
        }
        let cx = Waiting::new();
        let oper = Operation::hook(&mut token);
        let packet = PlainPacket::<T>::place(&cx, None);
        inner
            .receivers
            .register_with_packet(oper, packet.as_ptr(), &cx);
        inner.senders.notify();
        drop(inner);
        let result = match cx.wait_until(deadline, "chan receive") {
            Selected::Aborted => {
                // `disconnect` may have emptied the list already.
                let _ = self.lock().receivers.unregister(oper);
                Err(RecvTimeoutError::Timeout)
            }
            Selected::Disconnected => {
                // `disconnect` may have emptied the list already.
                let _ = self.lock().receivers.unregister(oper);
                Err(RecvTimeoutError::Disconnected)
            }
            Selected::Operation(_) => {
                packet.get().ready.wait_published("chan receive");
                // SAFETY: `ready`: the sender wrote the message and is done with the packet.
                let msg = unsafe { (*packet.get().msg.get()).take() };
                Ok(msg.expect("goro: rendezvous packet without a message"))
            }
            Selected::Pending => unreachable!(),
        };
        drop(packet); // before the context (and its slot) can be reused
        cx.release();
        result
    }

    pub(crate) fn disconnect(&self) -> bool {
        let mut inner = self.lock();
        if inner.closed {
            return false;
        }
        inner.closed = true;
        // Select cases register heap packets that `unregister_*` would free; the drained
        // entries are never found there again, so free those packets here (blocked plain
        // sends and receives own their plain packets).
        let free_heap_packet = |e: WaitEntry| {
            let p = e.packet as *mut Packet<T>;
            // SAFETY: every entry in these lists carries a packet pointer that is live while
            // registered; `plain` is immutable.
            if !p.is_null() && unsafe { !(*p).plain } {
                // SAFETY: an unclaimed, registered heap packet is owned by its entry, and the
                // entry just left the list for good (see `Waker::disconnect_then`).
                drop(unsafe { Box::from_raw(p) });
            }
        };
        inner.senders.disconnect_then(free_heap_packet);
        inner.receivers.disconnect_then(free_heap_packet);
        true
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        self.lock().closed
    }
}

/// The receiving end of a rendezvous channel, as a select case.
pub(crate) struct Receiving<'a, T>(pub(crate) &'a Channel<T>);

/// The sending end of a rendezvous channel, as a select case.
pub(crate) struct Sending<'a, T>(pub(crate) &'a Channel<T>);

impl<T> Side for Receiving<'_, T> {
    type Token = ZeroToken;

    fn try_select(&self, token: &mut ZeroToken) -> bool {
        let mut inner = self.0.lock();
        if let Some((packet, cx)) = Channel::<T>::claim_sender(&mut inner, None) {
            token.packet = packet;
            token.partner = Some(cx);
            true
        } else if inner.closed {
            token.packet = std::ptr::null_mut();
            token.partner = None;
            true
        } else {
            false
        }
    }

    fn register(&self, oper: Operation, cx: &Waiting) -> bool {
        let packet = Packet::<T>::for_select();
        let mut inner = self.0.lock();
        inner
            .receivers
            .register_with_packet(oper, packet as *mut (), cx);
        inner.senders.notify();
        inner.senders.can_select(Some(cx)) || inner.closed
    }

    fn unregister(&self, oper: Operation) {
        let e = self.0.lock().receivers.unregister(oper);
        if let Some(e) = e {
            // SAFETY: nobody claimed the case, so its heap packet is still ours.
            drop(unsafe { Box::from_raw(e.packet as *mut Packet<T>) });
        }
    }

    /// A claimed select case: its packet was published by the claimer.
    fn accept(&self, token: &mut ZeroToken, cx: &Waiting) -> bool {
        token.packet = cx.wait_packet();
        token.partner = None;
        true
    }

    fn is_ready(&self) -> bool {
        let inner = self.0.lock();
        inner.senders.can_select(None) || inner.closed
    }

    fn watch(&self, oper: Operation, cx: &Waiting) -> bool {
        let mut inner = self.0.lock();
        inner.receivers.watch(oper, cx);
        inner.senders.can_select(Some(cx)) || inner.closed
    }

    fn unwatch(&self, oper: Operation) {
        self.0.lock().receivers.unwatch(oper);
    }
}

impl<T> Side for Sending<'_, T> {
    type Token = ZeroToken;

    fn try_select(&self, token: &mut ZeroToken) -> bool {
        let mut inner = self.0.lock();
        if let Some((packet, cx)) = Channel::<T>::claim_receiver(&mut inner, None) {
            token.packet = packet;
            token.partner = Some(cx);
            true
        } else if inner.closed {
            token.packet = std::ptr::null_mut();
            token.partner = None;
            true
        } else {
            false
        }
    }

    fn register(&self, oper: Operation, cx: &Waiting) -> bool {
        let packet = Packet::<T>::for_select();
        let mut inner = self.0.lock();
        inner
            .senders
            .register_with_packet(oper, packet as *mut (), cx);
        inner.receivers.notify();
        inner.receivers.can_select(Some(cx)) || inner.closed
    }

    fn unregister(&self, oper: Operation) {
        let e = self.0.lock().senders.unregister(oper);
        if let Some(e) = e {
            // SAFETY: nobody claimed the case, so its heap packet is still ours.
            drop(unsafe { Box::from_raw(e.packet as *mut Packet<T>) });
        }
    }

    /// A claimed select case: its packet was published by the claimer.
    fn accept(&self, token: &mut ZeroToken, cx: &Waiting) -> bool {
        token.packet = cx.wait_packet();
        token.partner = None;
        true
    }

    fn is_ready(&self) -> bool {
        let inner = self.0.lock();
        inner.receivers.can_select(None) || inner.closed
    }

    fn watch(&self, oper: Operation, cx: &Waiting) -> bool {
        let mut inner = self.0.lock();
        inner.senders.watch(oper, cx);
        inner.receivers.can_select(Some(cx)) || inner.closed
    }

    fn unwatch(&self, oper: Operation) {
        self.0.lock().senders.unwatch(oper);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages up to four words travel in the context's slot, not in a box of their own (the
    /// slot is sized for it; a larger packet would cost the rendezvous path an allocation).
    #[test]
    fn small_messages_fit_the_context_slot() {
        let cx = Waiting::new();
        assert!(cx.slot::<Packet<u64>>().is_some());
        assert!(cx.slot::<Packet<String>>().is_some());
        assert!(cx.slot::<Packet<[u64; 4]>>().is_some());
        assert!(cx.slot::<Packet<[u64; 8]>>().is_none());
        cx.release();
    }
}
