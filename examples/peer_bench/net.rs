//! Network workloads: the echo server behind W11 `echo` and W12 `conns` (the runner's Go
//! client drives both; the server is the same, as in every peer).

use goro::net::{TcpListener, TcpStream};
use std::io::{Read, Write};

/// Each connection's read buffer, as in every peer.
const ECHO_BUF: usize = 4096;

/// Run `workload` if it belongs to this file.
pub fn dispatch(workload: &str) -> bool {
    match workload {
        "echo" => echo(),
        _ => return false,
    }
    true
}

/// Serve one connection: echo what each read returns until the peer closes.
fn serve(mut conn: TcpStream) {
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// W11/W12 server: print `LISTEN <port>`, then one coroutine per connection until killed.
fn echo() {
    let ln = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = ln.local_addr().expect("local_addr").port();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "LISTEN {port}").expect("stdout");
        out.flush().expect("stdout");
    }
    loop {
        // Go's server retries a failed accept at once; so does this one.
        let Ok((conn, _)) = ln.accept() else { continue };
        // Go turns TCP_NODELAY on for every TCP connection; match it.
        let _ = conn.set_nodelay(true);
        goro::go!(move || serve(conn));
    }
}
