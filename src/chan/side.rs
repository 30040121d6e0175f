//! One end of one channel flavor as a select case: the contract every flavor implements (for
//! its receiving end and, where it has one, its sending end) so that the select engine can
//! drive any of them.
//!
//! A flavor names its own token type (the claimed slot or packet a successful selection hands
//! to `read`/`write`); the type-erased `Token` the engine carries (`token.rs`) holds one of
//! each. The engine's protocol, in order: `try_select` once per case; if nothing is ready,
//! `register` every case on one [`Waiting`] and park (no later than the earliest `deadline`);
//! `unregister` every case; `accept` the case a partner claimed. `watch`/`unwatch`/`is_ready`
//! serve `Select::ready`, which only reports readiness.

use std::time::Instant;

use super::waiting::{Operation, Waiting};

/// One end of one flavor, as a select case.
pub(crate) trait Side {
    /// What a successful selection hands to the operation that completes it.
    type Token;

    /// Claim the operation now if it can proceed (or the channel is closed).
    fn try_select(&self, token: &mut Self::Token) -> bool;

    /// The latest instant by which a blocked selection must look at this case again (timer
    /// flavors: their deadline); `None` when only a partner can make it ready.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Register a blocked case; true if it is ready anyway (the caller then aborts `cx`).
    fn register(&self, oper: Operation, cx: &Waiting) -> bool;

    /// Withdraw a case registered with `register` (it may already have been claimed).
    fn unregister(&self, oper: Operation);

    /// The case was claimed by a partner: collect the claim into `token`. False if there is
    /// nothing to complete after all (the engine then retries).
    fn accept(&self, token: &mut Self::Token, cx: &Waiting) -> bool;

    /// Whether the operation could proceed now.
    fn is_ready(&self) -> bool;

    /// Ask to be told (through `cx`) when the operation may be ready; true if it is already.
    fn watch(&self, oper: Operation, cx: &Waiting) -> bool;

    /// Withdraw a `watch`.
    fn unwatch(&self, oper: Operation);
}
