//! The scheduler's state that every thread may see: the process-wide [`Runtime`] and each
//! worker's [`WorkerShared`] half, with the accessors the workers, the monitor and the
//! crate-internal interface (`sched/mod.rs`) build on.
//!
//! This file starts nothing: the runtime is created and its threads spawned by
//! `sched/mod.rs` (`rt()`), which sits above `worker.rs` and this file. Each field says who may
//! write it and how the others read it.

use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crossbeam_queue::SegQueue;

use super::{global, lifo, runq};
use crate::co::{Co, CoRef};

/// A started coroutine in another worker's inbox (alive through its owner's registry).
pub(crate) struct CoPtr(pub(crate) *const Co);
// SAFETY: only the owner worker dereferences it, and the registry keeps the target alive.
unsafe impl Send for CoPtr {}

/// The most worker threads `gomaxprocs` accepts; larger requests are clamped (with a message).
pub(crate) const MAX_WORKERS: usize = 1024;

/// State of a worker visible to other threads. "Owner" is the worker's own thread.
pub(crate) struct WorkerShared {
    /// This worker's position in `Runtime::workers`. Immutable.
    pub(crate) index: usize,
    /// Fresh coroutines, FIFO ring (`runq.rs`). Owner pushes and pops; any thread steals half.
    pub(crate) runq: runq::RunQueue,
    /// Newer fresh coroutines, run newest first (`lifo.rs`). Owner pushes and pops; any thread
    /// steals the oldest half (under its lock).
    pub(crate) lifo: lifo::Lifo,
    /// Tagged `CoRef` pointer: bit 0 set = fresh (stealable), clear = started (pinned).
    /// Owner swaps it (push/take); sysmon takes a fresh one (CAS) from a stuck worker.
    pub(crate) runnext: AtomicPtr<Co>,
    /// Started coroutines of this worker woken by other threads: any thread pushes (then
    /// checks `sleeping` after a SeqCst fence), the owner pops.
    pub(crate) inbox: SegQueue<CoPtr>,
    /// Set by the owner before it sleeps (SeqCst, then it re-checks for work); cleared by the
    /// owner on waking or by any waker (store/CAS, then `thread.unpark()`).
    pub(crate) sleeping: AtomicBool,
    /// The owner's thread handle, for waking it: set by the thread itself when it starts (and
    /// by its spawner), replaced when a retired worker's slot gets a new thread; read by any
    /// thread that wakes it (only on the slow path: the worker was seen sleeping).
    pub(crate) thread: Mutex<Option<std::thread::Thread>>,
    /// Whether this slot's thread has ended (a retired worker whose coroutines all finished).
    /// Set by the owner, cleared by `grow_workers` when it starts a new thread here; both
    /// under `Runtime::created`, so a retirement and a regrowth never miss each other.
    pub(crate) exited: AtomicBool,
    /// Bumped on every switch into a coroutine (the monitor watches it move). Owner writes
    /// (plain load + store), sysmon reads (Relaxed).
    pub(crate) tick: AtomicU64,
    /// Id of the coroutine running now (0 = none) and when it was switched in (coarse ms).
    /// Owner writes, sysmon and dumps read (Relaxed).
    pub(crate) running: AtomicU64,
    pub(crate) running_since: AtomicU64,
    /// Started, unfinished coroutines hosted here (the registry keeps them alive while parked).
    /// Owner inserts and removes; any thread may lock it to read (dump, deadlock detector).
    pub(crate) registry: Mutex<Registry>,
    /// Coroutines spawned and finished on this worker. Owner writes (plain load + Release
    /// store), any thread reads (Acquire).
    pub(crate) spawned: AtomicU64,
    pub(crate) finished: AtomicU64,
    /// Coroutines parked with no deadline, and the size of the local timeout heap. Owner
    /// writes, sysmon's deadlock detector reads.
    pub(crate) parked_forever: AtomicUsize,
    pub(crate) timeouts: AtomicUsize,
    /// Fresh coroutines another thread placed here because this worker was the lightest
    /// (`Runtime::lighter_worker`; see `placement.rs`). Any thread pushes (then checks
    /// `sleeping` after a SeqCst fence, as for `inbox`); the owner pops; another worker takes
    /// them only while the owner is stuck in one coroutine, and sysmon moves them off a worker
    /// stuck for `STUCK_MS`.
    pub(crate) gifts: SegQueue<CoRef>,
    /// Set by the owner while it has nothing to run (from entering its idle path until it finds
    /// work), with `Runtime::hungry` counting the workers that have it set. Owner writes (SeqCst
    /// swap), spawners read.
    pub(crate) hungry: AtomicBool,
    /// Started, unfinished coroutines hosted here (the registry's length without its lock).
    /// Owner writes (plain load + Release store), spawners read it to weigh this worker.
    pub(crate) hosted: AtomicUsize,
}

/// Started coroutines of one worker, by slot.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) slots: Vec<Option<CoRef>>,
    free: Vec<usize>,
    pub(crate) len: usize,
}

impl Registry {
    pub(super) fn insert(&mut self, co: CoRef) -> usize {
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

    pub(super) fn remove(&mut self, i: usize) -> Option<CoRef> {
        let co = self.slots.get_mut(i)?.take()?;
        self.len -= 1;
        self.free.push(i);
        Some(co)
    }
}

/// Process-wide scheduler state.
pub(crate) struct Runtime {
    pub(super) workers: Box<[OnceLock<&'static WorkerShared>]>,
    /// Worker slots created so far (indices `0..created`). Its lock also orders the
    /// lifecycle of a slot's thread: a retired worker's exit and `grow_workers`' restart.
    pub(crate) created: Mutex<usize>,
    pub(super) created_fast: AtomicUsize,
    /// The gomaxprocs target: workers with `index >= target` retire.
    pub(crate) target: AtomicUsize,
    pub(crate) global: global::GlobalQueue,
    pub(crate) idle: AtomicUsize,
    pub(crate) spinning: AtomicUsize,
    /// Workers whose `hungry` flag is set: while it is non-zero, a worker about to start fresh
    /// work of its own weighs the workers first (`placement.rs`). Workers update it when they
    /// flip their own flag (SeqCst RMW); other workers read it (Relaxed: a stale value only
    /// delays or adds one weighing).
    pub(crate) hungry: AtomicUsize,
    /// Coroutines spawned and finished by threads that are not workers (workers count their
    /// own in `WorkerShared`: one shared counter would bounce between cores on every spawn).
    pub(super) plain_spawned: AtomicU64,
    pub(super) plain_finished: AtomicU64,
    /// Plain threads that have used goro, and how many of them are blocked in goro right now.
    pub(crate) plain_threads: AtomicUsize,
    pub(crate) plain_blocked: AtomicUsize,
    /// Outside registrations that may wake a coroutine later (signals, I/O).
    pub(crate) wake_sources: AtomicUsize,
    /// Set while `run` waits for its main coroutine (enables deadlock detection).
    pub(crate) main_running: AtomicBool,
    pub(crate) epoch: Instant,
}

/// The runtime, once `sched::rt()` has created it.
pub(super) static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The runtime if it has started.
pub(crate) fn rt_if_started() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// The runtime, from code that only runs once it has started (worker threads, coroutines).
#[inline]
pub(crate) fn started() -> &'static Runtime {
    RUNTIME.get().expect("goro: runtime used before it started")
}

/// Bump a counter only its own worker writes: a plain load and store, no locked instruction.
pub(crate) fn count_up(c: &AtomicU64) {
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
                    w.unpark_thread();
                    super::poller::kick(i);
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
        self.unpark_thread();
        super::poller::kick(self.index);
    }

    /// Unpark the owner's thread (harmless if it has ended: the handle outlives it).
    pub(crate) fn unpark_thread(&self) {
        if let Some(t) = crate::util::lock(&self.thread).as_ref() {
            t.unpark();
        }
    }
}

/// Milliseconds since the runtime started, refreshed by the monitor.
pub(crate) static COARSE_MS: AtomicU64 = AtomicU64::new(0);

/// A coarse millisecond clock for wait durations (refreshed by the monitor and by parks that
/// read the real clock anyway).
pub(crate) fn coarse_now_ms() -> u64 {
    COARSE_MS.load(Ordering::Relaxed)
}
