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
//! # Panics and unwinding
//!
//! A panic in a coroutine is printed (naming the coroutine) and returned by its `join`; it
//! never takes the process down by itself. std keeps its panic state per OS thread, and a
//! coroutine may park in the middle of its unwind (a `Drop` or [`defer!`] block that sleeps,
//! sends or locks). goro's own decisions ([`defer!`] swallowing a panic only while *its*
//! coroutine unwinds) follow the coroutine, and a panic hook never lets another coroutine of
//! its worker run (its waits block the thread: std aborts on a panic that starts while the
//! thread is still in a hook). What std's per-thread state still affects while a coroutine of
//! the worker is parked mid-unwind, for every other coroutine of that worker:
//! - `std::thread::panicking()` is true (so user `Drop` code that asks it is misled);
//! - a `std::sync::MutexGuard` taken before that window and dropped in it poisons its mutex;
//! - std's default hook prints a full backtrace with every panic (it takes it for a double
//!   panic).
//!
//! A panic hook set with `std::panic::set_hook` after the runtime started replaces goro's:
//! set hooks before the first goro call so that goro wraps them.
//!
//! Where to read on: the scheduler's design notes open `src/sched/mod.rs`; the wait/wake
//! discipline every primitive follows is in `src/park/mod.rs` (and its one-shot hand-over in
//! `src/park/oneshot.rs`); the coroutine state machine in `src/co/state.rs`; stacks (lazily
//! committed, guarded, pooled) in `src/stack/mod.rs`; channel invariants in `src/chan/mod.rs`.
//!
//! Layers (each module imports only from those below it; read bottom-up):
//! ```text
//!   chan  sync  time  context  signal        the primitives users see
//!   runtime                                  facade: gomaxprocs, run, dump, ...
//!   coroutine (spawn, Builder, JoinHandle, goexit, defer!, go!)   blocking
//!   park (current/park/unpark, OneShot)
//!   sched (mod -> worker -> shared; sysmon, timers, reasons, dump, panic_hook, queues)
//!   co (Co, state machine, CoRef)
//!   arch (SwitchContext)
//!   stack
//!   util (lock ignoring poison, RNG, panic_message)
//! ```
//! (`chan` -> `time` is still an edge of the primitives' layer being removed on the `chan`
//! side.)
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(feature = "bench-support")]
#[doc(hidden)]
#[path = "bench_support.rs"]
pub mod __bench;
pub(crate) mod arch;
mod blocking;
mod census;
pub mod chan;
mod co;
pub mod context;
mod coroutine;
mod deadline;
pub mod io;
pub mod net;
pub(crate) mod park;
pub mod runtime;
pub(crate) mod sched;
pub mod signal;
pub(crate) mod stack;
pub mod sync;
pub mod time;
pub(crate) mod util;

pub use blocking::blocking;
#[doc(hidden)]
pub use coroutine::__private;
pub use coroutine::{goexit, spawn, Builder, JoinError, JoinHandle};
pub use runtime::{gomaxprocs, gosched, num_cpu, num_goroutine, run, sleep};
