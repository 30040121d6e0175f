//! Criterion: fan-out/fan-in of 10,000 coroutines awaited with one `WaitGroup` on 2 workers.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use goro::sync::WaitGroup;

const N: u64 = 10_000;

fn fan_out_in() -> u64 {
    let wg = WaitGroup::new();
    let sum = Arc::new(AtomicU64::new(0));
    wg.add(N as isize);
    for i in 0..N {
        let (wg, sum) = (wg.clone(), sum.clone());
        goro::go!(move || {
            sum.fetch_add(i, Relaxed);
            wg.done();
        });
    }
    wg.wait();
    sum.load(Relaxed)
}

fn bench(c: &mut Criterion) {
    goro::gomaxprocs(2);
    let mut g = c.benchmark_group("waitgroup");
    g.throughput(Throughput::Elements(N));
    g.bench_function("fan_out_in_10000_from_coroutine", |b| {
        b.iter(|| assert_eq!(goro::run(fan_out_in), N * (N - 1) / 2))
    });
    g.bench_function("fan_out_in_10000_from_thread", |b| {
        b.iter(|| assert_eq!(fan_out_in(), N * (N - 1) / 2))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
