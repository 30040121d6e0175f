//! The type-erased token of a selection: room for the token of every flavor, so that one
//! `select` can mix channels of different flavors and message types. A selection fills the
//! part of the flavor it chose; `read`/`write` on that flavor consume it.

use super::array::ArrayToken;
use super::at::TimerToken;
use super::list::ListToken;
use super::zero::ZeroToken;

/// The per-flavor data a selection hands to the operation that completes it.
#[derive(Default)]
pub(crate) struct Token {
    array: ArrayToken,
    list: ListToken,
    zero: ZeroToken,
    /// Shared by the two timer flavors (at and tick).
    timer: TimerToken,
    never: (),
}

impl Token {
    /// The part of the token that belongs to the flavor whose token type is `P`.
    #[inline]
    pub(crate) fn part<P: TokenPart>(&mut self) -> &mut P {
        P::of(self)
    }
}

/// A flavor's token type: where it lives inside a [`Token`].
pub(crate) trait TokenPart {
    fn of(token: &mut Token) -> &mut Self;
}

impl TokenPart for ArrayToken {
    #[inline]
    fn of(token: &mut Token) -> &mut Self {
        &mut token.array
    }
}

impl TokenPart for ListToken {
    #[inline]
    fn of(token: &mut Token) -> &mut Self {
        &mut token.list
    }
}

impl TokenPart for ZeroToken {
    #[inline]
    fn of(token: &mut Token) -> &mut Self {
        &mut token.zero
    }
}

impl TokenPart for TimerToken {
    #[inline]
    fn of(token: &mut Token) -> &mut Self {
        &mut token.timer
    }
}

impl TokenPart for () {
    #[inline]
    fn of(token: &mut Token) -> &mut Self {
        &mut token.never
    }
}
