//! `CoRef` (part of the `co` layer): the counted reference to a coroutine's control block, with its own allocator.
//!
//! It behaves like `Arc<Co>` (same method names: `as_ptr`, `into_raw`, `from_raw`,
//! `increment_strong_count`, `ptr_eq`), but the memory comes from per-thread free lists of
//! control blocks instead of the global allocator. A burst of spawns keeps 100,000 coroutines
//! pending at once; as plain heap objects their ~250-byte blocks overflow glibc's per-thread
//! caches into its slow, consolidating bins (a third of the spawn path's time in profiles).
//! Here an allocation is a `Vec::pop` and a free a `Vec::push`.
//!
//! Invariants: the count lives beside the `Co` in a `#[repr(C)]` box whose first field is the
//! `Co`, so `*const Co` and `*const CoBox` are the same address; a box's `Co` is dropped when
//! the count reaches zero and its memory goes back to the freeing thread's list (which spills
//! half to a global list past `LOCAL_CAP` and refills from it in batches). Box memory is never
//! returned to the system (its amount is bounded by the peak number of coroutines alive).

use std::alloc::{alloc, handle_alloc_error, Layout};
use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::Co;

#[repr(C)]
struct CoBox {
    co: ManuallyDrop<Co>,
    refs: AtomicUsize,
}

/// A counted reference to a coroutine's control block (see the module docs).
pub(crate) struct CoRef(NonNull<CoBox>);

// SAFETY: `Co` is `Send + Sync`; the count is atomic, as in `Arc`.
unsafe impl Send for CoRef {}
// SAFETY: as above.
unsafe impl Sync for CoRef {}

const LOCAL_CAP: usize = 1024;
const BATCH: usize = LOCAL_CAP / 2;

struct FreeList(Vec<NonNull<CoBox>>);

impl Drop for FreeList {
    fn drop(&mut self) {
        // A thread that exits hands its free boxes to the global list.
        if !self.0.is_empty() {
            global().extend(self.0.drain(..).map(SendPtr));
        }
    }
}

struct SendPtr(NonNull<CoBox>);
// SAFETY: free boxes are plain memory owned by whoever holds the pointer.
unsafe impl Send for SendPtr {}

static GLOBAL: Mutex<Vec<SendPtr>> = Mutex::new(Vec::new());

fn global() -> std::sync::MutexGuard<'static, Vec<SendPtr>> {
    crate::util::lock(&GLOBAL)
}

thread_local! {
    static FREE: RefCell<FreeList> = const { RefCell::new(FreeList(Vec::new())) };
}

fn take_box() -> NonNull<CoBox> {
    let local = FREE
        .try_with(|f| {
            let mut f = f.borrow_mut();
            if f.0.is_empty() {
                let mut g = global();
                let n = g.len().min(BATCH);
                let at = g.len() - n;
                f.0.extend(g.drain(at..).map(|p| p.0));
            }
            f.0.pop()
        })
        .ok()
        .flatten();
    local.unwrap_or_else(|| {
        let layout = Layout::new::<CoBox>();
        // SAFETY: `CoBox` has a non-zero size.
        let p = unsafe { alloc(layout) } as *mut CoBox;
        NonNull::new(p).unwrap_or_else(|| handle_alloc_error(layout))
    })
}

fn give_box(p: NonNull<CoBox>) {
    let kept = FREE.try_with(|f| {
        let mut f = f.borrow_mut();
        if f.0.len() >= LOCAL_CAP {
            let spill: Vec<SendPtr> = f.0.drain(..BATCH).map(SendPtr).collect();
            global().extend(spill);
        }
        f.0.push(p);
    });
    if kept.is_err() {
        global().push(SendPtr(p)); // thread-local storage already torn down
    }
}

impl CoRef {
    /// A block holding `make()`'s control block, and two references to it (a spawn needs one
    /// for the run queue and one for the join handle; making both here saves an atomic
    /// increment). The block is taken first and `make` runs after, so that the compiler can
    /// build the (large) `Co` in place instead of copying it.
    #[inline(always)]
    pub(crate) fn new_pair(make: impl FnOnce() -> Co) -> (CoRef, CoRef) {
        let p = take_box();
        // SAFETY: `p` is valid, exclusively ours, uninitialised memory for a `CoBox`.
        unsafe {
            p.as_ptr().write(CoBox {
                co: ManuallyDrop::new(make()),
                refs: AtomicUsize::new(2),
            })
        };
        (CoRef(p), CoRef(p))
    }

    fn inner(&self) -> &CoBox {
        // SAFETY: the box lives while a counted reference (self) exists.
        unsafe { self.0.as_ref() }
    }

    pub(crate) fn as_ptr(this: &CoRef) -> *const Co {
        this.0.as_ptr() as *const Co
    }

    pub(crate) fn into_raw(this: CoRef) -> *const Co {
        let p = CoRef::as_ptr(&this);
        std::mem::forget(this);
        p
    }

    /// # Safety
    /// `p` came from `into_raw` (or is counted by `increment_strong_count`), and this call
    /// takes over that one count.
    pub(crate) unsafe fn from_raw(p: *const Co) -> CoRef {
        // SAFETY: per the contract, `p` is a live box's address (the `Co` is its first field).
        CoRef(unsafe { NonNull::new_unchecked(p as *mut CoBox) })
    }

    /// A new counted reference to a block someone else keeps alive (a registry, a running
    /// coroutine's own pointer).
    ///
    /// # Safety
    /// `p` points to a live control block (someone holds a count for the whole call).
    pub(crate) unsafe fn from_borrowed(p: *const Co) -> CoRef {
        // SAFETY: per the contract; the count we add is the one the result owns.
        unsafe {
            CoRef::increment_strong_count(p);
            CoRef::from_raw(p)
        }
    }

    /// # Safety
    /// `p` points to a live control block (someone holds a count for the whole call).
    pub(crate) unsafe fn increment_strong_count(p: *const Co) {
        // SAFETY: per the contract.
        let b = unsafe { &*(p as *const CoBox) };
        if b.refs.fetch_add(1, Ordering::Relaxed) > isize::MAX as usize {
            std::process::abort(); // as Arc does: a count this high is a leak run wild
        }
    }
}

impl Clone for CoRef {
    fn clone(&self) -> CoRef {
        // SAFETY: `self` holds a count.
        unsafe { CoRef::increment_strong_count(CoRef::as_ptr(self)) };
        CoRef(self.0)
    }
}

impl Deref for CoRef {
    type Target = Co;
    fn deref(&self) -> &Co {
        &self.inner().co
    }
}

impl Drop for CoRef {
    fn drop(&mut self) {
        if self.inner().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: the count reached zero: nobody else can reach the box; drop its `Co` once
        // and recycle the memory.
        unsafe {
            ManuallyDrop::drop(&mut (*self.0.as_ptr()).co);
        }
        give_box(self.0);
    }
}

#[cfg(test)]
mod tests {
    /// Spawning costs about one cache miss per cache line of control block (blocks are written
    /// on the spawning worker and read on the executing one): keep it from growing unnoticed.
    /// Five lines: 96 of the bytes are the inline task space, which saves a separate allocation.
    #[test]
    fn control_block_stays_small() {
        let size = std::mem::size_of::<super::CoBox>();
        // The corosensei backend's context object is bigger than the assembly one's. Session 4
        // spent 32 bytes (two 16-byte steps of the block's alignment): the one-store wait
        // reason (u64), the per-coroutine unwind count, and the compaction state (held bytes,
        // the saved live part, the eligible-park flag).
        let limit = if cfg!(goro_asm) { 352 } else { 384 };
        assert!(size <= limit, "CoBox grew to {size} bytes (limit {limit})");
    }
}
