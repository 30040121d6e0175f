//! One worker thread: its owner-only state and its scheduling loop (see the design notes in
//! `sched/mod.rs`).
//!
//! Invariants: only the worker's own thread touches a `WorkerLocal`; `current` is non-null
//! exactly while a coroutine runs on this worker; a coroutine is resumed only here, and only
//! when it was popped from one of this worker's queues.

use std::cell::{Cell, UnsafeCell};
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use super::compaction;
use super::coop;
use super::placement::{BURST_WEIGH, HUNGRY_BACKOFF, RECHECK, STUCK_STEAL_MS, WEIGH_EVERY};
use super::poller;
use super::shared::{coarse_now_ms, count_up, started as rt, Runtime, WorkerShared};
use crate::co::CoRef;

use crate::arch::SwitchContext;
use crate::co::{Co, FRESH};
use crate::stack::overflow::{self, RunningInfo};
use crate::util::{random_u64, Rng};

/// Scheduling rounds between fairness checks (global queue, inbox, timeouts).
const FAIRNESS_TICKS: u64 = 61;
/// Consecutive `runnext` picks before the slot's coroutine goes to the back of the queue.
const RUNNEXT_STREAK: u32 = 64;
/// Rounds an idle worker spins looking for work before it sleeps.
const SPIN_ROUNDS: u32 = 64;

/// A timeout entry in the local heap: wake `co` at `deadline` if it is still in park `seq`.
struct ParkTimeout {
    deadline: Instant,
    seq: u64,
    co: CoRef,
}

impl PartialEq for ParkTimeout {
    fn eq(&self, o: &Self) -> bool {
        self.deadline == o.deadline
    }
}
impl Eq for ParkTimeout {}
impl PartialOrd for ParkTimeout {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for ParkTimeout {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        o.deadline.cmp(&self.deadline) // min-heap
    }
}

/// The owner-only state of a worker: every field is touched by the worker's own thread only
/// (its loop, and the coroutines it runs, which run on that thread), so none is atomic.
pub(crate) struct WorkerLocal {
    /// This worker's half that other threads see (its fields say who may touch them).
    pub(crate) shared: &'static WorkerShared,
    /// The running coroutine (a control block the registry holds), or null.
    pub(crate) current: Cell<*const Co>,
    /// Started coroutines, runnable (alive through the registry: raw pointers, no refcounting).
    ready: UnsafeCell<VecDeque<*const Co>>,
    /// The `runnext` slot's owner-only half: a *started* coroutine that the running one woke on
    /// this worker, or null. A started coroutine can never be stolen, so unlike the fresh half
    /// (`shared.runnext`, which thieves and the monitor may take) it needs no atomic swap: the
    /// hand-over between two coroutines of one worker costs no locked instruction here. It
    /// runs before the fresh half (the newest wake-up is the hottest in cache).
    next_started: Cell<*const Co>,
    /// The coroutine that last called `gosched` (or ran out of its cooperative budget), or
    /// null. It runs again when nothing else is runnable here (after the fresh ones too, as
    /// Go's `Gosched` puts it behind the local queue): a coroutine yielding in a loop while it
    /// waits for a fresh one cannot starve it. Every `FAIRNESS_TICKS` rounds it moves to the
    /// back of `ready`, so that coroutines which keep each other runnable cannot starve it.
    yielded: Cell<*const Co>,
    /// Whether this worker is above the gomaxprocs target (refreshed every few rounds).
    retiring: Cell<bool>,
    /// Set once a retired worker has decided to end its thread (`try_exit`): the loop stops.
    exiting: Cell<bool>,
    /// Coarse ms at which a compaction pass is due (a coroutine here may have been idle long
    /// enough by then), or `None`; see `compaction.rs`.
    compact_due: Cell<Option<u64>>,
    /// Deadlines of this worker's coroutines parked with `park_until` (a min-heap).
    timeouts: UnsafeCell<BinaryHeap<ParkTimeout>>,
    /// Heap entries known to be stale (woken before their deadline); compaction trigger.
    stale: Cell<usize>,
    /// Consecutive `runnext` picks (see `RUNNEXT_STREAK`).
    streak: Cell<u32>,
    /// Scheduling rounds so far (fairness checks every `FAIRNESS_TICKS`).
    schedtick: Cell<u64>,
    /// Picks the first victim to steal from.
    rng: Rng,
    /// Coroutines of this worker suspended in the middle of an unwind (by goro's reckoning,
    /// see `sched::unwinding`): while it is nonzero, std's per-thread "panicking" state is set
    /// for every coroutine this worker runs, so it says nothing about the running one.
    pub(crate) unwinding_parked: Cell<usize>,
    /// Nonzero while the running coroutine must not switch away (it runs a panic hook: see
    /// `sched::no_switch`); it then waits as a plain thread would, blocking the worker.
    pub(crate) no_switch: Cell<u32>,
    /// Mirror of `shared.hungry` (so the loop flips the shared flag only when it changes).
    hungry: Cell<bool>,
    /// Coroutines spawned here so far, plus fresh starts that could have weighed (every
    /// `WEIGH_EVERY`th spawn weighs the workers; `weigh_after` counts on it too).
    spawns: Cell<u32>,
    /// Per other worker: its tick when this worker last looked, and since when it has had that
    /// value (a thief's own view of whether the victim seems stuck; `placement.rs`).
    seen: UnsafeCell<Vec<(u64, Instant)>>,
    /// Set by `find_runnable` when what it returns is a gift (never handed on again).
    gift_next: Cell<bool>,
    /// The value of `spawns` from which weighings because some worker is hungry resume (see
    /// `back_off`: a hungry worker heavier than us may stay hungry a while).
    weigh_after: Cell<u32>,
    /// Cooperation points (`sched::coop_point`) the running coroutine has passed since it was
    /// switched in.
    pub(crate) coop: Cell<u32>,
    /// Spawns of the running coroutine since it was switched in (the `BURST_WEIGH`th weighs,
    /// then again after gaps that double: see `place_spawn`).
    slice_spawns: Cell<u32>,
}

thread_local! {
    static WORKER: Cell<*const WorkerLocal> = const { Cell::new(std::ptr::null()) };
}

/// This thread's worker state, if it is a worker. Never inlined, so the TLS address is not
/// cached across a context switch by the caller's code.
#[inline(never)]
pub(crate) fn this_worker() -> Option<&'static WorkerLocal> {
    let p = WORKER.try_with(|c| c.get()).unwrap_or(std::ptr::null());
    // SAFETY: the pointer was leaked from a Box by this thread's `run` and is never freed; only
    // this thread uses it.
    unsafe { p.as_ref() }
}

const FRESH_TAG: usize = 1;

/// A runnable coroutine as the queues hold it: a fresh one is owned (it is in no registry
/// yet); a started one is a plain pointer kept alive by its worker's registry, which holds it
/// from start to finish — and it cannot finish while it waits in a queue.
pub(crate) enum Next {
    Fresh(CoRef),
    Started(*const Co),
}

fn tag(n: Next) -> *mut Co {
    match n {
        Next::Fresh(co) => (CoRef::into_raw(co) as usize | FRESH_TAG) as *mut Co,
        Next::Started(p) => p as *mut Co,
    }
}

/// # Safety
/// `p` must be a non-null value produced by `tag` whose ownership the caller took.
unsafe fn untag(p: *mut Co) -> Next {
    if p as usize & FRESH_TAG != 0 {
        // SAFETY: the caller owns this `CoRef::into_raw` pointer (tag bit removed).
        Next::Fresh(unsafe { CoRef::from_raw((p as usize & !FRESH_TAG) as *const Co) })
    } else {
        Next::Started(p)
    }
}

impl WorkerLocal {
    #[allow(clippy::mut_from_ref)]
    fn ready_q(&self) -> &mut VecDeque<*const Co> {
        // SAFETY: owner-only; no reference to it is held across calls that could re-enter.
        unsafe { &mut *self.ready.get() }
    }

    #[allow(clippy::mut_from_ref)]
    fn heap(&self) -> &mut BinaryHeap<ParkTimeout> {
        // SAFETY: owner-only; no reference to it is held across calls that could re-enter.
        unsafe { &mut *self.timeouts.get() }
    }

    /// Before a spawn is queued here (the rule: `placement.rs`): weigh on the 4th, 12th, 28th,
    /// ... spawn of a run slice and on 1 in 32, and share our backlog with a lighter worker.
    /// The fast path is two owner-only cells.
    pub(crate) fn before_spawn(&self, r: &Runtime) {
        let n = self.spawns.get().wrapping_add(1);
        self.spawns.set(n);
        let slice = self.slice_spawns.get() + 1;
        self.slice_spawns.set(slice);
        // The 4th, 12th, 28th, 60th, ... spawn of the slice (gaps doubling), and 1 in 32.
        let burst = slice >= BURST_WEIGH && (slice + BURST_WEIGH).is_power_of_two();
        if n % WEIGH_EVERY == 1 || burst {
            self.share(r, n);
        }
    }

    /// Weigh the workers and share our queued backlog with a lighter one (see `share`), e.g.
    /// before a cooperation point yields and this worker would start that backlog itself.
    pub(crate) fn rebalance(&self, r: &Runtime) {
        let n = self.spawns.get().wrapping_add(1);
        self.spawns.set(n);
        self.share(r, n);
    }

    /// Weigh the workers (at spawn/start count `n`); if one is lighter, move up to half the
    /// difference (at least one) of our queued fresh work to its gifts, oldest first (in a
    /// fork/join tree those are the biggest subtrees; the newest stay here, warm). Never the
    /// coroutine in hand (just spawned, or about to start): it runs here soon, rather than wait
    /// for another worker to wake up — a spawner that polls for its child with `gosched`
    /// relies on that.
    fn share(&self, r: &Runtime, n: u32) {
        let (w, diff) = match r.lighter_worker(self.shared) {
            Ok(found) => found,
            Err(margin) => {
                self.back_off(n, margin);
                return;
            }
        };
        for _ in 0..(diff / 2).max(1) {
            match self.shared.lifo.pop_oldest() {
                Some(c) => w.gift(c),
                None => break,
            }
        }
    }

    /// Whether a hungry worker may make us weigh at count `n` (spawns, or starts: see
    /// `weigh_after`).
    fn may_weigh(&self, n: u32) -> bool {
        (n.wrapping_sub(self.weigh_after.get()) as i32) >= 0
    }

    /// After a weighing at count `n` found every other worker heavier by `margin`: skip the
    /// hunger-triggered weighings of the next `margin` counts (at most `HUNGRY_BACKOFF`).
    fn back_off(&self, n: u32, margin: usize) {
        let skip = margin.min(HUNGRY_BACKOFF as usize) as u32;
        self.weigh_after.set(n.wrapping_add(1).wrapping_add(skip));
    }

    /// Flip this worker's hungry flag (and `Runtime::hungry`) if it changes.
    fn set_hungry(&self, r: &Runtime, h: bool) {
        if self.hungry.get() == h {
            return;
        }
        self.hungry.set(h);
        self.shared.hungry.store(h, Ordering::SeqCst);
        if h {
            r.hungry.fetch_add(1, Ordering::SeqCst);
        } else {
            r.hungry.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether worker `v` has been running one coroutine (its tick unchanged) for at least
    /// `STUCK_STEAL_MS`, as far as this worker has watched it.
    fn seems_stuck(&self, v: &WorkerShared) -> bool {
        // SAFETY: owner-only; no reference to it is held across calls that could re-enter.
        let seen = unsafe { &mut *self.seen.get() };
        if seen.len() <= v.index {
            seen.resize(v.index + 1, (u64::MAX, Instant::now()));
        }
        let tick = v.tick.load(Ordering::Relaxed);
        let now = Instant::now();
        let e = &mut seen[v.index];
        if v.running.load(Ordering::Relaxed) == 0 || e.0 != tick {
            *e = (tick, now);
            return false;
        }
        now.duration_since(e.1) >= Duration::from_millis(STUCK_STEAL_MS)
    }

    /// How many fresh coroutines this worker may take from `v` now (0: none; the stealing rule
    /// in `placement.rs`), and whether it may take gifts too.
    fn steal_allowance(&self, v: &WorkerShared) -> (usize, bool) {
        if !v.fresh_queued() {
            return (0, false);
        }
        let (theirs, mine) = (v.load(), self.shared.load());
        if theirs >= mine + 2 {
            return ((theirs - mine) / 2, false);
        }
        if self.seems_stuck(v) {
            return (usize::MAX, true);
        }
        (0, false)
    }

    /// Whether this worker is above the gomaxprocs target (refreshed every few rounds).
    pub(crate) fn retiring(&self) -> bool {
        self.retiring.get()
    }

    fn refresh_retiring(&self) -> bool {
        let r = self.shared.index >= rt().target.load(Ordering::Relaxed);
        self.retiring.set(r);
        r
    }

    /// Put `n` in `runnext`, moving the previous occupant to its queue. Returns true when that
    /// made fresh work stealable (so an idle worker may want waking).
    pub(crate) fn push_runnext(&self, n: Next) -> bool {
        if let Next::Started(p) = n {
            let old = self.next_started.replace(p);
            if !old.is_null() {
                self.ready_q().push_back(old);
            }
            return false;
        }
        let old = self.shared.runnext.swap(tag(n), Ordering::AcqRel);
        if old.is_null() {
            return false;
        }
        // SAFETY: swapping it out of the slot gave us ownership.
        self.enqueue(unsafe { untag(old) })
    }

    /// Queue: fresh ones on the newest-first deque, started ones at the back of the local queue.
    fn enqueue(&self, n: Next) -> bool {
        match n {
            Next::Fresh(co) => {
                self.shared.lifo.push(co, |old| self.push_ring(old));
                true
            }
            Next::Started(p) => {
                self.ready_q().push_back(p);
                false
            }
        }
    }

    /// Put a fresh coroutine at the back of the stealable FIFO ring (or, when it is full, move
    /// half of the ring to the global queue).
    fn push_ring(&self, co: CoRef) {
        if let Err(batch) = self.shared.runq.push(co) {
            rt().global.push_batch(batch);
        }
    }

    fn take_runnext(&self) -> Option<Next> {
        let started = self.next_started.replace(std::ptr::null());
        if !started.is_null() {
            return Some(Next::Started(started));
        }
        if self.shared.runnext.load(Ordering::Relaxed).is_null() {
            return None;
        }
        let p = self
            .shared
            .runnext
            .swap(std::ptr::null_mut(), Ordering::AcqRel);
        if p.is_null() {
            None
        } else {
            // SAFETY: swapped out of the slot: ours.
            Some(unsafe { untag(p) })
        }
    }

    /// Switch from the running coroutine back to this worker's loop.
    pub(crate) fn suspend_current(&self, cop: *const Co) {
        debug_assert_eq!(self.no_switch.get(), 0, "switch while switching is off");
        // A coroutine that suspends in the middle of an unwind leaves std's per-thread panic
        // count raised for whatever this worker runs next: count it, so that the others can
        // tell their own unwinding from its (`sched::unwinding`).
        // SAFETY: `cop` is the running coroutine, alive (registry) while it runs.
        let unwinding = self.unwinding_at_suspend(unsafe { &*cop });
        if unwinding {
            self.unwinding_parked.set(self.unwinding_parked.get() + 1);
        }
        // SAFETY: `cop` is the running coroutine on this worker; its context exists and only
        // this thread touches it. We go through a raw pointer to the field so that no other
        // reference into the control block is live across the switch.
        unsafe {
            let ctx = std::ptr::addr_of_mut!((*(*cop).inner_ptr()).ctx);
            (*ctx)
                .as_mut()
                .expect("running coroutine without context")
                .suspend();
        }
        // Back on the same worker (a started coroutine never migrates), so `self` is still ours.
        if unwinding {
            self.unwinding_parked.set(self.unwinding_parked.get() - 1);
        }
    }

    /// At a suspension of the running coroutine `co`: whether it suspends mid-unwind (the
    /// rule of `sched::unwinding`, in `sched/mod.rs`). Re-synchronises `co.unwinds` with std
    /// wherever std's answer is exact.
    fn unwinding_at_suspend(&self, co: &Co) -> bool {
        if !std::thread::panicking() {
            co.unwinds.store(0, Ordering::Relaxed);
            return false;
        }
        if self.unwinding_parked.get() == 0 {
            if co.unwinds.load(Ordering::Relaxed) == 0 {
                co.unwinds.store(1, Ordering::Relaxed); // begun by a `resume_unwind` goro missed
            }
            return true;
        }
        co.unwinds.load(Ordering::Relaxed) > 0
    }

    /// The running coroutine enters an eligible park at coarse time `now_ms`: a compaction
    /// pass is due once it has waited `after` ms. A pass already due keeps its time: it is
    /// never later than this one's would be (set here for an earlier park, or by a pass as the
    /// nearest due of those it saw, at most `after` away; a pass refused for a foreign thread
    /// retries later, which holds for this park too), and the pass schedules the next one from
    /// every eligible coroutine it sees. So a busy worker pays one load on this path.
    #[inline]
    pub(crate) fn note_idle_park(&self, now_ms: u64, after: u64) {
        if self.compact_due.get().is_none() {
            self.compact_due.set(Some(now_ms.saturating_add(after)));
        }
    }

    /// Run the compaction pass if it is due; returns when the next one is (as an instant).
    fn compact_if_due(&self) -> Option<Instant> {
        let due = self.compact_due.get()?;
        let now_ms = coarse_now_ms();
        if due <= now_ms {
            let next = compaction::pass(self.shared, now_ms).map(|d| now_ms + d.max(1));
            self.compact_due.set(next);
        }
        let due = self.compact_due.get()?;
        Some(Instant::now() + Duration::from_millis(due.saturating_sub(now_ms)))
    }

    /// Gosched: queue the running coroutine at the back and switch away.
    pub(crate) fn yield_current(&self) {
        let cop = self.current.get();
        let earlier = self.yielded.replace(cop);
        if !earlier.is_null() {
            self.ready_q().push_back(earlier);
        }
        self.suspend_current(cop);
    }

    /// Whether another coroutine could run on this worker now (the cooperative budget's check,
    /// `coop.rs`: a few loads, made once per budget). Includes the yielded slot, so that two
    /// coroutines spending their budgets take turns, and an expired local timeout.
    pub(crate) fn others_runnable(&self) -> bool {
        !self.next_started.get().is_null()
            || !self.shared.runnext.load(Ordering::Relaxed).is_null()
            || !self.ready_q().is_empty()
            || !self.yielded.get().is_null()
            || !self.shared.inbox.is_empty()
            || self.shared.lifo.len() > 0
            || self.shared.runq.len() > 0
            || !self.retiring() && !rt().global.is_empty()
            || self
                .heap()
                .peek()
                .is_some_and(|t| t.deadline <= Instant::now())
    }

    pub(crate) fn add_timeout(&self, deadline: Instant, seq: u64, cop: *const Co) {
        // SAFETY: `cop` is the running coroutine, kept alive by the registry.
        let co = unsafe { CoRef::from_borrowed(cop) };
        let h = self.heap();
        h.push(ParkTimeout { deadline, seq, co });
        self.shared.timeouts.store(h.len(), Ordering::Relaxed);
    }

    pub(crate) fn note_stale_timeout(&self) {
        let stale = self.stale.get() + 1;
        self.stale.set(stale);
        let h = self.heap();
        if stale > 256 && stale * 2 > h.len() {
            // Compact: keep only entries whose coroutine is still in that park.
            let old = std::mem::take(h);
            *h = old
                .into_iter()
                .filter(|t| t.co.park_seq.load(Ordering::Relaxed) == t.seq && t.co.is_parked())
                .collect();
            self.stale.set(0);
            self.shared.timeouts.store(h.len(), Ordering::Relaxed);
        }
    }

    /// Wake coroutines whose deadline passed. Returns the earliest remaining deadline.
    fn fire_timeouts(&self, now: Instant) -> Option<Instant> {
        let h = self.heap();
        while let Some(top) = h.peek() {
            if top.deadline > now {
                break;
            }
            let t = h.pop().expect("peeked");
            if t.co.park_seq.load(Ordering::Relaxed) == t.seq {
                // Mark this park as ended by its timer (the coroutine checks `park_seq`).
                t.co.park_seq
                    .store(t.seq.wrapping_add(1), Ordering::Relaxed);
                if t.co.wake_on_timeout() {
                    self.ready_q().push_back(CoRef::as_ptr(&t.co));
                }
            } else {
                self.stale.set(self.stale.get().saturating_sub(1));
            }
        }
        self.shared.timeouts.store(h.len(), Ordering::Relaxed);
        h.peek().map(|t| t.deadline)
    }

    /// Find the next coroutine to run without sleeping.
    fn find_runnable(&self, r: &'static Runtime) -> Option<Next> {
        let tick = self.schedtick.get().wrapping_add(1);
        self.schedtick.set(tick);
        let mut retiring = self.retiring();
        if tick % FAIRNESS_TICKS == 0 {
            retiring = self.refresh_retiring();
            while let Some(c) = self.shared.inbox.pop() {
                self.ready_q().push_back(c.0);
            }
            // The yielded slot runs only when nothing else is runnable, which coroutines that
            // keep waking each other (a ping-pong pair in `runnext`) can make never: give it a
            // turn in the queue now and then (Go's `Gosched` goes to the global queue, which
            // is served every 61 rounds for the same reason).
            let y = self.yielded.replace(std::ptr::null());
            if !y.is_null() {
                self.ready_q().push_back(y);
            }
            if !self.heap().is_empty() {
                self.fire_timeouts(Instant::now());
            }
            if !retiring {
                if let Some(c) = r.global.pop() {
                    return Some(Next::Fresh(c));
                }
            }
            // The oldest fresh work here, so that newest-first cannot starve it (see `lifo`).
            if let Some(c) = self
                .shared
                .runq
                .pop()
                .or_else(|| {
                    let g = self.shared.gifts.pop();
                    self.gift_next.set(g.is_some());
                    g
                })
                .or_else(|| self.shared.lifo.pop_oldest())
            {
                return Some(Next::Fresh(c));
            }
        }
        if let Some(n) = self.take_runnext() {
            let streak = self.streak.get() + 1;
            if streak <= RUNNEXT_STREAK
                || self.ready_q().is_empty()
                    && self.shared.runq.len() == 0
                    && self.shared.lifo.len() == 0
            {
                self.streak.set(streak);
                return Some(n);
            }
            self.streak.set(0);
            self.enqueue(n);
        } else {
            self.streak.set(0);
        }
        if let Some(p) = self.ready_q().pop_front() {
            return Some(Next::Started(p));
        }
        if let Some(c) = self.shared.inbox.pop() {
            return Some(Next::Started(c.0));
        }
        if let Some(c) = self.shared.lifo.pop_newest() {
            return Some(Next::Fresh(c));
        }
        if let Some(c) = self.shared.runq.pop() {
            return Some(Next::Fresh(c));
        }
        // Placed here deliberately (this worker was the lightest). After our own fresh work:
        // a gift is often the root of a big subtree of a fork/join tree, and starting the next
        // one before the last one's children would run the tree breadth-first (see `lifo.rs`).
        if let Some(c) = self.shared.gifts.pop() {
            self.gift_next.set(true);
            return Some(Next::Fresh(c));
        }
        if !self.heap().is_empty() {
            self.fire_timeouts(Instant::now());
            if let Some(p) = self.ready_q().pop_front() {
                return Some(Next::Started(p));
            }
        }
        let y = self.yielded.replace(std::ptr::null());
        if !y.is_null() {
            return Some(Next::Started(y));
        }
        if retiring {
            return None;
        }
        // Take at most our share of the global queue (this one and `share - 1` more), so that
        // it drains in batches and a burst there spreads over the workers.
        let share = r.global.len() / r.target.load(Ordering::Relaxed).max(1);
        let more = share.saturating_sub(1).min(runq_room(self));
        if let Some(c) = r.global.pop_batch(more, |x| {
            let _ = self.enqueue(Next::Fresh(x));
        }) {
            return Some(Next::Fresh(c));
        }
        self.steal(r).map(Next::Fresh)
    }

    /// Steal fresh coroutines from another worker.
    fn steal(&self, r: &'static Runtime) -> Option<CoRef> {
        let n = r.created().min(r.target.load(Ordering::Relaxed));
        if n <= 1 {
            return None;
        }
        let start = self.rng.next_u64() as usize % n;
        for k in 0..n {
            let i = (start + k) % n;
            if i == self.shared.index {
                continue;
            }
            let Some(v) = r.worker(i) else { continue };
            let (max, gifts_too) = self.steal_allowance(v);
            if max == 0 {
                continue;
            }
            if let Some(c) = v.runq.steal_into(&self.shared.runq, max) {
                return Some(c);
            }
            let mut stolen = v.lifo.steal_half(max).into_iter();
            if let Some(first) = stolen.next() {
                for c in stolen {
                    self.shared.lifo.push(c, |old| self.push_ring(old));
                }
                return Some(first);
            }
            if gifts_too {
                if let Some(c) = v.gifts.pop() {
                    return Some(c);
                }
            }
        }
        None
    }

    /// Whether another active worker has fresh work queued (that we may or may not take).
    fn fresh_elsewhere(&self, r: &'static Runtime) -> bool {
        let n = r.created().min(r.target.load(Ordering::Relaxed));
        (0..n).any(|i| i != self.shared.index && r.worker(i).is_some_and(|w| w.fresh_queued()))
    }

    /// Whether there is anything this worker could run right now (checked after announcing
    /// that it goes to sleep, so that concurrent wakers and this check cannot miss each other).
    fn has_work(&self, r: &'static Runtime) -> bool {
        if !self.shared.inbox.is_empty()
            || !self.ready_q().is_empty()
            || !self.next_started.get().is_null()
            || !self.yielded.get().is_null()
            || self.shared.runq.len() > 0
            || self.shared.lifo.len() > 0
            || !self.shared.gifts.is_empty()
        {
            return true;
        }
        if !self.shared.runnext.load(Ordering::Acquire).is_null() {
            return true;
        }
        if self.retiring() {
            return false;
        }
        if !r.global.is_empty() {
            return true;
        }
        let n = r.created().min(r.target.load(Ordering::Relaxed));
        (0..n).any(|i| {
            i != self.shared.index && r.worker(i).is_some_and(|w| self.steal_allowance(w).0 > 0)
        })
    }

    /// Nothing to run: spin a little, then sleep until woken or the next local timeout.
    fn idle(&self, r: &'static Runtime) -> Option<Next> {
        // I/O readiness first (without blocking): it may make coroutines runnable here.
        if poller::poll_now(coarse_now_ms()) > 0 {
            return None;
        }
        if self.refresh_retiring() {
            self.set_hungry(r, false); // hungry for nothing: it takes no new work
            self.hand_off_fresh(r);
            if self.try_exit(r) {
                return None;
            }
        } else {
            self.set_hungry(r, true);
            r.spinning.fetch_add(1, Ordering::SeqCst);
            for i in 0..SPIN_ROUNDS {
                if let Some(c) = self.find_runnable(r) {
                    if r.spinning.fetch_sub(1, Ordering::SeqCst) == 1 {
                        // We were the last spinner: a producer that queued work and then saw us
                        // spinning (`wake_idle_worker`: push, SeqCst fence, load `spinning`) left
                        // the wake-up to us. Our decrement is SeqCst but `has_work` loads with
                        // Acquire only: without a fence between them the model lets those loads
                        // miss that push (Dekker), and nobody would wake a worker for it. (On
                        // x86 the locked decrement is a full barrier already; this fence costs
                        // one on the last-spinner hand-over only.)
                        fence(Ordering::SeqCst);
                        if self.has_work(r) {
                            // More work is queued: pass the baton.
                            r.wake_idle_worker();
                        }
                    }
                    return Some(c);
                }
                if i % 8 == 7 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
            r.spinning.fetch_sub(1, Ordering::SeqCst);
        }
        self.shared.sleeping.store(true, Ordering::SeqCst);
        r.idle.fetch_add(1, Ordering::SeqCst);
        // At most one sleeper blocks in the I/O poller instead of `thread::park` (claimed
        // before the fence: see `poller`'s invariant).
        let polls = poller::claim(self.shared.index);
        fence(Ordering::SeqCst);
        if self.has_work(r) {
            if polls {
                poller::release(self.shared.index);
            }
            self.shared.sleeping.store(false, Ordering::SeqCst);
            r.idle.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let mut next = if self.heap().is_empty() {
            None
        } else {
            self.fire_timeouts(Instant::now())
        };
        if !self.retiring() && self.fresh_elsewhere(r) {
            // Fresh work we may not take yet: look again soon (its owner may get stuck).
            let soon = Instant::now() + RECHECK;
            next = Some(next.map_or(soon, |d| d.min(soon)));
        }
        // Idle time: compact the stacks of coroutines idle long enough, and wake for the next
        // pass if one is pending.
        let next = match (next, self.compact_if_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut woke = 0;
        if self.ready_q().is_empty() {
            self.shared.running.store(0, Ordering::Relaxed);
            match next {
                _ if polls => {
                    woke = poller::block(
                        coarse_now_ms(),
                        next.map(|d| d.saturating_duration_since(Instant::now())),
                    )
                }
                Some(d) => {
                    let now = Instant::now();
                    if d > now {
                        std::thread::park_timeout((d - now).max(Duration::from_micros(50)));
                    }
                }
                None => std::thread::park(),
            }
        }
        if polls {
            poller::release(self.shared.index);
        }
        self.shared.sleeping.store(false, Ordering::SeqCst);
        r.idle.fetch_sub(1, Ordering::SeqCst);
        if woke > 0 {
            // We leave the poller with work: let another sleeper take the poller role.
            r.wake_idle_worker();
        }
        None
    }

    /// Nothing lives or waits here: no started coroutine (the registry is empty, so nobody can
    /// wake one into our queues or inbox), no queued or fresh work, no timeout.
    fn quiescent(&self) -> bool {
        crate::util::lock(&self.shared.registry).len == 0
            && self.ready_q().is_empty()
            && self.next_started.get().is_null()
            && self.yielded.get().is_null()
            && self.heap().is_empty()
            && self.shared.inbox.is_empty()
            && self.shared.runnext.load(Ordering::Acquire).is_null()
            && self.shared.runq.len() == 0
            && self.shared.lifo.len() == 0
            && self.shared.gifts.is_empty()
    }

    /// A retired worker ends its thread once it hosts nothing (Go's rule for surplus Ps, made
    /// to wait for the started coroutines that cannot move). Decided under the lifecycle lock
    /// (`Runtime::created`), re-reading the target there: a concurrent `gomaxprocs` that grows
    /// the set again either sees `exited` and starts a new thread for this slot, or is seen
    /// here and keeps this one. True: the loop must stop, touching `shared` no more.
    fn try_exit(&self, r: &'static Runtime) -> bool {
        if !self.quiescent() {
            return false;
        }
        let _lifecycle = crate::util::lock(&r.created);
        if self.shared.index < r.target.load(Ordering::SeqCst) || !self.quiescent() {
            return false;
        }
        self.shared.running.store(0, Ordering::Relaxed);
        self.set_hungry(r, false); // an ended thread asks for no work
        self.shared.exited.store(true, Ordering::SeqCst);
        self.exiting.set(true);
        true
    }

    /// A retiring worker gives its fresh coroutines to the global queue.
    fn hand_off_fresh(&self, r: &'static Runtime) {
        let mut moved = false;
        match self.take_runnext() {
            Some(Next::Fresh(co)) => {
                r.global.push(co);
                moved = true;
            }
            Some(Next::Started(p)) => self.ready_q().push_back(p),
            None => {}
        }
        for c in self.shared.lifo.take_all() {
            r.global.push(c);
            moved = true;
        }
        while let Some(c) = self.shared.gifts.pop() {
            r.global.push(c);
            moved = true;
        }
        while let Some(c) = self.shared.runq.pop() {
            r.global.push(c);
            moved = true;
        }
        if moved {
            r.wake_idle_worker();
        }
    }

    /// Switch into `co` and deal with how it came back.
    fn run_co(&self, n: Next) {
        let cop = match n {
            Next::Fresh(co) => {
                debug_assert_eq!(co.state.load(Ordering::Relaxed), FRESH);
                if !self.start(&co) {
                    return;
                }
                CoRef::as_ptr(&co) // the registry holds it from now on
            }
            Next::Started(cop) => {
                // SAFETY: a started coroutine in our queue is alive (registry).
                let co = unsafe { &*cop };
                co.resume_from_queue();
                compaction::restore(co);
                cop
            }
        };
        self.current.set(cop);
        self.coop.set(0);
        self.slice_spawns.set(0);
        let sh = self.shared;
        // SAFETY: `cop` is alive (registry); plain read of immutable fields.
        sh.running.store(unsafe { (*cop).id }, Ordering::Relaxed);
        sh.running_since.store(coarse_now_ms(), Ordering::Relaxed);
        sh.tick.store(
            sh.tick.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        coop::refill();
        // SAFETY: the coroutine is ours to run (popped from our queue / started here) and not
        // running; its context was created by `start`. Raw pointer access: the coroutine itself
        // reaches the same field through its own raw pointer when it suspends.
        let finished = unsafe {
            let inner = (*cop).inner_ptr();
            // Tell the stack-overflow handler who runs (and on which stack) until we are back.
            let info = std::ptr::addr_of!((*inner).info);
            overflow::set_running(
                (*info)
                    .as_ref()
                    .map_or(std::ptr::null(), |i| i as *const RunningInfo),
            );
            let ctx = std::ptr::addr_of_mut!((*inner).ctx);
            let c = (*ctx).as_mut().expect("started coroutine without context");
            let finished = c.resume();
            overflow::set_running(std::ptr::null());
            if !finished {
                // The stack's low-water mark, so the pool can shrink it if it grew.
                if let Some(st) = (*inner).stack.as_ref() {
                    st.note_sp(c.suspended_sp());
                }
            } else {
                debug_assert!(c.is_finished());
            }
            finished
        };
        self.current.set(std::ptr::null());
        sh.running.store(0, Ordering::Relaxed);
        if finished {
            self.finish(cop);
        }
    }

    /// Prepare a fresh coroutine to run here. False if it could not start (no stack): it has
    /// then been completed with an error and must not be resumed.
    fn start(&self, co: &CoRef) -> bool {
        // SAFETY: a fresh coroutine popped by us: we are its only user.
        let inner = co.inner_ptr();
        // SAFETY: as above.
        if unsafe { (*inner).stack.is_none() } {
            match crate::stack::allocate(co.stack_size) {
                // SAFETY: as above.
                Ok(s) => unsafe { (*inner).stack = Some(s) },
                Err(e) => {
                    // Said once per exhaustion episode (a queue of coroutines that cannot
                    // start would otherwise print a line each); every one's join() says it.
                    if !crate::stack::STACKS_EXHAUSTED.swap(true, Ordering::Relaxed) {
                        crate::util::report(format_args!("goro: coroutine {} cannot start: no stack ({e}); its join() reports a panic (so will every coroutine that cannot start until stacks are free again)", co.id));
                    }
                    // SAFETY: as above; the task is run by nobody else, and this coroutine is
                    // never resumed (DONE below).
                    unsafe { co.fail_task(e, coroutine_exiting) };
                    co.mark_done();
                    return false;
                }
            }
        }
        co.owner.store(self.shared.index, Ordering::Relaxed);
        let hosted = &self.shared.hosted;
        hosted.store(hosted.load(Ordering::Relaxed) + 1, Ordering::Release);
        let slot = crate::util::lock(&self.shared.registry).insert(co.clone());
        co.slot.store(slot, Ordering::Relaxed);
        co.mark_started();
        let cop = CoRef::as_ptr(co);
        // SAFETY: fresh coroutine popped by us: we are its only user. The stack lives in the
        // control block until `finish`, after the context is dropped.
        unsafe {
            let inner = (*cop).inner_ptr();
            let stack = (*inner)
                .stack
                .as_ref()
                .expect("fresh coroutine without stack");
            let ctx = SwitchContext::new(stack, coroutine_entry, cop as *mut ());
            (*inner).info = Some(RunningInfo::new(
                (*cop).id,
                (*cop).name.as_deref().unwrap_or(""),
                stack,
            ));
            (*inner).ctx = Some(ctx);
        }
        true
    }

    fn finish(&self, cop: *const Co) {
        // SAFETY: the coroutine finished on this worker; nothing runs on its stack any more.
        let (ctx, stack) = unsafe {
            let inner = (*cop).inner_ptr();
            (*inner).info = None;
            ((*inner).ctx.take(), (*inner).stack.take())
        };
        // The context goes first (a finished one holds nothing on its stack), then the stack
        // returns to this thread's cache.
        release_in_order(ctx, stack);
        // SAFETY: alive through the registry until removed below.
        let co = unsafe { &*cop };
        co.mark_done();
        let slot = co.slot.load(Ordering::Relaxed);
        let removed = crate::util::lock(&self.shared.registry).remove(slot);
        drop(removed);
        let hosted = &self.shared.hosted;
        hosted.store(hosted.load(Ordering::Relaxed) - 1, Ordering::Release);
    }
}

/// Called by a finishing coroutine before its joiner can see the result (passed to
/// `Co::run_task` / `Co::fail_task` as their `exiting`).
pub(crate) fn coroutine_exiting() {
    match this_worker() {
        Some(l) => count_up(&l.shared.finished),
        None => {
            rt().plain_finished.fetch_add(1, Ordering::Release);
        }
    }
}

/// Drop `first`, then `second` (a generic helper: the context type may or may not need drop).
fn release_in_order<A, B>(first: A, second: B) {
    drop(first);
    drop(second);
}

fn runq_room(l: &WorkerLocal) -> usize {
    super::runq::CAP / 2 - l.shared.runq.len().min(super::runq::CAP / 2)
}

/// First code on a fresh coroutine stack: run the body (which never unwinds: it catches panics
/// and goexit itself) and return, which ends the coroutine.
///
/// # Safety
/// `arg` is the `*const Co` of the coroutine being started, alive for the coroutine's life.
unsafe fn coroutine_entry(arg: *mut ()) {
    let cop = arg as *const Co;
    // The task catches unwinds itself (and drops an unjoined result under `catch_unwind`);
    // this guard turns a bug there into an abort rather than an unwind into the
    // context-switch code.
    struct AbortOnUnwind;
    impl Drop for AbortOnUnwind {
        fn drop(&mut self) {
            crate::util::report(format_args!(
                "goro: fatal: an unwind escaped a coroutine body"
            ));
            std::process::abort();
        }
    }
    let guard = AbortOnUnwind;
    // SAFETY: per the contract the block is alive; this is the coroutine itself, running its
    // task the one time it starts.
    unsafe { (*cop).run_task(coroutine_exiting) };
    std::mem::forget(guard);
}

/// The worker thread's main loop. A panic here is a bug in goro, never in user code (coroutine
/// bodies catch their own): the coroutines this worker hosts could never run again, so abort.
pub(crate) fn run(shared: &'static WorkerShared) {
    crate::census::runtime_thread();
    if let Err(p) = std::panic::catch_unwind(move || run_loop(shared)) {
        let msg = crate::util::panic_message(&*p).unwrap_or("(no message)");
        crate::util::report(format_args!(
            "goro: fatal internal error on worker {}: {msg}",
            shared.index
        ));
        std::process::abort();
    }
}

fn run_loop(shared: &'static WorkerShared) {
    // Per-thread random bits, mixed with the index so that workers never share a sequence.
    let seed = random_u64() ^ (shared.index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let me: &'static WorkerLocal = Box::leak(Box::new(WorkerLocal {
        shared,
        current: Cell::new(std::ptr::null()),
        ready: UnsafeCell::new(VecDeque::new()),
        yielded: Cell::new(std::ptr::null()),
        next_started: Cell::new(std::ptr::null()),
        timeouts: UnsafeCell::new(BinaryHeap::new()),
        stale: Cell::new(0),
        retiring: Cell::new(false),
        exiting: Cell::new(false),
        compact_due: Cell::new(None),
        streak: Cell::new(0),
        schedtick: Cell::new(shared.index as u64),
        rng: Rng::new(seed),
        unwinding_parked: Cell::new(0),
        no_switch: Cell::new(0),
        hungry: Cell::new(false),
        spawns: Cell::new(0),
        seen: UnsafeCell::new(Vec::new()),
        gift_next: Cell::new(false),
        weigh_after: Cell::new(0),
        coop: Cell::new(0),
        slice_spawns: Cell::new(0),
    }));
    WORKER.with(|c| c.set(me));
    // Publish our handle before we can ever sleep: a waker that found `sleeping` set but no
    // handle could not wake us, and would have cleared the flag, losing us for good.
    *crate::util::lock(&shared.thread) = Some(std::thread::current());
    overflow::ensure_altstack();
    let r = rt();
    me.refresh_retiring();
    loop {
        let next = match me.find_runnable(r) {
            Some(c) => Some(c),
            None => me.idle(r),
        };
        let gift = me.gift_next.replace(false);
        let Some(co) = next else {
            if me.exiting.get() {
                break;
            }
            continue;
        };
        let co = match co {
            // Fresh work of our own while another worker is hungry: hand our queued backlog
            // over if that one is lighter, before it starts here for good (`placement.rs`).
            Next::Fresh(co) if !gift && r.hungry.load(Ordering::Relaxed) > 0 => {
                // Starts count on the spawn clock too, so that the backoff also ends for a
                // worker that starts work without spawning.
                let n = me.spawns.get().wrapping_add(1);
                me.spawns.set(n);
                if me.may_weigh(n) {
                    me.share(r, n);
                }
                Next::Fresh(co)
            }
            co => co,
        };
        me.set_hungry(r, false);
        me.run_co(co);
    }
    // Retired and empty: the thread ends. Nothing here refers to `me` any more (no coroutine
    // is left, and only this thread ever used it).
    WORKER.with(|c| c.set(std::ptr::null()));
    // SAFETY: `me` came from `Box::leak` above, is reachable only through the thread-local
    // just cleared, and no reference to it outlives this point (the loop is over).
    drop(unsafe { Box::from_raw(me as *const WorkerLocal as *mut WorkerLocal) });
}
