//! Retired workers end their threads: after `gomaxprocs(64)` then `gomaxprocs(1)`, a worker
//! above the target keeps its thread only while it hosts started coroutines (they cannot move)
//! and ends it once they have finished; growing again starts new threads in those slots, which
//! run coroutines as before. Own binary: it changes global state and counts the process's
//! threads.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use goro::chan;

/// The process's thread count, from the kernel.
fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Wait (polling: threads end asynchronously) until the thread count is `want`.
fn wait_for_threads(want: usize, what: &str) {
    let t = Instant::now();
    while threads() != want {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{what}: {} threads after 20 s, want {want}",
            threads()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Spawn `n` coroutines from this plain thread; each works briefly, reports the worker it runs on and parks
/// until `gate` closes. Returns the distinct workers and the handles.
fn park_many(n: usize, gate: &chan::Receiver<()>) -> (HashSet<String>, Vec<goro::JoinHandle<()>>) {
    let (tx, rx) = chan::unbounded();
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let tx = tx.clone();
            let gate = gate.clone();
            goro::spawn(move || {
                // Busy for a moment first, so that idle workers steal the queued ones.
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(100) {
                    std::hint::spin_loop();
                }
                tx.send(std::thread::current().name().unwrap_or("?").to_string())
                    .unwrap();
                let _ = gate.recv(); // ends when the gate closes
            })
        })
        .collect();
    let hosts = (0..n).map(|_| rx.recv().unwrap()).collect();
    (hosts, hs)
}

#[test]
fn retired_workers_exit_once_empty_and_slots_restart() {
    goro::gomaxprocs(1);
    // Warm up: the runtime's own threads (worker 0, the monitor, the timer thread) exist.
    goro::spawn(|| goro::sleep(Duration::from_millis(1)))
        .join()
        .unwrap();
    let base = threads();
    for cycle in 0..4 {
        // The first cycle is the reported case (1,024 workers), the others regrow 64 slots.
        let n = if cycle == 0 { 1024 } else { 64 };
        assert_eq!(goro::gomaxprocs(n), 1);
        let (gate_tx, gate_rx) = chan::bounded::<()>(0);
        let (hosts, hs) = park_many(640, &gate_rx);
        assert!(
            threads() >= base + n - 1,
            "cycle {cycle}: {n} workers did not start"
        );
        assert_eq!(goro::gomaxprocs(1), n);
        // Retired workers hosting a parked coroutine keep their threads; the others end.
        let hosting = hosts.iter().filter(|h| *h != "goro-worker-0").count();
        // From the second cycle on, every slot above 0 runs on a restarted thread.
        assert!(hosting > 0, "cycle {cycle}: only worker 0 ran coroutines");
        wait_for_threads(base + hosting, "retired workers that host nothing");
        // Their coroutines still run to the end on them.
        gate_tx.close();
        for h in hs {
            h.join().unwrap();
        }
        wait_for_threads(base, "retired workers whose coroutines finished");
        // Worker 0 alone runs new work.
        let (_g, gate_rx) = chan::bounded::<()>(0);
        let (hosts, hs) = park_many(50, &gate_rx);
        assert_eq!(hosts, HashSet::from(["goro-worker-0".to_string()]));
        drop(_g);
        for h in hs {
            h.join().unwrap();
        }
    }
}
