//! Criterion: one receiver coroutine selects over 4 channels of capacity 16 fed by 4 producer
//! coroutines (the peers' W9), per message; plus a non-blocking `select!` with `default` and
//! the dynamic `Select`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use goro::chan::{bounded, Select};
use goro::sync::WaitGroup;

const MSGS: u64 = 100_000;

fn four_producers() -> Duration {
    goro::spawn(|| {
        let chans: Vec<_> = (0..4).map(|_| bounded::<u64>(16)).collect();
        let wg = WaitGroup::new();
        wg.add(4);
        let per = MSGS / 4;
        let t0 = Instant::now();
        for (p, (tx, _)) in chans.iter().enumerate() {
            let (tx, wg) = (tx.clone(), wg.clone());
            goro::go!(move || {
                for i in 0..per {
                    tx.send(p as u64 * per + i).unwrap();
                }
                wg.done();
            });
        }
        let (r0, r1, r2, r3) = (&chans[0].1, &chans[1].1, &chans[2].1, &chans[3].1);
        let mut s = 0u64;
        for _ in 0..MSGS {
            goro::select! {
                recv(r0) -> v => s += v.unwrap(),
                recv(r1) -> v => s += v.unwrap(),
                recv(r2) -> v => s += v.unwrap(),
                recv(r3) -> v => s += v.unwrap(),
            }
        }
        wg.wait();
        assert_eq!(s, MSGS * (MSGS - 1) / 2);
        t0.elapsed()
    })
    .join()
    .unwrap()
}

fn bench(c: &mut Criterion) {
    goro::gomaxprocs(2);
    let mut g = c.benchmark_group("select");
    g.throughput(Throughput::Elements(MSGS));
    g.sample_size(20);
    g.bench_function("1_receiver_4_channels", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| four_producers()).sum())
    });
    g.finish();

    let mut g = c.benchmark_group("select_nonblocking");
    let chans: Vec<_> = (0..4).map(|_| bounded::<u64>(16)).collect();
    chans[2].0.send(1).unwrap();
    g.bench_function("macro_default_4_cases", |b| {
        b.iter(|| {
            let (r0, r1, r2, r3) = (&chans[0].1, &chans[1].1, &chans[2].1, &chans[3].1);
            let v = goro::select! {
                recv(r0) -> v => v.unwrap(),
                recv(r1) -> v => v.unwrap(),
                recv(r2) -> v => v.unwrap(),
                recv(r3) -> v => v.unwrap(),
                default => 0,
            };
            chans[2].0.try_send(1).unwrap();
            v
        })
    });
    g.bench_function("dynamic_select_4_cases", |b| {
        b.iter(|| {
            let mut sel = Select::new();
            for (_, r) in &chans {
                sel.recv(r);
            }
            let op = sel.select();
            let i = op.index();
            let v = op.recv(&chans[i].1).unwrap();
            chans[i].0.try_send(v).unwrap();
            v
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
