//! The global run queue: fresh coroutines spawned from plain threads, the overflow of full
//! worker rings, and work rescued from stuck workers.
//!
//! A `Mutex<VecDeque>` with an atomic length beside it: emptiness checks (every scheduling
//! round of an idle-ish worker) cost one load, and producers and consumers move entries in
//! batches under one lock (a ring overflow hands over 128 at once; a worker takes its share
//! at once), so the lock is taken rarely and nothing is allocated per entry.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::co::CoRef;

pub(crate) struct GlobalQueue {
    q: Mutex<VecDeque<CoRef>>,
    len: AtomicUsize,
}

impl GlobalQueue {
    pub(crate) fn new() -> GlobalQueue {
        GlobalQueue {
            q: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<CoRef>> {
        crate::util::lock(&self.q)
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn push(&self, co: CoRef) {
        let mut q = self.lock();
        q.push_back(co);
        self.len.store(q.len(), Ordering::Release);
    }

    pub(crate) fn push_batch(&self, batch: impl IntoIterator<Item = CoRef>) {
        let mut q = self.lock();
        q.extend(batch);
        self.len.store(q.len(), Ordering::Release);
    }

    /// Take the oldest entry, plus up to `more` further ones handed to `rest` (in order).
    pub(crate) fn pop_batch(&self, more: usize, mut rest: impl FnMut(CoRef)) -> Option<CoRef> {
        if self.is_empty() {
            return None;
        }
        let mut q = self.lock();
        let first = q.pop_front();
        if first.is_some() {
            for _ in 0..more.min(q.len()) {
                rest(q.pop_front().expect("length checked"));
            }
        }
        self.len.store(q.len(), Ordering::Release);
        first
    }

    pub(crate) fn pop(&self) -> Option<CoRef> {
        self.pop_batch(0, |_| {})
    }
}
