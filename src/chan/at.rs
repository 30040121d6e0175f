//! The at flavor, `chan::at(when)` and `chan::after(d)`, with crossbeam-channel's semantics:
//! one message, the deadline `when` itself, receivable from `when` on; after it has been
//! received, receives block as on a never channel. Nothing feeds it (no timer, no thread): a
//! receiver compares the clock with `when`, and a blocked one parks until `when`. As a select
//! case it is ready once `when` has passed and the message is still there, and it tells the
//! engine to wake no later than `when`.
//!
//! Invariant: `received` goes from false to true once, by the one receiver whose swap won; only
//! that receiver gets the message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::err::{RecvTimeoutError, TryRecvError};
use super::side::Side;
use super::waiting::{self, Operation, Waiting};

/// What a selection of a timer channel claimed: the instant it delivers (`None`: nothing).
#[derive(Default)]
pub(crate) struct TimerToken(pub(crate) Option<Instant>);

/// A channel that delivers `when` once, at `when`.
pub(crate) struct Channel<T> {
    when: Instant,
    received: AtomicBool,
    /// Turns the instant into the channel's message type (only ever built with `T = Instant`,
    /// where it is the identity: this keeps the flavor in the generic `Flavor<T>` without
    /// unsafe casts).
    msg: fn(Instant) -> T,
}

impl Channel<Instant> {
    pub(crate) fn new(when: Instant) -> Channel<Instant> {
        Channel {
            when,
            received: AtomicBool::new(false),
            msg: |i| i,
        }
    }
}

impl<T> Channel<T> {
    /// Claim the message if `when` has passed and nobody claimed it.
    fn claim(&self) -> bool {
        // A relaxed check first spares the swap once the message is gone. No data is published
        // through `received` (the message is `when`, fixed at creation): atomicity of the swap
        // alone picks the one winner, so relaxed ordering suffices.
        !self.received.load(Ordering::Relaxed)
            && Instant::now() >= self.when
            && !self.received.swap(true, Ordering::Relaxed)
    }

    fn take(&self) -> Option<T> {
        self.claim().then(|| (self.msg)(self.when))
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        self.take().ok_or(TryRecvError::Empty)
    }

    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        if !self.received.load(Ordering::Relaxed) {
            if deadline.is_some_and(|d| d < self.when) {
                waiting::sleep_until(deadline, "chan receive (timer)");
                return Err(RecvTimeoutError::Timeout);
            }
            waiting::sleep_until(Some(self.when), "chan receive (timer)");
            if let Some(m) = self.take() {
                return Ok(m);
            }
        }
        // Another receiver took the one message: nothing will ever arrive.
        waiting::sleep_until(deadline, "chan receive (nil chan)");
        Err(RecvTimeoutError::Timeout)
    }

    /// Complete a selection of this channel (the token holds the claimed instant).
    pub(crate) fn read(&self, token: &mut TimerToken) -> Result<T, ()> {
        token.0.take().map(self.msg).ok_or(())
    }

    fn is_ready(&self) -> bool {
        !self.received.load(Ordering::Relaxed) && Instant::now() >= self.when
    }

    /// 1 while the message waits to be received, else 0.
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

/// The receiving end of an at channel, as a select case.
pub(crate) struct Receiving<'a, T>(pub(crate) &'a Channel<T>);

impl<T> Side for Receiving<'_, T> {
    type Token = TimerToken;

    fn try_select(&self, token: &mut TimerToken) -> bool {
        let claimed = self.0.claim();
        if claimed {
            token.0 = Some(self.0.when);
        }
        claimed
    }

    fn deadline(&self) -> Option<Instant> {
        (!self.0.received.load(Ordering::Relaxed)).then_some(self.0.when)
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
