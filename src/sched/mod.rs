//! The M:N scheduler: coroutines multiplexed onto `gomaxprocs` worker threads.
//!
//! # Design
//!
//! Go's G-M-P scheduler (the comment atop Go's `runtime/proc.go`) is the model, changed where
//! Rust's soundness demands it:
//!
//! * **Workers.** `gomaxprocs` OS threads each run a loop: find a runnable coroutine, switch to
//!   it, come back when it parks, yields or finishes. A worker has
//!   - `runnext`: the coroutine most recently made runnable by the running one (spawned or
//!     woken). It runs next, so a message exchange between two coroutines costs two context
//!     switches and no queue traffic — the ping-pong fast path. It has two halves: a started
//!     coroutine woken here sits in an owner-only cell (it can never be stolen, so no locked
//!     instruction), a fresh one in an atomic slot that thieves and the monitor may take. A
//!     streak limit stops two coroutines from starving the rest of the worker's queue;
//!   - `lifo`: the fresh (never started) coroutines it spawned, run *newest first* so that
//!     fork/join trees run depth-first while their stacks are in cache; idle workers steal the
//!     oldest half; every 61 rounds the oldest runs, so nothing starves (`lifo.rs`: a departure
//!     from Go's FIFO order, 2.2× on skynet);
//!   - `runq`: a bounded FIFO ring of fresh coroutines (the overflow of `lifo`, and work stolen
//!     from others) that idle workers may steal half of (`runq.rs`);
//!   - `ready`: a plain queue of *started* coroutines that are runnable (yielded, or woken on
//!     this worker). Only the owner touches it;
//!   - `inbox`: started coroutines woken from other threads, pushed by the waker and drained by
//!     the owner;
//!   - `yielded`: the coroutine that last called `gosched`; it runs again when nothing else
//!     on the worker is runnable (Go puts it on the global queue for the same effect), so a
//!     coroutine that yields in a loop while it waits for another cannot starve it; and every
//!     61 rounds it joins `ready`, so that coroutines waking each other cannot starve it.
//!   - `gifts`: fresh coroutines other threads placed on it because it was the lightest worker
//!     (see Placement); it starts them before its own `lifo`.
//! * **The soundness rule.** A coroutine's stack may hold `!Send` values and the compiler may
//!   cache thread-local addresses across calls, so resuming a *started* coroutine on another OS
//!   thread is undefined behaviour that no type bound rules out (the unsoundness of `may`'s
//!   `go!`). So: a fresh coroutine is just a `Send` closure and may run anywhere (it is stolen,
//!   injected, moved off a stuck worker); once started it stays on its worker forever. Wake-ups
//!   from other threads go to the owner's `inbox`. Balance therefore comes from where fresh
//!   work *starts*.
//! * **Placement** (`placement.rs`, the full rule there). A worker's load is the started
//!   coroutines it hosts plus the fresh ones queued on it; a busy (not idle, "hungry") worker
//!   weighs 2 more. Weighing finds the lightest worker; a heavier one then moves up to half the
//!   difference of its queued fresh work, oldest first, to the lighter one's `gifts` (never
//!   the coroutine in hand). A spawn weighs during a burst (the 4th, 12th, 28th, ... spawn of a
//!   run slice) and on every 32nd spawn of a worker; the new coroutine itself always goes to
//!   the spawner's `runnext` (the cheap path). A worker about to start fresh work of its own
//!   while another is hungry weighs first, so idle workers get fresh work before it starts. Plain threads always spawn onto the lightest worker. Idle
//!   workers steal only from a worker heavier by two or more, and at most half the difference,
//!   or from one stuck in a coroutine for 3 ms; gifts only from a stuck one. An idle worker
//!   that sees fresh work it may not take sleeps at most 2 ms. `accept` yields every 32
//!   connections in a row (`coop_point`), so an accept loop in a connection storm lets its
//!   worker start its share of the connection coroutines.
//! * **Global queue.** The overflow of a full `runq`, the fresh work of retiring and stuck
//!   workers, and spawns from plain threads before any worker exists go to a global injector.
//!   Workers take at most their share of it at once (`len / gomaxprocs`), and look at it every
//!   61 scheduling rounds even when busy, so nothing there starves.
//! * **Idle workers** spin briefly (looking at the global queue and stealing), then sleep in
//!   `thread::park_timeout` until their earliest local timeout. A worker is woken only when
//!   there is work for it: a started coroutine of its own was woken (its `sleeping` flag is
//!   checked after the inbox push, with a SeqCst fence on both sides), or stealable work
//!   appeared while no other worker is spinning (one spinner at a time; no thundering herd).
//!   An idle runtime therefore burns no CPU.
//! * **I/O** (`poller.rs`, a hook the I/O layer installs; the scheduler never imports it): an
//!   idle worker polls without blocking before it spins, and at most one sleeping worker
//!   blocks in the poller instead of `thread::park`; waking that worker also interrupts it.
//! * **Timeouts.** A coroutine's `park_until` puts an entry in its worker's local heap (no
//!   locks: the coroutine never leaves that worker). The worker checks it every 61 rounds and
//!   before sleeping; entries made stale by an earlier wake-up are skipped, and compacted away
//!   when they outnumber the live ones. Callback timers (`sched::timers`) are separate.
//! * **Cooperative budget** (`coop.rs`): goro's non-parking operations spend a per-thread
//!   budget refilled at every switch-in; when it is gone the coroutine yields if anything else
//!   on its worker is runnable, so a loop of `try_send`s cannot starve the coroutine it woke.
//! * **Monitor** (`sysmon.rs`, Go's sysmon): notices a worker stuck in one coroutine (a busy
//!   loop or a blocking syscall), moves that worker's fresh coroutines (gifts too) to the
//!   global queue so others run them, and reports it once; and runs `run`'s deadlock detector.
//! * **gomaxprocs** can change at run time: new workers start at once; surplus workers *retire*:
//!   they hand their fresh work to the global queue and stop taking new work, but keep running
//!   the started coroutines they host until those finish (a started coroutine cannot move);
//!   then their threads end (`WorkerLocal::try_exit`). Growing again starts a new thread in
//!   each such slot; the retirement and the restart are ordered by one lock, so neither is
//!   missed.
//!
//! Files: `shared.rs` (state other threads see: `Runtime`, `WorkerShared`), `placement.rs`
//! (weighing workers, gifts; imports `shared`), `worker.rs` (the owner-only half and the loop;
//! imports `shared`, `placement`, `coop`, `compaction` and `poller`), this file (starting the
//! runtime and the crate-internal interface: park/unpark/spawn/yield/budget, on top of both),
//! `coop.rs` (the budget counter), `compaction.rs` (idle-stack compaction policy),
//! `sysmon.rs`, `timers.rs`, `reasons.rs` (`WaitReason`), `dump.rs`, `panic_hook.rs`, and the
//! queues (`runq.rs`, `lifo.rs`, `global.rs`). Coroutine state transitions live in
//! `co/state.rs`.
//!
//! Thread-locals of the runtime are read only through `#[inline(never)]` accessors
//! ([`this_worker`]) and never held across a context switch (the budget counter of `coop.rs`
//! is inlined; its module docs argue why that is sound).

pub(crate) mod compaction;
mod coop;
mod dump;
mod global;
pub(crate) mod lifo;
mod panic_hook;
mod placement;
pub(crate) mod poller;
pub(crate) mod reasons;
pub(crate) mod runq;
mod shared;
pub(crate) mod sysmon;
pub(crate) mod timers;
mod worker;

use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;

use crate::co::Co;
pub(crate) use crate::co::CoRef;
pub(crate) use dump::dump;
pub(crate) use reasons::WaitReason;
use shared::RUNTIME;
pub(crate) use shared::{
    coarse_now_ms, count_up, rt_if_started, CoPtr, Registry, Runtime, WorkerShared, MAX_WORKERS,
};
pub(crate) use worker::{this_worker, Next};

static DESIRED: AtomicUsize = AtomicUsize::new(0);

/// The runtime, started on first use.
pub(crate) fn rt() -> &'static Runtime {
    match RUNTIME.get() {
        Some(r) => r,
        None => start(),
    }
}

pub(crate) fn ensure_started() {
    let _ = rt();
}

/// The number of logical CPUs usable by this process (its affinity mask respected).
pub(crate) fn num_cpu() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The default gomaxprocs: env `GOMAXPROCS` if valid, else the CPU count.
pub(crate) fn default_procs() -> usize {
    match std::env::var("GOMAXPROCS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n.min(MAX_WORKERS),
            _ => {
                eprintln!("goro: ignoring invalid GOMAXPROCS={v:?} (want a positive integer)");
                num_cpu()
            }
        },
        Err(_) => num_cpu(),
    }
}

#[cold]
fn start() -> &'static Runtime {
    let r = RUNTIME.get_or_init(|| Runtime {
        workers: (0..MAX_WORKERS).map(|_| OnceLock::new()).collect(),
        created: Mutex::new(0),
        created_fast: AtomicUsize::new(0),
        target: AtomicUsize::new(match DESIRED.swap(DESIRED_TAKEN, Ordering::SeqCst) {
            0 | DESIRED_TAKEN => default_procs(),
            n => n,
        }),
        global: global::GlobalQueue::new(),
        idle: AtomicUsize::new(0),
        spinning: AtomicUsize::new(0),
        hungry: AtomicUsize::new(0),
        plain_spawned: AtomicU64::new(0),
        plain_finished: AtomicU64::new(0),
        plain_threads: AtomicUsize::new(0),
        plain_blocked: AtomicUsize::new(0),
        wake_sources: AtomicUsize::new(0),
        main_running: AtomicBool::new(false),
        epoch: Instant::now(),
    });
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        panic_hook::install_panic_hook();
        crate::stack::overflow::install();
        let n = r.target.load(Ordering::Relaxed);
        r.grow_workers(n);
        sysmon::start();
        // Let the workers reach their idle loop before the first spawn is placed, so that a
        // burst of spawns right after start sees them hungry and spreads (`placement.rs`).
        // Bounded: a machine too loaded to start a thread in 100 ms just starts unbalanced.
        let t0 = Instant::now();
        while r.hungry.load(Ordering::SeqCst) < n && t0.elapsed() < Duration::from_millis(100) {
            std::thread::yield_now();
        }
    });
    r
}

impl Runtime {
    /// Start worker threads until `n` exist; restart the threads of retired workers below `n`
    /// that have exited, and wake the others so they take work again.
    pub(crate) fn grow_workers(&'static self, n: usize) {
        let mut created = crate::util::lock(&self.created);
        for i in 0..(*created).min(n) {
            if let Some(w) = self.worker(i) {
                if w.exited.load(Ordering::SeqCst) {
                    // Its thread ended with nothing left here (see `WorkerLocal::try_exit`), so
                    // the slot is as a new one: empty queues, empty registry.
                    w.sleeping.store(false, Ordering::SeqCst);
                    w.exited.store(false, Ordering::SeqCst);
                    spawn_worker_thread(w);
                }
            }
        }
        while *created < n {
            let i = *created;
            let shared: &'static WorkerShared = Box::leak(Box::new(WorkerShared {
                index: i,
                runq: runq::RunQueue::new(),
                lifo: lifo::Lifo::new(),
                runnext: AtomicPtr::new(std::ptr::null_mut()),
                inbox: SegQueue::new(),
                sleeping: AtomicBool::new(false),
                thread: Mutex::new(None),
                exited: AtomicBool::new(false),
                tick: AtomicU64::new(0),
                running: AtomicU64::new(0),
                running_since: AtomicU64::new(0),
                registry: Mutex::new(Registry::default()),
                spawned: AtomicU64::new(0),
                finished: AtomicU64::new(0),
                parked_forever: AtomicUsize::new(0),
                timeouts: AtomicUsize::new(0),
                gifts: SegQueue::new(),
                hungry: AtomicBool::new(false),
                hosted: AtomicUsize::new(0),
            }));
            let _ = self.workers[i].set(shared);
            spawn_worker_thread(shared);
            *created += 1;
            self.created_fast.store(*created, Ordering::Release);
        }
        drop(created);
        // Wake everyone so retired workers below the new target resume taking work.
        for i in 0..self.created() {
            if let Some(w) = self.worker(i) {
                w.wake();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The crate-internal interface used by park/, coroutine.rs and the primitives.

/// The running coroutine's control block, if the caller runs on one that may switch (for
/// waiting purposes, a coroutine that must not switch away is a plain thread: see
/// [`no_switch`]).
fn switchable() -> Option<(&'static worker::WorkerLocal, *const Co)> {
    let l = this_worker()?;
    let p = l.current.get();
    (!p.is_null() && l.no_switch.get() == 0).then_some((l, p))
}

/// The running coroutine's control block address, if the caller runs on one (for identity
/// checks only: no reference is taken).
pub(crate) fn current_ptr() -> Option<*const Co> {
    switchable().map(|(_, p)| p)
}

/// A counted reference to the running coroutine, if the caller runs on one.
pub(crate) fn current_coroutine() -> Option<CoRef> {
    let (_, p) = switchable()?;
    // SAFETY: `current` points to a control block the worker's registry keeps alive while the
    // coroutine runs.
    Some(unsafe { CoRef::from_borrowed(p) })
}

/// The index of the worker running the calling coroutine (`None` on a plain thread).
pub(crate) fn current_worker() -> Option<usize> {
    let l = this_worker()?;
    (!l.current.get().is_null()).then_some(l.shared.index)
}

/// Whether the caller runs on a goro coroutine (that may park).
pub(crate) fn in_coroutine() -> bool {
    switchable().is_some()
}

/// Call `f` with the worker and the running coroutine (switchable or not), if any. `f` must
/// not switch away (it cannot keep the reference across a switch: the closure ends first).
fn with_running<R>(f: impl FnOnce(&'static worker::WorkerLocal, &Co) -> R) -> Option<R> {
    let l = this_worker()?;
    // SAFETY: `current` points to a control block the worker's registry keeps alive while the
    // coroutine runs, and it runs for the whole call: the callers' closures never park.
    let co = unsafe { l.current.get().as_ref() }?;
    Some(f(l, co))
}

/// Run `f` so that the running coroutine cannot switch away meanwhile: every wait in it
/// (park, sleep, a channel, a lock, `gosched`) blocks the worker thread as on a plain thread,
/// and other coroutines of this worker wait until `f` returns. For code that must not
/// interleave with other coroutines of the thread: a panic hook (std aborts the process if a
/// second panic starts on a thread that is still in the first one's hook). Outside a
/// coroutine it just runs `f`.
pub(crate) fn no_switch<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<&'static worker::WorkerLocal>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(l) = self.0 {
                l.no_switch.set(l.no_switch.get() - 1);
            }
        }
    }
    let l = with_running(|l, _| l);
    if let Some(l) = l {
        l.no_switch.set(l.no_switch.get() + 1);
    }
    let _restore = Restore(l);
    f()
}

// ---------------------------------------------------------------------------------------------
// Unwinding, per coroutine
//
// std counts panics in flight per OS thread (`std::thread::panicking()`), and a coroutine may
// suspend in the middle of an unwind (a `Drop` or `defer!` that parks): std's count then stays
// raised while its worker runs other coroutines. goro cannot change std's count from stable
// Rust, so it keeps its own view for its own decisions (`defer!`, `SelectedOperation`):
//
// * std says "not panicking": nobody on this thread unwinds — exact;
// * std says "panicking" and no coroutine of this worker is suspended mid-unwind: the running
//   coroutine unwinds — exact;
// * otherwise std's answer is ambiguous and the running coroutine's own count (`Co::unwinds`:
//   panics goro's hook saw start, goexits, minus those goro's catch points caught) decides.
//   It misses an unwind begun by `resume_unwind` in user code, and one caught by a user's
//   `catch_unwind` stays counted until std's answer is unambiguous again.
//
// Whether a suspending coroutine is mid-unwind is decided the same way, at every suspension
// (`WorkerLocal::unwinding_at_suspend`).

/// Whether the caller unwinds: the running coroutine's own unwinding (not that of another
/// coroutine suspended mid-unwind on this worker), or std's answer outside coroutines.
pub(crate) fn unwinding() -> bool {
    if !std::thread::panicking() {
        return false;
    }
    let on_co = with_running(|l, co| {
        l.unwinding_parked.get() == 0 || co.unwinds.load(Ordering::Relaxed) > 0
    });
    match (on_co, this_worker()) {
        (Some(u), _) => u,
        // The worker's own loop (dropping a closure that could not start): only its own
        // panics count, and those run under a catch of its own.
        (None, Some(l)) => l.unwinding_parked.get() == 0,
        (None, None) => true,
    }
}

/// An unwind starts on the running coroutine (goro's panic hook, `goexit`).
pub(crate) fn unwind_started() {
    with_running(|_, co| co.unwinds.fetch_add(1, Ordering::Relaxed));
}

/// The running coroutine's unwind count, to restore with [`set_unwinds`] after a catch point
/// (whatever unwound inside a caught region is over when the catch returns).
pub(crate) fn unwinds() -> u32 {
    with_running(|_, co| co.unwinds.load(Ordering::Relaxed)).unwrap_or(0)
}

/// See [`unwinds`].
pub(crate) fn set_unwinds(n: u32) {
    with_running(|_, co| co.unwinds.store(n, Ordering::Relaxed));
}

/// Park the running coroutine until unparked (or until `deadline`). See `park/mod.rs`.
pub(crate) fn park_current(reason: WaitReason, deadline: Option<Instant>) {
    park_with(reason, deadline, Eligible::No);
}

/// As [`park_current`], for a wait whose stack may be compacted while it lasts (eligible by
/// `stack::compact`'s rule: nothing outside the coroutine reads or writes its stack until
/// it is woken). See `compaction.rs` for when that happens.
pub(crate) fn park_current_idle(reason: WaitReason, deadline: Option<Instant>) {
    park_with(reason, deadline, Eligible::Yes);
}

/// As [`park_current_idle`], unless `shared` (the one object the waker touches) lies in the
/// running coroutine's own stack: then as [`park_current`].
pub(crate) fn park_current_idle_unless_on_stack(
    shared: usize,
    reason: WaitReason,
    deadline: Option<Instant>,
) {
    park_with(reason, deadline, Eligible::UnlessOnStack(shared));
}

/// Whether a park leaves the coroutine's stack eligible for compaction.
#[derive(Clone, Copy)]
enum Eligible {
    No,
    Yes,
    /// Yes, unless this address is in the coroutine's stack.
    UnlessOnStack(usize),
}

impl Eligible {
    /// Decided for the running coroutine `co`.
    fn holds_for(self, co: &Co) -> bool {
        match self {
            Eligible::No => false,
            Eligible::Yes => true,
            Eligible::UnlessOnStack(addr) => {
                // SAFETY: the running coroutine's own `CoInner`, read on its owner's thread
                // while it runs (nobody else touches it then: see `compaction.rs`).
                let stack = unsafe { (*co.inner_ptr()).stack.as_ref() };
                !stack.is_some_and(|s| (s.bottom()..s.top()).contains(&addr))
            }
        }
    }
}

#[inline(never)]
fn park_with(reason: WaitReason, deadline: Option<Instant>, eligible: Eligible) {
    let (l, cop) = switchable().expect("park_current outside a coroutine that may switch");
    // SAFETY: the running coroutine's control block is alive (registry) while it runs.
    let co = unsafe { &*cop };
    // A pending token: consume it and return at once.
    if co.take_token() {
        return;
    }
    if let Some(d) = deadline {
        if d <= Instant::now() {
            return;
        }
    }
    co.reason.store(reasons::encode(reason), Ordering::Relaxed);
    let now_ms = coarse_now_ms();
    co.wait_since.store(now_ms, Ordering::Relaxed);
    let seq = co.park_seq.load(Ordering::Relaxed).wrapping_add(1);
    co.park_seq.store(seq, Ordering::Relaxed);
    if let Some(d) = deadline {
        l.add_timeout(d, seq, cop);
    } else {
        owner_add(&l.shared.parked_forever, 1);
    }
    // The policy first: with compaction off, no stack bounds are read.
    let after = match eligible {
        Eligible::No => None,
        _ => compaction::after_ms().filter(|_| eligible.holds_for(co)),
    };
    let idle = after.is_some();
    if let Some(after) = after {
        // SAFETY: the running coroutine's own `CoInner`, on its owner's thread; written
        // through the raw pointer, no reference held across the switch.
        unsafe { (*co.inner_ptr()).idle_park = true };
        l.note_idle_park(now_ms, after);
    }
    // Parked: switch away. Not parked: it was unparked on its way here (token consumed).
    if co.try_park() {
        l.suspend_current(cop);
    }
    if idle {
        // SAFETY: as above (its stack, if it was compacted, has been restored by the owner).
        unsafe { (*co.inner_ptr()).idle_park = false };
    }
    co.reason.store(0, Ordering::Relaxed);
    // Re-read the worker: identical (coroutines never migrate), but never hold TLS across a switch.
    let l = this_worker().expect("coroutine resumed off its worker");
    if deadline.is_some() {
        if co.park_seq.load(Ordering::Relaxed) == seq {
            // Woken before the deadline: its heap entry is now stale.
            l.note_stale_timeout();
        }
    } else {
        owner_add(&l.shared.parked_forever, usize::MAX); // -1
    }
}

/// Add `delta` (wrapping) to a counter only its own worker writes: a plain load and store, no
/// locked instruction; other threads only read it.
fn owner_add(c: &AtomicUsize, delta: usize) {
    c.store(
        c.load(Ordering::Relaxed).wrapping_add(delta),
        Ordering::Release,
    );
}

/// Make `co` runnable if it is parked, or leave it a token if it runs (the transition and
/// its ordering argument: `Co::unpark` in `co/state.rs`).
pub(crate) fn unpark(co: &CoRef) {
    if co.unpark() {
        make_runnable(co);
    }
}

/// Queue a started coroutine that just became RUNNABLE on its owner worker.
fn make_runnable(co: &Co) {
    let owner = co.owner.load(Ordering::Relaxed);
    let p = co as *const Co;
    if let Some(l) = this_worker() {
        if l.shared.index == owner {
            l.push_runnext(Next::Started(p));
            return;
        }
    }
    let w = rt()
        .worker(owner)
        .expect("coroutine owned by an unknown worker");
    w.inbox.push(CoPtr(p));
    fence(Ordering::SeqCst);
    if w.sleeping.load(Ordering::SeqCst) {
        w.wake();
    }
}

/// Queue a freshly spawned coroutine: near the spawner, or on a lighter worker (the rule:
/// `placement.rs`).
pub(crate) fn spawn_co(co: CoRef) {
    let r = rt();
    match this_worker() {
        Some(l) => {
            count_up(&l.shared.spawned);
            if l.retiring() {
                r.global.push(co); // a retiring worker takes no new work
                r.wake_idle_worker();
            } else {
                l.before_spawn(r);
                if l.push_runnext(Next::Fresh(co)) {
                    r.wake_idle_worker();
                }
            }
        }
        None => {
            r.plain_spawned.fetch_add(1, Ordering::Relaxed);
            note_plain_thread();
            match r.lightest_worker() {
                Some(w) => w.gift(co),
                None => {
                    r.global.push(co);
                    r.wake_idle_worker();
                }
            }
        }
    }
}

/// Yield: let other runnable coroutines run, then continue.
pub(crate) fn yield_now() {
    match switchable() {
        Some((l, _)) => l.yield_current(),
        None => std::thread::yield_now(),
    }
}

/// Spend one unit of the cooperative budget (`coop.rs`) on a goro operation: when the budget
/// is gone, a coroutine yields if anything else is runnable on its worker.
#[inline]
pub(crate) fn coop_spend() {
    if coop::take() {
        budget_spent();
    }
}

#[cold]
#[inline(never)]
fn budget_spent() {
    coop::refill();
    if let Some(l) = this_worker() {
        if !l.current.get().is_null() && l.others_runnable() {
            l.yield_current();
        }
    }
}

/// Cooperation points a coroutine passes without switching out before one of them yields.
const COOP_BUDGET: u32 = 32;

/// A cooperation point: an operation that completed without parking (an `accept` that found a
/// connection waiting). Every `COOP_BUDGET`th in a row yields, so that a loop of them (an
/// accept loop in a connection storm) lets the coroutines it spawned start on this worker
/// instead of leaving them queued until the monitor moves them away (`placement.rs`).
pub(crate) fn coop_point() {
    let Some(l) = this_worker() else { return };
    if l.current.get().is_null() {
        return;
    }
    let n = l.coop.get() + 1;
    l.coop.set(n);
    if n >= COOP_BUDGET {
        // What we queued meanwhile (the connection coroutines) would start here as soon as we
        // yield: offer a lighter worker its share first.
        l.rebalance(rt());
        l.yield_current();
    }
}

/// Run a blocking wait of a plain thread, accounted for deadlock detection.
pub(crate) fn thread_blocked(_reason: WaitReason, wait: impl FnOnce()) {
    if this_worker().is_some() {
        // A coroutine that may not switch (see `no_switch`): its worker shows it as running,
        // which keeps the deadlock detector quiet; it is no plain thread to count.
        return wait();
    }
    note_plain_thread();
    match rt_if_started() {
        Some(r) => {
            r.plain_blocked.fetch_add(1, Ordering::SeqCst);
            wait();
            r.plain_blocked.fetch_sub(1, Ordering::SeqCst);
        }
        None => wait(),
    }
}

/// Register something outside the coroutines that may wake one later (a signal registration,
/// an I/O registration): while any is registered, `run`'s deadlock detector stays quiet.
/// Pair every call with [`remove_wake_source`].
pub(crate) fn add_wake_source() {
    rt().wake_sources.fetch_add(1, Ordering::SeqCst);
}

/// Undo one [`add_wake_source`].
pub(crate) fn remove_wake_source() {
    rt().wake_sources.fetch_sub(1, Ordering::SeqCst);
}

thread_local! {
    static RUNTIME_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Mark the calling thread as part of the runtime (the timer thread, the blocking pool): it
/// is never counted as an outside thread that may wake coroutines, because what it would do
/// is already counted (pending timers, in-flight blocking jobs as wake sources).
pub(crate) fn mark_runtime_thread() {
    RUNTIME_THREAD.with(|r| r.set(true));
}

/// Count the calling plain thread (once) as one that uses goro and so may wake coroutines.
pub(crate) fn note_plain_thread() {
    if this_worker().is_some() || RUNTIME_THREAD.try_with(|r| r.get()).unwrap_or(true) {
        return;
    }
    struct Registered;
    impl Drop for Registered {
        fn drop(&mut self) {
            if let Some(r) = rt_if_started() {
                r.plain_threads.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
    thread_local! { static REG: std::cell::Cell<bool> = const { std::cell::Cell::new(false) }; static GUARD: std::cell::RefCell<Option<Registered>> = const { std::cell::RefCell::new(None) }; }
    let _ = REG.try_with(|r| {
        if !r.get() {
            r.set(true);
            rt().plain_threads.fetch_add(1, Ordering::SeqCst);
            let _ = GUARD.try_with(|g| *g.borrow_mut() = Some(Registered));
        }
    });
}

/// `DESIRED` once the starting runtime has read it: later wishes must be applied for real.
const DESIRED_TAKEN: usize = usize::MAX;

/// Start the thread of worker slot `shared` (called under `Runtime::created`).
fn spawn_worker_thread(shared: &'static WorkerShared) {
    let t = std::thread::Builder::new()
        .name(format!("goro-worker-{}", shared.index))
        .stack_size(256 * 1024)
        .spawn(move || worker::run(shared))
        .expect("goro: cannot start a worker thread");
    // Usually set by the worker already; the same handle either way.
    *crate::util::lock(&shared.thread) = Some(t.thread().clone());
}

/// The gomaxprocs wished for before the runtime started (the default if none).
pub(crate) fn desired_procs() -> usize {
    match DESIRED.load(Ordering::SeqCst) {
        0 | DESIRED_TAKEN => default_procs(),
        n => n,
    }
}

/// Record a wish for the runtime to start with `n` workers. False if the runtime has already
/// read its wish (it is starting or started): the caller must apply `n` to it instead. The
/// runtime takes the wish with a swap, so a wish is either seen by it or refused here, never
/// silently lost to a concurrent start.
pub(crate) fn set_desired_procs(n: usize) -> bool {
    let mut cur = DESIRED.load(Ordering::SeqCst);
    loop {
        if cur == DESIRED_TAKEN {
            return false;
        }
        match DESIRED.compare_exchange(cur, n, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return true,
            Err(now) => cur = now,
        }
    }
}
