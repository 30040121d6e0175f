//! Placement: which worker starts a fresh coroutine.
//!
//! A started coroutine never leaves its worker (the soundness rule in `sched/mod.rs`), so the
//! balance of a server — which worker runs which connection for its whole life — is decided
//! when each coroutine *starts*. Left to itself, a burst of spawns from one coroutine (an accept
//! loop, `main` in `goro::run`) lands in that worker's own queues and most of it starts there
//! before an idle worker wakes up to steal: 16 coroutines that each park in a loop then all live
//! on worker 0, and when one of them blocks the thread, all stall while worker 1 idles.
//!
//! # The rule
//!
//! * **Weight.** A worker's *load* ([`WorkerShared::load`]) is what it hosts and what it will
//!   start: its started, unfinished coroutines (`hosted`) plus its queued fresh ones (`runnext`,
//!   `lifo`, `runq`, `gifts`). Its *weight* is its load, plus [`BUSY_WEIGHT`] unless it is
//!   *hungry* (idle: it found nothing to run and has not found anything since) — a busy worker
//!   gets to new work later than an idle one.
//! * **Sharing** (`WorkerLocal::share` in `worker.rs`). A worker that weighs the others and
//!   finds one strictly lighter moves up to half the difference (at least one) of its queued
//!   fresh work to that worker's `gifts` queue, and wakes it: its *oldest* entries (in a
//!   fork/join tree the biggest subtrees; the newest stay here, warm). Never the coroutine in
//!   hand (just spawned, or about to start): that one runs here soon instead of waiting for
//!   another worker to wake up (a spawner polling for its child with `gosched` relies on it).
//! * **When a spawn weighs.** The 4th spawn of a run slice (a coroutine between two switches:
//!   the start of a burst, [`BURST_WEIGH`]) and the 12th, 28th, 60th, ... (gaps doubling), and
//!   every [`WEIGH_EVERY`]th spawn of a worker (a spawning loop that never parks). The new
//!   coroutine itself always goes to the spawner's `runnext` as before; all other spawns pay
//!   two owner-only counters, no scan.
//! * **Before a start.** A worker about to start fresh work of its own (not a gift) while some
//!   worker is hungry (`Runtime::hungry > 0`: one Relaxed load) weighs and shares its queued
//!   backlog first, so fresh work reaches an idle worker *before* it starts here for good. A weighing that found
//!   every other worker heavier by a margin skips the next hunger-triggered ones, up to
//!   [`HUNGRY_BACKOFF`] of them (each local spawn or start changes our load by at most one).
//! * **Spawning on a plain thread** (and `run`'s main coroutine): always to the lightest active
//!   worker's `gifts` ([`Runtime::lightest_worker`]), never to the global queue, which only
//!   holds overflow and rescued work; a worker takes at most its share (`len / gomaxprocs`) of
//!   it at once.
//! * **Gifts run after the owner's own fresh work** (a FIFO of subtree roots started before
//!   their children would run a tree breadth-first) and are never passed on again.
//! * **Stealing** (idle workers, `worker.rs`) takes fresh work from a worker heavier by at
//!   least two, and then at most half the difference, so a steal never makes the thief the
//!   heavier one; or, without that bound, from a worker that seems stuck (its tick has not
//!   moved for [`STUCK_STEAL_MS`] while it runs a coroutine). `gifts` are taken only from a
//!   stuck owner. An idle worker that sees fresh work it may not take sleeps at most
//!   [`RECHECK`] before it looks again (the owner may get stuck meanwhile).
//! * **Accept loops.** `accept` is a cooperation point (`sched::coop_point`): every 32nd in a
//!   row without parking yields, so an accept loop in a connection storm lets its worker start
//!   its share of the connection coroutines instead of leaving them queued until the monitor
//!   decides the worker is stuck and moves them all away.
//! * **Stuck workers.** The monitor (`sysmon.rs`) moves the gifts of a worker stuck for its
//!   `STUCK_MS` to the global queue with the rest of its fresh work.
//! * **Start-up.** The runtime's start waits (briefly, bounded) until its first workers have
//!   gone idle once, so that the first spawns see them hungry and spread.
//!
//! Loads are read without locks and may be stale by a few entries; placement is a heuristic
//! for balance, never needed for correctness (every queue is drained by its owner, and a stuck
//! owner's fresh work is rescued).

use std::sync::atomic::{fence, Ordering};
use std::time::Duration;

use super::shared::{Runtime, WorkerShared};
use crate::co::CoRef;

/// Spawns of a worker between two weighings while no worker is hungry (a power of two).
pub(crate) const WEIGH_EVERY: u32 = 32;
/// The most spawns (and fresh starts) of a worker that skip the weighing after one, triggered
/// by a hungry worker, found every other worker heavier: as many as the margin, up to this.
/// (Each local spawn adds one to our load, so within the margin a weighing could not move
/// anything; this keeps a busy spawner from scanning on every spawn while a heavier worker
/// idles, as in a fork/join tree whose parked parents make the idle worker heavy.)
pub(crate) const HUNGRY_BACKOFF: u32 = 16;
/// The spawn of one run slice (a coroutine between two switches) that weighs first: the start
/// of a burst. It weighs again at the 12th, 28th, 60th, ... (gaps doubling), so a fork/join
/// node spawning ten children weighs once and a long loop a logarithmic number of times (plus
/// the 1 in `WEIGH_EVERY`).
pub(crate) const BURST_WEIGH: u32 = 4;
/// The extra weight of a worker that is not hungry.
pub(crate) const BUSY_WEIGHT: usize = 2;
/// A worker running one coroutine (its tick unchanged) this long may have any of its fresh
/// work taken, gifts included.
pub(crate) const STUCK_STEAL_MS: u64 = 3;
/// The longest an idle worker sleeps while fresh work it may not take waits elsewhere.
pub(crate) const RECHECK: Duration = Duration::from_millis(2);

impl WorkerShared {
    /// Started coroutines hosted here plus fresh ones queued here (a lock-free snapshot).
    pub(crate) fn load(&self) -> usize {
        self.hosted.load(Ordering::Relaxed)
            + usize::from(!self.runnext.load(Ordering::Relaxed).is_null())
            + self.lifo.len()
            + self.runq.len()
            + self.gifts.len()
    }

    /// Fresh coroutines queued here (what a thief could look at).
    pub(crate) fn fresh_queued(&self) -> bool {
        self.runq.len() > 0 || self.lifo.len() > 0 || !self.gifts.is_empty()
    }

    /// The load, plus `BUSY_WEIGHT` unless the worker is hungry.
    fn weight(&self) -> usize {
        let busy = if self.hungry.load(Ordering::Relaxed) {
            0
        } else {
            BUSY_WEIGHT
        };
        self.load() + busy
    }

    /// Hand this worker a fresh coroutine to start, and wake it if it sleeps (the same
    /// push / SeqCst fence / check `sleeping` protocol as the inbox: the worker sets `sleeping`,
    /// fences, then checks `gifts`, so one of the two sees the other).
    pub(crate) fn gift(&self, co: CoRef) {
        self.gifts.push(co);
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.wake();
        }
    }
}

impl Runtime {
    /// Workers that take new work: `0..min(created, target)`.
    fn active(&self) -> usize {
        self.created().min(self.target.load(Ordering::Relaxed))
    }

    /// Weigh the other active workers against `me` (weights as in the module doc): the
    /// lightest if it is strictly lighter, and by how much — or `Err(margin)`: how much lighter
    /// than the lightest other worker `me` is (`usize::MAX` if there is none).
    pub(crate) fn lighter_worker(
        &self,
        me: &WorkerShared,
    ) -> Result<(&'static WorkerShared, usize), usize> {
        let mine = me.weight();
        let mut best: Option<(usize, &'static WorkerShared)> = None;
        for i in 0..self.active() {
            if i == me.index {
                continue;
            }
            let Some(w) = self.worker(i) else { continue };
            let wt = w.weight();
            if best.is_none_or(|(b, _)| wt < b) {
                best = Some((wt, w));
            }
        }
        match best {
            Some((b, w)) if b < mine => Ok((w, mine - b)),
            Some((b, _)) => Err(b - mine),
            None => Err(usize::MAX),
        }
    }

    /// The lightest active worker (the first on ties), for spawns from plain threads.
    pub(crate) fn lightest_worker(&self) -> Option<&'static WorkerShared> {
        let mut found: Option<(usize, &'static WorkerShared)> = None;
        for i in 0..self.active() {
            let Some(w) = self.worker(i) else { continue };
            let wt = w.weight();
            if found.is_none_or(|(b, _)| wt < b) {
                found = Some((wt, w));
            }
        }
        found.map(|(_, w)| w)
    }
}
