//! Spawn cost: one spawn + join round trip, and 100,000 coroutines spawned at once then joined
//! (reported per coroutine).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    goro::gomaxprocs(2);
    let mut g = c.benchmark_group("spawn");
    g.bench_function("spawn+join (one at a time, from a coroutine)", |b| {
        b.iter_custom(|iters| {
            goro::run(move || {
                let t = Instant::now();
                for i in 0..iters {
                    let h = goro::spawn(move || i);
                    assert_eq!(h.join().unwrap(), i);
                }
                t.elapsed()
            })
        })
    });
    g.throughput(Throughput::Elements(100_000));
    g.sample_size(20);
    g.bench_function("100k at once (spawn all, then join all)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += goro::run(|| {
                    let t = Instant::now();
                    let hs: Vec<_> = (0..100_000u64).map(|i| goro::spawn(move || i)).collect();
                    let s: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
                    assert_eq!(s, 99_999 * 100_000 / 2);
                    t.elapsed()
                });
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
