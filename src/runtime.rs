//! Runtime control and introspection: `gomaxprocs`, `num_goroutine`, `num_cpu`, `gosched`,
//! `sleep`, `run` (with Go's deadlock detection) and `dump`. A facade: the work is done in
//! `sched` (dump, the panic hook, worker counts) and `park` (sleep).

use std::panic;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::coroutine::Builder;
use crate::sched::{self, MAX_WORKERS};

/// Set the number of worker threads that run coroutines and return the previous value;
/// `gomaxprocs(0)` only queries. The default is env `GOMAXPROCS` if set, else [`num_cpu`].
///
/// Values above the CPU count are allowed (as in Go). Values above 1024 are clamped to 1024
/// with a message on stderr. Lowering the count while running retires surplus workers: they
/// stop taking new coroutines at once, but finish the started coroutines they host (a started
/// coroutine never moves to another thread — see the scheduler's design notes).
///
/// ```
/// let before = goro::gomaxprocs(0);
/// assert!(before >= 1);
/// ```
pub fn gomaxprocs(n: usize) -> usize {
    let n = if n > MAX_WORKERS {
        eprintln!("goro: gomaxprocs({n}) is absurd; clamped to {MAX_WORKERS}");
        MAX_WORKERS
    } else {
        n
    };
    match sched::rt_if_started() {
        None => {
            // Not started: remember the wish; the runtime starts with it.
            let prev = crate::sched::desired_procs();
            if n > 0 && !crate::sched::set_desired_procs(n) {
                // Starting concurrently (it has read its wish already): wait until it is up,
                // then apply this one for real.
                return apply(sched::rt(), n);
            }
            prev
        }
        Some(r) => {
            if n == 0 {
                r.target.load(Ordering::Relaxed)
            } else {
                apply(r, n)
            }
        }
    }
}

fn apply(r: &'static sched::Runtime, n: usize) -> usize {
    let prev = r.target.swap(n, Ordering::SeqCst);
    r.grow_workers(n);
    prev
}

/// The number of coroutines that exist now: spawned and not yet finished. A finished
/// coroutine is uncounted before its `join` returns.
pub fn num_goroutine() -> usize {
    sched::rt_if_started().map_or(0, |r| r.live())
}

/// The number of logical CPUs usable by this process (its affinity mask respected).
pub fn num_cpu() -> usize {
    sched::num_cpu()
}

/// Yield: let other runnable coroutines run, then continue (on a plain thread:
/// `std::thread::yield_now`).
///
/// # The cooperative budget
/// goro does not preempt, but its own operations yield for you now and then: channel sends,
/// receives and selections, `sync` lock and acquire calls, and `io`/`net` operations each
/// spend one unit of a budget of 128 that refills whenever the coroutine parks or yields. When
/// it runs out, the operation first yields as `gosched` does if another coroutine is runnable
/// on the same worker, so a loop of `try_send`s or `try_recv`s cannot starve the coroutine it
/// waits for. Plain threads never yield this way. A pure CPU loop that calls none of them still
/// needs an explicit `gosched` (the monitor reports one that runs for over a second).
pub fn gosched() {
    sched::yield_now()
}

/// Park the calling coroutine (or block the calling thread) for at least `d`; the same as
/// [`time::sleep`](crate::time::sleep).
pub fn sleep(d: Duration) {
    crate::park::sleep(d)
}

/// Run `f` as the main coroutine and wait for it on the calling thread; return its value.
///
/// A panic in `f` (or a `goexit`) is resumed as a panic on the calling thread. While `run`
/// waits, Go's deadlock detection is on: when the main coroutine and every other coroutine are
/// parked on goro primitives and nothing could wake any of them, it prints "fatal error: all
/// coroutines are asleep - deadlock!" and [`dump`] to stderr and exits with status 2. Env
/// `GORO_DEADLOCK=0` turns that off.
///
/// The detector never kills a correct program, so anything that might wake a coroutine keeps
/// it quiet: a pending timer (however far away), a signal registration, a [`blocking`](crate::blocking)
/// call in flight, and any thread of the process that goro did not start and that is not
/// waiting in `run` — such a thread may hold a `Sender`, a `sync::Mutex`, a `WaitGroup` or a
/// `CancelFunc`. Threads are counted from the kernel (`/proc/self/status`); where that cannot
/// be read, detection is off. So a program (or a libtest test, whose harness thread waits for
/// the test) that runs threads of its own gets no report: a deadlock there hangs instead.
///
/// ```
/// let v = goro::run(|| {
///     let h = goro::spawn(|| 21);
///     h.join().unwrap() * 2
/// });
/// assert_eq!(v, 42);
/// ```
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    crate::census::open_status();
    let h = Builder::new()
        .name("main")
        .spawn(f)
        .unwrap_or_else(|e| panic!("goro::run: cannot start the main coroutine: {e}"));
    let r = sched::rt();
    // This thread waits in `join` below and can wake no coroutine meanwhile.
    let caller = crate::census::run_caller();
    let was = r.main_running.swap(true, Ordering::SeqCst);
    let res = h.join();
    drop(caller);
    if !was {
        r.main_running.store(false, Ordering::SeqCst);
    }
    match res {
        Ok(v) => v,
        Err(e) if e.is_goexit() => panic!("goro::run: the main coroutine called goexit"),
        Err(e) => panic::resume_unwind(e.into_panic()),
    }
}

/// The index (`0..gomaxprocs`) of the worker thread running the calling coroutine, or `None`
/// on a plain thread.
///
/// A started coroutine never moves to another worker, so the value is the same for the
/// coroutine's whole life: it tells where the scheduler placed it (for balance checks and
/// diagnostics; the placement rule is in the scheduler's design notes).
///
/// ```
/// assert_eq!(goro::runtime::worker_id(), None); // a plain thread
/// let id = goro::spawn(goro::runtime::worker_id).join().unwrap();
/// assert!(id.is_some());
/// ```
pub fn worker_id() -> Option<usize> {
    sched::current_worker()
}

/// One line per live coroutine: id, name, state, what it waits on and for how long (wait
/// durations are approximate, to the monitor's ~10–100 ms clock). Coroutines not yet started
/// are summed up in one line.
pub fn dump() -> String {
    sched::dump()
}
