//! SwitchContext switch: one [`SwitchContext`] per coroutine, switched to with `resume` and away from
//! with `suspend`.
//!
//! Two backends with the same surface:
//! * [`x86_64`] — goro's own assembly (`asm/x86_64.S`), on x86_64 System V ELF targets
//!   (cfg `goro_asm_available`, set by `build.rs`);
//! * [`corosensei`] — the portable one, on every target corosensei supports.
//!
//! `SwitchContext` is the asm backend where `build.rs` set cfg `goro_asm` (available, and the
//! cargo feature `corosensei` is off), corosensei otherwise. Both backends compile
//! wherever they can, so the switch bench compares them in one run.
//!
//! Shared contract (each backend repeats it on its items):
//! * `SwitchContext::new(stack, entry, arg)` prepares a context that runs `entry(arg)` on
//!   `stack` at its first `resume`; `entry` must not unwind and returns when the
//!   coroutine is finished.
//! * A context may move (it is `Send`) until its first `resume`; from then on it stays at
//!   one address and is resumed only on the OS thread that resumed it first.
//! * `resume` may be called from a worker thread's own stack or from another coroutine;
//!   `suspend` only by the coroutine itself, and it returns to whoever resumed it last.
//! * Dropping a context that was never resumed, or that finished, is fine. Dropping one
//!   that is suspended runs no destructor of anything on its stack (it is leaked as-is);
//!   the owner must then keep the stack from being reused while anything points into it.
//! * `suspended_sp()` after a `resume` that returned `false` is about the coroutine's
//!   stack depth at that suspension: pass it to `Stack::note_sp` for the shrink policy.
//! * FP control state (MXCSR, x87 control word): a coroutine inherits its thread's; the
//!   default asm variant and corosensei leave it alone across switches (correct for all
//!   code that follows Rust's rule of an unchanged FP environment, see asm/x86_64.S), and
//!   the asm trampoline restores it when a coroutine ends. Building with
//!   `GORO_PRESERVE_FP=1` makes the asm backend save and restore it on every switch.

// The backend not selected is compiled only for the tests and the switch bench, which compare
// the two side by side.
#[cfg(any(not(goro_asm), test, feature = "bench-support"))]
pub(crate) mod corosensei;
#[cfg(all(goro_asm_available, any(goro_asm, test, feature = "bench-support")))]
pub(crate) mod x86_64;

#[cfg(not(goro_asm))]
pub(crate) use self::corosensei::SwitchContext;
#[cfg(all(not(goro_asm), feature = "bench-support"))]
pub(crate) use self::corosensei::BACKEND;
#[cfg(goro_asm)]
pub(crate) use self::x86_64::SwitchContext;
#[cfg(all(goro_asm, feature = "bench-support"))]
pub(crate) use self::x86_64::BACKEND;

mod on_stack;
pub(crate) use on_stack::on_stack;

#[cfg(test)]
mod tests;
