//! The netpoller inside the runtime, checked in a child process (fd limits are per process):
//! `accept` under `EMFILE` returns the error and recovers once fds are free. The deadlock
//! detector's I/O cases (a coroutine parked on I/O is no deadlock; an idle registered socket
//! hides none) are in `tests/deadlock.rs`, whose children have no libtest threads.

use std::process::Command;
use std::time::Duration;

fn child(test_name: &str, envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env("GORO_TEST_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let c = cmd.spawn().expect("spawn child");
    let pid = c.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.expect("child output"),
        Err(_) => {
            // SAFETY: plain kill(2) of our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("child {test_name} still running after 60 s");
        }
    }
}

fn is_child() -> bool {
    std::env::var_os("GORO_TEST_CHILD").is_some()
}

fn open_fds() -> Vec<i32> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

#[test]
fn child_accept_under_emfile() {
    if !is_child() {
        return;
    }
    let l = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // Two connections wait in the backlog (std clients: the kernel completes the handshake).
    let _c1 = std::net::TcpStream::connect(addr).unwrap();
    let _c2 = std::net::TcpStream::connect(addr).unwrap();
    goro::run(move || {
        // Exhaust the fd table: open a few fillers first (each round frees one; the gaps
        // below the highest fd may be a single one, the directory `open_fds` itself read),
        // lower the limit to just above the highest fd, then fill the gaps.
        let mut fillers: Vec<std::fs::File> = (0..4)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let max = open_fds().into_iter().max().unwrap();
        let lim = libc::rlimit {
            rlim_cur: (max + 1) as libc::rlim_t,
            rlim_max: 20_000,
        };
        // SAFETY: setrlimit with a valid struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => fillers.push(f),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
                    break;
                }
            }
        }
        for round in 0..2 {
            let t = std::time::Instant::now();
            let e = l.accept().map(|_| ()).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "round {round}: {e}");
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "accept spun on EMFILE"
            );
            // Free one fd: the queued connection can be accepted now. Another thread of the
            // process (the test harness's, the C library's) may take a freed slot first, so
            // free more while accept still reports EMFILE, and say which fds were taken.
            let mut freed = 0;
            let (s, peer) = loop {
                assert!(
                    fillers.pop().is_some(),
                    "round {round}: no filler left to free"
                );
                freed += 1;
                match l.accept() {
                    Ok(r) => break r,
                    Err(e) if e.raw_os_error() == Some(libc::EMFILE) && freed < 16 => {}
                    Err(e) => panic!("round {round}: accept after freeing {freed} fds: {e}"),
                }
            };
            if freed > 1 {
                eprintln!("round {round}: {freed} fds freed before accept succeeded; open fds:");
                for fd in open_fds() {
                    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"));
                    eprintln!("  {fd} -> {target:?}");
                }
            }
            assert!(peer.ip().is_loopback());
            std::mem::forget(s); // keep the fd in use for the next round
        }
    });
    println!("CHILD-OK");
}

#[test]
fn accept_returns_emfile_and_recovers() {
    if is_child() {
        return;
    }
    let out = child("child_accept_under_emfile", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
