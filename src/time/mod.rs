//! Time: Go's `time.Sleep`, `time.After`, `time.Tick`, `Timer`, `Ticker` and `AfterFunc`.
//!
//! Which semantics where (API.md, the crate's contract: "`after` and `tick` behave as
//! crossbeam-channel's"):
//! - [`after`] and [`tick`] are `goro::chan`'s timer channels ([`chan::after`],
//!   [`chan::tick`]), with crossbeam-channel's behaviour: `after` delivers its deadline (the
//!   instant of the call plus `d`), `tick` delivers each tick's due time, a zero period ticks
//!   on every receive, and in a select every timer channel whose time has come is ready (of
//!   two `after`s the earlier wins). They need no timer object: receivers read the clock.
//!   Where Go differs: Go's `time.After` delivers the instant it fired and `time.Tick(0)` is a
//!   nil channel.
//! - [`Timer`], [`Ticker`] and [`after_func`] keep Go's semantics: they deliver the instant
//!   they fired, `Ticker::new(0)` panics like `NewTicker`, a slow receiver makes a ticker drop
//!   ticks (and one waiting tick is all it ever holds), and `stop`/`reset` follow Go 1.23+.
//!
//! [`chan::after`]: crate::chan::after
//! [`chan::tick`]: crate::chan::tick
//!
//! `Timer`, `Ticker` and `after_func` are built on the shared timer facility
//! (`sched::timers`: one-shot callbacks at a deadline); `sleep` and every `*_timeout` use
//! `park_until` and need no timer object. This module sits above `chan`: the channels of
//! `Timer` and `Ticker` are ordinary channels of capacity 1 (`chan::timer_channel`), fed by
//! timer callbacks through a weak reference, so a timer never keeps a dropped receiver's
//! channel alive.
//!
//! `Timer` and `Ticker` follow Go 1.23+: every arming carries a sequence number; `stop` and
//! `reset` bump it under the timer's lock, cancel the pending callback and drain the channel,
//! and a callback only delivers while holding that lock with its own sequence number still
//! current. So once `stop`/`reset` returns, no tick from before can be received, and their
//! result says whether a pending tick was prevented (cancelled, or drained unreceived).
//!
//! Invariants: a callback never blocks (it delivers with `try_send`: a ticker whose reader is
//! slow drops ticks instead of queueing them); `after_func`'s function runs at most once.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::chan::{self, Chan, Receiver};
use crate::park;
use crate::sched::timers::{self, TimerHandle};
use crate::util::lock;

/// Pause the caller for `d`: a coroutine parks (its worker runs others), a thread sleeps.
pub fn sleep(d: Duration) {
    park::sleep(d)
}

/// A channel that delivers one message once `d` has passed: the deadline, i.e. the instant
/// of the call plus `d` (crossbeam-channel's `after`; the same as [`chan::after`], except that
/// a `d` too long to represent waits a hundred years instead of forever, so that it still
/// counts as a pending timer for `run`'s deadlock detection, as Go's `time.After` does). It
/// is never closed; after its one message, receives block. For Go's firing instant use
/// [`Timer`].
///
/// [`chan::after`]: crate::chan::after
pub fn after(d: Duration) -> Receiver<Instant> {
    chan::at(crate::deadline::after(d))
}

/// A channel that delivers a message every `d` (crossbeam-channel's `tick`; the same as
/// [`chan::tick`]): each message is the time its tick was due, and the next tick is due `d`
/// after the later of that time and the moment it was received, so a slow receiver misses
/// ticks instead of collecting a backlog. A zero `d` delivers on every receive (Go's
/// `time.Tick(0)` would never deliver). Periods beyond a hundred years tick every hundred
/// years (a pending timer for deadlock detection, as with [`after`]). For Go's ticker use
/// [`Ticker`].
///
/// [`chan::tick`]: crate::chan::tick
pub fn tick(d: Duration) -> Receiver<Instant> {
    chan::tick(d.min(crate::deadline::FAR))
}

/// Run `f` in its own coroutine.
fn spawn_detached(f: Box<dyn FnOnce() + Send>) {
    // Detached: dropping the handle does not wait for or cancel the coroutine.
    drop(crate::spawn(f));
}

enum TimerKind {
    Chan(Weak<Chan<Instant>>),
    Func(Mutex<Option<Box<dyn FnOnce() + Send>>>),
}

struct TimerState {
    seq: u64,
    armed: bool,
    handle: Option<TimerHandle>,
}

struct TimerShared {
    state: Mutex<TimerState>,
    kind: TimerKind,
}

impl TimerShared {
    /// Arm for `d` from now (state lock held by the caller).
    fn arm(self: &Arc<Self>, st: &mut TimerState, d: Duration) {
        st.seq += 1;
        st.armed = true;
        st.handle = None;
        let seq = st.seq;
        if d.is_zero() {
            // A zero timer fires at once.
            self.fire_locked(st);
            return;
        }
        let me = self.clone();
        let when = crate::deadline::after(d);
        st.handle = Some(timers::schedule(when, move || me.fire(seq)));
    }

    fn fire(&self, seq: u64) {
        let mut st = lock(&self.state);
        if st.seq == seq && st.armed {
            self.fire_locked(&mut st);
        }
    }

    fn fire_locked(&self, st: &mut TimerState) {
        st.armed = false;
        st.handle = None;
        match &self.kind {
            TimerKind::Chan(w) => {
                chan::timer_deliver(w, Instant::now());
            }
            TimerKind::Func(f) => {
                if let Some(f) = lock(f).take() {
                    spawn_detached(f);
                }
            }
        }
    }

    /// Disarm; true if a pending tick was prevented.
    fn disarm(&self, st: &mut TimerState, rx: &Receiver<Instant>) -> bool {
        let mut pending = st.armed;
        st.armed = false;
        st.seq += 1;
        if let Some(h) = st.handle.take() {
            h.cancel();
        }
        // A tick delivered but not received is stale now: drop it (Go 1.23).
        while rx.try_recv_uncounted().is_ok() {
            pending = true;
        }
        pending
    }
}

/// A single event in the future (Go's `time.Timer`): its channel receives the instant it
/// fired. Go 1.23 semantics: after `stop` or `reset` returns, no stale value is received.
pub struct Timer {
    shared: Arc<TimerShared>,
    rx: Receiver<Instant>,
}

impl Timer {
    /// A timer that fires after `d` (at once for zero).
    pub fn new(d: Duration) -> Timer {
        let (weak, rx) = chan::timer_channel();
        let shared = Arc::new(TimerShared {
            state: Mutex::new(TimerState {
                seq: 0,
                armed: false,
                handle: None,
            }),
            kind: TimerKind::Chan(weak),
        });
        {
            let mut st = lock(&shared.state);
            shared.arm(&mut st, d);
        }
        Timer { shared, rx }
    }

    /// The channel the timer delivers on (Go's `t.C`). For an `after_func` timer, a channel
    /// that never delivers.
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stop the timer. True if this call prevented it from firing (or dropped its
    /// unreceived value); false if it had already fired and been received, or was stopped.
    pub fn stop(&self) -> bool {
        let mut st = lock(&self.shared.state);
        self.shared.disarm(&mut st, &self.rx)
    }

    /// Re-arm the timer to fire after `d`. Returns true if it was pending (as `stop`). An
    /// `after_func` timer whose function already started is not re-armed (returns false).
    pub fn reset(&self, d: Duration) -> bool {
        let mut st = lock(&self.shared.state);
        let pending = self.shared.disarm(&mut st, &self.rx);
        if let TimerKind::Func(f) = &self.shared.kind {
            if lock(f).is_none() {
                return false;
            }
        }
        self.shared.arm(&mut st, d);
        pending
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Timer { .. }")
    }
}

/// Run `f` in its own coroutine after `d` (Go's `time.AfterFunc`). `stop` on the returned
/// timer cancels it (true if `f` had not started); `reset` re-arms it while `f` has not run.
pub fn after_func<F>(d: Duration, f: F) -> Timer
where
    F: FnOnce() + Send + 'static,
{
    let shared = Arc::new(TimerShared {
        state: Mutex::new(TimerState {
            seq: 0,
            armed: false,
            handle: None,
        }),
        kind: TimerKind::Func(Mutex::new(Some(Box::new(f)))),
    });
    {
        let mut st = lock(&shared.state);
        shared.arm(&mut st, d);
    }
    Timer {
        shared,
        rx: chan::never(),
    }
}

struct TickState {
    seq: u64,
    period: Duration,
    handle: Option<TimerHandle>,
}

struct TickerShared {
    state: Mutex<TickState>,
    chan: Weak<Chan<Instant>>,
}

impl TickerShared {
    fn start(period: Duration) -> (Arc<TickerShared>, Receiver<Instant>) {
        let (weak, rx) = chan::timer_channel();
        let shared = Arc::new(TickerShared {
            state: Mutex::new(TickState {
                seq: 0,
                period,
                handle: None,
            }),
            chan: weak,
        });
        {
            let mut st = lock(&shared.state);
            shared.arm(&mut st, Some(crate::deadline::after(period)));
        }
        (shared, rx)
    }

    fn arm(self: &Arc<Self>, st: &mut TickState, when: Option<Instant>) {
        let seq = st.seq;
        st.handle = when.map(|when| {
            let me = self.clone();
            timers::schedule(when, move || me.fire(seq, when))
        });
    }

    fn fire(self: &Arc<Self>, seq: u64, when: Instant) {
        let mut st = lock(&self.state);
        if st.seq != seq {
            return;
        }
        let now = Instant::now();
        if chan::timer_unreceived(&self.chan) {
            // The receiver has not seen the last tick: another would be dropped anyway. Look
            // again a period later, and never sooner than `COALESCE`, so a tiny period cannot
            // keep the timer thread spinning while nobody receives.
            let again = crate::deadline::after(period_or_coalesce(st.period));
            self.arm(&mut st, Some(again));
            return;
        }
        if !chan::timer_deliver(&self.chan, now) {
            // Nobody can receive any more: stop ticking.
            st.handle = None;
            return;
        }
        // The next tick on the period grid that is still in the future (missed ones are
        // dropped, as in Go).
        let period = st.period;
        let mut next = when.checked_add(period);
        if let Some(n) = next {
            if n <= now {
                let behind = now.duration_since(when).as_nanos();
                let skip = behind / period.as_nanos() + 1;
                next = u32::try_from(skip)
                    .ok()
                    .and_then(|k| when.checked_add(period * k));
                if next.is_some_and(|n| n <= now) {
                    next = now.checked_add(period);
                }
            }
        }
        self.arm(&mut st, next);
    }
}

/// How often, at most, a ticker whose last tick is still unreceived looks again.
const COALESCE: Duration = Duration::from_millis(1);

fn period_or_coalesce(period: Duration) -> Duration {
    period.max(COALESCE)
}

/// Delivers the instant at every `period` (Go's `time.Ticker`). A slow reader misses ticks; a
/// period shorter than a millisecond delivers no faster than the reader receives (the timer
/// looks again at most every millisecond while a tick waits unreceived).
pub struct Ticker {
    shared: Arc<TickerShared>,
    rx: Receiver<Instant>,
}

impl Ticker {
    /// A ticker with the given period.
    ///
    /// # Panics
    /// If `period` is zero (as Go's `NewTicker` with a non-positive interval).
    pub fn new(period: Duration) -> Ticker {
        if period.is_zero() {
            panic!("non-positive interval for NewTicker");
        }
        let (shared, rx) = TickerShared::start(period);
        Ticker { shared, rx }
    }

    /// The channel the ticks arrive on (Go's `t.C`).
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stop and restart with a new period; no tick from before is received afterwards.
    ///
    /// # Panics
    /// If `period` is zero (as Go's `Ticker.Reset`).
    pub fn reset(&self, period: Duration) {
        if period.is_zero() {
            panic!("non-positive interval for Ticker.Reset");
        }
        let mut st = lock(&self.shared.state);
        self.disarm(&mut st);
        st.period = period;
        self.shared
            .arm(&mut st, Some(crate::deadline::after(period)));
    }

    /// Stop ticking; no tick from before is received afterwards.
    pub fn stop(&self) {
        let mut st = lock(&self.shared.state);
        self.disarm(&mut st);
    }

    fn disarm(&self, st: &mut TickState) {
        st.seq += 1;
        if let Some(h) = st.handle.take() {
            h.cancel();
        }
        while self.rx.try_recv_uncounted().is_ok() {}
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Ticker { .. }")
    }
}
