//! Receivers and senders as select cases: the engine's type-erased [`SelectHandle`] for
//! [`Receiver`] and [`Sender`], dispatching to the [`Side`] of the channel's flavor.
//!
//! The match over the flavors is written once per end (the two macros below); each arm hands
//! the flavor's own end and its part of the [`Token`] to the same call, so what a case does is
//! defined in the flavor's file, never here. Enum dispatch: no allocation, no indirection
//! beyond the one virtual call per case the engine already makes.

use std::time::Instant;

use super::select::SelectHandle;
use super::side::Side;
use super::token::Token;
use super::waiting::{Operation, Waiting};
use super::{array, at, list, never, tick, zero, Flavor, Receiver, Sender};

/// Evaluate `$body` with `$side` bound to the receiving end of `$chan`'s flavor.
macro_rules! with_receiving {
    ($chan:expr, $side:ident => $body:expr) => {
        match &$chan.flavor {
            Flavor::Array(c) => {
                let $side = array::Receiving(c);
                $body
            }
            Flavor::List(c) => {
                let $side = list::Receiving(c);
                $body
            }
            Flavor::Zero(c) => {
                let $side = zero::Receiving(c);
                $body
            }
            Flavor::At(c) => {
                let $side = at::Receiving(c);
                $body
            }
            Flavor::Tick(c) => {
                let $side = tick::Receiving(c);
                $body
            }
            Flavor::Never(_) => {
                let $side = never::Receiving;
                $body
            }
        }
    };
}

/// Evaluate `$body` with `$side` bound to the sending end of `$chan`'s flavor.
macro_rules! with_sending {
    ($chan:expr, $side:ident => $body:expr) => {
        match &$chan.flavor {
            Flavor::Array(c) => {
                let $side = array::Sending(c);
                $body
            }
            Flavor::List(c) => {
                let $side = list::Sending(c);
                $body
            }
            Flavor::Zero(c) => {
                let $side = zero::Sending(c);
                $body
            }
            Flavor::At(_) | Flavor::Tick(_) | Flavor::Never(_) => {
                unreachable!("timer and never channels have no sender")
            }
        }
    };
}

impl<T> SelectHandle for Receiver<T> {
    fn try_select(&self, token: &mut Token) -> bool {
        with_receiving!(self.chan, side => side.try_select(token.part()))
    }

    fn deadline(&self) -> Option<Instant> {
        with_receiving!(self.chan, side => side.deadline())
    }

    fn register(&self, oper: Operation, cx: &Waiting) -> bool {
        with_receiving!(self.chan, side => side.register(oper, cx))
    }

    fn unregister(&self, oper: Operation) {
        with_receiving!(self.chan, side => side.unregister(oper))
    }

    fn accept(&self, token: &mut Token, cx: &Waiting) -> bool {
        with_receiving!(self.chan, side => side.accept(token.part(), cx))
    }

    fn is_ready(&self) -> bool {
        with_receiving!(self.chan, side => side.is_ready())
    }

    fn watch(&self, oper: Operation, cx: &Waiting) -> bool {
        with_receiving!(self.chan, side => side.watch(oper, cx))
    }

    fn unwatch(&self, oper: Operation) {
        with_receiving!(self.chan, side => side.unwatch(oper))
    }
}

impl<T> SelectHandle for Sender<T> {
    fn try_select(&self, token: &mut Token) -> bool {
        with_sending!(self.chan, side => side.try_select(token.part()))
    }

    fn deadline(&self) -> Option<Instant> {
        with_sending!(self.chan, side => side.deadline())
    }

    fn register(&self, oper: Operation, cx: &Waiting) -> bool {
        with_sending!(self.chan, side => side.register(oper, cx))
    }

    fn unregister(&self, oper: Operation) {
        with_sending!(self.chan, side => side.unregister(oper))
    }

    fn accept(&self, token: &mut Token, cx: &Waiting) -> bool {
        with_sending!(self.chan, side => side.accept(token.part(), cx))
    }

    fn is_ready(&self) -> bool {
        with_sending!(self.chan, side => side.is_ready())
    }

    fn watch(&self, oper: Operation, cx: &Waiting) -> bool {
        with_sending!(self.chan, side => side.watch(oper, cx))
    }

    fn unwatch(&self, oper: Operation) {
        with_sending!(self.chan, side => side.unwatch(oper))
    }
}
