//! goro::net UDP and Unix-domain sockets: parking receive/send/accept, timeouts, deadlines,
//! shutdown, conversions and std's error kinds.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::net::{UdpSocket, UnixDatagram, UnixListener, UnixStream};

fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(t.join().unwrap_err())
        }
        Err(_) => panic!("timed out after {secs} s\n{}", goro::runtime::dump()),
    }
}

fn temp_path(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("goro-test-{}-{tag}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn udp_round_trips_between_coroutines() {
    goro::gomaxprocs(2);
    within(30, || {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let h = goro::spawn(move || {
            let mut buf = [0u8; 1500];
            for _ in 0..100 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                server.send_to(&buf[..n], from).unwrap();
            }
        });
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.connect(addr).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for i in 0..100u32 {
            c.send(&i.to_le_bytes()).unwrap();
            let mut b = [0u8; 8];
            let n = c.peek(&mut b).unwrap();
            assert_eq!(n, 4);
            let n = c.recv(&mut b).unwrap();
            assert_eq!(&b[..n], &i.to_le_bytes());
        }
        h.join().unwrap();
        // Options and errors.
        c.set_broadcast(true).unwrap();
        assert!(c.broadcast().unwrap());
        c.set_ttl(9).unwrap();
        assert_eq!(c.ttl().unwrap(), 9);
        let empty: &[std::net::SocketAddr] = &[];
        assert_eq!(
            c.send_to(b"x", empty).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        assert_eq!(
            UdpSocket::bind(c.local_addr().unwrap()).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
    });
}

#[test]
fn udp_recv_times_out_and_a_deadline_cancels_it() {
    within(30, || {
        let s = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        let t = Instant::now();
        let e = s.recv_from(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(30));
        s.set_read_timeout(None).unwrap();
        let s2 = s.clone();
        let (tx, rx) = goro::chan::bounded::<()>(0);
        let h = goro::spawn(move || {
            tx.send(()).unwrap();
            s2.recv_from(&mut [0u8; 8]).map(|_| ())
        });
        rx.recv().unwrap();
        s.set_deadline(Some(Instant::now())).unwrap();
        assert_eq!(
            h.join().unwrap().unwrap_err().kind(),
            std::io::ErrorKind::TimedOut
        );
    });
}

#[test]
fn unix_stream_echo_shutdown_and_clones() {
    goro::gomaxprocs(2);
    within(30, || {
        let path = temp_path("stream");
        let l = UnixListener::bind(&path).unwrap();
        assert_eq!(
            UnixListener::bind(&path).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
        let server = goro::spawn(move || {
            for c in l.incoming().take(10) {
                let mut c = c.unwrap();
                goro::go!(move || {
                    let mut buf = Vec::new();
                    c.read_to_end(&mut buf).unwrap();
                    c.write_all(&buf).unwrap();
                });
            }
        });
        let clients: Vec<_> = (0..10u8)
            .map(|i| {
                let path = path.clone();
                goro::spawn(move || {
                    let c = UnixStream::connect(&path).unwrap();
                    let mut w = c.try_clone().unwrap();
                    let msg = vec![i; 50_000];
                    let m2 = msg.clone();
                    let writer = goro::spawn(move || {
                        w.write_all(&m2).unwrap();
                        w.shutdown(Shutdown::Write).unwrap();
                    });
                    let mut got = Vec::new();
                    let mut c = c;
                    c.read_to_end(&mut got).unwrap();
                    writer.join().unwrap();
                    assert_eq!(got, msg);
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        server.join().unwrap();
        let _ = std::fs::remove_file(&path);
        // A connect to a path nobody listens on.
        let e = UnixStream::connect(temp_path("nobody")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        // shutdown(Read) wakes a parked reader with Ok(0).
        let (a, _b) = UnixStream::pair().unwrap();
        let a = Arc::new(a);
        let a2 = a.clone();
        let (tx, rx) = goro::chan::bounded::<()>(0);
        let reader = goro::spawn(move || {
            tx.send(()).unwrap();
            (&*a2).read(&mut [0u8; 4])
        });
        rx.recv().unwrap();
        a.shutdown(Shutdown::Read).unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), 0);
    });
}

#[test]
fn unix_datagrams() {
    within(30, || {
        let (a, b) = UnixDatagram::pair().unwrap();
        let h = goro::spawn(move || {
            let mut buf = [0u8; 16];
            let n = b.recv(&mut buf).unwrap();
            b.send(&buf[..n]).unwrap();
        });
        a.send(b"dgram").unwrap();
        let mut buf = [0u8; 16];
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"dgram");
        h.join().unwrap();
        let path = temp_path("dgram");
        let server = UnixDatagram::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"to path", &path).unwrap();
        let (n, _from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"to path");
        server
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        assert_eq!(
            server.recv_from(&mut buf).unwrap_err().kind(),
            std::io::ErrorKind::TimedOut
        );
        let _ = std::fs::remove_file(&path);
    });
}

/// A deadline set while the reader is between its syscall and its park must still wake it:
/// thousands of rounds in which a reader coroutine starts a `recv_from` on an idle socket and
/// a plain thread, spinning on the reader's "about to read" flag, sets the deadline to now a
/// random few hundred nanoseconds later. A lost wake-up leaves a reader parked for good: each
/// round must end within 10 s. Hung within ~500 rounds before a deadline change counted as an
/// edge. (A second race, a reader preempted between reading the deadline and reading the
/// counter, hung two loaded suite runs in five until `wait::op` read the counter first; it
/// needs a preemption between two adjacent loads and does not show here.)
#[test]
fn a_deadline_racing_the_readers_park_always_wakes_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    goro::gomaxprocs(2);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..5_000u32 {
        let s = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let go = Arc::new(AtomicBool::new(false));
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let spins = rng % 3_000;
        let setter = {
            let (s, go) = (s.clone(), go.clone());
            std::thread::spawn(move || {
                while !go.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                for _ in 0..spins {
                    std::hint::spin_loop();
                }
                s.set_read_deadline(Some(Instant::now())).unwrap();
            })
        };
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        goro::go!(move || {
            go.store(true, Ordering::Release);
            let _ = done_tx.send(s.recv_from(&mut [0u8; 8]).map(|_| ()));
        });
        match done_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(r) => assert_eq!(
                r.unwrap_err().kind(),
                std::io::ErrorKind::TimedOut,
                "round {round}"
            ),
            Err(_) => panic!(
                "round {round}: the reader is still parked 10 s after its deadline\n{}",
                goro::runtime::dump()
            ),
        }
        setter.join().unwrap();
    }
}
