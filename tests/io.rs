//! goro::io: Fd on pipes and eventfds (readable, writable, read_with/write_with, Read/Write,
//! deadlines), io::copy parking on both ends, and clear errors for fds that cannot be polled.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::io::Fd;

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

/// A pipe as (reader, writer) `File`s.
fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new fds into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are fresh and owned by nobody else.
    unsafe {
        (
            std::fs::File::from(OwnedFd::from_raw_fd(fds[0])),
            std::fs::File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    }
}

#[test]
fn pipe_reads_park_and_copy_moves_every_byte() {
    goro::gomaxprocs(2);
    within(60, || {
        let (r1, w1) = pipe();
        let (r2, w2) = pipe();
        // producer -> pipe1 -> copier -> pipe2 -> consumer, all coroutines.
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let d2 = data.clone();
        let producer = goro::spawn(move || {
            let mut w = Fd::new(w1).unwrap();
            w.write_all(&d2).unwrap();
        });
        let copier = goro::spawn(move || {
            let mut r = Fd::new(r1).unwrap();
            let mut w = Fd::new(w2).unwrap();
            goro::io::copy(&mut r, &mut w).unwrap()
        });
        let consumer = goro::spawn(move || {
            let mut r = Fd::new(r2).unwrap();
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            got
        });
        producer.join().unwrap();
        assert_eq!(copier.join().unwrap(), data.len() as u64);
        assert_eq!(consumer.join().unwrap(), data);
    });
}

#[test]
fn readable_writable_and_read_with_on_an_eventfd() {
    within(30, || {
        // SAFETY: eventfd(2) returns a fresh fd that we own at once.
        let efd = unsafe { OwnedFd::from_raw_fd(libc::eventfd(0, libc::EFD_CLOEXEC)) };
        let fd = Arc::new(Fd::new(efd).unwrap());
        fd.writable().unwrap();
        let f2 = fd.clone();
        let waiter = goro::spawn(move || {
            f2.readable().unwrap();
            f2.read_with(|e| {
                let mut v = 0u64;
                // SAFETY: 8 bytes into a u64 from a valid eventfd.
                let n = unsafe { libc::read(e.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(v)
                }
            })
            .unwrap()
        });
        let add = 5u64;
        fd.write_with(|e| {
            // SAFETY: 8 bytes from a u64 to a valid eventfd.
            let n = unsafe { libc::write(e.as_raw_fd(), (&add as *const u64).cast(), 8) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(waiter.join().unwrap(), 5);
    });
}

#[test]
fn deadlines_and_timeouts_on_a_pipe() {
    within(30, || {
        let (r, w) = pipe();
        let r = Arc::new(Fd::new(r).unwrap());
        assert_eq!(
            r.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        r.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        assert_eq!(r.read_timeout(), Some(Duration::from_millis(30)));
        let r2 = r.clone();
        let t = Instant::now();
        let e = goro::spawn(move || (&*r2).read(&mut [0u8; 4]).unwrap_err())
            .join()
            .unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(30));
        r.set_read_timeout(None).unwrap();
        // A past deadline from another coroutine wakes a parked reader.
        let r2 = r.clone();
        let (tx, rx) = goro::chan::bounded::<()>(0);
        let reader = goro::Builder::new()
            .name("pipe-reader")
            .spawn(move || {
                tx.send(()).unwrap();
                (&*r2).read(&mut [0u8; 4])
            })
            .unwrap();
        rx.recv().unwrap();
        let t = Instant::now();
        while !goro::runtime::dump()
            .lines()
            .any(|l| l.contains("\"pipe-reader\" [IO wait (read"))
        {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the reader never parked"
            );
            std::thread::yield_now();
        }
        r.set_read_deadline(Some(Instant::now()));
        assert_eq!(
            reader.join().unwrap().unwrap_err().kind(),
            std::io::ErrorKind::TimedOut
        );
        // Cleared, reads work again and see the data.
        r.set_read_deadline(None);
        let mut w = Fd::new(w).unwrap();
        w.write_all(b"ok").unwrap();
        let mut b = [0u8; 2];
        (&*r).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ok");
        // A writer to a pipe with no reader gets BrokenPipe (no SIGPIPE death).
        drop(r);
        let e = w.write(b"x").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
        let inner: std::fs::File = w.into_inner();
        drop(inner);
    });
}

#[test]
fn a_regular_file_is_refused_with_a_clear_error() {
    let f = std::fs::File::open("Cargo.toml").unwrap();
    let e = Fd::new(f).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("blocking"), "{e}");
}
