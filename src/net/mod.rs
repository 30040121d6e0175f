//! Blocking-style networking on goro's netpoller: std::net's types and names, where a call that
//! would block parks the calling coroutine (its worker runs other coroutines meanwhile) and, on
//! a plain thread, blocks the thread. Every operation counts against the cooperative budget
//! (see [`crate::gosched`]), so one that always finds its socket ready still lets the other
//! coroutines of its worker run.
//!
//! Write a server the plain way — one coroutine per connection — and it scales as in Go:
//!
//! ```
//! use std::io::{Read, Write};
//! use goro::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! goro::go!(move || {
//!     for conn in listener.incoming() {
//!         let mut conn = conn.unwrap();
//!         goro::go!(move || {
//!             let mut buf = [0u8; 4096];
//!             loop {
//!                 match conn.read(&mut buf) {
//!                     Ok(0) | Err(_) => return,
//!                     Ok(n) => conn.write_all(&buf[..n]).unwrap(),
//!                 }
//!             }
//!         });
//!     }
//! });
//! let mut c = TcpStream::connect(addr).unwrap();
//! c.write_all(b"hello").unwrap();
//! let mut back = [0u8; 5];
//! c.read_exact(&mut back).unwrap();
//! assert_eq!(&back, b"hello");
//! ```
//!
//! Beyond std (Go's `net.Conn`): `set_deadline`, `set_read_deadline` and `set_write_deadline`
//! take an absolute `Option<Instant>` that applies to later *and* pending calls; setting one
//! in the past from another coroutine cancels a parked call at once with `TimedOut`.
//! Timeouts and deadlines give `io::ErrorKind::TimedOut` (std on Linux says `WouldBlock` for
//! its socket timeouts; goro's sockets never return `WouldBlock` from a blocking-style call).
//! Writes never raise `SIGPIPE`: a closed peer gives `BrokenPipe`. Host names are resolved on
//! the `blocking` pool ([`ToSocketAddrs`], [`lookup_host`]), so DNS never stalls a worker.
//!
//! Every type converts from and to its std counterpart (`From`, `from_std`, `into_std`) and
//! implements `AsRawFd`, `AsFd`, `IntoRawFd` and `FromRawFd`. A converted std socket is made
//! non-blocking (a flag shared with its `dup`s) and registered with the netpoller.

mod addr;
mod sys;
mod tcp;
mod udp;
mod unix;

pub use addr::{lookup_host, ToSocketAddrs};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};

pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
