//! `blocking(f)`: run a call that blocks outside goro (file I/O, DNS, a C library, a std
//! lock) on a separate pool of OS threads while the calling coroutine parks, so its worker
//! keeps running other coroutines.
//!
//! The pool grows on demand (a new thread when none is idle, up to `MAX_THREADS`; past that,
//! jobs queue) and a thread exits after `IDLE_EXIT` without work. While a job is in flight it
//! counts as a wake source, so `run`'s deadlock detector never mistakes the parked caller for
//! a deadlock.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::park;

const MAX_THREADS: usize = 512;
const IDLE_EXIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    cv: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

static POOL: Pool = Pool {
    state: Mutex::new(PoolState {
        jobs: VecDeque::new(),
        threads: 0,
        idle: 0,
    }),
    cv: Condvar::new(),
};

fn lock() -> std::sync::MutexGuard<'static, PoolState> {
    crate::util::lock(&POOL.state)
}

fn submit(job: Job) {
    let mut st = lock();
    st.jobs.push_back(job);
    if st.idle == 0 && st.threads < MAX_THREADS {
        st.threads += 1;
        drop(st);
        let spawned = std::thread::Builder::new()
            .name("goro-blocking".into())
            .spawn(pool_thread);
        if spawned.is_err() {
            // No thread could be made: the queued job waits for an existing one (there is at
            // least one unless this was the first, in which case run it here, blocking).
            let mut st = lock();
            st.threads -= 1;
            if st.threads == 0 {
                if let Some(job) = st.jobs.pop_back() {
                    drop(st);
                    job();
                }
            }
        }
    } else {
        drop(st);
        POOL.cv.notify_one();
    }
}

fn pool_thread() {
    crate::census::runtime_thread();
    crate::sched::mark_runtime_thread();
    let mut st = lock();
    loop {
        if let Some(job) = st.jobs.pop_front() {
            drop(st);
            job(); // never unwinds: `blocking` wraps the user's closure in catch_unwind
            st = lock();
            continue;
        }
        st.idle += 1;
        let (g, timeout) = POOL
            .cv
            .wait_timeout(st, IDLE_EXIT)
            .unwrap_or_else(|e| e.into_inner());
        st = g;
        st.idle -= 1;
        if timeout.timed_out() && st.jobs.is_empty() {
            st.threads -= 1;
            return;
        }
    }
}

/// Run `f` on a separate thread pool and park the calling coroutine until it returns; return
/// its value (a panic in `f` is resumed here). Use it for calls that block the OS thread
/// without goro knowing: file I/O, DNS lookups, C libraries, `std::sync` locks, long CPU work
/// that should not hold a worker. On a plain thread it simply calls `f`.
///
/// ```
/// let len = goro::spawn(|| goro::blocking(|| std::fs::read("Cargo.toml").map(|b| b.len()))).join().unwrap();
/// assert!(len.unwrap() > 0);
/// ```
pub fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if !park::in_coroutine() {
        return f();
    }
    struct Slot<T> {
        done: AtomicBool,
        result: Mutex<Option<std::thread::Result<T>>>,
    }
    let slot = Arc::new(Slot {
        done: AtomicBool::new(false),
        result: Mutex::new(None),
    });
    let waiter = park::current();
    let s = slot.clone();
    crate::sched::add_wake_source();
    submit(Box::new(move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        *crate::util::lock(&s.result) = Some(r);
        s.done.store(true, Ordering::Release);
        waiter.unpark();
    }));
    while !slot.done.load(Ordering::Acquire) {
        park::park("blocking call");
    }
    crate::sched::remove_wake_source();
    let r = crate::util::lock(&slot.result)
        .take()
        .expect("result stored before done");
    match r {
        Ok(v) => v,
        Err(p) => panic::resume_unwind(p),
    }
}
