//! A TCP echo server written the Go way: one coroutine per connection, plain blocking reads
//! and writes. Each read (into a 4 KiB buffer) is written back as it came, so the peers' echo
//! client and `nc` both see their bytes return at once.
//!
//! A coroutine parked in `read` costs no thread: the netpoller wakes it when the socket has
//! data, and the worker thread runs other connections meanwhile.
//!
//! Run: `cargo run --release --example echo_server [PORT | ADDR]` (default `127.0.0.1:7007`;
//! port `0` picks a free one). It prints `listening on ADDR`; try `nc 127.0.0.1 7007`.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use goro::net::{TcpListener, TcpStream};

const DEFAULT_ADDR: &str = "127.0.0.1:7007";
const BUF_SIZE: usize = 4096;

/// `8080` means `127.0.0.1:8080`; anything else must be a full socket address.
fn parse_addr(arg: Option<&str>) -> Result<SocketAddr, String> {
    let arg = arg.unwrap_or(DEFAULT_ADDR);
    if let Ok(port) = arg.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    arg.parse()
        .map_err(|e| format!("bad address {arg:?} ({e}); want PORT or IP:PORT"))
}

/// Echo until the peer closes or the connection fails.
fn serve(mut conn: TcpStream) {
    // Echo latency matters more than segment count here (as in Go, which sets it by default).
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// Accept forever. A failing `accept` (e.g. out of file descriptors) is reported and retried
/// after a growing pause, as Go's `net/http` does, instead of spinning.
fn accept_loop(listener: TcpListener) {
    let mut backoff = Duration::ZERO;
    loop {
        match listener.accept() {
            Ok((conn, _peer)) => {
                backoff = Duration::ZERO;
                goro::go!(move || serve(conn));
            }
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                eprintln!("echo_server: accept: {e}; retrying in {backoff:?}");
                goro::sleep(backoff);
            }
        }
    }
}

fn main() {
    let addr = match parse_addr(std::env::args().nth(1).as_deref()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("echo_server: {e}");
            std::process::exit(2);
        }
    };
    goro::run(move || {
        let listener = match TcpListener::bind(addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("echo_server: bind {addr}: {e}");
                std::process::exit(1);
            }
        };
        let local = listener
            .local_addr()
            .expect("a bound listener has an address");
        println!("listening on {local}");
        let _ = std::io::stdout().flush();
        accept_loop(listener);
    });
}
