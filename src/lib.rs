//! goro — Go's concurrency model for Rust, on real stackful coroutines.
//!
//! Write plain blocking code — [`go!`], [`chan`]nels, [`select!`], [`sync::WaitGroup`],
//! [`sync::Mutex`], [`context`], [`time`], [`signal`] — and goro runs hundreds of thousands of
//! such coroutines on a few OS threads ([`gomaxprocs`]), switching between them with a few
//! instructions of assembly. No `async`, no colouring: a blocking call parks the coroutine and
//! its worker thread runs another.
//!
//! ```
//! use std::time::Duration;
//! use goro::chan;
//!
//! let total = goro::run(|| {
//!     let (tx, rx) = chan::bounded::<u64>(0); // Go's `make(chan uint64)`
//!     let wg = goro::sync::WaitGroup::new();
//!     for i in 1..=10 {
//!         let (tx, wg) = (tx.clone(), wg.clone());
//!         wg.add(1);
//!         goro::go!(move || {
//!             goro::defer! { wg.done(); }
//!             tx.send(i * i).unwrap();
//!         });
//!     }
//!     drop(tx);
//!     let mut sum = 0;
//!     loop {
//!         goro::select! {
//!             recv(rx) -> v => match v {
//!                 Ok(v) => sum += v,
//!                 Err(_) => break, // every sender is gone: closed and drained
//!             },
//!             default(Duration::from_secs(5)) => panic!("timed out"),
//!         }
//!     }
//!     wg.wait();
//!     sum
//! });
//! assert_eq!(total, 385);
//! ```
//!
//! Network I/O is blocking-style too ([`net`], [`io`]): a read that would block parks the
//! coroutine on goro's epoll netpoller, so a one-coroutine-per-connection server scales.
//!
//! Every blocking call works on a coroutine (it parks) and on a plain OS thread (it blocks
//! the thread), and both ends of every primitive may be used from either.
//!
//! Where to read on: the scheduler's design notes open `src/sched/mod.rs`; the wait/wake
//! discipline every primitive follows is in `src/park.rs`; stacks (lazily committed, guarded,
//! pooled) in `src/stack/mod.rs`; channel invariants in `src/chan/mod.rs`; the netpoller in
//! `src/io/poll.rs`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[doc(hidden)]
#[path = "bench_support.rs"]
pub mod __bench;
pub(crate) mod arch;
mod blocking;
pub mod chan;
pub mod context;
mod coref;
mod coroutine;
pub mod io;
pub mod net;
pub(crate) mod park;
pub mod runtime;
pub(crate) mod sched;
pub mod signal;
pub(crate) mod stack;
pub mod sync;
pub mod time;

pub use blocking::blocking;
#[doc(hidden)]
pub use coroutine::__private;
pub use coroutine::{goexit, spawn, Builder, JoinError, JoinHandle};
pub use runtime::{gomaxprocs, gosched, num_cpu, num_goroutine, run, sleep};
