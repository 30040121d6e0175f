//! [`OneShot`]: one state word that is set once, and the one coroutine or thread waiting for it.
//!
//! This is the "set a state word, then unpark; loop on park until it is set" pattern that every
//! hand-over in goro needs, written once with its ordering argument. Its users: a `sync` waiter
//! being granted a lock, a join handle waiting for its coroutine's result, a channel operation
//! waiting to be paired (`chan/waiting.rs`), and a rendezvous packet's `ready` flag
//! (`chan/zero.rs`).
//!
//! The word holds one of:
//! - `UNSET`: not set, and no waiter has published itself;
//! - `ARMED`: not set, and the waiter's [`Unparker`] is in `waiter` (published by [`OneShot::arm`]
//!   or given at creation by [`OneShot::with_waiter`]);
//! - anything else: the value it was set to (any `usize` up to [`OneShot::MAX_VALUE`]).
//!
//! Three ways to set it, one per kind of setter:
//! - [`set`](OneShot::set) / [`try_set`](OneShot::try_set): set and wake the armed waiter at
//!   once (the waiter's handle is taken out of the slot);
//! - [`claim`](OneShot::claim) then, later, [`notify`](OneShot::notify): set the value now (the
//!   one read-modify-write that decides a race, e.g. under a channel lock) and wake the waiter
//!   only once the rest of the hand-over is done, so one unpark serves the whole operation. The
//!   waiter's handle stays in the slot, so a unique owner can [`rearm`](OneShot::rearm) the
//!   `OneShot` for the next operation of the same waiter without touching a reference count;
//! - [`publish`](OneShot::publish): a plain Release store on a `OneShot` nobody arms, for a
//!   setter that wakes the waiter through a handle it took *before* the store and must not touch
//!   the `OneShot`'s memory after it (the waiter may free it the moment it sees the value). The
//!   waiter waits with [`wait_published`](OneShot::wait_published).
//!
//! Invariants and ordering:
//! - the word leaves `UNSET`/`ARMED` exactly once per arming, by [`set`](OneShot::set), a
//!   successful [`try_set`](OneShot::try_set) or [`claim`](OneShot::claim) (an atomic
//!   read-modify-write, AcqRel), or by the one [`publish`](OneShot::publish) (a Release store;
//!   there is only one publisher, so no read-modify-write is needed). The Release half publishes
//!   everything the setter wrote before (a result, a handed-over lock, a message); every read of
//!   the word on the waiting side is Acquire, so once the waiter sees a value, it sees those
//!   writes too;
//! - `waiter` is written only before the word becomes `ARMED` (by the Release CAS in `arm`, at
//!   creation, or by `rearm` while nobody else can reach the `OneShot`), and read only by the
//!   setter that moved the word *from* `ARMED` (its Acquire half sees the write) or by `notify`
//!   after a claim. The waiter never touches `waiter` again once armed, so there is never a
//!   concurrent write to it;
//! - no lost wake-up: either the waiter's `UNSET -> ARMED` comes first in the word's
//!   modification order, and then the setter sees `ARMED` and unparks it (a token its next
//!   `park` consumes, see `park`), or the set comes first, and then `arm` fails and the waiter
//!   never parks. A waiter made with `with_waiter` is armed from the start, so every set
//!   unparks it; a claimed one is unparked by the claimer's `notify`; a published one by the
//!   publisher's own handle, after the store;
//! - the setter unparks *after* its read-modify-write; by then the waiter may have seen the
//!   value and gone on, so whoever owns the `OneShot`'s memory must keep it alive until the
//!   setter returns (an `Arc`, or a control block the setter holds a count on). `publish` is
//!   the exception that touches nothing after its store.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_utils::Backoff;

use super::{in_coroutine, park, park_idle_unless_on_stack, refresh_current, Unparker, WaitReason};

/// Not set; nobody waits yet.
const UNSET: usize = usize::MAX;
/// Not set; the waiter's handle is in `waiter`.
const ARMED: usize = usize::MAX - 1;

/// A wait or claim on a `OneShot` nobody armed: nobody would ever wake the waiter (a goro bug).
#[cold]
#[inline(never)]
fn unarmed(what: &str) -> ! {
    panic!("goro: OneShot::{what} on a OneShot nobody armed")
}

/// A value set once, and the one coroutine or thread that waits for it (see the module docs).
pub(crate) struct OneShot {
    state: AtomicUsize,
    waiter: UnsafeCell<Option<Unparker>>,
}

// SAFETY: `state` is atomic; `waiter` is written by the waiter only before it publishes
// `ARMED` and read (taken) only by the one setter that moves the word from `ARMED` (module
// docs), so the two never access it at the same time. `Unparker` is `Send + Sync`.
unsafe impl Sync for OneShot {}
// SAFETY: all fields are `Send` (`Unparker` is a counted coroutine reference or a `Thread`).
unsafe impl Send for OneShot {}

impl OneShot {
    /// The largest value a `OneShot` can be set to (the two above it are its own markers).
    pub(crate) const MAX_VALUE: usize = usize::MAX - 2;

    /// A `OneShot` nobody waits on yet; whoever will wait calls [`arm`](Self::arm) first.
    pub(crate) const fn new() -> OneShot {
        OneShot {
            state: AtomicUsize::new(UNSET),
            waiter: UnsafeCell::new(None),
        }
    }

    /// A `OneShot` already armed for `waiter` (usually `park::current()`): only that
    /// coroutine or thread may [`wait`](Self::wait) on it.
    pub(crate) fn with_waiter(waiter: Unparker) -> OneShot {
        OneShot {
            state: AtomicUsize::new(ARMED),
            waiter: UnsafeCell::new(Some(waiter)),
        }
    }

    fn addr(&self) -> *const () {
        (self as *const OneShot).cast()
    }

    /// The value, if it is set (Acquire: the setter's earlier writes are visible).
    #[inline(always)]
    pub(crate) fn get(&self) -> Option<usize> {
        match self.state.load(Ordering::Acquire) {
            UNSET | ARMED => None,
            v => Some(v),
        }
    }

    /// Publish the caller as the waiter. Returns `false` if the value is already set (then
    /// there is nothing to wait for), `true` if the caller may now [`wait`](Self::wait).
    ///
    /// # Safety
    /// At most one caller, ever, per `OneShot`, and not on one made by `with_waiter`: the
    /// waiter slot is written here without a lock (the module docs say why that is enough).
    pub(crate) unsafe fn arm(&self) -> bool {
        if self.state.load(Ordering::Acquire) != UNSET {
            return false; // set already (a second `arm` is excluded by the contract)
        }
        // SAFETY: the word is UNSET, so no setter reads `waiter` (a setter reads it only after
        // moving the word from ARMED), and by the contract no other waiter writes it.
        unsafe { *self.waiter.get() = Some(super::current()) };
        // Release: the slot's write is visible to the setter that acquires ARMED. On failure
        // the word holds a value (only a set changes UNSET); Acquire makes its writes visible.
        // The slot's handle then stays unused until the `OneShot` is dropped.
        self.state
            .compare_exchange(UNSET, ARMED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Park until the value is set and return it. The caller is the armed waiter (it made
    /// the `OneShot` with `with_waiter`, or `arm` returned `true`). May be called again after
    /// [`wait_until`](Self::wait_until) timed out.
    ///
    /// # Panics
    /// If nobody armed the `OneShot` (nobody would ever unpark the caller: a goro bug).
    #[inline(always)]
    pub(crate) fn wait(&self, reason: WaitReason) -> usize {
        loop {
            let v = self.state.load(Ordering::Acquire);
            if v <= Self::MAX_VALUE {
                return v;
            }
            if v == UNSET {
                unarmed("wait");
            }
            // ARMED. The setter touches only this `OneShot`: an idle park unless it is on our
            // stack (`park_idle_unless_on_stack`).
            park_idle_unless_on_stack(self.addr(), None, reason);
        }
    }

    /// As [`wait`](Self::wait), but give up at `deadline` and return `None`. The value may be
    /// set right after: a caller that then withdraws (from a queue, with `try_set` of its own
    /// "timed out" value) and finds it too late must `wait` for the value.
    #[inline(always)]
    pub(crate) fn wait_until(&self, deadline: Instant, reason: WaitReason) -> Option<usize> {
        loop {
            match self.state.load(Ordering::Acquire) {
                ARMED => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    park_idle_unless_on_stack(self.addr(), Some(deadline), reason)
                }
                UNSET => unarmed("wait_until"),
                v => return Some(v),
            }
        }
    }

    /// Set the value and wake the waiter, if one is armed. The caller must be the only one
    /// that can set it (a waker that removed the waiter from its queue, say); use
    /// [`try_set`](Self::try_set) when several may race.
    pub(crate) fn set(&self, value: usize) {
        debug_assert!(value <= Self::MAX_VALUE);
        // AcqRel: Release publishes the caller's earlier writes to the waiter; Acquire sees
        // the waiter's handle if the old value is ARMED.
        let old = self.state.swap(value, Ordering::AcqRel);
        debug_assert!(old == UNSET || old == ARMED, "goro: OneShot set twice");
        if old == ARMED {
            self.wake();
        }
    }

    /// Set the value unless it is set already; `Err` holds the value that won.
    pub(crate) fn try_set(&self, value: usize) -> Result<(), usize> {
        debug_assert!(value <= Self::MAX_VALUE);
        // Orderings as in `set`. Start from the current marker (so the usual case is one
        // CAS); a CAS that fails because the waiter armed meanwhile retries from ARMED; any
        // other value is a set one, read with Acquire.
        let mut from = self.state.load(Ordering::Acquire);
        loop {
            if from != UNSET && from != ARMED {
                return Err(from);
            }
            match self
                .state
                .compare_exchange(from, value, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if from == ARMED {
                        self.wake();
                    }
                    return Ok(());
                }
                Err(now) => from = now,
            }
        }
    }

    /// Set the value like [`try_set`](Self::try_set), but do not wake the waiter: the caller
    /// (the claimer) calls [`notify`](Self::notify) once the waiter may go on. `Err` holds the
    /// value that won.
    ///
    /// # Panics
    /// On a `OneShot` nobody armed (claims are for ones made by `with_waiter`: a goro bug).
    #[inline(always)]
    pub(crate) fn claim(&self, value: usize) -> Result<(), usize> {
        debug_assert!(value <= Self::MAX_VALUE);
        // Orderings as in `set`: Release publishes the claimer's earlier writes, Acquire on
        // failure makes the winner's visible. A claim is made only on an armed `OneShot`
        // (`notify`'s contract), so the word is ARMED or set.
        match self
            .state
            .compare_exchange(ARMED, value, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(()),
            Err(v) => {
                if v == UNSET {
                    unarmed("claim");
                }
                Err(v)
            }
        }
    }

    /// Unpark the waiter without taking its handle out of the slot (after a successful
    /// [`claim`](Self::claim), once the rest of the hand-over is published).
    ///
    /// # Safety
    /// The `OneShot` was made by [`with_waiter`](Self::with_waiter) (or [`rearm`]ed), so the
    /// slot was written before anyone could reach it; and no [`rearm`](Self::rearm) runs
    /// concurrently (the caller holds a reference its owner counts before rearming, e.g. an
    /// `Arc` clone). `set`/`try_set` (which take the handle) are not used on it.
    ///
    /// [`rearm`]: Self::rearm
    #[inline(always)]
    pub(crate) unsafe fn notify(&self) {
        // SAFETY: the slot was written before the `OneShot` was shared (contract) and is only
        // written again by `rearm`, which the contract excludes while we run: a shared read.
        if let Some(w) = unsafe { &*self.waiter.get() } {
            w.unpark();
        }
    }

    /// Make the `OneShot` armed and unset again for the calling coroutine or thread, keeping
    /// the handle in the slot when it already names the caller (no reference count touched).
    ///
    /// # Safety
    /// Nobody else can reach the `OneShot` (its owner holds the only reference), and it was
    /// used only through `with_waiter`/`claim`/`notify`/`rearm`.
    #[inline]
    pub(crate) unsafe fn rearm(&self) {
        // Relaxed: the `OneShot` becomes reachable by others only through something that
        // publishes it with Release (a channel lock, the waiter list), which orders both stores.
        self.state.store(ARMED, Ordering::Relaxed);
        // SAFETY: unique (contract): no other thread reads or writes the slot now.
        refresh_current(unsafe { &mut *self.waiter.get() });
    }

    /// On a plain thread, spin a little while the value is unset (a partner is often about to
    /// set it, and a futex round trip costs microseconds); return it if it came. A coroutine
    /// does not spin (parking is a switch, and spinning would only keep a partner on the same
    /// worker from running).
    #[inline(always)]
    pub(crate) fn spin_on_thread(&self) -> Option<usize> {
        match self.get() {
            Some(v) => Some(v),
            None => self.spin_on_thread_slow(),
        }
    }

    #[inline]
    fn spin_on_thread_slow(&self) -> Option<usize> {
        if in_coroutine() {
            return None;
        }
        self.spin()
    }

    #[cold]
    fn spin(&self) -> Option<usize> {
        let backoff = Backoff::new();
        loop {
            if let Some(v) = self.get() {
                return Some(v);
            }
            if backoff.is_completed() {
                return None;
            }
            backoff.snooze();
        }
    }

    /// Set the value with a plain Release store and touch nothing afterwards; the caller wakes
    /// the waiter through a handle it took before this call.
    ///
    /// # Safety
    /// Nobody arms this `OneShot` (it is waited on only with
    /// [`wait_published`](Self::wait_published)), and the caller is the only one that sets it.
    #[inline]
    pub(crate) unsafe fn publish(&self, value: usize) {
        debug_assert!(value <= Self::MAX_VALUE);
        debug_assert_eq!(
            self.state.load(Ordering::Relaxed),
            UNSET,
            "goro: published twice"
        );
        // Release: the caller's earlier writes (a message) are visible to the waiter's Acquire.
        self.state.store(value, Ordering::Release);
    }

    /// Leave in the slot the handle a publisher will wake (the waiter of a published
    /// `OneShot` is often not the one that can see it first: a rendezvous receiver leaves its
    /// handle in a sender's packet). Replaces a handle left earlier.
    ///
    /// # Safety
    /// Nobody arms this `OneShot`, and the caller excludes every other access to the slot: all
    /// who put a handle hold one lock, and the publisher takes it only after something ordered
    /// after that lock (the claim that made it the publisher) hands the `OneShot` over.
    pub(crate) unsafe fn put_waiter(&self, waiter: Unparker) {
        // SAFETY: exclusive access to the slot (contract).
        unsafe { *self.waiter.get() = Some(waiter) };
    }

    /// Take the handle left by [`put_waiter`](Self::put_waiter), before
    /// [`publish`](Self::publish).
    ///
    /// # Safety
    /// The caller is the one publisher, and every `put_waiter` happened before (see there).
    pub(crate) unsafe fn take_waiter(&self) -> Option<Unparker> {
        // SAFETY: exclusive access to the slot (contract).
        unsafe { (*self.waiter.get()).take() }
    }

    /// Park until a [`publish`](Self::publish) and return the value. The publisher wakes the
    /// caller with a handle of its own; the wait is short (the publisher is completing a
    /// hand-over the caller's partner already won), so it is a plain park, not an idle one.
    #[inline]
    pub(crate) fn wait_published(&self, reason: WaitReason) -> usize {
        match self.get() {
            Some(v) => v,
            None => self.wait_published_slow(reason),
        }
    }

    #[cold]
    fn wait_published_slow(&self, reason: WaitReason) -> usize {
        if let Some(v) = self.spin_on_thread() {
            return v;
        }
        loop {
            if let Some(v) = self.get() {
                return v;
            }
            park(reason);
        }
    }

    /// Unpark the armed waiter. Called once, by the setter that moved the word from ARMED.
    fn wake(&self) {
        // SAFETY: we moved the word from ARMED with an Acquire read-modify-write, so the
        // waiter's write of the slot is visible, and the waiter no longer touches it; no other
        // setter exists (the word leaves ARMED once). So this is the only access.
        let w = unsafe { (*self.waiter.get()).take() };
        if let Some(w) = w {
            w.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// One hand-over: the waiter makes it, the setter writes `data` (Relaxed) and then sets.
    struct Round {
        shot: OneShot,
        data: AtomicU64,
    }

    /// Run `f` on a new coroutine or a new plain thread.
    fn start(on_thread: bool, f: impl FnOnce() + Send + 'static) {
        if on_thread {
            std::thread::spawn(f);
        } else {
            crate::spawn(f);
        }
    }

    /// Let others run while polling (a coroutine yields its worker, a thread its core).
    fn pause(on_thread: bool) {
        if on_thread {
            std::thread::yield_now();
        } else {
            crate::gosched();
        }
    }

    /// Wait for `done` to reach `want`, failing if `progress` stops moving for 10 s (a lost
    /// wake-up leaves a waiter parked for good).
    fn watch(done: &AtomicU64, want: u64, progress: &AtomicU64) {
        let (mut last, mut since) = (0, Instant::now());
        while done.load(Ordering::Acquire) < want {
            let now = progress.load(Ordering::Relaxed);
            if now != last {
                (last, since) = (now, Instant::now());
            }
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "lost wake-up: {} of {want} waiters finished\n{}",
                done.load(Ordering::Acquire),
                crate::sched::dump()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waiters on coroutines and on threads, setters on coroutines and on threads (all four
    /// pairings at once, on 2 workers), thousands of rounds each. A round is armed lazily
    /// (`arm`, racing the set) or made armed (`with_waiter`), waited with `wait` or a far
    /// `wait_until`; random spins move the set before, during and after the waiter parks.
    /// Checks that every waiter wakes (the watchdog) and sees the value and the data written
    /// before it.
    #[test]
    fn set_wakes_the_waiter_in_every_interleaving() {
        crate::gomaxprocs(2);
        const ROUNDS: u64 = 5_000;
        let done = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        for pairing in 0..4u64 {
            let (waiter_on_thread, setter_on_thread) = (pairing & 1 != 0, pairing & 2 != 0);
            let slot: Arc<Mutex<Option<Arc<Round>>>> = Arc::new(Mutex::new(None));
            {
                let (slot, stop) = (slot.clone(), stop.clone());
                start(setter_on_thread, move || {
                    let rng = Rng::new(0x9E37_79B9 + pairing);
                    while !stop.load(Ordering::Acquire) {
                        let Some(r) = slot.lock().unwrap().take() else {
                            pause(setter_on_thread);
                            continue;
                        };
                        for _ in 0..rng.next_u64() % 128 {
                            std::hint::spin_loop();
                        }
                        let v = r.data.load(Ordering::Relaxed) + 1;
                        r.data.store(v, Ordering::Relaxed);
                        r.shot.set(v as usize);
                    }
                });
            }
            let (done, progress) = (done.clone(), progress.clone());
            start(waiter_on_thread, move || {
                let rng = Rng::new(0x51_7CC1_B727 + pairing);
                let far = Instant::now() + Duration::from_secs(3600);
                for i in 0..ROUNDS {
                    let lazy = rng.next_u64() % 2 == 0;
                    let shot = if lazy {
                        OneShot::new()
                    } else {
                        OneShot::with_waiter(crate::park::current())
                    };
                    let r = Arc::new(Round {
                        shot,
                        data: AtomicU64::new(i * 2),
                    });
                    *slot.lock().unwrap() = Some(r.clone());
                    for _ in 0..rng.next_u64() % 128 {
                        std::hint::spin_loop();
                    }
                    // SAFETY: this waiter is the only one to arm this round's OneShot.
                    let wait = !lazy || unsafe { r.shot.arm() };
                    let got = match (wait, rng.next_u64() % 2 == 0) {
                        (false, _) => r.shot.get().expect("arm failed, so the value is set"),
                        (true, true) => r.shot.wait("test oneshot"),
                        (true, false) => r
                            .shot
                            .wait_until(far, "test oneshot (deadline)")
                            .expect("far deadline passed"),
                    };
                    assert_eq!(got as u64, i * 2 + 1, "wrong value");
                    assert_eq!(
                        r.data.load(Ordering::Relaxed),
                        i * 2 + 1,
                        "data not visible"
                    );
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::AcqRel);
            });
        }
        watch(&done, 4, &progress);
        stop.store(true, Ordering::Release);
    }

    /// Two setters (a coroutine and a thread) race `try_set` on every round: exactly one
    /// wins, the loser's `Err` names the winner's value, and the waiter (one on a coroutine,
    /// one on a thread, at once) gets a value that was set.
    #[test]
    fn try_set_has_exactly_one_winner() {
        crate::gomaxprocs(2);
        const ROUNDS: u64 = 3_000;
        let done = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        for waiter_on_thread in [false, true] {
            let slots: Arc<[Mutex<Option<Arc<Round>>>; 2]> =
                Arc::new([Mutex::new(None), Mutex::new(None)]);
            let wins = Arc::new(AtomicU64::new(0));
            for side in 0..2usize {
                let (slots, stop, wins) = (slots.clone(), stop.clone(), wins.clone());
                let on_thread = side == 1;
                start(on_thread, move || {
                    while !stop.load(Ordering::Acquire) {
                        let Some(r) = slots[side].lock().unwrap().take() else {
                            pause(on_thread);
                            continue;
                        };
                        match r.shot.try_set(side) {
                            Ok(()) => {
                                wins.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(v) => assert_eq!(v, 1 - side, "lost to a value nobody set"),
                        }
                        // Tell the waiter this side is done with the round.
                        r.data.fetch_add(1, Ordering::AcqRel);
                    }
                });
            }
            let (done, progress) = (done.clone(), progress.clone());
            start(waiter_on_thread, move || {
                for _ in 0..ROUNDS {
                    let r = Arc::new(Round {
                        shot: OneShot::new(),
                        data: AtomicU64::new(0),
                    });
                    *slots[0].lock().unwrap() = Some(r.clone());
                    *slots[1].lock().unwrap() = Some(r.clone());
                    // SAFETY: this waiter is the only one to arm this round's OneShot.
                    let got = if unsafe { r.shot.arm() } {
                        r.shot.wait("test oneshot race")
                    } else {
                        r.shot.get().expect("arm failed, so the value is set")
                    };
                    assert!(got < 2, "value {got} was never set");
                    while r.data.load(Ordering::Acquire) < 2 {
                        pause(waiter_on_thread);
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                assert_eq!(
                    wins.load(Ordering::Relaxed),
                    ROUNDS,
                    "rounds with other than one winner"
                );
                done.fetch_add(1, Ordering::AcqRel);
            });
        }
        watch(&done, 2, &progress);
        stop.store(true, Ordering::Release);
    }

    /// The channel pattern: one `OneShot` per waiter, re-armed in place for every round once
    /// the waiter holds the only reference; two claimers (a coroutine and a thread) race
    /// `claim` on each round, the winner writes the data and only then `notify`s. Waiters on a
    /// coroutine and on a thread at once, on 2 workers. Checks exactly one winner per round,
    /// that every waiter wakes (the watchdog) and that it sees the winner's data.
    #[test]
    fn claim_then_notify_wakes_a_rearmed_waiter() {
        crate::gomaxprocs(2);
        const ROUNDS: u64 = 2_000;
        let done = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        for waiter_on_thread in [false, true] {
            let slots: Arc<[Mutex<Option<Arc<Round>>>; 2]> =
                Arc::new([Mutex::new(None), Mutex::new(None)]);
            for side in 0..2usize {
                let (slots, stop) = (slots.clone(), stop.clone());
                let on_thread = side == 1;
                start(on_thread, move || {
                    let rng = Rng::new(0xC1A1 + side as u64);
                    while !stop.load(Ordering::Acquire) {
                        let Some(r) = slots[side].lock().unwrap().take() else {
                            pause(on_thread);
                            continue;
                        };
                        for _ in 0..rng.next_u64() % 128 {
                            std::hint::spin_loop();
                        }
                        let round = r.data.load(Ordering::Relaxed) >> 1;
                        if r.shot.claim(side).is_ok() {
                            // Only the winner may write (the claim decides who), so the write
                            // comes after the claim and before the wake-up, as a channel's
                            // packet does; the waiter waits for it after seeing the value.
                            r.data.store((round << 1) | 1, Ordering::Release);
                            // SAFETY: made by `with_waiter`; the waiter re-arms only when it
                            // holds the only reference, and we hold `r`.
                            unsafe { r.shot.notify() };
                        }
                    }
                });
            }
            let (done, progress) = (done.clone(), progress.clone());
            start(waiter_on_thread, move || {
                let far = Instant::now() + Duration::from_secs(3600);
                let mut r = Arc::new(Round {
                    shot: OneShot::with_waiter(crate::park::current()),
                    data: AtomicU64::new(0),
                });
                for i in 0..ROUNDS {
                    r.data.store(i << 1, Ordering::Relaxed);
                    *slots[0].lock().unwrap() = Some(r.clone());
                    *slots[1].lock().unwrap() = Some(r.clone());
                    let got = if i % 2 == 0 {
                        r.shot.wait("test oneshot claim")
                    } else {
                        r.shot
                            .wait_until(far, "test oneshot claim (deadline)")
                            .expect("far deadline passed")
                    };
                    assert!(got < 2, "value {got} was never claimed");
                    // `wait` may return on the value before the winner's write and
                    // `notify` (a coroutine that had not parked yet); the write follows.
                    while r.data.load(Ordering::Acquire) != (i << 1) | 1 {
                        pause(waiter_on_thread);
                    }
                    // Both claimers drop their clone after the round; then re-arm in place.
                    loop {
                        if let Some(unique) = Arc::get_mut(&mut r) {
                            // SAFETY: `get_mut` proves nobody else holds the round.
                            unsafe { unique.shot.rearm() };
                            break;
                        }
                        pause(waiter_on_thread);
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::AcqRel);
            });
        }
        watch(&done, 2, &progress);
        stop.store(true, Ordering::Release);
    }

    /// The rendezvous packet pattern: the waiter leaves its handle in a boxed `OneShot`
    /// nobody arms (`put_waiter`), the setter takes it, writes the data, `publish`es and wakes
    /// the waiter with the taken handle; the waiter frees the box the moment it sees the value
    /// (so a setter that touched it after its store would use freed memory). Both kinds of
    /// waiter and setter, on 2 workers.
    #[test]
    fn publish_wakes_through_the_handle_taken_before() {
        crate::gomaxprocs(2);
        const ROUNDS: u64 = 5_000;
        struct Sendable(*mut Round);
        // SAFETY: the pointer is handed from the waiter to the setter and used by one at a
        // time, as the protocol under test says.
        unsafe impl Send for Sendable {}
        let done = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        for pairing in 0..4u64 {
            let (waiter_on_thread, setter_on_thread) = (pairing & 1 != 0, pairing & 2 != 0);
            let slot: Arc<Mutex<Option<Sendable>>> = Arc::new(Mutex::new(None));
            {
                let (slot, stop) = (slot.clone(), stop.clone());
                start(setter_on_thread, move || {
                    let rng = Rng::new(0x9B11 + pairing);
                    while !stop.load(Ordering::Acquire) {
                        let Some(Sendable(p)) = slot.lock().unwrap().take() else {
                            pause(setter_on_thread);
                            continue;
                        };
                        for _ in 0..rng.next_u64() % 128 {
                            std::hint::spin_loop();
                        }
                        // SAFETY: the box is live until we publish; we are its one publisher
                        // and the waiter put its handle before handing the pointer over (the
                        // slot's mutex orders the two).
                        let waiter = unsafe { (*p).shot.take_waiter() };
                        // SAFETY: as above; nothing touches `*p` after the store.
                        unsafe {
                            let v = (*p).data.load(Ordering::Relaxed) + 1;
                            (*p).data.store(v, Ordering::Relaxed);
                            (*p).shot.publish(v as usize);
                        }
                        waiter.expect("the waiter left no handle").unpark();
                    }
                });
            }
            let (done, progress) = (done.clone(), progress.clone());
            start(waiter_on_thread, move || {
                for i in 0..ROUNDS {
                    let p = Box::into_raw(Box::new(Round {
                        shot: OneShot::new(),
                        data: AtomicU64::new(i * 2),
                    }));
                    // SAFETY: nobody else can see the box yet.
                    unsafe { (*p).shot.put_waiter(crate::park::current()) };
                    *slot.lock().unwrap() = Some(Sendable(p));
                    // SAFETY: the box stays live until we free it below.
                    let got = unsafe { (*p).shot.wait_published("test oneshot publish") };
                    assert_eq!(got as u64, i * 2 + 1, "wrong value");
                    // SAFETY: published: the setter is done with the box and wrote `data`
                    // before its Release store.
                    let r = unsafe { Box::from_raw(p) };
                    assert_eq!(
                        r.data.load(Ordering::Relaxed),
                        i * 2 + 1,
                        "data not visible"
                    );
                    drop(r);
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::AcqRel);
            });
        }
        watch(&done, 4, &progress);
        stop.store(true, Ordering::Release);
    }

    /// A timed-out `wait_until` returns `None` and leaves the `OneShot` waitable: a later set
    /// still reaches the waiter.
    #[test]
    fn wait_until_times_out_then_wait_still_works() {
        let shot = Arc::new(OneShot::with_waiter(crate::park::current()));
        let t = Instant::now();
        assert_eq!(shot.wait_until(t + Duration::from_millis(20), "test"), None);
        assert!(t.elapsed() >= Duration::from_millis(20));
        let s = shot.clone();
        let h = std::thread::spawn(move || s.set(7));
        assert_eq!(shot.wait("test"), 7);
        h.join().unwrap();
        assert_eq!(shot.get(), Some(7));
    }
}
