//! Criterion: 100 coroutines x 10,000 lock/increment/unlock of one `goro::sync::Mutex` on 2
//! workers (the peers' W7), with `std::sync::Mutex` on the same coroutines for comparison
//! (std's blocks the worker thread; it is here only as a yardstick).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use goro::sync::{Mutex, WaitGroup};

const TASKS: u64 = 100;
const ITERS: u64 = 10_000;

fn goro_mutex() -> u64 {
    let m = Arc::new(Mutex::new(0u64));
    let wg = WaitGroup::new();
    wg.add(TASKS as isize);
    for _ in 0..TASKS {
        let (m, wg) = (m.clone(), wg.clone());
        goro::go!(move || {
            for _ in 0..ITERS {
                *m.lock() += 1;
            }
            wg.done();
        });
    }
    wg.wait();
    let v = *m.lock();
    v
}

fn std_mutex() -> u64 {
    let m = Arc::new(std::sync::Mutex::new(0u64));
    let wg = WaitGroup::new();
    wg.add(TASKS as isize);
    for _ in 0..TASKS {
        let (m, wg) = (m.clone(), wg.clone());
        goro::go!(move || {
            for _ in 0..ITERS {
                *m.lock().unwrap() += 1;
            }
            wg.done();
        });
    }
    wg.wait();
    let v = *m.lock().unwrap();
    v
}

fn bench(c: &mut Criterion) {
    goro::gomaxprocs(2);
    let mut g = c.benchmark_group("mutex");
    g.sample_size(20);
    g.throughput(Throughput::Elements(TASKS * ITERS));
    g.bench_function("goro_100x10000_2workers", |b| {
        b.iter(|| assert_eq!(goro::run(goro_mutex), TASKS * ITERS))
    });
    g.bench_function("std_in_coroutines_100x10000_2workers", |b| {
        b.iter(|| assert_eq!(goro::run(std_mutex), TASKS * ITERS))
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("uncontended_lock_unlock", |b| {
        let m = Mutex::new(0u64);
        b.iter(|| *m.lock() += 1)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
