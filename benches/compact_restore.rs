//! Criterion: how long a coroutine whose stack was compacted takes from its wake-up to running
//! (issue 11), against the same wake-up of one parked too briefly to be compacted. Also prints
//! p50/p99 of each over 200 wake-ups.
//!
//! The whole bench runs inside `goro::run` (compaction stays off while the process has a thread
//! that is not goro's, and criterion's caller would be one), with `GORO_COMPACT_AFTER=20ms`
//! unless the environment says otherwise. Each compacted sample waits for the idle worker's
//! pass, so a run takes about a minute.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use goro::chan::bounded;

/// Whether the dump lists the coroutine named `SLEEPER` as compacted.
fn sleeper_compacted() -> bool {
    goro::runtime::dump()
        .lines()
        .any(|l| l.contains(SLEEPER) && l.contains("compacted:"))
}

const SLEEPER: &str = "\"compact-restore-sleeper\"";

/// One wake-up: a coroutine with 2 KiB of live stack data parks on a rendezvous receive; once
/// it is compacted (when `compacted`; at once otherwise) we send it the time, and it reports
/// how long after that it ran.
fn wake_latency(compacted: bool) -> Duration {
    let (tx, rx) = bounded::<Instant>(0);
    let (back_tx, back_rx) = bounded::<Duration>(0);
    let (ready_tx, ready_rx) = bounded::<()>(0);
    goro::Builder::new()
        .name(SLEEPER.trim_matches('"'))
        .spawn(move || {
            let buf = black_box([7u8; 2048]);
            ready_tx.send(()).unwrap();
            let t0 = rx.recv().unwrap();
            let d = t0.elapsed();
            assert!(black_box(&buf).iter().all(|&b| b == 7));
            back_tx.send(d).unwrap();
        })
        .unwrap();
    ready_rx.recv().unwrap();
    if compacted {
        while !sleeper_compacted() {
            goro::sleep(Duration::from_millis(2));
        }
    }
    tx.send(Instant::now()).unwrap();
    back_rx.recv().unwrap()
}

fn percentiles(compacted: bool) {
    let mut v: Vec<Duration> = (0..200).map(|_| wake_latency(compacted)).collect();
    v.sort();
    println!(
        "compact_restore/{}: p50 {:?}, p99 {:?} over {} wake-ups",
        if compacted {
            "compacted"
        } else {
            "not_compacted"
        },
        v[v.len() / 2],
        v[v.len() * 99 / 100],
        v.len()
    );
}

fn bench(c: &mut Criterion) {
    goro::gomaxprocs(1);
    percentiles(false);
    percentiles(true);
    let mut g = c.benchmark_group("compact_restore");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("wake_not_compacted", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| wake_latency(false)).sum())
    });
    g.bench_function("wake_compacted", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| wake_latency(true)).sum())
    });
    g.finish();
}

fn main() {
    if std::env::var_os("GORO_COMPACT_AFTER").is_none() {
        // Before the runtime starts: nothing reads the environment concurrently yet.
        std::env::set_var("GORO_COMPACT_AFTER", "20ms");
    }
    goro::run(|| {
        // Criterion's analysis wants more than a default stack.
        goro::Builder::new()
            .stack_size(16 << 20)
            .spawn(|| {
                let mut c = Criterion::default().configure_from_args();
                bench(&mut c);
                c.final_summary();
            })
            .unwrap()
            .join()
            .unwrap();
    });
}
