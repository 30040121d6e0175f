//! Wait reasons (`&'static str`) encoded into one atomic word a coroutine keeps, so that
//! `runtime::dump` can read them from another thread without a data race.
//!
//! [`encode`] packs the string's address and length into one `u64` (addresses below 2^47 and
//! lengths below 2^16: every reason on x86_64 and aarch64), so a park costs one store and a
//! reader can never pair one reason's address with another's length. Anything else falls
//! back to interning into a write-once table of small indices (tagged with the top bit): a
//! slot's length is published before its pointer (release), and a reader that sees a pointer
//! (acquire) sees its length.

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

/// Top bit of an encoded reason: the rest is an [`intern`] index, not an address.
const INTERNED: u64 = 1 << 63;

/// The one-word form of `reason` (never 0; 0 means "none recorded").
#[inline]
pub(crate) fn encode(reason: &'static str) -> u64 {
    let addr = reason.as_ptr() as u64;
    let len = reason.len() as u64;
    if addr != 0 && addr < 1 << 47 && len < 1 << 16 {
        addr << 16 | len
    } else {
        INTERNED | u64::from(intern(reason))
    }
}

/// The reason [`encode`] gave `word` ("" for 0 or an unknown index).
pub(crate) fn decode(word: u64) -> &'static str {
    if word == 0 {
        ""
    } else if word & INTERNED != 0 {
        lookup((word & 0xFF) as u8)
    } else {
        let (addr, len) = ((word >> 16) as usize, (word & 0xFFFF) as usize);
        // SAFETY: a word without the tag bit was made by `encode` from a `&'static str` whose
        // address and length it holds whole (one atomic store, so never torn): the bytes are
        // valid UTF-8 for the whole program.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(addr as *const u8, len)) }
    }
}

/// Index 0 means "no reason recorded".
fn intern(reason: &'static str) -> u8 {
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

    #[test]
    fn encoded_reasons_decode_to_themselves() {
        for r in ["chan receive", "select", "", "sync.Mutex.Lock"] {
            let w = encode(r);
            assert_ne!(w, 0);
            assert_eq!(decode(w), r);
        }
        let long: &'static str = Box::leak("x".repeat(70_000).into_boxed_str());
        let w = encode(long);
        assert_ne!(w & INTERNED, 0, "a long reason takes the interning path");
        assert_eq!(decode(w), long);
        assert_eq!(decode(0), "");
    }
}
