//! `gosched` round trip: two coroutines on one worker yield to each other. Reported per yield
//! (one yield = one switch away and, later, one switch back in).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

fn yield_pair(iters: u64) -> Duration {
    // Time inside the runtime, as the peer benchmark does.
    goro::run(move || {
        let start = Instant::now();
        let hs: Vec<_> = (0..2)
            .map(|_| {
                goro::spawn(move || {
                    for _ in 0..iters {
                        goro::gosched();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        start.elapsed() / 2
    })
}

fn bench(c: &mut Criterion) {
    goro::gomaxprocs(1);
    c.bench_function("gosched/2 coroutines, 1 worker (per yield)", |b| {
        b.iter_custom(yield_pair)
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
