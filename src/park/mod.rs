//! The one wait/wake primitive of goro, for coroutines and plain threads alike.
//!
//! Every blocking operation in the crate (join, sleep, channels, select, sync, context, signals)
//! is built on the same three calls and the same discipline:
//!
//! 1. take a handle to yourself with [`current`] and *publish* it where a waker will find it
//!    (a channel's waiter list, a mutex queue, a timer);
//! 2. *re-check* the condition you are waiting for (it may have become true before you published);
//! 3. [`park`] (or [`park_until`]) and, when it returns, go back to 2.
//!
//! A waker calls [`Unparker::unpark`] after making the condition true. `unpark` deposits a
//! *token*: if the target is not parked yet (it is between steps 1 and 3), its next `park`
//! returns at once, so a wake-up can never be lost. `park` may also return spuriously (a
//! token left over from an earlier, abandoned wait, or a timer), so callers always loop on
//! their condition; they never treat a return from `park` as proof of anything.
//!
//! On a coroutine, `park` suspends the coroutine and its worker thread runs others; `unpark`
//! makes it runnable again *on the worker it started on* (a started coroutine never migrates:
//! see `sched`). On a plain OS thread, `park` blocks the thread (`std::thread::park`).
//!
//! Invariants:
//! - a token is consumed by exactly one `park` return; tokens do not accumulate (at most one);
//! - `unpark` never blocks, never allocates on the coroutine path, and may be called from any
//!   thread, from a coroutine, or from a timer callback;
//! - an `Unparker` may outlive its target: unparking a finished coroutine or an exited thread
//!   does nothing.

use std::fmt;
use std::time::Instant;

use crate::sched;

mod oneshot;
pub(crate) use oneshot::OneShot;

pub(crate) use crate::sched::WaitReason;

/// A handle that wakes one coroutine or one plain thread. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Unparker {
    target: Target,
}

#[derive(Clone)]
enum Target {
    Coroutine(sched::CoRef),
    Thread(std::thread::Thread),
}

impl Unparker {
    /// Make the target runnable, or make its next `park` return at once.
    pub(crate) fn unpark(&self) {
        match &self.target {
            Target::Coroutine(co) => sched::unpark(co),
            Target::Thread(t) => t.unpark(),
        }
    }

    /// The target's coroutine id, if it is a coroutine (for dumps).
    pub(crate) fn coroutine_id(&self) -> Option<u64> {
        match &self.target {
            Target::Coroutine(co) => Some(co.id),
            Target::Thread(_) => None,
        }
    }
}

impl fmt::Debug for Unparker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Coroutine(co) => write!(f, "Unparker(coroutine {})", co.id),
            Target::Thread(t) => write!(f, "Unparker(thread {:?})", t.id()),
        }
    }
}

/// A handle to the calling coroutine, or to the calling thread outside coroutines.
pub(crate) fn current() -> Unparker {
    let target = match sched::current_coroutine() {
        Some(co) => Target::Coroutine(co),
        None => Target::Thread(std::thread::current()),
    };
    Unparker { target }
}

/// Make `slot` a handle to the caller, as [`current`] would, but keep the handle already there
/// when it is the caller's own (no reference-count traffic for a coroutine or thread that
/// blocks again and again). `slot` must belong to the calling OS thread (a thread-local cache),
/// so that a thread handle found there is this thread's.
pub(crate) fn refresh_current(slot: &mut Option<Unparker>) {
    let me = sched::current_ptr();
    if let Some(u) = slot {
        match (&u.target, me) {
            (Target::Coroutine(co), Some(p)) if sched::CoRef::as_ptr(co) == p => return,
            (Target::Thread(_), None) => return,
            _ => {}
        }
    }
    *slot = Some(current());
}

/// Spend one unit of the caller's cooperative budget: every goro operation that may complete
/// without parking calls this first (it may yield; see `sched/coop.rs`).
#[inline]
pub(crate) fn coop_spend() {
    sched::coop_spend();
}

/// Whether the caller runs on a goro coroutine.
pub(crate) fn in_coroutine() -> bool {
    sched::in_coroutine()
}

/// Park the calling coroutine (or block the calling thread) for at least `d`: `time::sleep`
/// and `runtime::sleep`.
pub(crate) fn sleep(d: std::time::Duration) {
    if in_coroutine() {
        // A far deadline, never "forever": a pending timer is a possible waker (Go's rule),
        // so `run`'s deadlock detector stays quiet, and nothing overflows.
        let deadline = crate::deadline::after(d);
        while Instant::now() < deadline {
            // Nothing points into a sleeper's stack: eligible for compaction.
            park_idle(Some(deadline), "sleep");
        }
    } else {
        std::thread::sleep(d);
    }
}

/// Block until a token is available (consuming it). May return spuriously: loop on your condition.
pub(crate) fn park(reason: WaitReason) {
    if sched::in_coroutine() {
        sched::park_current(reason, None);
    } else {
        sched::thread_blocked(reason, std::thread::park);
    }
}

/// As [`park`] / [`park_until`] (`deadline`), for a wait whose coroutine's stack may be
/// compacted while it lasts: only for waits that give no other thread a pointer into the
/// caller's stack (the rule in `stack::compact`). On a plain thread the same as the others.
pub(crate) fn park_idle(deadline: Option<Instant>, reason: WaitReason) {
    if sched::in_coroutine() {
        sched::park_current_idle(reason, deadline);
    } else {
        park_for(deadline, reason);
    }
}

/// [`park_until`] with a deadline, [`park`] without.
fn park_for(deadline: Option<Instant>, reason: WaitReason) {
    match deadline {
        Some(d) => park_until(d, reason),
        None => park(reason),
    }
}

/// As [`park_idle`] for a wait in which other threads touch only the object at `shared` (a
/// `OneShot`, say): idle unless that object lives on the caller's own stack, so whether the
/// wait is eligible for compaction follows from where the object is, not from the caller.
#[inline]
pub(crate) fn park_idle_unless_on_stack(
    shared: *const (),
    deadline: Option<Instant>,
    reason: WaitReason,
) {
    if sched::in_coroutine() {
        sched::park_current_idle_unless_on_stack(shared as usize, reason, deadline);
    } else {
        park_for(deadline, reason);
    }
}

/// As [`park`], but returns no later than (about) `deadline`. Returns spuriously too: the caller
/// compares `Instant::now()` with its deadline itself.
pub(crate) fn park_until(deadline: Instant, reason: WaitReason) {
    if sched::in_coroutine() {
        sched::park_current(reason, Some(deadline));
    } else {
        // A thread with a deadline is not "blocked forever": not counted as blocked.
        let _ = reason;
        sched::note_plain_thread();
        let now = Instant::now();
        if deadline > now {
            std::thread::park_timeout(deadline - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// Publish the calling coroutine as side `side` of a pair and wait (yielding) until the
    /// other side has published itself; return the other side's handle.
    fn pair_up(who: &[Mutex<Option<Unparker>>; 2], side: usize) -> Unparker {
        *who[side].lock().unwrap() = Some(current());
        loop {
            if let Some(u) = who[1 - side].lock().unwrap().clone() {
                return u;
            }
            crate::gosched();
        }
    }

    /// Pairs of coroutines pass a turn back and forth with nothing but park/unpark: the
    /// waker sets the turn *then* unparks; the waiter loops "check, maybe spin, park". Extra
    /// unparks leave stray tokens (so parks return spuriously), spins make wake-ups land while
    /// the target still runs. Any lost wake-up hangs a pair; the watchdog turns that into a
    /// failure. The waker holds the other side's `Unparker` in a local, so nothing between its
    /// store of the turn and its `unpark` orders memory (no lock): an `unpark` that skipped its
    /// read-modify-write when it found a token already there lost wake-ups here (see
    /// `sched::unpark`).
    #[test]
    fn handshake_survives_stray_tokens_and_races() {
        crate::gomaxprocs(2);
        const PAIRS: usize = 40;
        const ROUNDS: u64 = 50_000;
        let done = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(AtomicU64::new(0));
        for p in 0..PAIRS {
            let turn = Arc::new(AtomicU64::new(0));
            let who: Arc<[Mutex<Option<Unparker>>; 2]> =
                Arc::new([Mutex::new(None), Mutex::new(None)]);
            for side in 0..2u64 {
                let (turn, who, done) = (turn.clone(), who.clone(), done.clone());
                let progress = progress.clone();
                crate::spawn(move || {
                    let other = pair_up(&who, side as usize);
                    let mut rng = (p as u64 + 1) * 0x9E37_79B9 + side;
                    for r in 0..ROUNDS {
                        let mine = 2 * r + side;
                        loop {
                            if turn.load(Ordering::Acquire) == mine {
                                break;
                            }
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            for _ in 0..(rng % 64) {
                                std::hint::spin_loop();
                            }
                            if turn.load(Ordering::Acquire) == mine {
                                break;
                            }
                            park("test handshake");
                        }
                        turn.store(mine + 1, Ordering::Release);
                        other.unpark();
                        if rng % 3 == 0 {
                            other.unpark(); // a stray token for the other side
                        }
                        if rng % 5 == 0 {
                            current().unpark(); // and one for ourselves
                        }
                        if r % 1024 == 0 {
                            progress.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    done.fetch_add(1, Ordering::AcqRel);
                });
            }
        }
        // Watchdog on progress, not on total time (4 million hand-overs take a minute or more
        // on a loaded 2-core machine, where this test shares the workers with the rest of the
        // suite): a lost wake-up stops a pair for good, so once the others finish nothing moves.
        let (mut last, mut since) = (0, std::time::Instant::now());
        while done.load(Ordering::Acquire) < 2 * PAIRS as u64 {
            let now = progress.load(Ordering::Relaxed);
            if now != last {
                (last, since) = (now, std::time::Instant::now());
            }
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "lost wake-up: {} of {} sides finished, no progress for 20 s\n{}",
                done.load(Ordering::Acquire),
                2 * PAIRS,
                crate::sched::dump()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A token that arrives while the target is on its way to park (after its first look for
    /// a token, before it publishes PARKED) makes the PARKED CAS fail; the target then consumes
    /// that token on a slow path. If a second `unpark` — the one that carries the condition —
    /// lands between that failed CAS and the consumption, the consumption must still acquire
    /// it: a plain store there read from nobody, so the target could re-check a stale
    /// condition and park for good. Here each waker first leaves a stray token *before* it
    /// stores the turn (so the stray one carries nothing), then stores and unparks for real.
    /// Waiters park with a far deadline (`park_until`): that path has no locked instruction
    /// between the consumption and the re-check, so x86 shows the reordering too. With the
    /// plain store this hung a pair in about a third of runs (1.5 s each) on a 2-core x86.
    #[test]
    fn token_consumed_on_the_park_slow_path_acquires_every_unpark() {
        crate::gomaxprocs(2);
        const PAIRS: usize = 16;
        const ROUNDS: u64 = 100_000;
        let done = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(AtomicU64::new(0));
        let far = std::time::Instant::now() + Duration::from_secs(3600);
        for p in 0..PAIRS {
            let turn = Arc::new(AtomicU64::new(0));
            let who: Arc<[Mutex<Option<Unparker>>; 2]> =
                Arc::new([Mutex::new(None), Mutex::new(None)]);
            for side in 0..2u64 {
                let (turn, who, done) = (turn.clone(), who.clone(), done.clone());
                let progress = progress.clone();
                crate::spawn(move || {
                    let other = pair_up(&who, side as usize);
                    let mut rng = (p as u64 + 7) * 0x9E37_79B9 + side;
                    for r in 0..ROUNDS {
                        let mine = 2 * r + side;
                        while turn.load(Ordering::Acquire) != mine {
                            park_until(far, "test handshake (deadline)");
                        }
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        other.unpark(); // stray: carries nothing
                        for _ in 0..(rng % 4) {
                            std::hint::spin_loop();
                        }
                        turn.store(mine + 1, Ordering::Release);
                        other.unpark();
                        if r % 1024 == 0 {
                            progress.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    done.fetch_add(1, Ordering::AcqRel);
                });
            }
        }
        // Watchdog on progress, not on total time: a lost wake-up stops a pair for good, and
        // the rest finish within a second or two.
        let (mut last, mut since) = (0, std::time::Instant::now());
        while done.load(Ordering::Acquire) < 2 * PAIRS as u64 {
            let now = progress.load(Ordering::Relaxed);
            if now != last {
                (last, since) = (now, std::time::Instant::now());
            }
            assert!(
                since.elapsed() < Duration::from_secs(5),
                "lost wake-up: {} of {} sides finished\n{}",
                done.load(Ordering::Acquire),
                2 * PAIRS,
                crate::sched::dump()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
