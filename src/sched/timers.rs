//! The shared timer facility: one-shot callbacks at a deadline.
//!
//! Every timed thing in goro (`sleep`, every `*_timeout`, `after`, `tick`, `Ticker`, `Timer`,
//! `after_func`, context deadlines, `select!`'s `default(timeout)`) ends up here or in a
//! worker's local timeout heap (coroutine `park_until`, see `sched`).
//!
//! Contract for callbacks: they run on a runtime thread, not on a coroutine; they must be short
//! and must never block (unpark, `try_send`, spawn a coroutine, re-arm a timer: all fine).
//!
//! Invariants: a callback runs at most once, never before its deadline; `cancel` returns true
//! exactly when it prevented the callback from ever starting.
//!
//! Implementation: one binary heap of (deadline, id) and a map of live entries, served by one
//! timer thread that sleeps until the earliest deadline. Cancelling removes the entry at once
//! (its heap slot goes stale and is compacted away once stale slots outnumber live ones), so
//! re-arming long timers in a loop does not accumulate memory. Coroutine timeouts do not come
//! here: they live in their worker's own heap (`sched::worker`). Moving these callback timers
//! into the workers' idle loop too (as Go does) is a possible later step.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use crate::util::lock;

const PENDING: u8 = 0;
const FIRED: u8 = 1;
const CANCELLED: u8 = 2;

type Callback = Box<dyn FnOnce() + Send>;

struct Scheduled {
    state: AtomicU8,
    /// Kept for the tests only (the heap orders by its own copy).
    #[cfg(test)]
    deadline: Instant,
    id: u64,
    callback: Mutex<Option<Callback>>,
}

/// A scheduled callback; dropping the handle does not cancel it.
#[derive(Clone)]
pub(crate) struct TimerHandle {
    entry: Arc<Scheduled>,
}

impl TimerHandle {
    /// Prevent the callback from running. True if this call stopped a pending timer.
    pub(crate) fn cancel(&self) -> bool {
        let won = self
            .entry
            .state
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            PENDING_COUNT.fetch_sub(1, Ordering::SeqCst);
            // Free the closure (and whatever it captured) and the entry now rather than at the
            // deadline: a loop that keeps re-arming long timers must not accumulate them.
            let cb = lock(&self.entry.callback).take();
            let mut q = queue().lock();
            q.entries.remove(&self.entry.id);
            q.compact();
            drop(q);
            drop(cb);
        }
        won
    }

    /// True while the callback has neither started nor been cancelled.
    #[cfg(test)]
    pub(crate) fn is_pending(&self) -> bool {
        self.entry.state.load(Ordering::Acquire) == PENDING
    }
}

struct Inner {
    /// (deadline, id); an id no longer in `entries` is stale (cancelled).
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    entries: HashMap<u64, Arc<Scheduled>>,
    next_id: u64,
}

impl Inner {
    /// Drop stale heap entries once they outnumber live ones.
    fn compact(&mut self) {
        if self.heap.len() > 1024 && self.heap.len() > 2 * self.entries.len() {
            let entries = &self.entries;
            self.heap
                .retain(|Reverse((_, id))| entries.contains_key(id));
        }
    }
}

struct Queue {
    inner: Mutex<Inner>,
    cv: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }
}

fn queue() -> &'static Queue {
    static Q: OnceLock<Queue> = OnceLock::new();
    Q.get_or_init(|| {
        std::thread::Builder::new()
            .name("goro-timer".into())
            .spawn(run_timer_thread)
            .expect("goro: cannot start the timer thread");
        Queue {
            inner: Mutex::new(Inner {
                heap: BinaryHeap::new(),
                entries: HashMap::new(),
                next_id: 0,
            }),
            cv: Condvar::new(),
        }
    })
}

/// Run `f` on a runtime thread at (or soon after) `deadline`.
pub(crate) fn schedule(deadline: Instant, f: impl FnOnce() + Send + 'static) -> TimerHandle {
    PENDING_COUNT.fetch_add(1, Ordering::SeqCst);
    let q = queue();
    let mut g = q.lock();
    let id = g.next_id;
    g.next_id += 1;
    let entry = Arc::new(Scheduled {
        state: AtomicU8::new(PENDING),
        #[cfg(test)]
        deadline,
        id,
        callback: Mutex::new(Some(Box::new(f))),
    });
    g.entries.insert(id, entry.clone());
    let earliest = g.heap.peek().is_none_or(|Reverse((d, _))| deadline < *d);
    g.heap.push(Reverse((deadline, id)));
    drop(g);
    if earliest {
        q.cv.notify_one(); // the timer thread sleeps until the earliest deadline: re-aim it
    }
    TimerHandle { entry }
}

fn run_timer_thread() {
    crate::census::runtime_thread();
    super::mark_runtime_thread();
    let q = queue();
    let mut g = q.lock();
    loop {
        let now = Instant::now();
        match g.heap.peek().copied() {
            Some(Reverse((when, id))) if when <= now => {
                g.heap.pop();
                let Some(e) = g.entries.remove(&id) else {
                    continue;
                }; // cancelled
                drop(g);
                if e.state
                    .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    let cb = lock(&e.callback).take();
                    if let Some(cb) = cb {
                        // A panicking callback must not take every other timer down with it.
                        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(cb)) {
                            let msg = crate::util::panic_message(&*p).unwrap_or("(no message)");
                            crate::util::report(format_args!(
                                "goro: a timer callback panicked: {msg}"
                            ));
                        }
                    }
                    // Uncounted only now: until its callback has run, a timer may wake someone.
                    PENDING_COUNT.fetch_sub(1, Ordering::SeqCst);
                }
                g = q.lock();
            }
            Some(Reverse((when, _))) => {
                g =
                    q.cv.wait_timeout(g, when - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
            }
            None => g = q.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
        }
    }
}

static PENDING_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Callback timers scheduled and neither fired nor cancelled (for the deadlock detector).
pub(crate) fn pending() -> usize {
    PENDING_COUNT.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_order_and_cancel_reports_once() {
        let (tx, rx) = mpsc::channel();
        let now = Instant::now();
        for (i, ms) in [(2, 30u64), (0, 10), (1, 20)] {
            let tx = tx.clone();
            schedule(now + Duration::from_millis(ms), move || tx.send(i).unwrap());
        }
        let tx2 = tx.clone();
        let h = schedule(now + Duration::from_millis(15), move || {
            tx2.send(99).unwrap()
        });
        assert!(h.is_pending());
        assert!(h.cancel());
        assert!(!h.cancel(), "only the call that stopped it reports true");
        let got: Vec<i32> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, [0, 1, 2]);
        assert!(
            rx.recv_timeout(Duration::from_millis(50)).is_err(),
            "the cancelled one fired"
        );
    }

    #[test]
    fn cancelled_timers_do_not_accumulate() {
        let far = Instant::now() + Duration::from_secs(3600);
        let hs: Vec<_> = (0..50_000).map(|_| schedule(far, || ())).collect();
        for h in &hs {
            assert!(h.cancel());
        }
        let g = queue().lock();
        assert!(
            !g.entries.values().any(|e| e.deadline == far),
            "cancelled entries kept"
        );
        assert!(
            g.heap.len() < 5_000,
            "stale heap slots kept: {}",
            g.heap.len()
        );
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_others() {
        let (tx, rx) = mpsc::channel();
        let now = Instant::now();
        schedule(now + Duration::from_millis(1), || {
            panic!("deliberate, in a timer callback")
        });
        schedule(now + Duration::from_millis(5), move || tx.send(()).unwrap());
        rx.recv_timeout(Duration::from_secs(5))
            .expect("timer thread died with the panic");
    }
}
