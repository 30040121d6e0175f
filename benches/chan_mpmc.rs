//! Criterion: 4 producer and 4 consumer coroutines over one channel of capacity 1024 (the
//! peers' W6), reported per message; plus the unbounded flavor for comparison.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use goro::chan::{bounded, unbounded, Receiver, Sender};
use goro::sync::WaitGroup;

const MSGS: u64 = 200_000;

type Make = fn() -> (Sender<u64>, Receiver<u64>);

fn run(make: Make) -> Duration {
    let (tx, rx) = make();
    let (pwg, cwg) = (WaitGroup::new(), WaitGroup::new());
    let per = MSGS / 4;
    let t0 = Instant::now();
    for _ in 0..4 {
        cwg.add(1);
        let (rx, cwg) = (rx.clone(), cwg.clone());
        goro::go!(move || {
            let mut s = 0u64;
            for v in rx.iter() {
                s = s.wrapping_add(v);
            }
            std::hint::black_box(s);
            cwg.done();
        });
    }
    for p in 0..4 {
        pwg.add(1);
        let (tx, pwg) = (tx.clone(), pwg.clone());
        goro::go!(move || {
            for i in 0..per {
                tx.send(p * per + i).unwrap();
            }
            pwg.done();
        });
    }
    pwg.wait();
    tx.close();
    cwg.wait();
    t0.elapsed()
}

fn bench(c: &mut Criterion) {
    goro::gomaxprocs(2);
    let mut g = c.benchmark_group("chan_mpmc");
    g.throughput(Throughput::Elements(MSGS));
    g.sample_size(20);
    let flavors: [(&str, Make); 2] = [("bounded_1024", || bounded(1024)), ("unbounded", unbounded)];
    for (name, make) in flavors {
        g.bench_function(BenchmarkId::new("4x4", name), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run(make)).sum())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
