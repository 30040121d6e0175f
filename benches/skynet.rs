//! Criterion: skynet (the peers' W4): 1,000,000 leaf coroutines in a 10-ary tree, each node
//! sums its children's numbers over a fresh unbuffered channel. Few samples: one run is
//! ~1,111,111 coroutines.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use goro::chan::{bounded, Sender};

fn skynet(c: Sender<u64>, num: u64, size: u64, div: u64) {
    if size == 1 {
        c.send(num).unwrap();
        return;
    }
    let (tx, rx) = bounded::<u64>(0);
    for i in 0..div {
        let tx = tx.clone();
        let sub = num + i * (size / div);
        goro::go!(move || skynet(tx, sub, size / div, div));
    }
    let sum = (0..div).map(|_| rx.recv().unwrap()).sum();
    c.send(sum).unwrap();
}

fn bench(c: &mut Criterion) {
    goro::gomaxprocs(2);
    let mut g = c.benchmark_group("skynet");
    g.sample_size(10);
    g.bench_function("1M_coroutines", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                let (tx, rx) = bounded::<u64>(0);
                goro::go!(move || skynet(tx, 0, 1_000_000, 10));
                assert_eq!(rx.recv().unwrap(), 499_999_500_000);
            }
            t0.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
