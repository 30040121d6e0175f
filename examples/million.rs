//! One million parked coroutines, each on its own guarded stack, on a stock kernel
//! (vm.max_map_count 65530).
//!
//! `cargo run --release --example million [N]` spawns N (default 1,000,000) coroutines that
//! block receiving on one channel, prints the memory each parked coroutine costs
//! (`bytes_per_coroutine: N` = (RSS + page tables) after minus before, divided by N, from
//! /proc/self/status), waits while idle workers compact the parked stacks and prints the
//! figure again once it stops falling (`bytes_per_coroutine_idle`, with how long that took),
//! then closes the channel to release them all, and prints how long spawning and draining took.

use std::time::Instant;

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    s.lines()
        .find_map(|l| {
            l.strip_prefix(field).map(|r| {
                r.split_whitespace()
                    .next()
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |s| s.lines().count())
}

fn main() {
    let n: usize = match std::env::args().nth(1) {
        None => 1_000_000,
        Some(a) => match a.replace('_', "").parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("usage: million [N]   (N: a positive number of coroutines)");
                std::process::exit(2);
            }
        },
    };
    let code = goro::run(move || {
        let (tx, rx) = goro::chan::bounded::<()>(0);
        let started = goro::sync::WaitGroup::new();
        let exited = goro::sync::WaitGroup::new();
        let (rss0, pte0, maps0) = (status_kib("VmRSS:"), status_kib("VmPTE:"), maps());
        let t0 = Instant::now();
        started.add(n as isize);
        exited.add(n as isize);
        for i in 0..n {
            let (rx, started, exited) = (rx.clone(), started.clone(), exited.clone());
            let spawned = goro::Builder::new().spawn(move || {
                started.done();
                let _ = rx.recv();
                exited.done();
            });
            if let Err(e) = spawned {
                eprintln!("spawn {i} failed: {e}");
                return 1;
            }
        }
        drop(rx);
        started.wait();
        // Every coroutine has now run up to `started.done()`: its stack page is touched and
        // its control block exists; the last few may still be on their way into `recv`.
        let spawn_time = t0.elapsed();
        let (rss1, pte1, maps1) = (status_kib("VmRSS:"), status_kib("VmPTE:"), maps());
        let per = ((rss1 + pte1) as f64 - (rss0 + pte0) as f64) * 1024.0 / n as f64;
        println!("coroutines: {n}");
        println!("spawn_time_ms: {:.0}", spawn_time.as_secs_f64() * 1e3);
        println!(
            "rss_per_coroutine: {:.0}",
            (rss1 as f64 - rss0 as f64) * 1024.0 / n as f64
        );
        println!(
            "pte_per_coroutine: {:.0}",
            (pte1 as f64 - pte0 as f64) * 1024.0 / n as f64
        );
        println!("bytes_per_coroutine: {per:.0}");
        println!(
            "memory_mappings: {maps0} before, {maps1} with all parked (vm.max_map_count {})",
            std::fs::read_to_string("/proc/sys/vm/max_map_count")
                .unwrap_or_default()
                .trim()
        );
        println!("num_goroutine: {}", goro::num_goroutine());
        // Idle workers compact stacks parked longer than GORO_COMPACT_AFTER (100 ms by
        // default): sample every 250 ms until the figure stops falling (at most 20 s).
        let t_idle = Instant::now();
        let mut last = per;
        loop {
            goro::sleep(std::time::Duration::from_millis(250));
            let (rss, pte) = (status_kib("VmRSS:"), status_kib("VmPTE:"));
            let now = ((rss + pte) as f64 - (rss0 + pte0) as f64) * 1024.0 / n as f64;
            if now > last * 0.99 || t_idle.elapsed().as_secs() >= 20 {
                println!(
                    "bytes_per_coroutine_idle: {now:.0} (rss {:.0}, pte {:.0}; after {} ms idle)",
                    (rss as f64 - rss0 as f64) * 1024.0 / n as f64,
                    (pte as f64 - pte0 as f64) * 1024.0 / n as f64,
                    t_idle.elapsed().as_millis()
                );
                break;
            }
            last = now;
        }
        let t1 = Instant::now();
        tx.close();
        exited.wait();
        println!("drain_time_ms: {:.0}", t1.elapsed().as_secs_f64() * 1e3);
        0
    });
    std::process::exit(code);
}
