//! Runtime control and introspection: `gomaxprocs`, `num_goroutine`, `num_cpu`, `gosched`,
//! `sleep`, `run` (with Go's deadlock detection) and `dump`.

use std::fmt::Write as _;
use std::panic;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::coroutine::{self, Builder, PARKED, RUNNABLE, RUNNING};
use crate::sched::{self, reasons, MAX_WORKERS};

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
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Yield: let other runnable coroutines run, then continue (on a plain thread:
/// `std::thread::yield_now`).
pub fn gosched() {
    sched::yield_now()
}

/// Park the calling coroutine (or block the calling thread) for at least `d`; the same as
/// [`time::sleep`](crate::time::sleep).
pub fn sleep(d: Duration) {
    crate::time::sleep(d)
}

/// Run `f` as the main coroutine and wait for it on the calling thread; return its value.
///
/// A panic in `f` (or a `goexit`) is resumed as a panic on the calling thread. While `run`
/// waits, Go's deadlock detection is on: when the main coroutine and every other coroutine are
/// parked on goro primitives and no timer, signal registration, or plain thread that has used
/// goro could wake any of them, it prints "fatal error: all coroutines are asleep - deadlock!"
/// and [`dump`] to stderr and exits with status 2. Env `GORO_DEADLOCK=0` turns that off.
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
    let h = Builder::new()
        .name("main")
        .spawn(f)
        .unwrap_or_else(|e| panic!("goro::run: cannot start the main coroutine: {e}"));
    let r = sched::rt();
    let was = r.main_running.swap(true, Ordering::SeqCst);
    let res = h.join();
    if !was {
        r.main_running.store(false, Ordering::SeqCst);
    }
    match res {
        Ok(v) => v,
        Err(e) if e.is_goexit() => panic!("goro::run: the main coroutine called goexit"),
        Err(e) => panic::resume_unwind(e.into_panic()),
    }
}

/// One line per live coroutine: id, name, state, what it waits on and for how long (wait
/// durations are approximate, to the monitor's ~10–100 ms clock). Coroutines not yet started
/// are summed up in one line.
pub fn dump() -> String {
    let Some(r) = sched::rt_if_started() else {
        return String::from("(goro runtime not started)\n");
    };
    let now = r.now_ms();
    let mut out = String::new();
    let mut started = 0usize;
    let mut io_waits = None;
    for i in 0..r.created() {
        let Some(w) = r.worker(i) else { continue };
        let reg = w.registry.lock().unwrap_or_else(|e| e.into_inner());
        for co in reg.slots.iter().flatten() {
            started += 1;
            let _ = write!(out, "coroutine {}", co.id);
            if let Some(n) = &co.name {
                let _ = write!(out, " {n:?}");
            }
            let state = co.state.load(Ordering::Acquire);
            match state {
                PARKED => {
                    let why = reasons::lookup(co.reason.load(Ordering::Relaxed));
                    let since = co.wait_since.load(Ordering::Relaxed);
                    let why = if why.is_empty() { "waiting" } else { why };
                    let ms = now.saturating_sub(since);
                    let io = (why == crate::io::IO_WAIT)
                        .then(|| io_waits.get_or_insert_with(io_wait_table).get(&co.id))
                        .flatten();
                    match io {
                        // e.g. "[IO wait (read, fd 7, 120 ms)]"
                        Some(what) => {
                            let _ = write!(out, " [{why} ({what}, {ms} ms)]");
                        }
                        None => {
                            let _ = write!(out, " [{why}, {ms} ms]");
                        }
                    }
                }
                RUNNABLE => out.push_str(" [runnable]"),
                RUNNING | coroutine::NOTIFIED => out.push_str(" [running]"),
                _ => out.push_str(" [finishing]"),
            }
            let _ = writeln!(out, " on worker {i}, stack {} KiB", co.stack_size / 1024);
        }
    }
    let fresh = r.live().saturating_sub(started);
    if fresh > 0 {
        let _ = writeln!(out, "{fresh} coroutines not started yet [runnable]");
    }
    if out.is_empty() {
        out.push_str("(no coroutines)\n");
    }
    out
}

/// What each coroutine parked on I/O waits for ("read, fd 7"), by coroutine id.
fn io_wait_table() -> std::collections::HashMap<u64, String> {
    sched::poller::get()
        .map(|p| p.describe_waits())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Wrap the panic hook so a panic on a coroutine names the coroutine before the usual report.
pub(crate) fn install_panic_hook() {
    let prev = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if let Some(co) = sched::current_coroutine() {
            match &co.name {
                Some(n) => eprintln!(
                    "goro: panic in coroutine {} {n:?} (join() returns it; the runtime continues)",
                    co.id
                ),
                None => eprintln!(
                    "goro: panic in coroutine {} (join() returns it; the runtime continues)",
                    co.id
                ),
            }
        }
        prev(info)
    }));
}
