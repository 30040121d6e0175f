//! A plain thread's wake-up line for I/O waits: an eventfd per thread, created on the thread's
//! first wait and kept for its life. The thread polls it next to the fd it waits for; the
//! poller (or a deadline change, or a shutdown) writes it to wake the thread.
//!
//! Invariant: the eventfd is non-blocking on both ends, so a signal to a thread that is not
//! waiting only leaves a count that its next wait drains (a spurious retry, never a lost edge).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

/// A plain thread's wake-up line: an eventfd it polls next to the fd it waits for.
pub(crate) struct ThreadSignal {
    pub(super) fd: OwnedFd,
}

impl ThreadSignal {
    fn new() -> io::Result<Self> {
        // SAFETY: eventfd(2); the fd is owned at once.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ThreadSignal {
            // SAFETY: a fresh fd that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub(crate) fn signal(&self) {
        let one = 1u64;
        // SAFETY: 8 bytes from a u64 to our eventfd (non-blocking; a full counter is harmless).
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    pub(super) fn drain(&self) {
        let mut v = 0u64;
        // SAFETY: 8 bytes into a u64 from our non-blocking eventfd.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

pub(super) fn thread_signal() -> io::Result<Arc<ThreadSignal>> {
    thread_local! {
        static SIGNAL: std::cell::RefCell<Option<Arc<ThreadSignal>>> =
            const { std::cell::RefCell::new(None) };
    }
    SIGNAL
        .try_with(|s| {
            let mut s = s.borrow_mut();
            if let Some(t) = &*s {
                return Ok(t.clone());
            }
            let t = Arc::new(ThreadSignal::new()?);
            *s = Some(t.clone());
            Ok(t)
        })
        .unwrap_or_else(|_| ThreadSignal::new().map(Arc::new))
}
