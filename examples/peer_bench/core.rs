//! Core-runtime workloads: spawn (W1), yield (W2), parked_mem (W5).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::{best, check, ns_per, result, REPS};

const SPAWN_N: usize = 100_000;
const YIELD_N: u64 = 200_000;
const PARKED_N: usize = 100_000;

/// Run `workload` if it belongs to this file.
pub fn dispatch(workload: &str) -> bool {
    match workload {
        "spawn" => spawn(),
        "yield" => yield_(),
        "parked_mem" => parked_mem(),
        _ => return false,
    }
    true
}

/// W1: spawn 100,000 coroutines, each decrements a counter; the one reaching zero wakes the waiter.
fn spawn() {
    let d = best(REPS, || {
        let left = Arc::new(AtomicUsize::new(SPAWN_N));
        let (tx, rx) = goro::chan::bounded::<()>(1);
        let t0 = Instant::now();
        for _ in 0..SPAWN_N {
            let left = left.clone();
            let tx = tx.clone();
            goro::go!(move || {
                if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                    tx.send(()).unwrap();
                }
            });
        }
        rx.recv().unwrap();
        t0.elapsed()
    });
    result("spawn", ns_per(d, SPAWN_N as u64), "ns/spawn");
    check("spawn", SPAWN_N as u64, SPAWN_N as u64);
}

/// W2: two coroutines on one worker, each yields 200,000 times.
fn yield_() {
    let mut total = 0;
    let d = best(REPS, || {
        let cnt = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let t0 = Instant::now();
        let hs: Vec<_> = (0..2)
            .map(|t| {
                let cnt = cnt.clone();
                goro::spawn(move || {
                    for _ in 0..YIELD_N {
                        goro::gosched();
                        cnt[t].fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let el = t0.elapsed();
        total = cnt[0].load(Ordering::Relaxed) + cnt[1].load(Ordering::Relaxed);
        el
    });
    result("yield", ns_per(d, 2 * YIELD_N), "ns/yield");
    check("yield", total, 2 * YIELD_N);
}

fn vm_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kb: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
            return kb * 1024;
        }
    }
    panic!("no VmRSS")
}

/// W5: 100,000 coroutines blocked receiving on one channel; (RSS after - RSS before) / N.
fn parked_mem() {
    let (tx, rx) = goro::chan::bounded::<i32>(0);
    let started = goro::sync::WaitGroup::new();
    let exited = goro::sync::WaitGroup::new();
    let released = Arc::new(AtomicU64::new(0));
    started.add(PARKED_N as isize);
    exited.add(PARKED_N as isize);
    let before = vm_rss();
    for _ in 0..PARKED_N {
        let (rx, started, exited, released) = (
            rx.clone(),
            started.clone(),
            exited.clone(),
            released.clone(),
        );
        goro::go!(move || {
            started.done();
            let _ = rx.recv();
            released.fetch_add(1, Ordering::Relaxed);
            exited.done();
        });
    }
    started.wait();
    // Sampled once the parked stacks are compacted: idle workers compact coroutines parked
    // longer than GORO_COMPACT_AFTER (default 100 ms), 100,000 of them in some tens of ms on
    // a quiet machine, longer on a loaded one; so sample every 100 ms from 0.3 s on until the
    // figure stops falling (at most 5 s). The other peers are sampled at once (waiting changes
    // nothing for them: Go shrinks stacks only at GC and never below 2 KiB, may and tokio keep
    // what they allocated).
    goro::sleep(std::time::Duration::from_millis(200));
    let settle = Instant::now();
    let mut after = vm_rss();
    loop {
        goro::sleep(std::time::Duration::from_millis(100));
        let now = vm_rss();
        let falling = (now as f64) < after as f64 - 0.01 * (after as f64 - before as f64);
        after = after.min(now);
        if !falling || settle.elapsed().as_secs() >= 5 {
            break;
        }
    }
    tx.close();
    exited.wait();
    let per = (after as f64 - before as f64) / PARKED_N as f64;
    result("parked_mem", per, "bytes/task");
    check(
        "parked_mem",
        released.load(Ordering::Relaxed),
        PARKED_N as u64,
    );
}
