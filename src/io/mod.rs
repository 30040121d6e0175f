//! I/O readiness: park a coroutine until a file descriptor is ready (Go's netpoller, exposed).
//!
//! [`Fd`] wraps any pollable fd the caller owns (pipes, stdin, eventfd, pidfd, sockets made by
//! other crates) and turns its non-blocking operations into blocking-style ones that park the
//! calling coroutine — its worker runs other coroutines meanwhile — or block a plain thread.
//! `goro::net` is built on the same machinery. [`copy`] moves bytes between two such ends.
//! Every operation counts against the cooperative budget (see [`crate::gosched`]).
//!
//! Layers (data flows downwards, no module imports one above it): `fd.rs` (the public wrapper
//! and the crate-internal `Registration`) → `wait.rs` (the try/park/retry loop, coroutines and
//! plain threads) → `poll.rs` (the epoll instance that the scheduler drives through
//! `sched::poller`; its module docs hold the design) → `desc.rs` (per-fd poll descriptors) →
//! `thread_signal.rs` (a plain thread's eventfd wake-up line).

mod desc;
mod fd;
mod poll;
mod thread_signal;
mod wait;

pub(crate) use desc::Dir;
pub use fd::Fd;

use std::io::{self, Read, Write};

/// Copy everything from `reader` to `writer` until end of file; return the number of bytes
/// copied. Both ends may be goro I/O types ([`Fd`], `goro::net` streams): each read and each
/// write parks the calling coroutine while that end is not ready. Interrupted calls are
/// retried; any other error ends the copy (bytes already written stay written and are
/// counted only through the error-free calls before it).
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
///
/// let (mut a, b) = UnixStream::pair().unwrap();
/// let h = goro::spawn(move || {
///     let mut r = goro::io::Fd::new(b).unwrap();
///     let mut out = Vec::new();
///     goro::io::copy(&mut r, &mut out).unwrap()
/// });
/// a.write_all(&[7u8; 100_000]).unwrap();
/// drop(a);
/// assert_eq!(h.join().unwrap(), 100_000);
/// ```
pub fn copy<R, W>(reader: &mut R, writer: &mut W) -> io::Result<u64>
where
    R: Read + ?Sized,
    W: Write + ?Sized,
{
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&buf[..n])?;
        total += n as u64;
    }
}
