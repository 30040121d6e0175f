//! An idle server with 10,000 parked connections burns no CPU: one idle second costs the
//! server process under 2% of a core. The clients live in a child process (the fd limit is
//! per process), so only the server's own work is measured.

use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONNS: usize = 10_000;

fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The client process: open `CONNS` connections to `addr`, say READY, hold them until stdin
/// closes.
#[test]
fn child_clients() {
    let Ok(addr) = std::env::var("GORO_IDLE_CLIENT_ADDR") else {
        return;
    };
    let conns: Vec<_> = (0..CONNS)
        .map(|_| std::net::TcpStream::connect(addr.as_str()).unwrap())
        .collect();
    println!("READY");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(conns);
}

#[test]
fn ten_thousand_parked_connections_cost_no_cpu() {
    if std::env::var_os("GORO_IDLE_CLIENT_ADDR").is_some() {
        return;
    }
    goro::gomaxprocs(2);
    let l = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let parked = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let (p2, e2) = (parked.clone(), ended.clone());
    goro::go!(move || {
        for c in l.incoming().take(CONNS) {
            let mut c = c.unwrap();
            let (p, e) = (p2.clone(), e2.clone());
            goro::go!(move || {
                p.fetch_add(1, Ordering::SeqCst);
                let mut b = [0u8; 16];
                assert_eq!(c.read(&mut b).unwrap(), 0, "the clients never write");
                e.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_clients",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GORO_IDLE_CLIENT_ADDR", addr.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let t = Instant::now();
    while !line.contains("READY") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "client process died");
    }
    while parked.load(Ordering::SeqCst) < CONNS {
        assert!(t.elapsed() < Duration::from_secs(60), "not all accepted");
        std::thread::sleep(Duration::from_millis(10)); // polling a counter, bounded
    }
    std::thread::sleep(Duration::from_millis(300)); // let the readers park (time is the feature)
    let before = cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time() - before;
    // Hang up: every reader wakes with end of file.
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success());
    while ended.load(Ordering::SeqCst) < CONNS {
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "{} of {CONNS} readers saw the hang-up\n",
            ended.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        used < Duration::from_millis(20),
        "an idle second with {CONNS} parked connections cost {used:?} of CPU"
    );
}
