//! Count the primes in 1..=20000 by handing ranges to coroutines over channels, and compare
//! with doing the same work on one coroutine.
//!
//! A dispatcher sends ranges on a `jobs` channel; `workers` coroutines take ranges, count by
//! trial division and send their counts on `results`; the main coroutine adds them up.
//!
//! Run: `cargo run --release --example primes`

use std::time::{Duration, Instant};

use goro::chan::{bounded, unbounded};

const LIMIT: u64 = 20_000;
const CHUNK: u64 = 250;
/// Repeat the count so the timing is well above the clock's noise.
const ROUNDS: usize = 3;

/// Deliberately naive trial division (every divisor below `n`), so that there is work to share.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d < n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

/// Count primes in 1..=LIMIT with `workers` coroutines; returns the count and the time taken.
fn count(workers: usize) -> (u64, Duration) {
    let t0 = Instant::now();
    let mut total = 0;
    for _ in 0..ROUNDS {
        let (jobs_tx, jobs_rx) = bounded::<(u64, u64)>(workers);
        let (res_tx, res_rx) = unbounded::<u64>();
        for _ in 0..workers {
            let (jobs, res) = (jobs_rx.clone(), res_tx.clone());
            goro::go!(move || {
                for (lo, hi) in jobs.iter() {
                    res.send((lo..=hi).filter(|&n| is_prime(n)).count() as u64)
                        .unwrap();
                }
            });
        }
        drop(res_tx);
        goro::go!(move || {
            let mut lo = 1;
            while lo <= LIMIT {
                jobs_tx.send((lo, (lo + CHUNK - 1).min(LIMIT))).unwrap();
                lo += CHUNK;
            }
            // dropping jobs_tx closes `jobs`: the workers' loops end, then `results` closes
        });
        total = res_rx.iter().sum();
    }
    (total, t0.elapsed())
}

fn main() {
    goro::run(|| {
        let (n1, t1) = count(1);
        let workers = goro::num_cpu().max(2) * 4;
        let (n, t) = count(workers);
        assert_eq!(n, n1);
        println!("{n} primes in 1..={LIMIT}");
        println!(
            "1 coroutine: {:.1} ms; {workers} coroutines on {} workers: {:.1} ms; speed-up {:.2}x",
            t1.as_secs_f64() * 1e3 / ROUNDS as f64,
            goro::gomaxprocs(0),
            t.as_secs_f64() * 1e3 / ROUNDS as f64,
            t1.as_secs_f64() / t.as_secs_f64()
        );
    });
}
