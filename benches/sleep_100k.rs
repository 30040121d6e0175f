//! Criterion: 100,000 coroutines each sleep 10 ms concurrently (the peers' W10); the ideal is
//! 10 ms wall time. Also 100,000 coroutines each waiting on a channel with a 10 ms timeout.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use goro::chan::bounded;
use goro::sync::WaitGroup;

const N: usize = 100_000;
const D: Duration = Duration::from_millis(10);

fn sleepers(timeout_recv: bool) -> Duration {
    let wg = WaitGroup::new();
    wg.add(N as isize);
    let (_keep, rx) = bounded::<()>(0);
    let t0 = Instant::now();
    for _ in 0..N {
        let (wg, rx) = (wg.clone(), rx.clone());
        goro::go!(move || {
            if timeout_recv {
                assert!(rx.recv_timeout(D).is_err());
            } else {
                goro::time::sleep(D);
            }
            wg.done();
        });
    }
    wg.wait();
    t0.elapsed()
}

fn bench(c: &mut Criterion) {
    goro::gomaxprocs(2);
    let mut g = c.benchmark_group("sleep_100k");
    g.sample_size(10);
    g.bench_function("sleep_10ms", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| sleepers(false)).sum())
    });
    g.bench_function("recv_timeout_10ms", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| sleepers(true)).sum())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
