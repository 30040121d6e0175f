//! Small helpers with no goro dependencies, at the bottom of the module stack: every other
//! module may use them, and they use nothing of goro's.
//!
//! - [`lock`]: take a `std::sync::Mutex` ignoring poisoning. goro's internal locks guard short
//!   critical sections with no user code in them, so a poisoned flag can only mean a panic
//!   elsewhere on that thread, and must never turn into a second, user-visible panic.
//! - [`panic_message`]: the text of a panic payload, if it has one.
//! - [`Rng`] and [`random_u64`]: one xorshift64* generator, for randomised choices (which
//!   worker to steal from, the order of `select!`'s cases). Fast and statistically fair for
//!   that; not for anything secret.
//! - [`report`]: print a diagnostic of goro's own threads straight to the process's stderr.

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};

/// Lock `m`, ignoring poisoning (see the module docs).
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Write a diagnostic line of goro's own threads (the monitor, workers, the timer thread)
/// straight to the process's stderr, as `eprintln!` would outside tests.
///
/// Not `eprintln!`: a thread inherits the output capture of the thread that spawned it, so
/// under libtest the runtime's threads print into the capture buffer of whichever test started
/// the runtime. A report there shows only if that test fails, goes nowhere once that test has
/// ended, and is lost with the process if it hangs and is killed: exactly when a report such
/// as "has run for N ms without yielding" is the one clue. `io::stderr()` bypasses capture.
pub(crate) fn report(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    let _ = e.write_fmt(args);
    let _ = e.write_all(b"\n");
}

/// The message of a panic payload (`panic!("...")` or `panic!("{x}")`), if it is text.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> Option<&str> {
    p.downcast_ref::<&'static str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str()))
}

/// A xorshift64* pseudo-random generator in a `Cell` (one owner thread; not `Sync`).
pub(crate) struct Rng(Cell<u64>);

impl Rng {
    /// A generator started from `seed` (any value: zero, a fixed point, is avoided).
    pub(crate) const fn new(seed: u64) -> Rng {
        Rng(Cell::new(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        }))
    }

    /// The next 64 random bits.
    #[inline]
    pub(crate) fn next_u64(&self) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// 64 random bits from a per-thread [`Rng`] (one TLS access), seeded on first use from the
/// address of a thread-local and the clock, so that threads draw different sequences.
#[inline(never)]
pub(crate) fn random_u64() -> u64 {
    thread_local! {
        // State 0 (which `Rng::new` never makes): not seeded yet.
        static RNG: Rng = const { Rng(Cell::new(0)) };
    }
    RNG.try_with(|r| {
        if r.0.get() == 0 {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            r.0.set(
                Rng::new((r as *const Rng as u64) ^ t.rotate_left(32))
                    .0
                    .get(),
            );
        }
        r.next_u64()
    })
    .unwrap_or(0x2545_F491_4F6C_DD1D)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ignores_poisoning() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
    }

    #[test]
    fn rng_is_not_stuck_and_spreads_over_buckets() {
        let r = Rng::new(0);
        let mut buckets = [0u32; 8];
        for _ in 0..8000 {
            buckets[(r.next_u64() % 8) as usize] += 1;
        }
        // 1000 expected per bucket; a stuck or badly skewed generator misses this by far.
        assert!(
            buckets.iter().all(|&b| (800..1200).contains(&b)),
            "{buckets:?}"
        );
        assert_ne!(random_u64(), random_u64());
    }
}
