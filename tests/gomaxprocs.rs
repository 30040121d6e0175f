//! gomaxprocs grows and shrinks the worker set while running (own binary: it changes global
//! state), and num_goroutine is exact when nothing else runs.

use std::collections::HashSet;
use std::time::Duration;

fn workers_used(n: usize) -> HashSet<String> {
    let hs: Vec<_> = (0..n)
        .map(|_| {
            goro::spawn(|| {
                // Keep each one busy briefly so idle workers get a chance to steal.
                let t = std::time::Instant::now();
                while t.elapsed() < Duration::from_micros(200) {
                    std::hint::spin_loop();
                }
                std::thread::current().name().unwrap_or("?").to_string()
            })
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn grow_shrink_and_count() {
    assert_eq!(goro::num_goroutine(), 0);
    let prev = goro::gomaxprocs(4);
    assert!(prev >= 1);
    assert_eq!(goro::gomaxprocs(0), 4);
    let used = workers_used(400);
    assert!(
        used.iter().all(|n| n.starts_with("goro-worker-")),
        "{used:?}"
    );
    assert!(used.len() > 1, "4 workers but only {used:?} ran coroutines");

    assert_eq!(goro::gomaxprocs(1), 4);
    // Give retiring workers a moment to hand off; new coroutines then run on worker 0 only.
    std::thread::sleep(Duration::from_millis(50));
    let used = workers_used(200);
    assert_eq!(used, HashSet::from(["goro-worker-0".to_string()]));

    // num_goroutine: exact here (no other test in this binary).
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let rx = rx.clone();
            goro::spawn(move || {
                goro::sleep(Duration::from_millis(20));
                drop(rx);
            })
        })
        .collect();
    assert_eq!(goro::num_goroutine(), 10);
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(goro::num_goroutine(), 0);
    drop(tx);

    // Absurd values are clamped, not obeyed.
    assert_eq!(goro::gomaxprocs(usize::MAX), 1);
    assert_eq!(goro::gomaxprocs(2), 1024);
}

/// Threads of this process, from the kernel.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Wait (polling: the threads end on their own time) until `ok(threads())`, at most 60 s.
fn wait_threads(what: &str, ok: impl Fn(usize) -> bool) {
    let t = std::time::Instant::now();
    while !ok(threads()) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{what}: still {} threads",
            threads()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn retired_workers_exit_once_their_coroutines_finish() {
    if std::env::var_os("GORO_GOMAXPROCS_CHILD").is_none() {
        // A child of its own: it counts the process's threads.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "retired_workers_exit_once_their_coroutines_finish",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("GORO_GOMAXPROCS_CHILD", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let base = threads();
    goro::gomaxprocs(1024);
    // Started coroutines parked on many workers: their workers must not exit before they end.
    let (tx, rx) = goro::chan::bounded::<()>(0);
    let hs: Vec<_> = (0..64)
        .map(|_| {
            let rx = rx.clone();
            goro::spawn(move || {
                let _ = rx.recv();
                std::thread::current().name().unwrap_or("?").to_string()
            })
        })
        .collect();
    wait_threads("1024 workers", |n| n >= base + 1024);
    goro::gomaxprocs(1);
    drop((tx, rx));
    for h in hs {
        assert!(h.join().unwrap().starts_with("goro-worker-"));
    }
    // Left: worker 0 and the monitor (and the timer thread, if anything started it).
    wait_threads("after gomaxprocs(1)", |n| n <= base + 3);
    // Raising the target again starts new threads for the exited workers, and they work:
    // wake-ups reach them and they run coroutines (a round trip between two coroutines).
    for round in 0..200 {
        goro::gomaxprocs(if round % 2 == 0 { 4 } else { 1 });
        let (a_tx, a_rx) = goro::chan::bounded::<u32>(0);
        let (b_tx, b_rx) = goro::chan::bounded::<u32>(0);
        let echo = goro::spawn(move || {
            for v in a_rx.iter() {
                b_tx.send(v + 1).unwrap();
            }
        });
        let hs: Vec<_> = (0..8).map(|i| goro::spawn(move || i * 2)).collect();
        for i in 0..20 {
            a_tx.send(i).unwrap();
            assert_eq!(b_rx.recv().unwrap(), i + 1);
        }
        drop(a_tx);
        echo.join().unwrap();
        let sum: u32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 56);
    }
    goro::gomaxprocs(4);
    assert!(
        workers_used(400).len() > 1,
        "restarted workers take no work"
    );
    assert!(threads() >= base + 5);
}
