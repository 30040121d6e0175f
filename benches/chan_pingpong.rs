//! Criterion: unbuffered round trip between two coroutines (the peers' W3), on 1 and 2
//! workers, plus the same between a plain thread and a coroutine.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use goro::chan::bounded;

/// `iters` round trips between two coroutines; returns the time they took.
fn coroutines(iters: u64) -> Duration {
    goro::spawn(move || {
        let (ab_tx, ab_rx) = bounded::<u64>(0);
        let (ba_tx, ba_rx) = bounded::<u64>(0);
        let t0 = Instant::now();
        let h = goro::spawn(move || {
            for v in ab_rx.iter() {
                ba_tx.send(v).unwrap();
            }
        });
        for i in 0..iters {
            ab_tx.send(i).unwrap();
            assert_eq!(ba_rx.recv().unwrap(), i);
        }
        drop(ab_tx);
        h.join().unwrap();
        t0.elapsed()
    })
    .join()
    .unwrap()
}

fn thread_coroutine(iters: u64) -> Duration {
    let (ab_tx, ab_rx) = bounded::<u64>(0);
    let (ba_tx, ba_rx) = bounded::<u64>(0);
    let t0 = Instant::now();
    let h = goro::spawn(move || {
        for v in ab_rx.iter() {
            ba_tx.send(v).unwrap();
        }
    });
    for i in 0..iters {
        ab_tx.send(i).unwrap();
        assert_eq!(ba_rx.recv().unwrap(), i);
    }
    drop(ab_tx);
    h.join().unwrap();
    t0.elapsed()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("chan_pingpong");
    for workers in [1, 2] {
        goro::gomaxprocs(workers);
        g.bench_function(format!("coroutines/{workers}_workers"), |b| {
            b.iter_custom(coroutines)
        });
    }
    goro::gomaxprocs(2);
    g.bench_function("thread_to_coroutine", |b| b.iter_custom(thread_coroutine));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
