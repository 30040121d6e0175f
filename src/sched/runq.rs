//! A worker's stealable run queue of *fresh* (not yet started) coroutines.
//!
//! A bounded ring in the style of Go's per-P `runq`: the owner pushes at `tail` (only it writes
//! `tail`) and pops at `head`; thieves take up to half of it at once by copying entries and then
//! claiming them with one CAS on `head`. A thief whose CAS fails discards what it copied (the
//! slots may have been reused meanwhile) and retries. Entries are `CoRef`s turned into raw
//! pointers; an entry is owned by whoever wins the `head` CAS that covers it.
//!
//! Invariants: `tail - head <= CAP` (wrapping arithmetic on u32); slots in `[head, tail)` hold
//! valid owned pointers; only fresh coroutines ever enter (started ones may not migrate).

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use crate::co::{Co, CoRef};

pub(crate) const CAP: usize = 256;

pub(crate) struct RunQueue {
    head: AtomicU32,
    tail: AtomicU32,
    slots: Box<[AtomicPtr<Co>]>,
}

impl RunQueue {
    pub(crate) fn new() -> RunQueue {
        RunQueue {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            slots: (0..CAP)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
        }
    }

    fn slot(&self, i: u32) -> &AtomicPtr<Co> {
        &self.slots[i as usize % CAP]
    }

    pub(crate) fn len(&self) -> usize {
        let h = self.head.load(Ordering::Acquire);
        let t = self.tail.load(Ordering::Acquire);
        t.wrapping_sub(h) as usize
    }

    /// Owner only. Push `co`; if the ring is full, hand back `co` plus half of the ring (oldest
    /// first) for the caller to put on the global queue.
    pub(crate) fn push(&self, co: CoRef) -> Result<(), Vec<CoRef>> {
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Relaxed);
            if (t.wrapping_sub(h) as usize) < CAP {
                self.slot(t)
                    .store(CoRef::into_raw(co) as *mut Co, Ordering::Relaxed);
                self.tail.store(t.wrapping_add(1), Ordering::Release);
                return Ok(());
            }
            // Full: move half out, as Go's runqputslow does.
            let n = (CAP / 2) as u32;
            let batch: Vec<*mut Co> = (0..n)
                .map(|i| self.slot(h.wrapping_add(i)).load(Ordering::Relaxed))
                .collect();
            if self
                .head
                .compare_exchange(h, h.wrapping_add(n), Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue; // a thief took some; there may be room now
            }
            let mut out: Vec<CoRef> = batch
                .into_iter()
                // SAFETY: the CAS gave us ownership of these entries, each from `CoRef::into_raw`.
                .map(|p| unsafe { CoRef::from_raw(p) })
                .collect();
            out.push(co);
            return Err(out);
        }
    }

    /// Owner only (thieves use `steal_into`). Pop the oldest entry.
    pub(crate) fn pop(&self) -> Option<CoRef> {
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Relaxed);
            if h == t {
                return None;
            }
            let p = self.slot(h).load(Ordering::Relaxed);
            if self
                .head
                .compare_exchange(h, h.wrapping_add(1), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: winning the CAS on `head` made us the owner of the entry at `h`.
                return Some(unsafe { CoRef::from_raw(p) });
            }
        }
    }

    /// Any thread: steal about half of `self`, but at most `max` (at least 1), into `dst`
    /// (owned by the caller, assumed empty enough). Returns one stolen coroutine to run now,
    /// the rest are in `dst`.
    pub(crate) fn steal_into(&self, dst: &RunQueue, max: usize) -> Option<CoRef> {
        let max = max.clamp(1, CAP) as u32;
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire);
            let avail = t.wrapping_sub(h);
            if avail == 0 || avail as usize > CAP {
                if avail == 0 {
                    return None;
                }
                continue; // inconsistent snapshot (head moved past our tail read): retry
            }
            let n = (avail - avail / 2).min(max);
            let dt = dst.tail.load(Ordering::Relaxed);
            let dh = dst.head.load(Ordering::Acquire);
            let room = CAP as u32 - dt.wrapping_sub(dh);
            let n = n.min(room + 1); // the first one runs at once, the rest need room
            let mut batch = [std::ptr::null_mut::<Co>(); CAP / 2 + 1];
            let n = n.min(batch.len() as u32);
            for i in 0..n {
                batch[i as usize] = self.slot(h.wrapping_add(i)).load(Ordering::Relaxed);
            }
            if self
                .head
                .compare_exchange(h, h.wrapping_add(n), Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // We own batch[..n]. Run the first, queue the rest on dst.
            // SAFETY: the CAS above transferred ownership of these `CoRef::into_raw` pointers.
            let first = unsafe { CoRef::from_raw(batch[0]) };
            let mut dt = dt;
            for &p in &batch[1..n as usize] {
                dst.slot(dt).store(p, Ordering::Relaxed);
                dt = dt.wrapping_add(1);
            }
            dst.tail.store(dt, Ordering::Release);
            return Some(first);
        }
    }
}

impl Drop for RunQueue {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}
