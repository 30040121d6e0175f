//! Idle-stack compaction: the live part of a parked coroutine's stack moves to a right-sized
//! heap buffer and the stack's pages go back to the kernel; before the coroutine runs again
//! its owner copies the bytes back to the same addresses, so every pointer into the stack
//! stays valid.
//!
//! # The rule
//!
//! A stack may be compacted only while nothing but its owner worker can read or write it
//! until the restore. This module does the copying; `sched` decides *when*, and only under
//! these conditions, all checked by the owner worker (the only thread that ever runs,
//! compacts or restores the coroutine):
//!
//! 1. **The coroutine is suspended in an eligible park.** Parks are eligible only by
//!    construction: the wait must come through `park::park_idle` (or
//!    `park_idle_unless_on_stack`), used by waits whose protocol hands no other thread a
//!    pointer into the stack:
//!    - an I/O readiness wait (`io::wait`): the waiter is registered by an id that is
//!      compared, never dereferenced, and woken through its heap-allocated unparker; the
//!      syscall that moves bytes runs after the wake-up, on the coroutine itself;
//!    - `sleep`, and a timer channel or nil channel receive (`chan::waiting::sleep_until`):
//!      nobody but a timer, holding a counted reference to the control block, can wake it;
//!    - every channel wait (`Waiting::wait_until`: blocking send and receive on every flavor,
//!      `select`): partners touch the `Waiting` (an `Arc`), compare case ids (addresses of
//!      stack tokens, never dereferenced), and write rendezvous packets that are never on
//!      the stack — a select case's packet is boxed, a plain send's or receive's lives in its
//!      `Waiting`'s slot or, for a message too big for it, in a box (`chan::zero`);
//!    - a `park::OneShot` wait (the `sync` primitives' waiters, `JoinHandle::join`): the
//!      setter touches only the `OneShot` and what it set before, so the wait is idle unless
//!      the `OneShot` itself lives on the waiter's stack (checked against the stack's bounds
//!      at each park, `park_idle_unless_on_stack`).
//!
//!    Every other park is ineligible because it does not say otherwise: a claimed rendezvous
//!    waiter's short wait for `ready`, a `blocking` job that borrows from the caller, a plain
//!    `park` in a test.
//! 2. **No thread outside goro exists** (`census::foreign_threads` is false after the
//!    coroutine parked). Safe Rust can hand another thread a pointer into the stack before
//!    parking: a `std::thread::scope` (or rayon/crossbeam scope) thread borrowing a local,
//!    running while its parent coroutine waits on a socket. Such threads are not goro's, so
//!    while any non-goro thread exists nothing is compacted; and a thread made later cannot
//!    obtain such a pointer, because the only code that could hand it out is the compacted
//!    coroutine, which does not run until it is restored. goro's own threads never hold
//!    one across an eligible park: the blocking pool's jobs borrow only while their caller
//!    waits in an ineligible park, and other coroutines are `'static`.
//! 3. **The saved stack pointer is exact**: on the asm backend a suspended context's `sp` is
//!    the lowest live byte (the switch pushed the callee-saved registers and the
//!    continuation above it; nothing below is live, and the System V red zone is dead across
//!    the call into the switch). corosensei only gives an approximate one, so compaction is
//!    off on that backend.
//!
//! Given those, the copy `[sp & !15, top)` holds every live byte, `MADV_DONTNEED` on the
//! whole usable range drops pages nobody can observe, and the restore writes the same bytes
//! back before the one thread that could read them (the coroutine, resumed by its owner)
//! runs. The guard region below the stack is never touched, so overflow detection works
//! after a restore as before.
//!
//! # Costs
//!
//! Compaction is a copy of the live bytes plus one `madvise`; restoring is a copy back that
//! faults in fresh zero pages (one per 4 KiB of live data). A stack whose live part is larger
//! than [`MAX_LIVE`] is left alone (it would not pay, and a deep coroutine is rarely idle for
//! long); an allocation failure leaves the stack as it is.

use super::Stack;

/// The most live bytes a compaction copies; deeper stacks stay as they are.
pub(crate) const MAX_LIVE: usize = 64 * 1024;

/// The live bytes of a compacted stack, and where they go back.
pub(crate) struct Compacted {
    /// The bytes of `[top - len, top)`: the range starts 16-aligned at or below the saved
    /// stack pointer and ends at the stack's top (so its start need not be stored).
    bytes: Box<[u8]>,
}

impl Compacted {
    /// Heap bytes held while compacted.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// Copy the live part of `stack` (above `sp`) aside and release its pages. `None` (and the
/// stack untouched) when `sp` is not inside it, the live part is over [`MAX_LIVE`], or the
/// buffer cannot be allocated.
///
/// # Safety
/// `sp` is the exact saved stack pointer of the suspended coroutine that owns `stack`, and
/// until [`restore`] nothing reads or writes `[stack.bottom(), stack.top())` (the module
/// docs' rule).
pub(crate) unsafe fn compact(stack: &Stack, sp: usize) -> Option<Compacted> {
    let (bottom, top) = (stack.bottom(), stack.top());
    if sp < bottom || sp >= top {
        return None;
    }
    let from = (sp & !15).max(bottom);
    let live = top - from;
    if live > MAX_LIVE {
        return None;
    }
    let mut buf: Vec<u8> = Vec::new();
    buf.try_reserve_exact(live).ok()?;
    // SAFETY: `[from, top)` lies inside the stack, which nobody else touches now (contract);
    // the buffer has `live` bytes of capacity, set as its length once written.
    unsafe {
        std::ptr::copy_nonoverlapping(from as *const u8, buf.as_mut_ptr(), live);
        buf.set_len(live);
    }
    // SAFETY: `[bottom, top)` is this stack's usable range (page-aligned both ends), private
    // anonymous memory that reads back as zeros; its live bytes are saved above and nothing
    // observes the range until `restore` (contract). The guard below `bottom` is untouched.
    let rc = unsafe {
        libc::madvise(
            bottom as *mut libc::c_void,
            top - bottom,
            libc::MADV_DONTNEED,
        )
    };
    if rc != 0 {
        return None; // the pages stay; the copy is simply dropped
    }
    Some(Compacted {
        bytes: buf.into_boxed_slice(),
    })
}

/// Put the live bytes back where they were, before the coroutine runs again.
///
/// # Safety
/// `c` came from [`compact`] on this `stack`, and nothing has touched the stack since.
pub(crate) unsafe fn restore(stack: &Stack, c: Compacted) {
    let from = stack.top() - c.bytes.len();
    debug_assert!(from >= stack.bottom());
    // SAFETY: the same range `compact` copied from (it ends at the top), inside the stack,
    // which nobody but this thread touches until the coroutine resumes (contract).
    unsafe { std::ptr::copy_nonoverlapping(c.bytes.as_ptr(), from as *mut u8, c.bytes.len()) };
}
