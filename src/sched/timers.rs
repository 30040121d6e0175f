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
//! PROVISIONAL implementation: a global binary heap served by one timer thread. The API is the
//! contract; the implementation moves into the workers' idle loop with the scheduler.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

const PENDING: u8 = 0;
const FIRED: u8 = 1;
const CANCELLED: u8 = 2;

type Callback = Box<dyn FnOnce() + Send>;

struct Entry {
    state: AtomicU8,
    deadline: Instant,
    callback: Mutex<Option<Callback>>,
}

/// A scheduled callback; dropping the handle does not cancel it.
#[derive(Clone)]
pub(crate) struct TimerHandle {
    entry: Arc<Entry>,
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
            // Free the closure (and whatever it captured) now rather than at the deadline.
            drop(lock(&self.entry.callback).take());
        }
        won
    }

    /// True while the callback has neither started nor been cancelled.
    #[allow(dead_code)]
    pub(crate) fn is_pending(&self) -> bool {
        self.entry.state.load(Ordering::Acquire) == PENDING
    }

    /// When the callback is (or was) due.
    #[allow(dead_code)]
    pub(crate) fn deadline(&self) -> Instant {
        self.entry.deadline
    }
}

struct Queue {
    heap: Mutex<BinaryHeap<Reverse<(Instant, u64, usize)>>>,
    entries: Mutex<std::collections::HashMap<u64, Arc<Entry>>>,
    cv: Condvar,
    seq: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn queue() -> &'static Queue {
    static Q: OnceLock<Queue> = OnceLock::new();
    Q.get_or_init(|| {
        std::thread::Builder::new()
            .name("goro-timer".into())
            .spawn(run_timer_thread)
            .expect("goro: cannot start the timer thread");
        Queue {
            heap: Mutex::new(BinaryHeap::new()),
            entries: Mutex::new(Default::default()),
            cv: Condvar::new(),
            seq: std::sync::atomic::AtomicU64::new(0),
        }
    })
}

/// Run `f` on a runtime thread at (or soon after) `deadline`.
pub(crate) fn schedule(deadline: Instant, f: impl FnOnce() + Send + 'static) -> TimerHandle {
    let entry = Arc::new(Entry {
        state: AtomicU8::new(PENDING),
        deadline,
        callback: Mutex::new(Some(Box::new(f))),
    });
    PENDING_COUNT.fetch_add(1, Ordering::SeqCst);
    let q = queue();
    let id = q.seq.fetch_add(1, Ordering::Relaxed);
    lock(&q.entries).insert(id, entry.clone());
    lock(&q.heap).push(Reverse((deadline, id, 0)));
    q.cv.notify_one();
    TimerHandle { entry }
}

fn run_timer_thread() {
    super::mark_runtime_thread();
    let q = queue();
    let mut heap = lock(&q.heap);
    loop {
        let now = Instant::now();
        match heap.peek().copied() {
            Some(Reverse((when, id, _))) if when <= now => {
                heap.pop();
                drop(heap);
                let entry = lock(&q.entries).remove(&id);
                if let Some(e) = entry {
                    if e.state
                        .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        PENDING_COUNT.fetch_sub(1, Ordering::SeqCst);
                        let cb = lock(&e.callback).take();
                        if let Some(cb) = cb {
                            cb();
                        }
                    }
                }
                heap = lock(&q.heap);
            }
            Some(Reverse((when, _, _))) => {
                heap =
                    q.cv.wait_timeout(heap, when - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
            }
            None => heap = q.cv.wait(heap).unwrap_or_else(|e| e.into_inner()),
        }
    }
}

static PENDING_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Callback timers scheduled and neither fired nor cancelled (for the deadlock detector).
pub(crate) fn pending() -> usize {
    PENDING_COUNT.load(Ordering::SeqCst)
}
