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
        super::no_switch(|| prev(info))
    }));
}
