//! The never flavor, `never()`: a channel that never delivers a message and is never closed
//! (Go's nil channel, crossbeam-channel's `never`). Receiving blocks forever, or until the
//! caller's deadline; as a select case it is never ready. It holds no state, so every never
//! channel behaves as the same one (`same_channel` says so).

use std::time::Instant;

use super::err::{RecvTimeoutError, TryRecvError};
use super::side::Side;
use super::waiting::{self, Operation, Waiting};

/// A channel that nothing ever feeds or closes.
pub(crate) struct Channel;

impl Channel {
    pub(crate) fn try_recv<T>(&self) -> Result<T, TryRecvError> {
        Err(TryRecvError::Empty)
    }

    /// Block forever (or until the deadline, then time out).
    pub(crate) fn recv<T>(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        waiting::sleep_until(deadline, "chan receive (nil chan)");
        Err(RecvTimeoutError::Timeout)
    }
}

/// The receiving end of a never channel, as a select case: never ready.
pub(crate) struct Receiving;

impl Side for Receiving {
    type Token = ();

    fn try_select(&self, _token: &mut ()) -> bool {
        false
    }

    fn register(&self, _oper: Operation, _cx: &Waiting) -> bool {
        false
    }

    fn unregister(&self, _oper: Operation) {}

    fn accept(&self, _token: &mut (), _cx: &Waiting) -> bool {
        false
    }

    fn is_ready(&self) -> bool {
        false
    }

    fn watch(&self, _oper: Operation, _cx: &Waiting) -> bool {
        false
    }

    fn unwatch(&self, _oper: Operation) {}
}
