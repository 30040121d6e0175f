//! The monitor thread (Go's sysmon): keeps the coarse clock, rescues the fresh work of a worker
//! stuck in one coroutine, reports such a coroutine once, runs `run`'s deadlock detector, and
//! polls for I/O when no worker has for 10 ms (`poller::poll_if_stale`).
//!
//! It polls every 10 ms while any worker runs a coroutine and backs off to 100 ms when the
//! runtime is idle (an idle process then costs ~10 wake-ups a second: far below 1% of a core).

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{rt, runq::RunQueue, Runtime};
use crate::co::{Co, PARKED};

pub(crate) use super::shared::COARSE_MS;

/// A worker running one coroutine this long has its fresh coroutines moved elsewhere.
const STUCK_MS: u64 = 10;

pub(crate) fn start() {
    std::thread::Builder::new()
        .name("goro-sysmon".into())
        .stack_size(256 * 1024)
        .spawn(run)
        .expect("goro: cannot start the monitor thread");
}

fn report_after_ms() -> u64 {
    match std::env::var("GORO_STUCK_REPORT_MS") {
        Ok(v) => v.trim().parse().unwrap_or(1000),
        Err(_) => 1000,
    }
}

fn run() {
    crate::census::runtime_thread();
    let r = rt();
    let report_ms = report_after_ms();
    let deadlock_on = std::env::var("GORO_DEADLOCK").map_or(true, |v| v.trim() != "0");
    let mut last_tick: Vec<u64> = Vec::new();
    let mut reported: Vec<u64> = Vec::new();
    let rescue = RunQueue::new();
    let mut period = Duration::from_millis(10);
    let mut asleep_checks = 0u32;
    let mut asleep_since_ms = 0u64;
    // Pooled stacks that grew are trimmed only once the runtime has been idle for a while:
    // trimming between bursts of work would make the next burst fault every page back in.
    let mut idle_since: Option<u64> = None;
    let mut trimmed_this_idle = false;
    loop {
        std::thread::sleep(period);
        let now = r.now_ms();
        COARSE_MS.store(now, Ordering::Relaxed);
        // The fallback poller, for when every worker has been busy.
        super::poller::poll_if_stale(now, STUCK_MS);
        let n = r.created();
        last_tick.resize(n, u64::MAX);
        reported.resize(n, u64::MAX);
        let mut busy = false;
        for i in 0..n {
            let Some(w) = r.worker(i) else { continue };
            let running = w.running.load(Ordering::Relaxed);
            let tick = w.tick.load(Ordering::Relaxed);
            if running == 0 {
                last_tick[i] = u64::MAX;
                continue;
            }
            busy = true;
            let since = w.running_since.load(Ordering::Relaxed);
            if last_tick[i] == tick && now.saturating_sub(since) >= STUCK_MS {
                let moved = rescue_fresh(r, w, &rescue);
                if report_ms > 0 && now.saturating_sub(since) >= report_ms && reported[i] != tick {
                    reported[i] = tick;
                    crate::util::report(format_args!(
                        "goro: coroutine {running} has run for {} ms on worker {i} without yielding (a busy loop or a blocking call?); {moved} waiting coroutines moved to other workers",
                        now.saturating_sub(since)
                    ));
                }
            }
            last_tick[i] = tick;
        }
        if busy {
            idle_since = None;
            trimmed_this_idle = false;
        } else {
            let since = *idle_since.get_or_insert(now);
            if !trimmed_this_idle && now.saturating_sub(since) >= 2000 {
                trimmed_this_idle = true;
                crate::stack::trim_pool();
            }
        }
        if deadlock_on && r.main_running.load(Ordering::SeqCst) && !busy && all_asleep(r) {
            if asleep_checks == 0 {
                asleep_since_ms = now;
            }
            asleep_checks += 1;
            // Stable over several checks spanning 200 ms: declare the deadlock.
            if asleep_checks >= 3 && now.saturating_sub(asleep_since_ms) >= 200 && all_asleep(r) {
                report_deadlock();
            }
            period = Duration::from_millis(50);
            continue;
        }
        asleep_checks = 0;
        period = if busy {
            Duration::from_millis(10)
        } else {
            (period * 2).min(Duration::from_millis(100))
        };
    }
}

/// Move the fresh coroutines of a stuck worker (its gifts too) to the global queue. Returns how many moved.
fn rescue_fresh(r: &'static Runtime, w: &'static super::WorkerShared, rescue: &RunQueue) -> usize {
    let mut moved = 0;
    let p = w.runnext.load(Ordering::Acquire);
    if !p.is_null()
        && p as usize & 1 == 1
        && w.runnext
            .compare_exchange(p, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        // SAFETY: the CAS took ownership of this tagged `CoRef::into_raw` pointer.
        let co = unsafe { crate::co::CoRef::from_raw((p as usize & !1) as *const Co) };
        r.global.push(co);
        moved += 1;
    }
    for c in w.lifo.take_all() {
        r.global.push(c);
        moved += 1;
    }
    while let Some(c) = w.gifts.pop() {
        r.global.push(c);
        moved += 1;
    }
    while let Some(first) = w.runq.steal_into(rescue, usize::MAX) {
        r.global.push(first);
        moved += 1;
        while let Some(c) = rescue.pop() {
            r.global.push(c);
            moved += 1;
        }
    }
    if moved > 0 {
        r.wake_idle_worker();
    }
    moved
}

/// Every coroutine is parked with no deadline, and nothing could wake one.
fn all_asleep(r: &'static Runtime) -> bool {
    if r.wake_sources.load(Ordering::SeqCst) > 0
        || super::timers::pending() > 0
        || super::poller::get().is_some_and(|p| p.has_waiters())
    {
        return false;
    }
    if r.plain_threads.load(Ordering::SeqCst) > r.plain_blocked.load(Ordering::SeqCst) {
        return false;
    }
    if !r.global.is_empty() {
        return false;
    }
    let mut started = 0;
    let mut parked = 0;
    for i in 0..r.created() {
        let Some(w) = r.worker(i) else { continue };
        if w.running.load(Ordering::SeqCst) != 0
            || w.timeouts.load(Ordering::SeqCst) > 0
            || w.runq.len() > 0
            || w.lifo.len() > 0
            || !w.gifts.is_empty()
            || !w.runnext.load(Ordering::SeqCst).is_null()
            || !w.inbox.is_empty()
        {
            return false;
        }
        let reg = crate::util::lock(&w.registry);
        for co in reg.slots.iter().flatten() {
            started += 1;
            if co.state.load(Ordering::SeqCst) == PARKED {
                parked += 1;
            }
        }
        if w.parked_forever.load(Ordering::SeqCst) != reg.len {
            return false;
        }
    }
    // A thread goro did not start may hold the other end of what a coroutine waits on. Asked
    // last: it reads the kernel's thread count, the one check here that costs a system call.
    started == parked && r.live() == started && !crate::census::foreign_threads()
}

fn report_deadlock() -> ! {
    let dump = crate::runtime::dump();
    crate::util::report(format_args!(
        "fatal error: all coroutines are asleep - deadlock!\n\n{dump}"
    ));
    std::process::exit(2);
}
