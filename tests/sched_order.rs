//! Scheduling-order guarantees around the newest-first queue of fresh coroutines
//! (`sched::lifo`): an old fresh coroutine still runs while newer ones keep arriving, work in
//! that queue is stolen by idle workers, and fresh work behind a coroutine that never yields
//! is rescued by the monitor. One test function, so the `gomaxprocs` settings never overlap.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// On one worker, a chain of coroutines each spawning the next (always the newest) must not
/// keep an older fresh coroutine from running: the fairness rule runs the oldest one every
/// few dozen rounds.
fn old_fresh_work_runs_while_newer_keeps_coming() {
    goro::gomaxprocs(1);
    for round in 0..50 {
        let links = goro::spawn(move || {
            let old_ran = Arc::new(AtomicBool::new(false));
            let o = old_ran.clone();
            goro::go!(move || o.store(true, Ordering::SeqCst));
            // A chain: each link spawns the next and ends, until the old coroutine has run.
            let (tx, rx) = goro::chan::bounded::<usize>(1);
            fn link(n: usize, old_ran: Arc<AtomicBool>, tx: goro::chan::Sender<usize>) {
                if old_ran.load(Ordering::SeqCst) || n >= 100_000 {
                    tx.send(n).unwrap();
                } else {
                    goro::go!(move || link(n + 1, old_ran, tx));
                }
            }
            goro::go!(move || link(0, old_ran, tx));
            rx.recv().unwrap()
        })
        .join()
        .unwrap();
        assert!(
            links < 1_000,
            "round {round}: an old fresh coroutine waited behind {links} newer ones"
        );
    }
}

/// Two coroutines spawned back to back from a coroutine that then waits: one runs next on the
/// spawner's worker, the other sits in the newest-first queue and must move to the second
/// worker (stolen by it, or, slower, rescued by sysmon from a worker that looks stuck). Each
/// spins until both run at once, so this only finishes if one of the two happens.
fn newest_first_work_is_stolen_by_idle_workers() {
    goro::gomaxprocs(2);
    for round in 0..200 {
        let running = Arc::new(AtomicUsize::new(0));
        let h = goro::spawn({
            let running = running.clone();
            move || {
                let hs: Vec<_> = (0..2)
                    .map(|_| {
                        let running = running.clone();
                        goro::spawn(move || {
                            running.fetch_add(1, Ordering::SeqCst);
                            let t = Instant::now();
                            while running.load(Ordering::SeqCst) < 2 {
                                assert!(
                                    t.elapsed() < Duration::from_secs(20),
                                    "the second coroutine was never stolen"
                                );
                                std::hint::spin_loop();
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
            }
        });
        h.join().unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
}

/// A coroutine that spawns one child (which waits in its worker's `runnext` slot, which no
/// other worker steals from) and then computes without ever yielding: the monitor sees the
/// worker stuck and moves the child to the global queue, where the idle worker runs it.
fn fresh_work_behind_a_busy_coroutine_is_rescued() {
    goro::gomaxprocs(2);
    for round in 0..5 {
        goro::spawn(move || {
            let ran = Arc::new(AtomicBool::new(false));
            let r = ran.clone();
            goro::go!(move || r.store(true, Ordering::SeqCst));
            let t = Instant::now();
            while !ran.load(Ordering::SeqCst) {
                assert!(
                    t.elapsed() < Duration::from_secs(20),
                    "round {round}: the child of a busy coroutine never ran"
                );
                std::hint::spin_loop();
            }
        })
        .join()
        .unwrap();
    }
}

#[test]
fn newest_first_queue_is_fair_and_stealable() {
    old_fresh_work_runs_while_newer_keeps_coming();
    newest_first_work_is_stolen_by_idle_workers();
    fresh_work_behind_a_busy_coroutine_is_rescued();
}
