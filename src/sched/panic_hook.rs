//! The panic hook goro installs when the runtime starts: a panic on a coroutine first names
//! the coroutine (id and name), then the previous hook reports it as usual.

use std::panic;

/// Wrap the panic hook so a panic on a coroutine names the coroutine before the usual report.
pub(crate) fn install_panic_hook() {
    let prev = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if let Some(co) = super::current_coroutine() {
            match &co.name {
                Some(n) => eprintln!(
                    "goro: panic in coroutine {} {n:?} (join() returns it; the runtime continues)",
                    co.id
                ),
                None => eprintln!(
                    "goro: panic in coroutine {} (join() returns it; the runtime continues)",
                    co.id
                ),
            }
        }
        prev(info)
    }));
}
