//! `Fd<T>`: an owned, pollable file descriptor registered with the netpoller, whose operations
//! park the calling coroutine (or block the calling thread) instead of returning `WouldBlock`.
//!
//! Invariant: while an `Fd` exists its fd is open, non-blocking and registered; dropping it
//! deregisters the fd *before* `T` closes it.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use super::desc::{Desc, Dir};
use super::{poll, wait};

/// A registration with the netpoller; deregisters on drop.
pub(crate) struct Registration {
    desc: &'static Desc,
}

impl Registration {
    /// Register `fd`, which the caller has already made non-blocking.
    pub(crate) fn new(fd: RawFd) -> io::Result<Self> {
        Ok(Registration {
            desc: poll::get()?.register(fd)?,
        })
    }

    pub(crate) fn desc(&self) -> &'static Desc {
        self.desc
    }

    /// Run the non-blocking `f` until it does not say `WouldBlock`, waiting in `dir` (with the
    /// per-operation timeout of `dir` and the absolute deadline).
    #[inline]
    pub(crate) fn op<R>(&self, dir: Dir, f: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        let op_deadline = self.desc.timeout(dir).map(|t| Instant::now() + t);
        wait::op(self.desc, dir, op_deadline, f)
    }

    /// As [`Registration::op`] with an explicit deadline for this call instead of the timeout.
    pub(crate) fn op_until<R>(
        &self,
        dir: Dir,
        deadline: Option<Instant>,
        f: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        wait::op(self.desc, dir, deadline, f)
    }

    /// Wait until `fd` polls ready for `dir` (level check with `poll(2)`, zero timeout).
    pub(crate) fn ready(&self, dir: Dir) -> io::Result<()> {
        let fd = self.desc.fd();
        self.op(dir, || {
            let events = match dir {
                Dir::Read => libc::POLLIN | libc::POLLRDHUP,
                Dir::Write => libc::POLLOUT,
            };
            let mut p = libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            // SAFETY: poll(2) on one valid pollfd, no waiting.
            let n = unsafe { libc::poll(&mut p, 1, 0) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else if n == 0 {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        })
    }

    /// After a successful `shutdown(how)` of the socket: wake the readers (they see end of
    /// file) and the writers (they see `BrokenPipe`) it concerns.
    pub(crate) fn note_shutdown(&self, how: std::net::Shutdown) {
        use std::net::Shutdown;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.desc.shutdown_read();
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.desc.slot(Dir::Write).ready();
        }
    }

    pub(crate) fn set_timeout(&self, dir: Dir, t: Option<Duration>) -> io::Result<()> {
        self.desc.set_timeout(dir, t)
    }

    pub(crate) fn timeout(&self, dir: Dir) -> Option<Duration> {
        self.desc.timeout(dir)
    }

    pub(crate) fn set_deadline(&self, dir: Dir, t: Option<Instant>) {
        self.desc.set_deadline(dir, t)
    }

    /// Copy the timeouts to another registration (`try_clone`: std's timeouts are socket
    /// options, which clones share at the time of cloning).
    pub(crate) fn copy_timeouts_to(&self, other: &Registration) {
        for d in [Dir::Read, Dir::Write] {
            let _ = other.desc.set_timeout(d, self.desc.timeout(d));
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(p) = poll::get() {
            p.deregister(self.desc);
        }
    }
}

/// Set `O_NONBLOCK` on `fd`.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(2) on a caller-provided fd; errors are reported.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK == 0 {
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A file descriptor the caller owns (a pipe, stdin, an eventfd, a pidfd, a socket made by
/// another crate), registered with goro's netpoller: its operations park the calling
/// coroutine until the fd is ready, and its worker runs other coroutines meanwhile. On a plain
/// thread they block the thread.
///
/// [`Fd::new`] sets `O_NONBLOCK` on the fd. That flag belongs to the *open file description*,
/// so every duplicate of the fd (a `dup`, an inherited stdin) sees it too; [`Fd::into_inner`]
/// leaves it set. Regular files and directories cannot be polled (`new` gives
/// `InvalidInput`): use [`crate::blocking`] for those. Writing to a pipe whose reader has gone
/// gives `BrokenPipe`: Rust programs start with `SIGPIPE` ignored, and goro's sockets also
/// send with `MSG_NOSIGNAL`.
///
/// Timeouts (per operation, std's semantics) and deadlines (absolute, Go's `SetDeadline`)
/// apply to every waiting call; an expired one gives `io::ErrorKind::TimedOut`.
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
///
/// let (a, b) = UnixStream::pair().unwrap();
/// let reader = goro::spawn(move || {
///     let mut r = goro::io::Fd::new(b).unwrap();
///     let mut buf = [0u8; 5];
///     r.read_exact(&mut buf).unwrap(); // parks until the bytes arrive
///     buf
/// });
/// let mut w = goro::io::Fd::new(a).unwrap();
/// w.write_all(b"hello").unwrap();
/// assert_eq!(&reader.join().unwrap(), b"hello");
/// ```
pub struct Fd<T: AsFd> {
    // Field order matters: the registration is dropped (deregistered) before `inner` closes.
    reg: Registration,
    inner: T,
}

impl<T: AsFd> Fd<T> {
    /// Make `inner`'s fd non-blocking and register it with the netpoller.
    pub fn new(inner: T) -> io::Result<Self> {
        let fd = inner.as_fd().as_raw_fd();
        set_nonblocking(fd)?;
        Ok(Fd {
            reg: Registration::new(fd)?,
            inner,
        })
    }

    /// Register `inner`, whose fd the caller has already made non-blocking.
    pub(crate) fn from_nonblocking(inner: T) -> io::Result<Self> {
        let fd = inner.as_fd().as_raw_fd();
        Ok(Fd {
            reg: Registration::new(fd)?,
            inner,
        })
    }

    pub(crate) fn reg(&self) -> &Registration {
        &self.reg
    }

    /// Park until the fd is readable (a level check: returns at once if it is readable now).
    pub fn readable(&self) -> io::Result<()> {
        self.reg.ready(Dir::Read)
    }

    /// Park until the fd is writable.
    pub fn writable(&self) -> io::Result<()> {
        self.reg.ready(Dir::Write)
    }

    /// Call `f` until it returns something other than `WouldBlock`, parking until the fd is
    /// readable in between. `f` must be a non-blocking operation on the inner value.
    pub fn read_with<R>(&self, mut f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.reg.op(Dir::Read, || f(&self.inner))
    }

    /// As [`Fd::read_with`], parking until the fd is writable.
    pub fn write_with<R>(&self, mut f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.reg.op(Dir::Write, || f(&self.inner))
    }

    /// The timeout of each later reading call (`None`: none). `Some(Duration::ZERO)` is an
    /// `InvalidInput` error, as in std.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.reg.set_timeout(Dir::Read, t)
    }

    /// The timeout of each later writing call.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.reg.set_timeout(Dir::Write, t)
    }

    /// The current read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.reg.timeout(Dir::Read)
    }

    /// The current write timeout.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.reg.timeout(Dir::Write)
    }

    /// Go's `SetDeadline`: both [`Fd::set_read_deadline`] and [`Fd::set_write_deadline`].
    pub fn set_deadline(&self, t: Option<Instant>) {
        self.set_read_deadline(t);
        self.set_write_deadline(t);
    }

    /// An absolute deadline for reading calls, later *and* pending ones (`None` clears it):
    /// once it has passed they give `TimedOut`; a deadline set in the past wakes a parked
    /// reader at once.
    pub fn set_read_deadline(&self, t: Option<Instant>) {
        self.reg.set_deadline(Dir::Read, t)
    }

    /// As [`Fd::set_read_deadline`], for writing calls.
    pub fn set_write_deadline(&self, t: Option<Instant>) {
        self.reg.set_deadline(Dir::Write, t)
    }

    /// The inner value.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The inner value, mutably. Do not replace its fd.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Deregister and give the inner value back (its fd stays non-blocking).
    pub fn into_inner(self) -> T {
        let Fd { reg, inner } = self;
        drop(reg);
        inner
    }
}

impl<T: AsFd + Read> Read for Fd<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (reg, inner) = (&self.reg, &mut self.inner);
        reg.op(Dir::Read, || inner.read(buf))
    }
}

impl<T: AsFd + Write> Write for Fd<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (reg, inner) = (&self.reg, &mut self.inner);
        reg.op(Dir::Write, || inner.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        let (reg, inner) = (&self.reg, &mut self.inner);
        reg.op(Dir::Write, || inner.flush())
    }
}

impl<T: AsFd> Read for &Fd<T>
where
    for<'a> &'a T: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_with(|mut t| t.read(buf))
    }
}

impl<T: AsFd> Write for &Fd<T>
where
    for<'a> &'a T: Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_with(|mut t| t.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_with(|mut t| t.flush())
    }
}

impl<T: AsFd> AsFd for Fd<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl<T: AsFd> AsRawFd for Fd<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_fd().as_raw_fd()
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for Fd<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fd").field("inner", &self.inner).finish()
    }
}
