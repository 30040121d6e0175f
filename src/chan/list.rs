//! The unbounded flavor: a linked list of blocks of slots; sends never block.
//!
//! Positions (`head`, `tail`) count slots: `index >> SHIFT` is a running slot number, and
//! every `LAP` numbers form one block of `BLOCK_CAP` usable slots (the last number of a lap is
//! a placeholder meaning "moving to the next block"). A sender claims a slot with a CAS on the
//! tail index, writes the message and sets the slot's `WRITE` bit; the sender that claims the
//! last slot of a block installs the next block (pre-allocated before its CAS, so a block is
//! allocated outside any contention window). A receiver claims with a CAS on the head index,
//! waits for `WRITE` (the sender may still be writing), reads, and sets `READ`. Blocks are
//! freed by the last reader: the one reading the last slot starts destruction, and a slot
//! whose reader is still busy (no `READ` yet) is marked `DESTROY` so that its reader finishes
//! the job. This follows crossbeam-channel's list flavor (itself after Vyukov's unbounded
//! queue).
//!
//! `MARK_BIT` in the tail index means closed; in the head index it means "there is a next
//! block", which lets receivers skip the `tail` load while the queue is long.
//!
//! Invariants: the tail block pointer is non-null once the first message was sent; a block is
//! freed only after every slot in it was read (or at channel drop); messages are read once.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{self, AtomicPtr, AtomicUsize, Ordering};
use std::time::Instant;

use super::err::{RecvTimeoutError, TryRecvError};
use crossbeam_utils::{Backoff, CachePadded};

use super::side::Side;
use super::waiting::{Operation, Waiting};
use super::waker::SyncWaker;

const WRITE: usize = 1;
const READ: usize = 2;
const DESTROY: usize = 4;

const LAP: usize = 32;
const BLOCK_CAP: usize = LAP - 1;
const SHIFT: usize = 1;
const MARK_BIT: usize = 1;

struct Slot<T> {
    msg: UnsafeCell<MaybeUninit<T>>,
    state: AtomicUsize,
}

impl<T> Slot<T> {
    fn wait_write(&self) {
        let backoff = Backoff::new();
        while self.state.load(Ordering::Acquire) & WRITE == 0 {
            backoff.snooze();
        }
    }
}

struct Block<T> {
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; BLOCK_CAP],
}

impl<T> Block<T> {
    fn new() -> *mut Block<T> {
        let layout = std::alloc::Layout::new::<Block<T>>();
        // SAFETY: the layout is non-zero-sized (it holds an AtomicPtr).
        let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut Block<T>;
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // All-zero is a valid Block: null `next`, zero states, uninitialised messages.
        p
    }

    /// # Safety
    /// `this` must come from [`Block::new`] and not be freed yet.
    unsafe fn dealloc(this: *mut Block<T>) {
        // SAFETY: allocated by `Block::new` with this layout.
        unsafe { std::alloc::dealloc(this as *mut u8, std::alloc::Layout::new::<Block<T>>()) }
    }

    fn wait_next(&self) -> *mut Block<T> {
        let backoff = Backoff::new();
        loop {
            let next = self.next.load(Ordering::Acquire);
            if !next.is_null() {
                return next;
            }
            backoff.snooze();
        }
    }

    /// Free the block once every slot from `start` on has been read.
    ///
    /// # Safety
    /// `this` must be a live block whose slots before `start` were all read.
    unsafe fn destroy(this: *mut Block<T>, start: usize) {
        // The last slot is never marked: its reader is the one who started destruction.
        for i in start..BLOCK_CAP - 1 {
            // SAFETY: the block is live until the last reader frees it.
            let slot = unsafe { (*this).slots.get_unchecked(i) };
            if slot.state.load(Ordering::Acquire) & READ == 0
                && slot.state.fetch_or(DESTROY, Ordering::AcqRel) & READ == 0
            {
                // That slot's reader will continue the destruction.
                return;
            }
        }
        // SAFETY: every slot was read; nobody else references the block.
        unsafe { Block::dealloc(this) }
    }
}

struct Position<T> {
    index: AtomicUsize,
    block: AtomicPtr<Block<T>>,
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

pub(crate) struct Channel<T> {
    head: CachePadded<Position<T>>,
    tail: CachePadded<Position<T>>,
    receivers: SyncWaker,
    _marker: std::marker::PhantomData<T>,
}

// SAFETY: each message moves from one sender to one receiver through a claimed slot.
unsafe impl<T: Send> Send for Channel<T> {}
// SAFETY: see above.
unsafe impl<T: Send> Sync for Channel<T> {}

impl<T> Channel<T> {
    pub(crate) fn new() -> Channel<T> {
        Channel {
            head: CachePadded::new(Position {
                index: AtomicUsize::new(0),
                block: AtomicPtr::new(ptr::null_mut()),
            }),
            tail: CachePadded::new(Position {
                index: AtomicUsize::new(0),
                block: AtomicPtr::new(ptr::null_mut()),
            }),
            receivers: SyncWaker::new(),
            _marker: std::marker::PhantomData,
        }
    }

    pub(crate) fn start_send(&self, token: &mut ListToken) -> bool {
        let backoff = Backoff::new();
        let mut tail = self.tail.index.load(Ordering::Acquire);
        let mut block = self.tail.block.load(Ordering::Acquire);
        let mut next_block: Option<*mut Block<T>> = None;
        let result = loop {
            if tail & MARK_BIT != 0 {
                token.block = ptr::null();
                break true;
            }
            let offset = (tail >> SHIFT) % LAP;
            if offset == BLOCK_CAP {
                // Another sender is installing the next block.
                backoff.snooze();
                tail = self.tail.index.load(Ordering::Acquire);
                block = self.tail.block.load(Ordering::Acquire);
                continue;
            }
            if offset + 1 == BLOCK_CAP && next_block.is_none() {
                next_block = Some(Block::new());
            }
            if block.is_null() {
                // The very first message: install the first block.
                let new = Block::<T>::new();
                if self
                    .tail
                    .block
                    .compare_exchange(block, new, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    self.head.block.store(new, Ordering::Release);
                    block = new;
                } else {
                    // SAFETY: `new` was never shared.
                    unsafe { Block::dealloc(new) };
                    tail = self.tail.index.load(Ordering::Acquire);
                    block = self.tail.block.load(Ordering::Acquire);
                    continue;
                }
            }
            let new_tail = tail + (1 << SHIFT);
            match self.tail.index.compare_exchange_weak(
                tail,
                new_tail,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if offset + 1 == BLOCK_CAP {
                        let nb = next_block.take().expect("pre-allocated block");
                        self.tail.block.store(nb, Ordering::Release);
                        self.tail.index.fetch_add(1 << SHIFT, Ordering::Release);
                        // SAFETY: `block` is live: its last slot is ours and unread.
                        unsafe { (*block).next.store(nb, Ordering::Release) };
                    }
                    token.block = block as *const u8;
                    token.offset = offset;
                    break true;
                }
                Err(t) => {
                    tail = t;
                    block = self.tail.block.load(Ordering::Acquire);
                    backoff.spin();
                }
            }
        };
        if let Some(nb) = next_block {
            // SAFETY: allocated above and never shared.
            unsafe { Block::dealloc(nb) };
        }
        result
    }

    /// # Safety
    /// `token` must come from a successful `start_send` on this channel.
    pub(crate) unsafe fn write(&self, token: &mut ListToken, msg: T) -> Result<(), T> {
        if token.block.is_null() {
            return Err(msg);
        }
        let block = token.block as *mut Block<T>;
        // SAFETY: the claimed slot of a live block (it cannot be freed before it is read).
        unsafe {
            let slot = (*block).slots.get_unchecked(token.offset);
            slot.msg.get().write(MaybeUninit::new(msg));
            slot.state.fetch_or(WRITE, Ordering::Release);
        }
        self.receivers.notify();
        Ok(())
    }

    pub(crate) fn start_recv(&self, token: &mut ListToken) -> bool {
        let backoff = Backoff::new();
        let mut head = self.head.index.load(Ordering::Acquire);
        let mut block = self.head.block.load(Ordering::Acquire);
        loop {
            let offset = (head >> SHIFT) % LAP;
            if offset == BLOCK_CAP {
                backoff.snooze();
                head = self.head.index.load(Ordering::Acquire);
                block = self.head.block.load(Ordering::Acquire);
                continue;
            }
            let mut new_head = head + (1 << SHIFT);
            if new_head & MARK_BIT == 0 {
                atomic::fence(Ordering::SeqCst);
                let tail = self.tail.index.load(Ordering::Relaxed);
                if head >> SHIFT == tail >> SHIFT {
                    if tail & MARK_BIT != 0 {
                        token.block = ptr::null();
                        return true;
                    }
                    return false;
                }
                if (head >> SHIFT) / LAP != (tail >> SHIFT) / LAP {
                    new_head |= MARK_BIT;
                }
            }
            if block.is_null() {
                // The first block is being installed.
                backoff.snooze();
                head = self.head.index.load(Ordering::Acquire);
                block = self.head.block.load(Ordering::Acquire);
                continue;
            }
            match self.head.index.compare_exchange_weak(
                head,
                new_head,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if offset + 1 == BLOCK_CAP {
                        // SAFETY: `block` is live (its last slot is ours and unread).
                        let next = unsafe { (*block).wait_next() };
                        let mut next_index = (new_head & !MARK_BIT).wrapping_add(1 << SHIFT);
                        // SAFETY: `next` was installed by a sender and is live.
                        if !unsafe { (*next).next.load(Ordering::Relaxed) }.is_null() {
                            next_index |= MARK_BIT;
                        }
                        self.head.block.store(next, Ordering::Release);
                        self.head.index.store(next_index, Ordering::Release);
                    }
                    token.block = block as *const u8;
                    token.offset = offset;
                    return true;
                }
                Err(h) => {
                    head = h;
                    block = self.head.block.load(Ordering::Acquire);
                    backoff.spin();
                }
            }
        }
    }

    /// # Safety
    /// `token` must come from a successful `start_recv` on this channel.
    pub(crate) unsafe fn read(&self, token: &mut ListToken) -> Result<T, ()> {
        if token.block.is_null() {
            return Err(());
        }
        let block = token.block as *mut Block<T>;
        let offset = token.offset;
        // SAFETY: the claimed slot of a live block; the block is freed only after this slot
        // is marked READ (or by us, below).
        unsafe {
            let slot = (*block).slots.get_unchecked(offset);
            slot.wait_write();
            let msg = slot.msg.get().read().assume_init();
            if offset + 1 == BLOCK_CAP {
                Block::destroy(block, 0);
            } else if slot.state.fetch_or(READ, Ordering::AcqRel) & DESTROY != 0 {
                Block::destroy(block, offset + 1);
            }
            Ok(msg)
        }
    }

    pub(crate) fn send(&self, msg: T) -> Result<(), T> {
        let token = &mut ListToken::default();
        let claimed = self.start_send(token);
        debug_assert!(claimed);
        // SAFETY: the token comes from `start_send`.
        unsafe { self.write(token, msg) }
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let token = &mut ListToken::default();
        if self.start_recv(token) {
            // SAFETY: the token comes from `start_recv`.
            unsafe { self.read(token).map_err(|_| TryRecvError::Disconnected) }
        } else {
            Err(TryRecvError::Empty)
        }
    }

    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let token = &mut ListToken::default();
        loop {
            if self.start_recv(token) {
                // SAFETY: the token comes from `start_recv`.
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
            let mut tail = self.tail.index.load(Ordering::SeqCst);
            let mut head = self.head.index.load(Ordering::SeqCst);
            if self.tail.index.load(Ordering::SeqCst) == tail {
                tail &= !((1 << SHIFT) - 1);
                head &= !((1 << SHIFT) - 1);
                // Normalise placeholder positions to the next block's start.
                if (tail >> SHIFT) & (LAP - 1) == LAP - 1 {
                    tail = tail.wrapping_add(1 << SHIFT);
                }
                if (head >> SHIFT) & (LAP - 1) == LAP - 1 {
                    head = head.wrapping_add(1 << SHIFT);
                }
                let lap = (head >> SHIFT) / LAP;
                tail = tail.wrapping_sub((lap * LAP) << SHIFT);
                head = head.wrapping_sub((lap * LAP) << SHIFT);
                tail >>= SHIFT;
                head >>= SHIFT;
                return tail - head - tail / LAP;
            }
        }
    }

    pub(crate) fn disconnect(&self) -> bool {
        let tail = self.tail.index.fetch_or(MARK_BIT, Ordering::SeqCst);
        if tail & MARK_BIT == 0 {
            self.receivers.disconnect();
            true
        } else {
            false
        }
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        self.tail.index.load(Ordering::SeqCst) & MARK_BIT != 0
    }

    /// The last receiver is gone: drop every message in the list and free its blocks now (as
    /// crossbeam-channel does), not when the channel is freed.
    ///
    /// Called once, by the drop of the last receiver, after `disconnect`: no receive is in
    /// progress and no slot can be claimed any more (the close mark). Senders that claimed a
    /// slot before the mark may still be finishing; for each we wait until it is done with
    /// the block: the one that took a block's last slot until it has moved the tail past the
    /// block's end (placeholder) and linked the next block, the others until their `WRITE`
    /// bit (their last access to the block). Then every message is dropped once and every
    /// block freed once; `head.block` is left null and `head` at `tail` (set before the first
    /// drop, so that a panicking destructor leaks the rest rather than breaking `Drop`), so
    /// the channel's own `Drop` finds nothing but a first block a late sender may still
    /// install (it frees that).
    ///
    /// A slot claimed and then abandoned (a select's `SelectedOperation` forgotten with
    /// `mem::forget` while its sender lives on) is never written: this then waits forever, as
    /// a receiver reaching that slot would (and as crossbeam-channel does). Not UB, a wedge.
    pub(crate) fn discard_all(&self) {
        let backoff = Backoff::new();
        let mut tail = self.tail.index.load(Ordering::Acquire);
        debug_assert!(tail & MARK_BIT != 0, "discard before close");
        // At the placeholder a sender is still moving the tail to the next block.
        while (tail >> SHIFT) % LAP == BLOCK_CAP {
            backoff.snooze();
            tail = self.tail.index.load(Ordering::Acquire);
        }
        let mut head = self.head.index.load(Ordering::Acquire);
        // Take the block out of `head` (a swap, not a load: a sender that loses the race to
        // install the first block after this still leaves its block here, for `Drop`).
        let mut block = self.head.block.swap(ptr::null_mut(), Ordering::AcqRel);
        if head >> SHIFT != tail >> SHIFT {
            // A claimed slot implies an installed first block (installed before the claim);
            // wait in case its store is not visible yet.
            while block.is_null() {
                backoff.snooze();
                block = self.head.block.swap(ptr::null_mut(), Ordering::AcqRel);
            }
        }
        // Take every message out of the list before dropping any: if a destructor panics, the
        // rest (and their blocks) leak, as in crossbeam-channel, instead of `Drop` walking a
        // list whose head block is gone.
        self.head.index.store(tail & !MARK_BIT, Ordering::Release);
        while head >> SHIFT != tail >> SHIFT {
            let offset = (head >> SHIFT) % LAP;
            // SAFETY: `block` is the live block holding position `head`: blocks are freed only
            // here from now on, each after every slot in it was dealt with, and the senders
            // still using one are waited for above and below.
            unsafe {
                if offset < BLOCK_CAP {
                    let slot = (*block).slots.get_unchecked(offset);
                    slot.wait_write();
                    (*slot.msg.get()).assume_init_drop();
                } else {
                    let next = (*block).wait_next();
                    Block::dealloc(block);
                    block = next;
                }
            }
            head = head.wrapping_add(1 << SHIFT);
        }
        if !block.is_null() {
            // SAFETY: the last block; every slot of it before `tail` was dropped above and no
            // sender can claim another.
            unsafe { Block::dealloc(block) };
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        let head = self.head.index.load(Ordering::SeqCst);
        let tail = self.tail.index.load(Ordering::SeqCst);
        head >> SHIFT == tail >> SHIFT
    }
}

/// The receiving end of a list channel, as a select case.
pub(crate) struct Receiving<'a, T>(pub(crate) &'a Channel<T>);

/// The sending end of a list channel, as a select case: always ready (an unbounded channel
/// never blocks a sender), so it never registers.
pub(crate) struct Sending<'a, T>(pub(crate) &'a Channel<T>);

impl<T> Side for Receiving<'_, T> {
    type Token = ListToken;

    fn try_select(&self, token: &mut ListToken) -> bool {
        self.0.start_recv(token)
    }

    fn register(&self, oper: Operation, cx: &Waiting) -> bool {
        self.0.receivers.register(oper, cx);
        self.is_ready()
    }

    fn unregister(&self, oper: Operation) {
        self.0.receivers.unregister(oper);
    }

    fn accept(&self, token: &mut ListToken, _cx: &Waiting) -> bool {
        // A claim only means "retry now": the message is in the list.
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
    type Token = ListToken;

    fn try_select(&self, token: &mut ListToken) -> bool {
        self.0.start_send(token)
    }

    fn register(&self, _oper: Operation, _cx: &Waiting) -> bool {
        true
    }

    fn unregister(&self, _oper: Operation) {}

    fn accept(&self, token: &mut ListToken, _cx: &Waiting) -> bool {
        self.0.start_send(token)
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn watch(&self, _oper: Operation, _cx: &Waiting) -> bool {
        true
    }

    fn unwatch(&self, _oper: Operation) {}
}

impl<T> Drop for Channel<T> {
    fn drop(&mut self) {
        let mut head = *self.head.index.get_mut();
        let mut tail = *self.tail.index.get_mut();
        let mut block = *self.head.block.get_mut();
        head &= !((1 << SHIFT) - 1);
        tail &= !((1 << SHIFT) - 1);
        // SAFETY: we own the channel; every slot between head and tail was claimed by a
        // sender (and holds a message if its WRITE bit is set), and blocks are chained through
        // `next`.
        unsafe {
            while head != tail {
                let offset = (head >> SHIFT) % LAP;
                if offset < BLOCK_CAP {
                    let slot = (*block).slots.get_unchecked_mut(offset);
                    // A slot claimed but never written (a forgotten `SelectedOperation`, which
                    // safe code may do) holds nothing.
                    if *slot.state.get_mut() & WRITE != 0 {
                        (*slot.msg.get()).assume_init_drop();
                    }
                } else {
                    let next = *(*block).next.get_mut();
                    Block::dealloc(block);
                    block = next;
                }
                head = head.wrapping_add(1 << SHIFT);
            }
            if !block.is_null() {
                Block::dealloc(block);
            }
        }
    }
}
