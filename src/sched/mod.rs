//! The scheduler (PROVISIONAL stub: no coroutines yet; the real M:N scheduler replaces it).

pub(crate) mod timers;

use std::time::Instant;

use crate::park::WaitReason;

/// A counted reference to a coroutine's control block.
#[derive(Clone)]
pub(crate) struct CoRef(std::sync::Arc<()>);

impl CoRef {
    pub(crate) fn unpark(&self) {}
    pub(crate) fn ptr_eq(&self, other: &CoRef) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
    pub(crate) fn id(&self) -> u64 {
        0
    }
}

pub(crate) fn current_coroutine() -> Option<CoRef> {
    None
}

pub(crate) fn in_coroutine() -> bool {
    false
}

pub(crate) fn park_current(_reason: WaitReason, _deadline: Option<Instant>) {
    unreachable!("no coroutines yet")
}

/// Run a blocking wait of a plain thread, accounted for deadlock detection.
pub(crate) fn thread_blocked(_reason: WaitReason, wait: impl FnOnce()) {
    wait()
}

/// Register something outside the coroutines that may wake one later (a signal registration,
/// an I/O registration): while any is registered, `run`'s deadlock detector stays quiet.
/// Pair every call with [`remove_wake_source`].
#[allow(dead_code)]
pub(crate) fn add_wake_source() {}

/// Undo one [`add_wake_source`].
#[allow(dead_code)]
pub(crate) fn remove_wake_source() {}
