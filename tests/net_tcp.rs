//! goro::net TCP: what must work (echo, clones on different workers, shutdown, peek, options,
//! conversions) and that a coroutine blocked in a read does not stall its worker.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::chan;

use goro::net::{TcpListener, TcpStream};

/// Fail the test if `f` has not finished within `secs` (a hang becomes a failure with a dump).
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

/// A connected pair over loopback: (client, server side).
fn pair() -> (TcpStream, TcpStream) {
    let (l, addr) = listener();
    let c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

fn worker_name() -> String {
    std::thread::current().name().unwrap_or("").to_string()
}

#[test]
fn reader_and_writer_coroutines_on_clone_halves_on_different_workers() {
    goro::gomaxprocs(2);
    within(120, || {
        // Placement usually splits the pair on the first attempt; on a loaded machine one
        // worker's thread can lose the CPU for a long while and run everything, so keep
        // trying for a minute rather than a fixed number of times.
        let t0 = std::time::Instant::now();
        for attempt in 0.. {
            let (c, s) = pair();
            let w = c.try_clone().unwrap();
            let (name_tx, name_rx) = chan::bounded::<String>(2);
            let (ntx, ntx2) = (name_tx.clone(), name_tx);
            let reader = goro::spawn(move || {
                ntx.send(worker_name()).unwrap();
                let mut got = Vec::new();
                let mut c = c;
                c.read_to_end(&mut got).unwrap();
                got
            });
            let writer = goro::spawn(move || {
                ntx2.send(worker_name()).unwrap();
                let mut w = w;
                for k in 0..64u8 {
                    w.write_all(&[k; 1000]).unwrap();
                }
                w.shutdown(Shutdown::Write).unwrap();
            });
            // The server echoes everything back.
            let echo = std::thread::spawn(move || {
                let mut s = s;
                let mut buf = Vec::new();
                s.read_to_end(&mut buf).unwrap();
                s.write_all(&buf).unwrap();
            });
            let names = [name_rx.recv().unwrap(), name_rx.recv().unwrap()];
            writer.join().unwrap();
            echo.join().unwrap();
            let got = reader.join().unwrap();
            let want: Vec<u8> = (0..64u8).flat_map(|k| [k; 1000]).collect();
            assert_eq!(got, want);
            if names[0] != names[1] {
                assert!(names.iter().all(|n| n.starts_with("goro-worker-")));
                return attempt;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{attempt} pairs in 60 s never landed on two different workers"
            );
        }
        unreachable!()
    });
}

#[test]
fn shutdown_read_wakes_a_parked_reader_with_eof() {
    within(30, || {
        let (c, _s) = pair();
        let c = Arc::new(c);
        let (parked_tx, parked_rx) = chan::bounded::<()>(0);
        let c2 = c.clone();
        let reader = spawn_named("shut-reader", move || {
            parked_tx.send(()).unwrap();
            let mut b = [0u8; 8];
            (&*c2).read(&mut b)
        });
        parked_rx.recv().unwrap();
        wait_parked("shut-reader");
        c.shutdown(Shutdown::Read).unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), 0);
    });
}

/// Spawn a coroutine under a name that [`wait_parked`] can look for.
fn spawn_named<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> goro::JoinHandle<T> {
    goro::Builder::new().name(name).spawn(f).unwrap()
}

/// Wait (yielding, bounded) until `runtime::dump` shows coroutine `name` parked in "IO wait".
fn wait_parked(name: &str) {
    let t = Instant::now();
    let quoted = format!("{name:?}");
    loop {
        let d = goro::runtime::dump();
        if d.lines()
            .any(|l| l.contains(&quoted) && l.contains("IO wait"))
        {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{name} never parked on I/O:\n{d}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn deadline_in_the_past_from_another_coroutine_cancels_read_write_and_accept() {
    goro::gomaxprocs(2);
    within(30, || {
        // read
        let (c, _s) = pair();
        let c = Arc::new(c);
        let c2 = c.clone();
        let reader = spawn_named("deadline-reader", move || {
            let mut b = [0u8; 8];
            (&*c2).read(&mut b)
        });
        wait_parked("deadline-reader");
        let t = Instant::now();
        let c3 = c.clone();
        goro::spawn(move || c3.set_read_deadline(Some(Instant::now() - Duration::from_secs(1))))
            .join()
            .unwrap()
            .unwrap();
        let e = reader.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(5));
        // Later reads fail too, until the deadline is cleared.
        let mut b = [0u8; 1];
        assert_eq!(
            (&*c).read(&mut b).unwrap_err().kind(),
            std::io::ErrorKind::TimedOut
        );
        c.set_read_deadline(None).unwrap();

        // write: the peer never reads, so the writer parks once the buffers are full.
        let (w, _peer) = pair();
        let w = Arc::new(w);
        let w2 = w.clone();
        let writer = spawn_named("deadline-writer", move || {
            let chunk = [7u8; 65536];
            let mut total = 0usize;
            loop {
                match (&*w2).write(&chunk) {
                    Ok(n) => total += n,
                    Err(e) => return (total, e),
                }
            }
        });
        wait_parked("deadline-writer");
        w.set_write_deadline(Some(Instant::now())).unwrap();
        let (total, e) = writer.join().unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(total > 0);

        // accept
        let (l, _addr) = listener();
        let l = Arc::new(l);
        let l2 = l.clone();
        let acceptor = spawn_named("deadline-acceptor", move || l2.accept().map(|_| ()));
        wait_parked("deadline-acceptor");
        l.set_deadline(Some(Instant::now() - Duration::from_millis(1)))
            .unwrap();
        assert_eq!(
            acceptor.join().unwrap().unwrap_err().kind(),
            std::io::ErrorKind::TimedOut
        );
    });
}

#[test]
fn read_timeouts_follow_std() {
    within(30, || {
        let (c, mut s) = pair();
        assert_eq!(
            c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        assert_eq!(
            c.set_write_timeout(Some(Duration::ZERO))
                .unwrap_err()
                .kind(),
            std::io::ErrorKind::InvalidInput
        );
        assert_eq!(c.read_timeout().unwrap(), None);
        c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(50)));
        let h = goro::spawn(move || {
            let t = Instant::now();
            let mut b = [0u8; 4];
            let e = (&c).read(&mut b).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
            assert!(t.elapsed() >= Duration::from_millis(50));
            // The timeout is per operation: data that arrives in time is read.
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut c = c;
            c.read_exact(&mut b).unwrap();
            b
        });
        // Time is the feature: write after the first read has timed out.
        goro::sleep(Duration::from_millis(120));
        s.write_all(b"late").unwrap();
        assert_eq!(&h.join().unwrap(), b"late");
    });
}

#[test]
fn plain_thread_callers_honour_timeouts_and_deadlines() {
    within(30, || {
        let (c, mut s) = pair();
        // Timeout on a plain thread.
        c.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        let t = Instant::now();
        let mut b = [0u8; 4];
        assert_eq!(
            (&c).read(&mut b).unwrap_err().kind(),
            std::io::ErrorKind::TimedOut
        );
        assert!(t.elapsed() >= Duration::from_millis(30));
        c.set_read_timeout(None).unwrap();
        // A deadline set by a coroutine wakes a thread parked in read.
        let c = Arc::new(c);
        let c2 = c.clone();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let th = std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            let mut b = [0u8; 4];
            (&*c2).read(&mut b)
        });
        started_rx.recv().unwrap();
        // Data written by a coroutine reaches the thread first.
        let _s = goro::spawn(move || {
            s.write_all(b"abcd").unwrap();
            s // kept open: a closed peer would make the next read see end of file
        })
        .join()
        .unwrap();
        assert_eq!(th.join().unwrap().unwrap(), 4);
        let c2 = c.clone();
        let th = std::thread::spawn(move || {
            let mut b = [0u8; 4];
            (&*c2).read(&mut b)
        });
        goro::spawn(move || {
            goro::sleep(Duration::from_millis(20));
            c.set_deadline(Some(Instant::now())).unwrap();
        })
        .join()
        .unwrap();
        assert_eq!(
            th.join().unwrap().unwrap_err().kind(),
            std::io::ErrorKind::TimedOut
        );
    });
}

#[test]
fn peek_options_and_conversions() {
    within(30, || {
        let (c, mut s) = pair();
        s.write_all(b"hello").unwrap();
        let mut b = [0u8; 5];
        let n = c.peek(&mut b).unwrap();
        assert!(n > 0 && b[..n] == b"hello"[..n]);
        let mut c = c;
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello");
        c.set_ttl(42).unwrap();
        assert_eq!(c.ttl().unwrap(), 42);
        assert!(c.take_error().unwrap().is_none());
        assert_eq!(c.peer_addr().unwrap(), s.local_addr().unwrap());
        // into_std and back keeps the connection.
        let std_c = c.into_std();
        let mut c = TcpStream::from(std_c);
        s.write_all(b"again").unwrap();
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"again");
        use std::os::fd::{FromRawFd, IntoRawFd};
        let fd = c.into_raw_fd();
        // SAFETY: `fd` came from `into_raw_fd` just above and is owned by nobody else.
        let mut c = unsafe { TcpStream::from_raw_fd(fd) };
        s.write_all(b"third").unwrap();
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"third");
        // Reading into an empty buffer returns at once.
        assert_eq!(c.read(&mut []).unwrap(), 0);
    });
}

#[test]
fn bad_input_and_faults_give_std_error_kinds() {
    use std::io::ErrorKind::*;
    within(60, || {
        // Connection refused: a port nobody listens on.
        let port = {
            let (l, a) = listener();
            drop(l);
            a.port()
        };
        let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(e.kind(), ConnectionRefused, "{e}");
        let e = goro::spawn(move || TcpStream::connect(("127.0.0.1", port)).unwrap_err())
            .join()
            .unwrap();
        assert_eq!(e.kind(), ConnectionRefused, "{e}");
        // Address in use.
        let (_l, a) = listener();
        assert_eq!(TcpListener::bind(a).unwrap_err().kind(), AddrInUse);
        // Invalid addresses.
        assert_eq!(
            TcpStream::connect("127.0.0.1").unwrap_err().kind(),
            InvalidInput
        );
        assert_eq!(
            TcpStream::connect_timeout(&a, Duration::ZERO)
                .unwrap_err()
                .kind(),
            InvalidInput
        );
        let empty: &[std::net::SocketAddr] = &[];
        assert_eq!(TcpStream::connect(empty).unwrap_err().kind(), InvalidInput);
        // A host name that does not resolve (RFC 2606 reserves .invalid), from a coroutine.
        let r = goro::spawn(|| TcpStream::connect("no-such-host.invalid:80").map(|_| ()))
            .join()
            .unwrap();
        assert!(r.is_err());
        assert!(goro::net::lookup_host("no-such-host.invalid:80").is_err());
        // Reset by peer: the peer closes with unread data pending (RST).
        let (c, s) = pair();
        (&c).write_all(b"unread").unwrap();
        let mut s2 = s;
        let mut one = [0u8; 1];
        s2.read_exact(&mut one).unwrap(); // the data is there; leave 5 bytes unread
        drop(s2);
        let mut b = [0u8; 16];
        let mut c = c;
        let e = loop {
            match c.read(&mut b) {
                Ok(0) => break None,
                Ok(_) => continue,
                Err(e) => break Some(e),
            }
        };
        assert_eq!(e.map(|e| e.kind()), Some(ConnectionReset));
        // Broken pipe (no SIGPIPE death): keep writing to a closed peer.
        let (c, s) = pair();
        drop(s);
        let e = goro::spawn(move || {
            let mut c = c;
            loop {
                if let Err(e) = c.write(&[1u8; 4096]) {
                    return e;
                }
            }
        })
        .join()
        .unwrap();
        assert!(matches!(e.kind(), BrokenPipe | ConnectionReset), "{e}");
    });
}

/// A peer that never reads: writes park, a write timeout fires, and exactly the bytes the
/// writer was told were written arrive once the peer reads.
#[test]
fn a_peer_that_never_reads_parks_writes_until_the_deadline_and_loses_nothing() {
    within(60, || {
        let (w, mut peer) = pair();
        w.set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let writer = goro::spawn(move || {
            let mut total = 0u64;
            let mut k = 0u8;
            loop {
                let chunk: Vec<u8> = (0..10_000).map(|i| k.wrapping_add(i as u8)).collect();
                match (&w).write(&chunk) {
                    Ok(n) => {
                        total += n as u64;
                        k = k.wrapping_add(n as u8);
                    }
                    Err(e) => {
                        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
                        return (total, w);
                    }
                }
            }
        });
        let (total, w) = writer.join().unwrap();
        drop(w);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert_eq!(got.len() as u64, total);
        let mut k = 0u8;
        for (i, b) in got.iter().enumerate() {
            assert_eq!(*b, k, "byte {i}");
            k = k.wrapping_add(1);
        }
    });
}

#[test]
fn dropping_a_stream_leaves_a_reader_parked_on_its_clone_working() {
    goro::gomaxprocs(2);
    within(30, || {
        let (c, mut s) = pair();
        let clone = c.try_clone().unwrap();
        let reader = spawn_named("clone-reader", move || {
            let mut clone = clone;
            let mut got = Vec::new();
            clone.read_to_end(&mut got).unwrap();
            got
        });
        wait_parked("clone-reader");
        drop(c); // the clone still holds the connection
        s.write_all(b"still here").unwrap();
        drop(s);
        assert_eq!(reader.join().unwrap(), b"still here");
    });
}

#[test]
fn dump_names_the_io_wait() {
    within(30, || {
        let (c, _s) = pair();
        use std::os::fd::AsRawFd;
        let fd = c.as_raw_fd();
        let c = Arc::new(c);
        let c2 = c.clone();
        let reader = goro::Builder::new()
            .name("io-dump-reader")
            .spawn(move || {
                let mut b = [0u8; 1];
                (&*c2).read(&mut b)
            })
            .unwrap();
        let want = format!("IO wait (read, fd {fd}, ");
        let t = Instant::now();
        loop {
            let d = goro::runtime::dump();
            if d.lines()
                .any(|l| l.contains("io-dump-reader") && l.contains(&want))
            {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "dump never showed {want:?}:\n{d}"
            );
            std::thread::yield_now();
        }
        c.set_read_deadline(Some(Instant::now())).unwrap();
        assert!(reader.join().unwrap().is_err());
    });
}

#[test]
fn connect_timeout_expires_when_nobody_completes_the_handshake() {
    within(30, || {
        // A listener with a full accept queue drops further SYNs: connects then hang.
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
        sock.listen(0).unwrap();
        let addr = sock.local_addr().unwrap().as_socket().unwrap();
        let mut held = Vec::new();
        for _ in 0..16 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => held.push(s),
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                    return;
                }
            }
        }
        panic!("16 connects to a listener with a full queue all succeeded");
    });
}
