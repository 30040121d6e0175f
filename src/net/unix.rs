//! Unix domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`], with the names of
//! `std::os::unix::net`, on goro's netpoller.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{self as unet, SocketAddr};
use std::path::Path;
use std::time::Duration;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use super::sys::{self, deadline_methods, std_conversions};
use crate::io::Fd;

/// A Unix stream server socket (std's `UnixListener`): `accept` parks until a client connects.
///
/// ```
/// use std::io::{Read, Write};
/// use goro::net::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("goro-doc-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let l = UnixListener::bind(&path).unwrap();
/// let p = path.clone();
/// let h = goro::spawn(move || {
///     let mut c = UnixStream::connect(&p).unwrap();
///     c.write_all(b"hi").unwrap();
/// });
/// let (mut s, _) = l.accept().unwrap();
/// let mut buf = String::new();
/// s.read_to_string(&mut buf).unwrap();
/// assert_eq!(buf, "hi");
/// h.join().unwrap();
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    io: Fd<unet::UnixListener>,
}

/// An iterator over the connections of a [`UnixListener`] (never ends).
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl UnixListener {
    /// Bind to the filesystem path `path` (which must not exist: `AddrInUse` otherwise).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::from_std(unet::UnixListener::bind(path)?)
    }

    /// Wait for a connection; return it and the peer's address.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.io.read_with(|l| l.accept())?;
        crate::sched::coop_point(); // an accept loop yields now and then (`sched::coop_point`)
        s.set_nonblocking(true)?;
        Ok((
            UnixStream {
                io: Fd::from_nonblocking(s)?,
            },
            a,
        ))
    }

    /// An iterator of accepted connections.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Another handle to the same listener (a `dup`, registered on its own).
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: Fd::from_nonblocking(self.io.get_ref().try_clone()?)?,
        })
    }

    /// Take the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Go's `SetDeadline` for `accept` (see `TcpListener::set_deadline`).
    pub fn set_deadline(&self, t: Option<std::time::Instant>) -> io::Result<()> {
        self.io.set_read_deadline(t);
        Ok(())
    }
}

std_conversions!(UnixListener, unet::UnixListener);

/// A Unix stream socket (std's `UnixStream`); `Read`/`Write` on `UnixStream` and
/// `&UnixStream` park while the socket is not ready. Writes never raise `SIGPIPE`.
pub struct UnixStream {
    io: Fd<unet::UnixStream>,
}

impl UnixStream {
    /// Connect to the socket at `path`. While the listener's backlog is full the call retries
    /// (parking between attempts) as a blocking `connect` would wait.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let addr = SockAddr::unix(path)?;
        let s = Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
        let stream = UnixStream {
            io: Fd::from_nonblocking(unet::UnixStream::from(OwnedFd::from(s)))?,
        };
        let sock = SockRef::from(stream.io.get_ref());
        let mut pause = Duration::from_millis(1);
        loop {
            match sock.connect(&addr) {
                Ok(()) => return Ok(stream),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    // Backlog full: the kernel offers no readiness edge for this; back off.
                    crate::time::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// A connected pair of sockets.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = unet::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Shut down reading, writing or both (`shutdown(Read)` wakes a parked reader with
    /// `Ok(0)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)?;
        self.io.reg().note_shutdown(how);
        Ok(())
    }

    /// Another handle to the same connection (a `dup`, registered on its own, starting with
    /// this handle's timeouts).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let s = UnixStream {
            io: Fd::from_nonblocking(self.io.get_ref().try_clone()?)?,
        };
        self.io.reg().copy_timeouts_to(s.io.reg());
        Ok(s)
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Take the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    deadline_methods!();

    fn read_op(
        &self,
        mut f: impl FnMut(&unet::UnixStream) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let d = self.io.reg().desc();
        self.io.read_with(|s| match f(s) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && d.is_shut_read() => Ok(0),
            r => r,
        })
    }
}

impl Read for &UnixStream {
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

impl Write for &UnixStream {
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

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for UnixStream {
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

std_conversions!(UnixStream, unet::UnixStream);

/// A Unix datagram socket (std's `UnixDatagram`); receiving and sending park while the socket
/// is not ready.
pub struct UnixDatagram {
    io: Fd<unet::UnixDatagram>,
}

impl UnixDatagram {
    /// Bind to the filesystem path `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(unet::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(unet::UnixDatagram::unbound()?)
    }

    /// A connected pair of sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = unet::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Set the default peer.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.io.get_ref().connect(path)
    }

    /// Send one datagram to `path`.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.io.write_with(|s| s.send_to(buf, path))
    }

    /// Receive one datagram and its sender's address.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.recv_from(buf))
    }

    /// Send to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_with(|s| s.send(buf))
    }

    /// Receive from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let d = self.io.reg().desc();
        self.io.read_with(|s| match s.recv(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && d.is_shut_read() => Ok(0),
            r => r,
        })
    }

    /// Shut down reading, writing or both (a parked `recv` then returns `Ok(0)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)?;
        self.io.reg().note_shutdown(how);
        Ok(())
    }

    /// This socket's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Another handle to the same socket (a `dup`, registered on its own).
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        let s = UnixDatagram {
            io: Fd::from_nonblocking(self.io.get_ref().try_clone()?)?,
        };
        self.io.reg().copy_timeouts_to(s.io.reg());
        Ok(s)
    }

    /// Take the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    deadline_methods!();
}

std_conversions!(UnixDatagram, unet::UnixDatagram);
