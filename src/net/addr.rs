//! Address resolution that never stalls a worker: [`ToSocketAddrs`] (goro's counterpart of
//! std's trait, for the same types) and [`lookup_host`]. Literal addresses are parsed in place;
//! host names go to `getaddrinfo` on the `blocking` pool while the caller parks.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

mod sealed {
    pub trait Sealed {}
}

/// Things that name one or more socket addresses: the same types as
/// [`std::net::ToSocketAddrs`] (`SocketAddr`, `(IpAddr, u16)`, `"host:port"`, `("host",
/// port)`, `&[SocketAddr]`, ...). A host name is resolved with `getaddrinfo` on goro's
/// `blocking` pool, so DNS never stalls a worker thread.
///
/// This trait is sealed: it is implemented for those types only.
pub trait ToSocketAddrs: sealed::Sealed {
    #[doc(hidden)]
    fn to_goro_addrs(&self) -> io::Result<Vec<SocketAddr>>;
}

macro_rules! literal {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl ToSocketAddrs for $t {
            fn to_goro_addrs(&self) -> io::Result<Vec<SocketAddr>> {
                Ok(std::net::ToSocketAddrs::to_socket_addrs(self)?.collect())
            }
        }
    )*};
}
literal!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl sealed::Sealed for str {}
impl ToSocketAddrs for str {
    fn to_goro_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return Ok(vec![a]);
        }
        resolve(self.to_owned())
    }
}

impl sealed::Sealed for String {}
impl ToSocketAddrs for String {
    fn to_goro_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.as_str().to_goro_addrs()
    }
}

impl sealed::Sealed for (&str, u16) {}
impl ToSocketAddrs for (&str, u16) {
    fn to_goro_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = self.0.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.1)]);
        }
        let (host, port) = (self.0.to_owned(), self.1);
        crate::blocking(move || {
            Ok(std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))?.collect())
        })
    }
}

impl sealed::Sealed for (String, u16) {}
impl ToSocketAddrs for (String, u16) {
    fn to_goro_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (self.0.as_str(), self.1).to_goro_addrs()
    }
}

impl sealed::Sealed for [SocketAddr] {}
impl ToSocketAddrs for [SocketAddr] {
    fn to_goro_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

impl<T: ToSocketAddrs + ?Sized> sealed::Sealed for &T {}
impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn to_goro_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).to_goro_addrs()
    }
}

/// `getaddrinfo` for `"host:port"` on the blocking pool.
fn resolve(s: String) -> io::Result<Vec<SocketAddr>> {
    crate::blocking(move || Ok(std::net::ToSocketAddrs::to_socket_addrs(s.as_str())?.collect()))
}

/// Resolve `"host:port"` (or a literal `"ip:port"`) to its socket addresses, as
/// `std::net::ToSocketAddrs` does for a `&str`, but with `getaddrinfo` running on goro's
/// `blocking` pool: the calling coroutine parks, its worker keeps running others. A name that
/// does not resolve gives std's error.
///
/// ```
/// let addrs: Vec<_> = goro::net::lookup_host("localhost:80").unwrap().collect();
/// assert!(addrs.iter().all(|a| a.port() == 80 && a.ip().is_loopback()));
/// ```
pub fn lookup_host(host: &str) -> io::Result<impl Iterator<Item = SocketAddr>> {
    Ok(host.to_goro_addrs()?.into_iter())
}

/// Run `f` on each address in turn until one succeeds; the last error otherwise (std's rule).
pub(crate) fn each_addr<A: ToSocketAddrs + ?Sized, T>(
    addr: &A,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_goro_addrs()? {
        match f(a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}
