//! Criterion: one 64-byte round trip over loopback TCP between two coroutines (one writes a
//! message and waits for it to come back, the other echoes it), on 1 and 2 workers; and the
//! same exchange between two OS threads on `std::net`, the baseline a coroutine server
//! replaces. Connection setup is outside the timed part.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

const MSG: usize = 64;

/// Echo 64-byte messages until the peer closes.
fn echo_messages(mut s: impl Read + Write) {
    let mut buf = [0u8; MSG];
    while s.read_exact(&mut buf).is_ok() {
        if s.write_all(&buf).is_err() {
            return;
        }
    }
}

/// `iters` round trips from `s`; returns the time they took.
fn round_trips(mut s: impl Read + Write, iters: u64) -> Duration {
    let mut msg = [0u8; MSG];
    let mut back = [0u8; MSG];
    let t0 = Instant::now();
    for i in 0..iters {
        msg[0] = i as u8;
        s.write_all(&msg).unwrap();
        s.read_exact(&mut back).unwrap();
        assert_eq!(back[0], i as u8);
    }
    t0.elapsed()
}

/// Both ends are coroutines; the caller waits on the plain bench thread.
fn coroutines(iters: u64) -> Duration {
    goro::spawn(move || {
        let ln = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let server = goro::spawn(move || {
            let (s, _) = ln.accept().unwrap();
            s.set_nodelay(true).unwrap();
            echo_messages(s);
        });
        let c = goro::net::TcpStream::connect(addr).unwrap();
        c.set_nodelay(true).unwrap();
        let d = round_trips(&c, iters);
        drop(c);
        server.join().unwrap();
        d
    })
    .join()
    .unwrap()
}

/// Both ends are OS threads on `std::net`.
fn threads(iters: u64) -> Duration {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (s, _) = ln.accept().unwrap();
        s.set_nodelay(true).unwrap();
        echo_messages(s);
    });
    let c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let d = round_trips(&c, iters);
    drop(c);
    server.join().unwrap();
    d
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("net_pingpong");
    for workers in [1, 2] {
        goro::gomaxprocs(workers);
        g.bench_function(format!("coroutines/{workers}_workers"), |b| {
            b.iter_custom(coroutines)
        });
    }
    g.bench_function("std_threads", |b| b.iter_custom(threads));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
