//! The tick flavor, `chan::tick(period)`, with crossbeam-channel's semantics: a message is
//! receivable whenever the clock has reached the next delivery time; receiving it delivers
//! that scheduled time and moves the next one to `period` after the later of that time and
//! now (so a slow receiver misses ticks instead of collecting a backlog, and a zero period
//! delivers on every receive). Nothing feeds it: receivers read the clock, a blocked one parks
//! until the next delivery time, and as a select case it tells the engine to wake by then.
//!
//! State: `next`, the next delivery time as nanoseconds after `start` (an `AtomicU64`, so that
//! claiming a tick is one CAS). Invariant: `next` only grows; each value of it is delivered to
//! at most one receiver, the one whose CAS moved it on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::at::TimerToken;
use super::err::{RecvTimeoutError, TryRecvError};
use super::side::Side;
use super::waiting::{self, Operation, Waiting};

/// A channel that delivers its schedule, one tick at a time.
pub(crate) struct Channel<T> {
    start: Instant,
    /// The next delivery time, in nanoseconds after `start`.
    next: AtomicU64,
    period: u64,
    /// As in `at.rs`: the identity, built only with `T = Instant`.
    msg: fn(Instant) -> T,
}

/// Nanoseconds from `start` to `t` (0 before `start`; saturating far in the future).
fn nanos_since(start: Instant, t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX)
}

impl Channel<Instant> {
    /// A ticker whose first tick is due one `period` from now; `None` when the schedule cannot
    /// be represented (a period beyond about 584 years): such a ticker would never tick.
    pub(crate) fn new(period: Duration) -> Option<Channel<Instant>> {
        let period = u64::try_from(period.as_nanos()).ok()?;
        let start = Instant::now();
        // Every offset is at most u64::MAX nanoseconds: if that fits, `at` never overflows.
        start.checked_add(Duration::from_nanos(u64::MAX))?;
        Some(Channel {
            start,
            next: AtomicU64::new(period),
            period,
            msg: |i| i,
        })
    }
}

impl<T> Channel<T> {
    /// The instant `offset` nanoseconds after `start` (`new` checked that the largest offset
    /// fits, so this does not overflow).
    fn at(&self, offset: u64) -> Instant {
        self.start + Duration::from_nanos(offset)
    }

    /// Claim the due tick, if one is due: its delivery time.
    fn claim(&self) -> Option<Instant> {
        // The CAS is what picks the one receiver of a tick; no other data travels with it, so
        // relaxed ordering suffices.
        loop {
            let now = nanos_since(self.start, Instant::now());
            let next = self.next.load(Ordering::Relaxed);
            if now < next {
                return None;
            }
            let after = now.saturating_add(self.period);
            if self
                .next
                .compare_exchange(next, after, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                return Some(self.at(next));
            }
        }
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        self.claim().map(self.msg).ok_or(TryRecvError::Empty)
    }

    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        loop {
            let next = self.next.load(Ordering::Relaxed);
            let now = nanos_since(self.start, Instant::now());
            if let Some(d) = deadline {
                if nanos_since(self.start, d) < next {
                    waiting::sleep_until(deadline, "chan receive (ticker)");
                    return Err(RecvTimeoutError::Timeout);
                }
            }
            // Claim the coming tick now, then wait for its time: the one that wins the CAS
            // owns it, later receivers get the tick after.
            let after = next.max(now).saturating_add(self.period);
            if self
                .next
                .compare_exchange(next, after, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                let when = self.at(next);
                waiting::sleep_until(Some(when), "chan receive (ticker)");
                return Ok((self.msg)(when));
            }
        }
    }

    /// Complete a selection of this channel (the token holds the claimed tick).
    pub(crate) fn read(&self, token: &mut TimerToken) -> Result<T, ()> {
        token.0.take().map(self.msg).ok_or(())
    }

    fn is_ready(&self) -> bool {
        nanos_since(self.start, Instant::now()) >= self.next.load(Ordering::Relaxed)
    }

    /// 1 while a tick is due, else 0.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.is_ready())
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.is_ready()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.is_ready()
    }
}

/// The receiving end of a tick channel, as a select case.
pub(crate) struct Receiving<'a, T>(pub(crate) &'a Channel<T>);

impl<T> Side for Receiving<'_, T> {
    type Token = TimerToken;

    fn try_select(&self, token: &mut TimerToken) -> bool {
        token.0 = self.0.claim();
        token.0.is_some()
    }

    fn deadline(&self) -> Option<Instant> {
        Some(self.0.at(self.0.next.load(Ordering::Relaxed)))
    }

    fn register(&self, _oper: Operation, _cx: &Waiting) -> bool {
        // Nobody will claim the case: the engine wakes at `deadline()` and retries.
        self.is_ready()
    }

    fn unregister(&self, _oper: Operation) {}

    fn accept(&self, token: &mut TimerToken, _cx: &Waiting) -> bool {
        self.try_select(token)
    }

    fn is_ready(&self) -> bool {
        self.0.is_ready()
    }

    fn watch(&self, _oper: Operation, _cx: &Waiting) -> bool {
        self.is_ready()
    }

    fn unwatch(&self, _oper: Operation) {}
}
