//! Context-switch cost: one round trip (resume + suspend) of a coroutine that does nothing
//! but suspend, for every backend available on this target, side by side in one run.
//!
//! `cargo bench --bench switch`
use criterion::{criterion_group, criterion_main, Criterion};
use goro::__bench::{Backend, PingPong};

fn switch(c: &mut Criterion) {
    let mut g = c.benchmark_group("switch_round_trip");
    for &b in Backend::available() {
        let name = match b {
            Backend::Asm => "asm",
            Backend::AsmFp => "asm_fp",
            Backend::Corosensei => "corosensei",
        };
        let mut p = PingPong::new(b).expect("stack");
        g.bench_function(name, |bn| bn.iter(|| p.round_trip()));
    }
    g.finish();
}

criterion_group!(benches, switch);
criterion_main!(benches);
