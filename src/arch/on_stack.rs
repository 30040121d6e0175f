//! Run a function on another stack for a moment, on the same thread, and come back: the panic
//! hook prints the panic of a coroutine whose own stack is nearly used up on a fresh one.
//!
//! Built on corosensei's `on_stack` whichever backend switches coroutines (the crate is always
//! a dependency): its trampoline carries unwind info across the switch, so a backtrace taken
//! on the other stack continues into the caller's frames, and a panic in the function
//! propagates to the caller.

use coro::stack::{Stack as CoroStack, StackPointer};

use crate::stack::Stack;

/// A goro stack's address range, as corosensei wants it.
struct Range {
    base: StackPointer,
    limit: StackPointer,
}

// SAFETY: `base`/`limit` describe a goro stack that the caller of `on_stack` holds (so nothing
// else uses it) for the whole call: page aligned, at least MIN_STACK_SIZE (16 KiB, more than
// corosensei's 4 KiB minimum) usable bytes, with its guard below the usable part, which
// `limit` includes.
unsafe impl CoroStack for Range {
    fn base(&self) -> StackPointer {
        self.base
    }

    fn limit(&self) -> StackPointer {
        self.limit
    }
}

/// Run `f` on `stack` (which nothing else may be using) and return what it returns; a panic
/// in `f` resumes in the caller. `f` should not switch coroutines: a coroutine suspended in it
/// keeps `stack` borrowed until it is resumed and `f` returns.
pub(crate) fn on_stack<R>(stack: &Stack, f: impl FnOnce() -> R) -> R {
    let range = Range {
        base: StackPointer::new(stack.top()).expect("stack top is not null"),
        limit: StackPointer::new(stack.bottom() - stack.guard_size())
            .expect("stack guard is not at address 0"),
    };
    coro::on_stack(range, f)
}
