//! Interning of wait reasons (`&'static str`) into small indices a coroutine can keep in one
//! atomic byte, so `runtime::dump` can read them from another thread without a data race.
//!
//! The table is write-once per slot: a slot's length is published before its pointer (release),
//! and a reader that sees a pointer (acquire) sees its length. Lookup hashes the string's
//! address, so the common case is one probe.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// What a parked coroutine or thread is waiting on, for `runtime::dump()` and deadlock reports.
/// Go's wait reasons ("chan receive", "select", "sleep", "sync.Mutex.Lock", ...) are the model.
pub(crate) type WaitReason = &'static str;

const SLOTS: usize = 128;

struct Slot {
    ptr: AtomicPtr<u8>,
    len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    ptr: AtomicPtr::new(std::ptr::null_mut()),
    len: AtomicUsize::new(0),
};
static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
static CLAIM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The next slot to probe after `i` (wrapping, skipping the reserved 0). No division: this
/// runs on every park.
#[inline]
fn next_slot(i: usize) -> usize {
    match (i + 1) & (SLOTS - 1) {
        0 => 1,
        j => j,
    }
}

/// Index 0 means "no reason recorded".
pub(crate) fn intern(reason: &'static str) -> u8 {
    let p = reason.as_ptr() as *mut u8;
    let h = p as usize;
    let mut i = next_slot(((h >> 3) ^ (h >> 11)).wrapping_sub(1) & (SLOTS - 1));
    for _ in 0..SLOTS - 1 {
        let s = &TABLE[i];
        let cur = s.ptr.load(Ordering::Acquire);
        if cur == p && s.len.load(Ordering::Relaxed) == reason.len() {
            return i as u8;
        }
        if cur.is_null() {
            let _g = crate::util::lock(&CLAIM);
            let cur = s.ptr.load(Ordering::Acquire);
            if cur.is_null() {
                s.len.store(reason.len(), Ordering::Relaxed);
                s.ptr.store(p, Ordering::Release);
                return i as u8;
            }
            if cur == p && s.len.load(Ordering::Relaxed) == reason.len() {
                return i as u8;
            }
        }
        i = next_slot(i);
    }
    0 // table full: the reason is not recorded
}

/// The reason stored under `i` ("" for 0 or unknown).
pub(crate) fn lookup(i: u8) -> &'static str {
    if i == 0 || i as usize >= SLOTS {
        return "";
    }
    let s = &TABLE[i as usize];
    let p = s.ptr.load(Ordering::Acquire);
    if p.is_null() {
        return "";
    }
    let len = s.len.load(Ordering::Relaxed);
    // SAFETY: (p, len) was published from a `&'static str` with len stored before ptr (release),
    // and slots are never rewritten.
    unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(p, len)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_reasons_get_distinct_stable_indices() {
        let reasons: Vec<&'static str> = (0..20)
            .map(|i| &*Box::leak(format!("test reason {i}").into_boxed_str()))
            .collect();
        let idx: Vec<u8> = reasons.iter().map(|r| intern(r)).collect();
        for (r, &i) in reasons.iter().zip(&idx) {
            assert_ne!(i, 0, "table unexpectedly full");
            assert_eq!(intern(r), i, "interning twice gave another index");
            assert_eq!(lookup(i), *r);
        }
        let mut sorted = idx.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), idx.len(), "two reasons share an index");
        assert_eq!(lookup(0), "");
    }
}
