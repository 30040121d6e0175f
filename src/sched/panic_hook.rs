//! The panic hook goro installs when the runtime starts: a panic on a coroutine first names
//! the coroutine (id and name), then the previous hook reports it as usual.
//!
//! Two things make a coroutine's panic different from a thread's, and the hook deals with both:
//!
//! * std marks a thread as "in the panic hook" until the hook returns, and a second panic on
//!   that thread meanwhile aborts the process ("thread panicked while processing panic").
//!   A hook that parked (a user hook that logs through a channel, sleeps, takes a goro lock,
//!   or calls `gosched`) would let the worker run another coroutine that may panic. So the
//!   previous hook runs under `sched::no_switch`: its waits block the worker thread instead
//!   (other coroutines of that worker wait until the hook returns; a hook that waits for one
//!   of them deadlocks, as it would on a plain thread that waits for itself).
//! * A coroutine's stack may be small (16 KiB at the least), and std's default hook needs
//!   about 20 KiB to print a `RUST_BACKTRACE=full` backtrace. When the coroutine has less
//!   than [`REPORT_ROOM`] of its stack left, the previous hook runs on a fresh pooled stack
//!   of the default size (`arch::on_stack`; backtraces taken there continue into the
//!   coroutine's frames).
//! * The panic is counted for the coroutine (`sched::unwind_started`), so that goro tells its
//!   unwinding from that of other coroutines of the worker (`sched::unwinding`).
//!
//! A hook installed with `std::panic::set_hook` *after* the runtime started replaces this one:
//! goro then neither names the coroutine nor keeps that hook from parking.

use std::panic;

/// Wrap the panic hook so a panic on a coroutine names the coroutine before the usual report.
pub(crate) fn install_panic_hook() {
    let prev = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        super::unwind_started();
        super::with_running(|_, co| match &co.name {
            Some(n) => eprintln!(
                "goro: panic in coroutine {} {n:?} (join() returns it; the runtime continues)",
                co.id
            ),
            None => eprintln!(
                "goro: panic in coroutine {} (join() returns it; the runtime continues)",
                co.id
            ),
        });
        super::no_switch(|| with_room(|| prev(info)))
    }));
}

/// Stack a panic report may need: std's default hook printing a `RUST_BACKTRACE=full`
/// backtrace took between 16 and 24 KiB on x86_64; twice the worst seen, with margin.
const REPORT_ROOM: usize = 64 * 1024;

/// Run `report` where it has room: in place, or on a fresh pooled stack of the default size
/// when the running coroutine has less than [`REPORT_ROOM`] of its own stack left. If no stack
/// can be had either, in place (an overflow there is reported as the coroutine's overflow).
fn with_room(report: impl FnOnce()) {
    let left = super::with_running(|_, co| stack_left(co)).flatten();
    if left.is_some_and(|left| left < REPORT_ROOM) {
        if let Ok(stack) = crate::stack::allocate(crate::stack::default_stack_size()) {
            crate::arch::on_stack(&stack, report);
            // Printing touched an unknown depth of it: let the pool give those pages back.
            stack.note_sp(stack.bottom());
            return;
        }
    }
    report()
}

/// Bytes of its own stack the running coroutine `co` has left below the caller, if the caller
/// runs on that stack.
fn stack_left(co: &crate::co::Co) -> Option<usize> {
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    // SAFETY: the caller is the running coroutine `co`, on its owner worker: the only thread
    // that touches `inner`, which it reads one field of (no reference kept past this line).
    let (bottom, top) = unsafe {
        let stack = std::ptr::addr_of!((*co.inner_ptr()).stack);
        let s = (*stack).as_ref()?;
        (s.bottom(), s.top())
    };
    (bottom..top).contains(&sp).then(|| sp - bottom)
}
