//! Channel workloads: pingpong (W3), skynet (W4), mpmc (W6), primes (W8), select (W9),
//! sleep (W10) — the same sizes, checks and best-of-3 as the Go peer (`go/main.go`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::chan::{bounded, Sender};
use goro::sync::WaitGroup;

use crate::{best, check, ms, ns_per, result, REPS};

const PINGPONG_N: u64 = 100_000;
const SKYNET_SIZE: u64 = 1_000_000;
const SKYNET_DIV: u64 = 10;
const MPMC_PROD: u64 = 4;
const MPMC_CONS: usize = 4;
const MPMC_CAP: usize = 1024;
const MPMC_TOTAL: u64 = 4_000_000;
const PRIMES_MAX: u64 = 2_000_000;
const PRIMES_CHUNK: u64 = 1_000;
const SELECT_CHANS: usize = 4;
const SELECT_CAP: usize = 16;
const SELECT_TOTAL: u64 = 1_000_000;
const SLEEP_N: usize = 100_000;
const SLEEP_DUR: Duration = Duration::from_millis(10);

/// Run `workload` if it belongs to this file.
pub fn dispatch(workload: &str) -> bool {
    match workload {
        "pingpong" => pingpong(),
        "skynet" => skynet_w(),
        "mpmc" => mpmc(),
        "primes" => primes(),
        "select" => select(),
        "sleep" => sleep(),
        _ => return false,
    }
    true
}

/// W3: two coroutines bounce an integer over two unbuffered channels.
fn pingpong() {
    let mut sum = 0;
    let d = best(REPS, || {
        let (ab_tx, ab_rx) = bounded::<u64>(0);
        let (ba_tx, ba_rx) = bounded::<u64>(0);
        let (done_tx, done_rx) = bounded::<()>(0);
        let t0 = Instant::now();
        goro::go!(move || {
            for _ in 0..PINGPONG_N {
                let v = ab_rx.recv().unwrap();
                ba_tx.send(v).unwrap();
            }
            done_tx.close();
        });
        let mut s = 0;
        for i in 0..PINGPONG_N {
            ab_tx.send(i).unwrap();
            s += ba_rx.recv().unwrap();
        }
        let _ = done_rx.recv();
        let el = t0.elapsed();
        sum = s;
        el
    });
    result("pingpong", ns_per(d, PINGPONG_N), "ns/roundtrip");
    check("pingpong", sum, PINGPONG_N * (PINGPONG_N - 1) / 2);
}

fn skynet(c: Sender<u64>, num: u64, size: u64, div: u64) {
    if size == 1 {
        c.send(num).unwrap();
        return;
    }
    let (rc_tx, rc_rx) = bounded::<u64>(0);
    for i in 0..div {
        let sub = num + i * (size / div);
        let rc = rc_tx.clone();
        goro::go!(move || skynet(rc, sub, size / div, div));
    }
    let mut sum = 0;
    for _ in 0..div {
        sum += rc_rx.recv().unwrap();
    }
    c.send(sum).unwrap();
}

/// W4: a 10-ary tree of 1,000,000 leaf coroutines, a fresh unbuffered channel per node.
fn skynet_w() {
    let mut sum = 0;
    let d = best(REPS, || {
        let (c_tx, c_rx) = bounded::<u64>(0);
        let t0 = Instant::now();
        goro::go!(move || skynet(c_tx, 0, SKYNET_SIZE, SKYNET_DIV));
        sum = c_rx.recv().unwrap();
        t0.elapsed()
    });
    result("skynet", ms(d), "ms");
    check("skynet", sum, 499_999_500_000);
}

/// W6: 4 producers, 4 consumers, one channel of capacity 1024, 4,000,000 messages.
fn mpmc() {
    let mut sum = 0;
    let d = best(REPS, || {
        let (tx, rx) = bounded::<u64>(MPMC_CAP);
        let (pwg, cwg) = (WaitGroup::new(), WaitGroup::new());
        let sums: Arc<Vec<AtomicU64>> =
            Arc::new((0..MPMC_CONS).map(|_| AtomicU64::new(0)).collect());
        let per = MPMC_TOTAL / MPMC_PROD;
        let t0 = Instant::now();
        for c in 0..MPMC_CONS {
            cwg.add(1);
            let (rx, cwg, sums) = (rx.clone(), cwg.clone(), sums.clone());
            goro::go!(move || {
                let mut s = 0;
                for v in rx.iter() {
                    s += v;
                }
                sums[c].store(s, Ordering::Relaxed);
                cwg.done();
            });
        }
        for p in 0..MPMC_PROD {
            pwg.add(1);
            let (tx, pwg) = (tx.clone(), pwg.clone());
            goro::go!(move || {
                let base = p * per;
                for i in 0..per {
                    tx.send(base + i).unwrap();
                }
                pwg.done();
            });
        }
        pwg.wait();
        tx.close();
        cwg.wait();
        let el = t0.elapsed();
        sum = sums.iter().map(|s| s.load(Ordering::Relaxed)).sum();
        el
    });
    result("mpmc", ns_per(d, MPMC_TOTAL), "ns/msg");
    check("mpmc", sum, MPMC_TOTAL * (MPMC_TOTAL - 1) / 2);
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n < 4 {
        return true;
    }
    if n % 2 == 0 {
        return false;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

/// W8: trial-division prime count in [1, 2,000,000]: 2,000 coroutines of 1,000 numbers each.
fn primes() {
    let mut count = 0;
    let tasks = PRIMES_MAX / PRIMES_CHUNK;
    let d = best(REPS, || {
        let (tx, rx) = bounded::<u64>(tasks as usize);
        let t0 = Instant::now();
        for t in 0..tasks {
            let tx = tx.clone();
            let lo = t * PRIMES_CHUNK + 1;
            goro::go!(move || {
                let c = (lo..lo + PRIMES_CHUNK).filter(|&n| is_prime(n)).count() as u64;
                tx.send(c).unwrap();
            });
        }
        let mut total = 0;
        for _ in 0..tasks {
            total += rx.recv().unwrap();
        }
        let el = t0.elapsed();
        count = total;
        el
    });
    result("primes", ms(d), "ms");
    check("primes", count, 148_933);
}

/// W9: one receiver selects over 4 channels (capacity 16) fed by 4 producers.
fn select() {
    let mut sum = 0;
    let per = SELECT_TOTAL / SELECT_CHANS as u64;
    let d = best(REPS, || {
        let chans: Vec<_> = (0..SELECT_CHANS)
            .map(|_| bounded::<u64>(SELECT_CAP))
            .collect();
        let wg = WaitGroup::new();
        wg.add(SELECT_CHANS as isize);
        let t0 = Instant::now();
        for (p, (tx, _)) in chans.iter().enumerate() {
            let (tx, wg) = (tx.clone(), wg.clone());
            goro::go!(move || {
                let base = p as u64 * per;
                for i in 0..per {
                    tx.send(base + i).unwrap();
                }
                wg.done();
            });
        }
        let (r0, r1, r2, r3) = (&chans[0].1, &chans[1].1, &chans[2].1, &chans[3].1);
        let mut s = 0;
        for _ in 0..SELECT_TOTAL {
            goro::select! {
                recv(r0) -> v => s += v.unwrap(),
                recv(r1) -> v => s += v.unwrap(),
                recv(r2) -> v => s += v.unwrap(),
                recv(r3) -> v => s += v.unwrap(),
            }
        }
        wg.wait();
        let el = t0.elapsed();
        sum = s;
        el
    });
    result("select", ns_per(d, SELECT_TOTAL), "ns/msg");
    check("select", sum, SELECT_TOTAL * (SELECT_TOTAL - 1) / 2);
}

/// W10: 100,000 coroutines each sleep 10 ms concurrently.
fn sleep() {
    let mut done = 0;
    let d = best(REPS, || {
        let wg = WaitGroup::new();
        wg.add(SLEEP_N as isize);
        let t0 = Instant::now();
        for _ in 0..SLEEP_N {
            let wg = wg.clone();
            goro::go!(move || {
                goro::time::sleep(SLEEP_DUR);
                wg.done();
            });
        }
        wg.wait();
        let el = t0.elapsed();
        done = SLEEP_N as u64;
        el
    });
    result("sleep", ms(d), "ms");
    check("sleep", done, SLEEP_N as u64);
}
