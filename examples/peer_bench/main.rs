//! goro's side of `../shared/peers`: `peer_bench <workload> <workers>` prints one
//! `RESULT <workload> goro <workers> <value> <unit>` line and one `CHECK` line, with the same
//! workloads, sizes and checks as the Go peer (`shared/peers/go/main.go`).
//!
//! The workloads live in one file per area: `core.rs` (spawn, yield, parked_mem),
//! `chan.rs` (pingpong, skynet, mpmc, primes, select, sleep), `sync.rs` (mutex).

fn main() {
    eprintln!("peer_bench: not implemented yet");
    std::process::exit(2);
}
