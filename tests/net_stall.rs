//! The bug the netpoller exists for (own binary: it runs on one worker).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use goro::chan;
use goro::net::{TcpListener, TcpStream};

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

/// The bug this netpoller exists for: a coroutine blocked reading a socket must not stall
/// the other coroutines of its worker. On one worker, a reader parks on a silent connection;
/// 16 other coroutines must all finish while it waits.
#[test]
fn a_blocked_read_does_not_stall_its_worker() {
    within(30, || {
        goro::gomaxprocs(1);
        let (l, addr) = listener();
        let (ready_tx, ready_rx) = chan::bounded::<()>(0);
        let reader = goro::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            ready_tx.send(()).unwrap();
            let mut b = [0u8; 1];
            c.read(&mut b).unwrap()
        });
        let client = TcpStream::connect(addr).unwrap();
        ready_rx.recv().unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..16)
            .map(|_| {
                let done = done.clone();
                goro::spawn(move || {
                    goro::sleep(Duration::from_millis(1));
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 16);
        assert!(!reader.is_finished(), "the reader has nothing to read yet");
        (&client).write_all(b"x").unwrap();
        assert_eq!(reader.join().unwrap(), 1);
    });
}
