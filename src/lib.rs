//! goro — Go's concurrency model for Rust on stackful coroutines.
//!
//! (Crate docs with a runnable example land with the runtime.)
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
