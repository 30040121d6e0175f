//! Criterion: build a tree of 10,000 cancellable contexts (100 children under the root, 99
//! grandchildren under each), then cancel the root and check every `done()` channel is closed.
//! The timed part is the cancellation; `build+cancel` times both.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use goro::context::{self, CancelFunc, Context};

fn build() -> (Context, CancelFunc, Vec<Context>) {
    let (root, cancel) = context::with_cancel(&context::background());
    let mut all = Vec::with_capacity(10_000);
    for _ in 0..100 {
        let (c, _cf) = context::with_cancel(&root);
        for _ in 0..99 {
            let (g, _gf) = context::with_cancel(&c);
            let _ = g.done(); // each has a live done channel to close
            all.push(g);
        }
        all.push(c);
    }
    (root, cancel, all)
}

fn check(all: &[Context]) {
    assert_eq!(all.len(), 10_000 - 1 + 1);
    for c in all {
        assert!(c.done().is_closed());
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("context_cancel");
    g.sample_size(30);
    g.bench_function("cancel_tree_10000", |b| {
        b.iter_batched(
            build,
            |(root, cancel, all)| {
                cancel.cancel();
                assert!(root.err().is_some());
                (root, all)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("build_and_cancel_tree_10000", |b| {
        b.iter(|| {
            let (_root, cancel, all) = build();
            cancel.cancel();
            all
        })
    });
    g.finish();
    let (_r, cancel, all) = build();
    cancel.cancel();
    check(&all);
}

criterion_group!(benches, bench);
criterion_main!(benches);
