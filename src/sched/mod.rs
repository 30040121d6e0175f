//! The M:N scheduler: coroutines multiplexed onto `gomaxprocs` worker threads.
//!
//! # Design
//!
//! Go's G-M-P scheduler (the comment atop Go's `runtime/proc.go`) is the model, changed where
//! Rust's soundness demands it:
//!
//! * **Workers.** `gomaxprocs` OS threads each run a loop: find a runnable coroutine, switch to
//!   it, come back when it parks, yields or finishes. A worker has
//!   - `runnext`: one slot for the coroutine most recently made runnable by the running one
//!     (spawned or woken). It runs next, so a message exchange between two coroutines costs
//!     two context switches and no queue traffic — the ping-pong fast path. A streak limit
//!     stops two coroutines from starving the rest of the worker's queue;
//!   - `lifo`: the fresh (never started) coroutines it spawned, run *newest first* so that
//!     fork/join trees run depth-first while their stacks are in cache; idle workers steal the
//!     oldest half; every 61 rounds the oldest runs, so nothing starves (`lifo.rs`: a departure
//!     from Go's FIFO order, 2.2× on skynet);
//!   - `runq`: a bounded FIFO ring of fresh coroutines (the overflow of `lifo`, and work stolen
//!     from others) that idle workers may steal half of (`runq.rs`);
//!   - `local`: a plain queue of *started* coroutines that are runnable (yielded, or woken on
//!     this worker). Only the owner touches it;
//!   - `inbox`: started coroutines woken from other threads, pushed by the waker and drained by
//!     the owner;
//!   - `yielded`: the coroutine that last called `gosched`; it runs again only when nothing
//!     else on the worker is runnable (Go puts it on the global queue for the same effect), so
//!     a coroutine that yields in a loop while it waits for another cannot starve it.
//! * **The soundness rule.** A coroutine's stack may hold `!Send` values and the compiler may
//!   cache thread-local addresses across calls, so resuming a *started* coroutine on another OS
//!   thread is undefined behaviour that no type bound rules out (the unsoundness of `may`'s
//!   `go!`). So: a fresh coroutine is just a `Send` closure and may run anywhere (it is stolen,
//!   injected, moved off a stuck worker); once started it stays on its worker forever. Wake-ups
//!   from other threads go to the owner's `inbox`. Balance comes from stealing fresh work and
//!   from spawning near the spawner.
//! * **Global queue.** Fresh coroutines spawned from plain threads (and the overflow of a full
//!   `runq`) go to a global injector. Workers look at it every 61 scheduling rounds even when
//!   busy, so nothing there starves.
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
//! * **Monitor** (`sysmon.rs`, Go's sysmon): notices a worker stuck in one coroutine (a busy
//!   loop or a blocking syscall), moves that worker's fresh coroutines to the global queue so
//!   others run them, and reports it once; and runs `run`'s deadlock detector.
//! * **gomaxprocs** can change at run time: new workers start at once; surplus workers *retire*:
//!   they hand their fresh work to the global queue and stop taking new work, but keep running
//!   the started coroutines they host until those finish (a started coroutine cannot move).
//!
//! Thread-locals of the runtime are read only through `#[inline(never)]` accessors
//! ([`local`]) and never held across a context switch.

mod global;
pub(crate) mod lifo;
pub(crate) mod poller;
pub(crate) mod reasons;
pub(crate) mod runq;
pub(crate) mod sysmon;
pub(crate) mod timers;
mod worker;

use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crossbeam_queue::SegQueue;

pub(crate) use crate::coroutine::CoRef;
use crate::coroutine::{Co, NOTIFIED, PARKED, RUNNABLE, RUNNING};
use crate::park::WaitReason;
pub(crate) use worker::{local, Next};

/// A started coroutine in another worker's inbox (alive through its owner's registry).
pub(crate) struct CoPtr(pub(crate) *const Co);
// SAFETY: only the owner worker dereferences it, and the registry keeps the target alive.
unsafe impl Send for CoPtr {}

/// The most worker threads `gomaxprocs` accepts; larger requests are clamped (with a message).
pub(crate) const MAX_WORKERS: usize = 1024;

/// State of a worker visible to other threads.
pub(crate) struct WorkerShared {
    pub(crate) index: usize,
    pub(crate) runq: runq::RunQueue,
    /// Newer fresh coroutines, run newest first (`lifo.rs`).
    pub(crate) lifo: lifo::Lifo,
    /// Tagged `CoRef` pointer: bit 0 set = fresh (stealable), clear = started (pinned).
    pub(crate) runnext: AtomicPtr<Co>,
    pub(crate) inbox: SegQueue<CoPtr>,
    pub(crate) sleeping: AtomicBool,
    pub(crate) thread: OnceLock<std::thread::Thread>,
    /// Bumped on every switch into a coroutine (the monitor watches it move).
    pub(crate) tick: AtomicU64,
    /// Id of the coroutine running now (0 = none) and when it was switched in (coarse ms).
    pub(crate) running: AtomicU64,
    pub(crate) running_since: AtomicU64,
    /// Started, unfinished coroutines hosted here (the registry keeps them alive while parked).
    pub(crate) registry: Mutex<Registry>,
    /// Coroutines spawned and finished on this worker (only the worker writes them).
    pub(crate) spawned: AtomicU64,
    pub(crate) finished: AtomicU64,
    /// Coroutines parked with no deadline (written by the owner only), and the size of the
    /// local timeout heap.
    pub(crate) parked_forever: AtomicUsize,
    pub(crate) timeouts: AtomicUsize,
}

/// Started coroutines of one worker, by slot.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) slots: Vec<Option<CoRef>>,
    free: Vec<usize>,
    pub(crate) len: usize,
}

impl Registry {
    fn insert(&mut self, co: CoRef) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(co);
                i
            }
            None => {
                self.slots.push(Some(co));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, i: usize) -> Option<CoRef> {
        let co = self.slots.get_mut(i)?.take()?;
        self.len -= 1;
        self.free.push(i);
        Some(co)
    }
}

/// Process-wide scheduler state.
pub(crate) struct Runtime {
    workers: Box<[OnceLock<&'static WorkerShared>]>,
    /// Worker threads started so far (indices `0..created`).
    created: Mutex<usize>,
    created_fast: AtomicUsize,
    /// The gomaxprocs target: workers with `index >= target` retire.
    pub(crate) target: AtomicUsize,
    pub(crate) global: global::GlobalQueue,
    pub(crate) idle: AtomicUsize,
    pub(crate) spinning: AtomicUsize,
    /// Coroutines spawned and finished by threads that are not workers (workers count their
    /// own in `WorkerShared`: one shared counter would bounce between cores on every spawn).
    plain_spawned: AtomicU64,
    plain_finished: AtomicU64,
    /// Plain threads that have used goro, and how many of them are blocked in goro right now.
    pub(crate) plain_threads: AtomicUsize,
    pub(crate) plain_blocked: AtomicUsize,
    /// Outside registrations that may wake a coroutine later (signals, I/O).
    pub(crate) wake_sources: AtomicUsize,
    /// Set while `run` waits for its main coroutine (enables deadlock detection).
    pub(crate) main_running: AtomicBool,
    pub(crate) epoch: Instant,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static DESIRED: AtomicUsize = AtomicUsize::new(0);

/// The runtime, started on first use.
pub(crate) fn rt() -> &'static Runtime {
    match RUNTIME.get() {
        Some(r) => r,
        None => start(),
    }
}

/// The runtime if it has started.
pub(crate) fn rt_if_started() -> Option<&'static Runtime> {
    RUNTIME.get()
}

pub(crate) fn ensure_started() {
    let _ = rt();
}

/// The default gomaxprocs: env `GOMAXPROCS` if valid, else the CPU count.
pub(crate) fn default_procs() -> usize {
    match std::env::var("GOMAXPROCS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n.min(MAX_WORKERS),
            _ => {
                eprintln!("goro: ignoring invalid GOMAXPROCS={v:?} (want a positive integer)");
                crate::runtime::num_cpu()
            }
        },
        Err(_) => crate::runtime::num_cpu(),
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
        crate::runtime::install_panic_hook();
        crate::stack::overflow::install();
        r.grow_workers(r.target.load(Ordering::Relaxed));
        sysmon::start();
    });
    r
}

/// Bump a counter only its own worker writes: a plain load and store, no locked instruction.
fn count_up(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Release);
}

impl Runtime {
    /// Coroutines spawned and not yet finished (exact when nothing runs concurrently).
    pub(crate) fn live(&self) -> usize {
        let mut spawned = self.plain_spawned.load(Ordering::Acquire);
        let mut finished = self.plain_finished.load(Ordering::Acquire);
        for i in 0..self.created() {
            if let Some(w) = self.worker(i) {
                // Finished first: a coroutine counted finished was counted spawned earlier.
                finished += w.finished.load(Ordering::Acquire);
                spawned += w.spawned.load(Ordering::Acquire);
            }
        }
        spawned.saturating_sub(finished) as usize
    }

    pub(crate) fn worker(&self, i: usize) -> Option<&'static WorkerShared> {
        self.workers.get(i)?.get().copied()
    }

    /// Worker threads started so far.
    pub(crate) fn created(&self) -> usize {
        self.created_fast.load(Ordering::Acquire)
    }

    /// Start worker threads until `n` exist; wake retired ones below `n`.
    pub(crate) fn grow_workers(&'static self, n: usize) {
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        while *created < n {
            let i = *created;
            let shared: &'static WorkerShared = Box::leak(Box::new(WorkerShared {
                index: i,
                runq: runq::RunQueue::new(),
                lifo: lifo::Lifo::new(),
                runnext: AtomicPtr::new(std::ptr::null_mut()),
                inbox: SegQueue::new(),
                sleeping: AtomicBool::new(false),
                thread: OnceLock::new(),
                tick: AtomicU64::new(0),
                running: AtomicU64::new(0),
                running_since: AtomicU64::new(0),
                registry: Mutex::new(Registry::default()),
                spawned: AtomicU64::new(0),
                finished: AtomicU64::new(0),
                parked_forever: AtomicUsize::new(0),
                timeouts: AtomicUsize::new(0),
            }));
            let _ = self.workers[i].set(shared);
            let t = std::thread::Builder::new()
                .name(format!("goro-worker-{i}"))
                .stack_size(256 * 1024)
                .spawn(move || worker::run(shared))
                .expect("goro: cannot start a worker thread");
            let _ = shared.thread.set(t.thread().clone()); // usually set by the worker already
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

    /// Ask one sleeping worker to come and look for work, unless someone is already looking.
    pub(crate) fn wake_idle_worker(&self) {
        fence(Ordering::SeqCst);
        if self.idle.load(Ordering::SeqCst) == 0 || self.spinning.load(Ordering::SeqCst) > 0 {
            return;
        }
        let target = self.target.load(Ordering::Relaxed);
        for i in 0..self.created().min(target) {
            if let Some(w) = self.worker(i) {
                if w.sleeping.load(Ordering::SeqCst)
                    && w.sleeping
                        .compare_exchange(true, false, Ordering::SeqCst, Ordering::Relaxed)
                        .is_ok()
                {
                    if let Some(t) = w.thread.get() {
                        t.unpark();
                    }
                    poller::kick(i);
                    return;
                }
            }
        }
    }

    /// Milliseconds since the runtime started (for wait durations in dumps).
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl WorkerShared {
    /// Wake this worker's thread if it sleeps.
    ///
    /// A plain store, not a CAS, is enough: it may overwrite a `true` the worker set for a later
    /// sleep, but the `unpark` that always follows leaves the thread a token, so that sleep
    /// returns at once and the worker re-checks its queues.
    pub(crate) fn wake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
        poller::kick(self.index);
    }
}

// ---------------------------------------------------------------------------------------------
// The crate-internal interface used by park.rs, coroutine.rs and the primitives.

/// A counted reference to the running coroutine, if the caller runs on one.
/// The running coroutine's control block address, if the caller runs on one (for identity
/// checks only: no reference is taken).
pub(crate) fn current_ptr() -> Option<*const Co> {
    let p = local()?.current.get();
    (!p.is_null()).then_some(p)
}

pub(crate) fn current_coroutine() -> Option<CoRef> {
    let l = local()?;
    let p = l.current.get();
    if p.is_null() {
        return None;
    }
    // SAFETY: `current` points to a control block the worker's registry keeps alive while the
    // coroutine runs.
    Some(unsafe { CoRef::from_borrowed(p) })
}

/// Whether the caller runs on a goro coroutine.
pub(crate) fn in_coroutine() -> bool {
    local().is_some_and(|l| !l.current.get().is_null())
}

/// Park the running coroutine until unparked (or until `deadline`). See `park.rs`.
pub(crate) fn park_current(reason: WaitReason, deadline: Option<Instant>) {
    let l = local().expect("park_current outside a worker");
    let cop = l.current.get();
    assert!(!cop.is_null(), "park_current outside a coroutine");
    // SAFETY: the running coroutine's control block is alive (registry) while it runs.
    let co = unsafe { &*cop };
    // A pending token: consume it and return at once. The load only filters (a stale RUNNING
    // is caught by the PARKED CAS below); the token itself is always taken by an RMW.
    if co.state.load(Ordering::Relaxed) == NOTIFIED
        && co
            .state
            .compare_exchange(NOTIFIED, RUNNING, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        return;
    }
    if let Some(d) = deadline {
        if d <= Instant::now() {
            return;
        }
    }
    co.reason.store(reasons::intern(reason), Ordering::Relaxed);
    co.wait_since.store(coarse_now_ms(), Ordering::Relaxed);
    let seq = co.park_seq.load(Ordering::Relaxed).wrapping_add(1);
    co.park_seq.store(seq, Ordering::Relaxed);
    if let Some(d) = deadline {
        l.add_timeout(d, seq, cop);
    } else {
        owner_add(&l.shared.parked_forever, 1);
    }
    if co
        .state
        .compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        l.suspend_current(cop);
    } else {
        // Unparked between the check above and now: the state is NOTIFIED; consume the token.
        // A read-modify-write, not a store: another `unpark` may have rewritten NOTIFIED after
        // the failed CAS read it (the no-op RMW of `sched::unpark`), and only an RMW reads that
        // latest value and so acquires its caller's writes. A plain store here read from no
        // one: the token's first giver could be a stray unpark, the second one the waker that
        // had just made our condition true, and we would re-check it stale and park for good.
        let was = co.state.swap(RUNNING, Ordering::Acquire);
        debug_assert_eq!(was, NOTIFIED, "only the coroutine itself leaves NOTIFIED");
    }
    co.reason.store(0, Ordering::Relaxed);
    // Re-read the worker: identical (coroutines never migrate), but never hold TLS across a switch.
    let l = local().expect("coroutine resumed off its worker");
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

/// Make `co` runnable if it is parked, or leave it a token if it runs.
///
/// Every outcome is a read-modify-write of `state`, including the ones that change nothing
/// (RUNNABLE or NOTIFIED already: it will run and re-check). A plain load there would let the
/// caller's earlier store (the condition the target waits for) be reordered after it: the
/// target could consume the old token, re-check before that store is visible, and park for
/// good (seen as a hang of skynet on 2 workers). The RMW releases the caller's writes to
/// whoever next acquires `state`: the target's own CAS when it consumes the token, or its
/// worker's load when it runs it.
pub(crate) fn unpark(co: &CoRef) {
    let mut s = co.state.load(Ordering::Relaxed);
    loop {
        let next = match s {
            RUNNING => NOTIFIED,
            PARKED => RUNNABLE,
            RUNNABLE | NOTIFIED => s,
            _ => return, // FRESH: has not waited on anything yet; DONE: never runs again
        };
        match co
            .state
            .compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => break,
            Err(now) => s = now,
        }
    }
    if s == PARKED {
        make_runnable(co);
    }
}

/// Queue a started coroutine that just became RUNNABLE on its owner worker.
fn make_runnable(co: &Co) {
    let owner = co.owner.load(Ordering::Relaxed);
    let p = co as *const Co;
    if let Some(l) = local() {
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

/// Queue a freshly spawned coroutine: near the spawner when it is a worker, else globally.
pub(crate) fn spawn_co(co: CoRef) {
    let r = rt();
    match local() {
        Some(l) => {
            count_up(&l.shared.spawned);
            if l.retiring() {
                r.global.push(co); // a retiring worker takes no new work
                r.wake_idle_worker();
            } else if l.push_runnext(Next::Fresh(co)) {
                r.wake_idle_worker();
            }
        }
        None => {
            r.plain_spawned.fetch_add(1, Ordering::Relaxed);
            note_plain_thread();
            r.global.push(co);
            r.wake_idle_worker();
        }
    }
}

/// Called by a finishing coroutine before its joiner can see the result.
pub(crate) fn coroutine_exiting() {
    match local() {
        Some(l) => count_up(&l.shared.finished),
        None => {
            rt().plain_finished.fetch_add(1, Ordering::Release);
        }
    }
}

/// Yield: let other runnable coroutines run, then continue.
pub(crate) fn yield_now() {
    match local() {
        Some(l) if !l.current.get().is_null() => l.yield_current(),
        _ => std::thread::yield_now(),
    }
}

/// Run a blocking wait of a plain thread, accounted for deadlock detection.
pub(crate) fn thread_blocked(_reason: WaitReason, wait: impl FnOnce()) {
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
    if local().is_some() || RUNTIME_THREAD.try_with(|r| r.get()).unwrap_or(true) {
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

/// A coarse millisecond clock for wait durations (refreshed by the monitor and by parks that
/// read the real clock anyway).
pub(crate) fn coarse_now_ms() -> u64 {
    sysmon::COARSE_MS.load(Ordering::Relaxed)
}

/// `DESIRED` once the starting runtime has read it: later wishes must be applied for real.
const DESIRED_TAKEN: usize = usize::MAX;

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
