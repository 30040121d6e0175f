//! Small socket syscalls the net types share (sends that never raise `SIGPIPE`, `accept4`
//! straight into non-blocking mode) and the macros that give every type the same conversions
//! and deadline methods.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// `send(2)` with `MSG_NOSIGNAL`: a closed peer gives `BrokenPipe`, never `SIGPIPE`.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes; a bad fd is reported as an error.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `sendmsg(2)` of several buffers with `MSG_NOSIGNAL`.
pub(crate) fn send_vectored(fd: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is guaranteed ABI-compatible with `iovec` on Unix.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(libc::c_int::MAX as usize) as _;
    // SAFETY: `msg` points at `bufs`, valid for the call; the kernel only reads them.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `accept4(2)` with the new socket already non-blocking and close-on-exec.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, socket2::SockAddr)> {
    // SAFETY: `try_init` hands us storage of the right size and its length to fill in.
    let (raw, addr) = unsafe {
        socket2::SockAddr::try_init(|storage, len| {
            let r = libc::accept4(
                fd,
                storage.cast(),
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            );
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r)
            }
        })?
    };
    // SAFETY: accept4 returned a new fd that nothing else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(raw) }, addr))
}

/// The per-operation timeout and deadline methods every socket type has, delegating to its
/// `io: Fd<_>` field.
macro_rules! deadline_methods {
    () => {
        /// The timeout of each later reading call (`None`: none). `Some(Duration::ZERO)` is an
        /// `InvalidInput` error (std's rule); an expired call gives `TimedOut`.
        pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
            self.io.set_read_timeout(t)
        }

        /// The timeout of each later writing call (as [`Self::set_read_timeout`]).
        pub fn set_write_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
            self.io.set_write_timeout(t)
        }

        /// The read timeout.
        pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            Ok(self.io.read_timeout())
        }

        /// The write timeout.
        pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            Ok(self.io.write_timeout())
        }

        /// Go's `SetDeadline`: an absolute deadline for reading and writing calls, later ones
        /// *and* pending ones (`None` clears it). A deadline in the past set from another
        /// coroutine wakes a parked call at once with `TimedOut`.
        pub fn set_deadline(&self, t: Option<std::time::Instant>) -> std::io::Result<()> {
            self.io.set_deadline(t);
            Ok(())
        }

        /// As [`Self::set_deadline`], for reading calls only.
        pub fn set_read_deadline(&self, t: Option<std::time::Instant>) -> std::io::Result<()> {
            self.io.set_read_deadline(t);
            Ok(())
        }

        /// As [`Self::set_deadline`], for writing calls only.
        pub fn set_write_deadline(&self, t: Option<std::time::Instant>) -> std::io::Result<()> {
            self.io.set_write_deadline(t);
            Ok(())
        }
    };
}

/// `From<std type>`, `from_std`, `into_std`, `AsRawFd`, `AsFd`, `IntoRawFd`, `FromRawFd` and
/// `Debug` for a type `$t { io: Fd<$std> }`.
macro_rules! std_conversions {
    ($t:ident, $std:ty) => {
        impl $t {
            /// Make a std socket non-blocking and register it with goro's netpoller.
            pub fn from_std(s: $std) -> std::io::Result<$t> {
                Ok($t {
                    io: crate::io::Fd::new(s)?,
                })
            }

            /// Deregister and give the std socket back. Its fd stays in non-blocking mode
            /// (a flag clones share); call `set_nonblocking(false)` on it if needed.
            pub fn into_std(self) -> $std {
                self.io.into_inner()
            }
        }

        impl From<$std> for $t {
            /// As `from_std`; panics only if the kernel refuses the epoll registration (out of
            /// memory, or `max_user_watches` reached): use `from_std` to handle that.
            fn from(s: $std) -> $t {
                $t::from_std(s).unwrap_or_else(|e| {
                    panic!(
                        "goro::net: cannot register a {} with the netpoller: {e}",
                        stringify!($t)
                    )
                })
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.io)
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.io)
            }
        }

        impl std::os::fd::IntoRawFd for $t {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.into_std())
            }
        }

        impl std::os::fd::FromRawFd for $t {
            /// # Safety
            /// `fd` must be an open socket of the right kind that the caller owns (std's
            /// contract for `FromRawFd`).
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $t {
                // SAFETY: the caller's contract, passed on to std.
                $t::from(unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) })
            }
        }

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.io.get_ref(), f)
            }
        }
    };
}

pub(crate) use {deadline_methods, std_conversions};
