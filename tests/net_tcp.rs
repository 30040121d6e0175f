//! goro::net TCP: what must work (echo, clones on different workers, shutdown, peek, options,
//! conversions) and that a coroutine blocked in a read does not stall its worker.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use goro::net::{TcpListener, TcpStream};

/// Fail the test if `f` has not finished within `secs` (a hang becomes a failure with a dump).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs} s\n{}", goro::runtime::dump()),
    }
}

fn listener() -> (TcpListener, std::net::SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

#[test]
fn echo_between_coroutines_and_threads() {
    goro::gomaxprocs(2);
    within(30, || {
        let (l, addr) = listener();
        let server = goro::spawn(move || {
            for _ in 0..20 {
                let (mut c, peer) = l.accept().unwrap();
                assert!(peer.ip().is_loopback());
                goro::go!(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match c.read(&mut buf) {
                            Ok(0) => return,
                            Ok(n) => c.write_all(&buf[..n]).unwrap(),
                            Err(e) => panic!("server read: {e}"),
                        }
                    }
                });
            }
        });
        let clients: Vec<_> = (0..20u8)
            .map(|i| {
                let run = move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    c.set_nodelay(true).unwrap();
                    assert!(c.nodelay().unwrap());
                    let msg: Vec<u8> = (0..100_000u32).map(|k| (k as u8) ^ i).collect();
                    let w = c.try_clone().unwrap();
                    let m2 = msg.clone();
                    let writer = std::thread::spawn(move || {
                        let mut w = w;
                        w.write_all(&m2).unwrap();
                        w.shutdown(Shutdown::Write).unwrap();
                    });
                    let mut got = Vec::new();
                    c.read_to_end(&mut got).unwrap();
                    writer.join().unwrap();
                    assert_eq!(got, msg);
                };
                if i % 2 == 0 {
                    std::thread::spawn(run).join().map_err(|_| ()).unwrap();
                    None
                } else {
                    Some(goro::spawn(run))
                }
            })
            .collect();
        for c in clients.into_iter().flatten() {
            c.join().unwrap();
        }
        server.join().unwrap();
    });
}
