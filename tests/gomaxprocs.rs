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
