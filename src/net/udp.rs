//! UDP: [`UdpSocket`], std's names and errors on goro's netpoller.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::addr::ToSocketAddrs;
use super::sys::{deadline_methods, std_conversions};
use crate::io::Fd;

/// A UDP socket (std's `UdpSocket`): receiving and sending park the calling coroutine while
/// the socket is not ready.
///
/// ```
/// use goro::net::UdpSocket;
///
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let to = a.local_addr().unwrap();
/// let h = goro::spawn(move || {
///     let mut buf = [0u8; 16];
///     let (n, _from) = a.recv_from(&mut buf).unwrap(); // parks until the datagram arrives
///     buf[..n].to_vec()
/// });
/// b.send_to(b"hi", to).unwrap();
/// assert_eq!(h.join().unwrap(), b"hi");
/// ```
pub struct UdpSocket {
    io: Fd<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Bind to the first of `addr`'s addresses that works.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let addrs = addr.to_goro_addrs()?;
        UdpSocket::from_std(std::net::UdpSocket::bind(&addrs[..])?)
    }

    /// Receive one datagram and its sender's address (a datagram longer than `buf` is cut).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.recv_from(buf))
    }

    /// As [`UdpSocket::recv_from`], leaving the datagram queued.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.peek_from(buf))
    }

    /// Send one datagram to the first of `addr`'s addresses (std's rule).
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = addr.to_goro_addrs()?.into_iter().next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.io.write_with(|s| s.send_to(buf, to))
    }

    /// Set the default peer (and filter received datagrams to it).
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let addrs = addr.to_goro_addrs()?;
        self.io.get_ref().connect(&addrs[..])
    }

    /// Send to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_with(|s| s.send(buf))
    }

    /// Receive from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.recv(buf))
    }

    /// As [`UdpSocket::recv`], leaving the datagram queued.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.peek(buf))
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// This socket's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Another handle to the same socket (a `dup`, registered on its own, with this handle's
    /// timeouts and deadlines of its own).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let s = UdpSocket {
            io: Fd::from_nonblocking(self.io.get_ref().try_clone()?)?,
        };
        self.io.reg().copy_timeouts_to(s.io.reg());
        Ok(s)
    }

    /// Set `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }

    /// `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get_ref().broadcast()
    }

    /// Set `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Set `IP_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_multicast_loop_v4(on)
    }

    /// Set `IP_MULTICAST_TTL`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_multicast_ttl_v4(ttl)
    }

    /// Join an IPv4 multicast group.
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, iface: &Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().join_multicast_v4(group, iface)
    }

    /// Leave an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, iface: &Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v4(group, iface)
    }

    /// Join an IPv6 multicast group.
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, iface: u32) -> io::Result<()> {
        self.io.get_ref().join_multicast_v6(group, iface)
    }

    /// Leave an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, iface: u32) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v6(group, iface)
    }

    /// Take the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    deadline_methods!();
}

std_conversions!(UdpSocket, std::net::UdpSocket);
