//! [`OneShot`]: one state word that is set once, and the one coroutine or thread waiting for it.
//!
//! This is the "set a state word, then unpark; loop on park until it is set" pattern that every
//! hand-over in goro needs (a `sync` waiter being granted a lock, a join handle waiting for its
//! coroutine's result, a channel waiter being paired), written once with its ordering argument.
//!
//! The word holds one of:
//! - `UNSET`: not set, and no waiter has published itself;
//! - `ARMED`: not set, and the waiter's [`Unparker`] is in `waiter` (published by [`OneShot::arm`]
//!   or given at creation by [`OneShot::with_waiter`]);
//! - anything else: the value it was set to (any `usize` up to [`OneShot::MAX_VALUE`]).
//!
//! Invariants and ordering:
//! - the word leaves `UNSET`/`ARMED` exactly once, by [`OneShot::set`] or a successful
//!   [`OneShot::try_set`] (an atomic read-modify-write, AcqRel). Its Release half publishes
//!   everything the setter wrote before (a result, a handed-over lock, a message); every read of
//!   the word on the waiting side is Acquire, so once the waiter sees a value, it sees those
//!   writes too;
//! - `waiter` is written only before the word becomes `ARMED` (by the Release CAS in `arm`, or
//!   at creation), and read only by the setter that moved the word *from* `ARMED` (its Acquire
//!   half sees the write). The waiter never touches `waiter` again once armed, so there is
//!   never a concurrent access to it;
//! - no lost wake-up: either the waiter's `UNSET -> ARMED` comes first in the word's
//!   modification order, and then the setter sees `ARMED` and unparks it (a token its next
//!   `park` consumes, see `park`), or the set comes first, and then `arm` fails and the waiter
//!   never parks. A waiter made with `with_waiter` is armed from the start, so every set
//!   unparks it;
//! - the setter unparks *after* its read-modify-write; by then the waiter may have seen the
//!   value and gone on, so whoever owns the `OneShot`'s memory must keep it alive until the
//!   setter returns (an `Arc`, or a control block the setter holds a count on).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::{park_idle_unless_on_stack, Unparker, WaitReason};

/// Not set; nobody waits yet.
const UNSET: usize = usize::MAX;
/// Not set; the waiter's handle is in `waiter`.
const ARMED: usize = usize::MAX - 1;

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
    #[inline]
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
    pub(crate) fn wait(&self, reason: WaitReason) -> usize {
        loop {
            match self.state.load(Ordering::Acquire) {
                // The setter touches only this `OneShot`: an idle park unless it is on our
                // stack (`park_idle_unless_on_stack`).
                ARMED => park_idle_unless_on_stack(self.addr(), None, reason),
                UNSET => panic!("goro: OneShot::wait on a OneShot nobody armed"),
                v => return v,
            }
        }
    }

    /// As [`wait`](Self::wait), but give up at `deadline` and return `None`. The value may be
    /// set right after: a caller that then withdraws (from a queue, with `try_set` of its own
    /// "timed out" value) and finds it too late must `wait` for the value.
    pub(crate) fn wait_until(&self, deadline: Instant, reason: WaitReason) -> Option<usize> {
        loop {
            match self.state.load(Ordering::Acquire) {
                ARMED => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    park_idle_unless_on_stack(self.addr(), Some(deadline), reason)
                }
                UNSET => panic!("goro: OneShot::wait_until on a OneShot nobody armed"),
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
