//! goro's side of `../shared/peers`: `peer_bench <workload> <workers>` prints one
//! `RESULT <workload> goro <workers> <value> <unit>` line and one `CHECK` line, with the same
//! workloads, sizes and checks as the Go peer (`shared/peers/go/main.go`).
//!
//! The workloads live in one file per area: `core.rs` (spawn, yield, parked_mem),
//! `chan.rs` (pingpong, skynet, mpmc, primes, select, sleep), `sync.rs` (mutex), `net.rs`
//! (the echo server for echo and conns); each has a
//! `dispatch(workload) -> bool` that runs the workload if it is one of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod chan;
mod core;
mod net;
mod sync;

/// Repetitions inside the process; the best one is reported (as the Go peer does).
pub const REPS: usize = 3;
const PEER: &str = "goro";
static WORKERS: AtomicUsize = AtomicUsize::new(1);

/// Print the `RESULT` line.
pub fn result(workload: &str, value: f64, unit: &str) {
    let v = if value >= 1000.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    };
    println!(
        "RESULT {workload} {PEER} {} {v} {unit}",
        WORKERS.load(Ordering::Relaxed)
    );
}

/// Print the `CHECK` line; exit 3 on a mismatch.
pub fn check(workload: &str, got: u64, want: u64) {
    let ok = got == want;
    println!(
        "CHECK {workload} {PEER} got={got} want={want} {}",
        if ok { "ok" } else { "MISMATCH" }
    );
    if !ok {
        std::process::exit(3);
    }
}

/// Run `f` `n` times and return the shortest duration it reported.
pub fn best(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..n).map(|_| f()).min().expect("n > 0")
}

/// Nanoseconds per item.
pub fn ns_per(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The Go peer's warm-up: 1,000 coroutines each send one value over an unbuffered channel.
fn warmup() {
    let (tx, rx) = goro::chan::bounded::<u64>(0);
    for i in 0..1000u64 {
        let tx = tx.clone();
        goro::go!(move || {
            tx.send(i).unwrap();
        });
    }
    let mut s = 0;
    for _ in 0..1000 {
        s += rx.recv().unwrap();
    }
    assert_eq!(s, 999 * 1000 / 2);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: peer_bench <workload> <workers>");
        std::process::exit(2);
    }
    let workload = args[1].clone();
    let workers: usize = match args[2].parse() {
        Ok(n) if n >= 1 => n,
        _ => {
            eprintln!("bad workers");
            std::process::exit(2);
        }
    };
    WORKERS.store(workers, Ordering::Relaxed);
    goro::gomaxprocs(workers);
    // The timed code runs inside the runtime, on the main coroutine (as Go's main goroutine).
    let known = goro::run(move || {
        warmup();
        core::dispatch(&workload)
            || chan::dispatch(&workload)
            || sync::dispatch(&workload)
            || net::dispatch(&workload)
    });
    if !known {
        eprintln!("unknown workload {}", args[1]);
        std::process::exit(2);
    }
}
