//! TCP: [`TcpListener`] and [`TcpStream`], std's names and errors on goro's netpoller.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::addr::{each_addr, ToSocketAddrs};
use super::sys::{self, deadline_methods, std_conversions};
use crate::io::{Dir, Fd};

/// Backlog of a listening socket (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// A TCP server socket (std's `TcpListener`): `accept` parks the calling coroutine until a
/// connection arrives.
///
/// ```
/// use std::io::{Read, Write};
/// use goro::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = goro::spawn(move || {
///     let (mut conn, _) = listener.accept().unwrap();
///     let mut buf = [0u8; 4];
///     conn.read_exact(&mut buf).unwrap();
///     conn.write_all(&buf).unwrap(); // echo
/// });
/// let mut c = TcpStream::connect(addr).unwrap();
/// c.write_all(b"ping").unwrap();
/// let mut back = [0u8; 4];
/// c.read_exact(&mut back).unwrap();
/// assert_eq!(&back, b"ping");
/// server.join().unwrap();
/// ```
pub struct TcpListener {
    io: Fd<std::net::TcpListener>,
}

/// An iterator over the connections of a [`TcpListener`] (`accept` in a loop; never ends).
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl TcpListener {
    /// Bind to the first of `addr`'s addresses that works (`SO_REUSEADDR` set, as std does;
    /// a backlog of up to 4096). A port in use gives `AddrInUse`.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(&addr, |a| {
            let s = Socket::new(
                Domain::for_address(a),
                Type::STREAM.nonblocking().cloexec(),
                Some(Protocol::TCP),
            )?;
            s.set_reuse_address(true)?;
            s.bind(&a.into())?;
            s.listen(BACKLOG)?;
            Ok(TcpListener {
                io: Fd::from_nonblocking(std::net::TcpListener::from(s))?,
            })
        })
    }

    /// Wait for a connection; return it and the peer's address. Errors such as `EMFILE`
    /// (out of file descriptors) are returned, never retried in a loop; the pending
    /// connection stays queued and a later `accept` takes it once fds are free again.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let fd = self.io.as_raw_fd();
        let (sock, addr) = self.io.reg().op(Dir::Read, || sys::accept(fd))?;
        crate::sched::coop_point(); // an accept loop yields now and then (`sched::coop_point`)
        let addr = addr
            .as_socket()
            .ok_or_else(|| io::Error::other("accept: not an internet address"))?;
        let s = std::net::TcpStream::from(sock);
        Ok((
            TcpStream {
                io: Fd::from_nonblocking(s)?,
            },
            addr,
        ))
    }

    /// An iterator of accepted connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Another handle to the same listener (a `dup`), registered on its own.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: Fd::from_nonblocking(self.io.get_ref().try_clone()?)?,
        })
    }

    /// Set `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Take the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Go's `SetDeadline` for `accept`: later and pending calls give `TimedOut` once `t` has
    /// passed (`None` clears it). A deadline in the past wakes a parked `accept` at once.
    pub fn set_deadline(&self, t: Option<Instant>) -> io::Result<()> {
        self.io.set_read_deadline(t);
        Ok(())
    }
}

std_conversions!(TcpListener, std::net::TcpListener);

/// A TCP connection (std's `TcpStream`): reads and writes park the calling coroutine while
/// the socket is not ready; on a plain thread they block it. `Read` and `Write` are
/// implemented for `TcpStream` and `&TcpStream`, so a reader and a writer may share one
/// stream, or use the two halves of [`TcpStream::try_clone`] on different coroutines.
pub struct TcpStream {
    io: Fd<std::net::TcpStream>,
}

impl TcpStream {
    /// Connect to the first of `addr`'s addresses that accepts (host names are resolved on
    /// the blocking pool). A closed port gives `ConnectionRefused`.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(&addr, |a| connect(a, None))
    }

    /// Connect with a timeout (`TimedOut` when it expires; a zero timeout is `InvalidInput`,
    /// as in std).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        connect(*addr, Some(Instant::now() + timeout))
    }

    /// Shut down reading, writing or both. `shutdown(Read)` wakes a parked reader, which then
    /// sees end of file (`Ok(0)`); `shutdown(Write)` sends FIN to the peer.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)?;
        self.io.reg().note_shutdown(how);
        Ok(())
    }

    /// Another handle to the same connection (a `dup`, registered on its own; it starts with
    /// this handle's timeouts, and has deadlines of its own). Dropping one handle does not
    /// close the connection while another is open.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let s = TcpStream {
            io: Fd::from_nonblocking(self.io.get_ref().try_clone()?)?,
        };
        self.io.reg().copy_timeouts_to(s.io.reg());
        Ok(s)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Set `TCP_NODELAY` (no Nagle delay for small writes).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(on)
    }

    /// `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// Set `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Take the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Read without consuming: the next `read` sees the same bytes. Parks like `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_op(|s| s.peek(buf))
    }

    deadline_methods!();

    /// A reading call: parks on `EAGAIN`; after `shutdown(Read)` it ends with `Ok(0)`.
    fn read_op(
        &self,
        mut f: impl FnMut(&std::net::TcpStream) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let d = self.io.reg().desc();
        self.io.read_with(|s| match f(s) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && d.is_shut_read() => Ok(0),
            r => r,
        })
    }
}

/// Open a non-blocking socket and connect it to `a`, waiting (until `deadline`) while the
/// handshake runs.
fn connect(a: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
    let s = Socket::new(
        Domain::for_address(a),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    let stream = TcpStream {
        io: Fd::from_nonblocking(std::net::TcpStream::from(OwnedFd::from(s)))?,
    };
    let sock = SockRef::from(stream.io.get_ref());
    match sock.connect(&a.into()) {
        Ok(()) => return Ok(stream),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    stream.io.reg().op_until(Dir::Write, deadline, || {
        if let Some(e) = sock.take_error()? {
            return Err(e);
        }
        match stream.io.get_ref().peer_addr() {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            Err(e) => Err(e),
        }
    })?;
    Ok(stream)
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_op(|mut s| s.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_op(|mut s| s.read_vectored(bufs))
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.io.as_raw_fd();
        self.io.write_with(|_| sys::send(fd, buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let fd = self.io.as_raw_fd();
        self.io.write_with(|_| sys::send_vectored(fd, bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

std_conversions!(TcpStream, std::net::TcpStream);
