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
//! runs.
//!
//! # Page tables and the guard
//!
//! A stack in a span slot (the default 1 MiB stacks while compaction is on; see
//! `pool::slot_len`) is released whole: its guard markers are removed and one
//! `MADV_DONTNEED` covers guard, stack and the slot's unused rest, so the kernel
//! (`CONFIG_PT_RECLAIM`) frees the slot's page-table page as well (4 KiB; measured with
//! `VmPTE` in `tests/compact.rs`). The restore puts the guard markers back *before* the
//! coroutine runs (`Stack::reguard`), so overflow detection works after a restore as before;
//! if the kernel cannot (no memory for the page table), the process aborts with a message,
//! as for a failed heap allocation: the coroutine must not run unguarded. A compacted stack
//! that is dropped instead (its coroutine never resumed) is re-guarded before it is pooled,
//! or leaked. Packed stacks keep their guards and share page-table pages.
//!
//! # Costs
//!
//! Compaction is a copy of the live bytes, packed (`pack`: zeros take no room, small ints
//! and pointers 1 to 4 bytes; 752 live bytes of an idle connection take 298), plus a share
//! of the pass's batched release (`release`: one `process_madvise` per pass for the guard
//! markers and one for the pages); restoring is a copy back that faults in fresh zero pages
//! (one per 4 KiB of live data), plus one `madvise` to put a slot's guard back. A stack whose live part is larger
//! than [`MAX_LIVE`] is left alone (it would not pay, and a deep coroutine is rarely idle for
//! long); an allocation failure leaves the stack as it is.

use std::sync::OnceLock;

use super::release::Release;
use super::Stack;

/// The default idle time before a stack is compacted, in ms. Long against a hand-over (a
/// rendezvous round trip is ~0.3 µs; a busy connection's parks last microseconds to
/// milliseconds), short enough that a server's idle connections shed their stack pages
/// within a fraction of a second (peers `conns`, 10,000 connections sampled 0.2 s after
/// they went idle: 7,683 B per connection at 100 ms against 11,010 B with compaction off,
/// Go 7,354 B, in one run).
const DEFAULT_AFTER_MS: u64 = 100;
/// The idle time (ms) after which an eligible parked coroutine is compacted; `None`: off.
pub(crate) fn after_ms() -> Option<u64> {
    static AFTER: OnceLock<Option<u64>> = OnceLock::new();
    *AFTER.get_or_init(|| {
        if !cfg!(goro_asm) {
            return None; // corosensei: no exact saved stack pointer
        }
        match std::env::var("GORO_COMPACT_AFTER") {
            Err(_) => Some(DEFAULT_AFTER_MS),
            Ok(v) => parse_after(&v).unwrap_or_else(|| {
                eprintln!(
                    "goro: ignoring invalid GORO_COMPACT_AFTER={v:?} (want off, or a time such as 500ms, 2s, 250)"
                );
                Some(DEFAULT_AFTER_MS)
            }),
        }
    })
}

/// `off` → `Some(None)`; `250`, `250ms`, `2s` → that many ms; anything else → `None`.
fn parse_after(v: &str) -> Option<Option<u64>> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("off") {
        return Some(None);
    }
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000)
    } else {
        (v, 1)
    };
    let n: u64 = num.trim().parse().ok()?;
    Some(Some(n.checked_mul(scale)?))
}

/// The most live bytes a compaction copies; deeper stacks stay as they are.
pub(crate) const MAX_LIVE: usize = 64 * 1024;

/// The live bytes of a compacted stack, and where they go back.
pub(crate) struct Compacted {
    /// The words of `[top - 8 * n, top)`, encoded by `pack` (`n` is in the encoding): the
    /// range starts 16-aligned at or below the saved stack pointer and ends at the stack's
    /// top (so its start need not be stored).
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
/// The pages are not released at once but queued on `release` (one system call for a
/// whole pass, see `release`).
///
/// # Safety
/// `sp` is the exact saved stack pointer of the suspended coroutine that owns `stack`, and
/// until [`restore`] nothing reads or writes `[stack.bottom(), stack.top())` (the module
/// docs' rule); `release` is flushed before the [`restore`].
pub(crate) unsafe fn compact(stack: &Stack, sp: usize, release: &mut Release) -> Option<Compacted> {
    let (bottom, top) = (stack.bottom(), stack.top());
    if sp < bottom || sp >= top {
        return None;
    }
    let from = (sp & !15).max(bottom);
    let live = top - from;
    if live > MAX_LIVE {
        return None;
    }
    // SAFETY: `[from, top)` lies inside the stack (16-aligned start, page-aligned end), which
    // nobody else touches now (contract).
    let bytes = unsafe { super::pack::pack(from as *const u64, live / 8) }?;
    // SAFETY: nothing runs on the stack until `restore`, which puts the guard back first
    // (contract); the ranges are this stack's guard and usable range or whole span slot,
    // private anonymous memory that reads back as zeros, whose live bytes are saved above
    // and which nothing observes until `restore`, which comes after the caller's flush
    // (contract). Should the release fail the pages simply stay: the copy is still right.
    unsafe {
        let (guard, pages) = stack.unguard_for_release();
        release.add(guard, pages);
    }
    Some(Compacted { bytes })
}

/// Put the live bytes back where they were, before the coroutine runs again.
///
/// # Safety
/// `c` came from [`compact`] on this `stack`, and nothing has touched the stack since.
pub(crate) unsafe fn restore(stack: &Stack, c: Compacted) {
    if let Err(e) = stack.reguard() {
        // The coroutine cannot run without its guard, nor be dropped while its waker may
        // still find it: like a failed heap allocation, this ends the process.
        crate::util::report(format_args!(
            "goro: fatal: cannot put back the guard page of a compacted coroutine stack: {e}"
        ));
        std::process::abort();
    }
    let from = stack.top() - 8 * super::pack::words(&c.bytes);
    assert!(
        from >= stack.bottom(),
        "a compacted stack's words do not fit its stack"
    );
    // SAFETY: the same range `compact` packed (it ends at the top, and lies inside the stack
    // as just checked), which nobody but this thread touches until the coroutine resumes
    // (contract).
    unsafe { super::pack::unpack(&c.bytes, from as *mut u64) };
}

#[cfg(test)]
mod tests {
    use super::parse_after;

    #[test]
    fn compact_after_values() {
        assert_eq!(parse_after("off"), Some(None));
        assert_eq!(parse_after("OFF"), Some(None));
        assert_eq!(parse_after("250"), Some(Some(250)));
        assert_eq!(parse_after("250ms"), Some(Some(250)));
        assert_eq!(parse_after("2s"), Some(Some(2000)));
        assert_eq!(parse_after(" 0 "), Some(Some(0)));
        assert_eq!(parse_after("soon"), None);
        assert_eq!(parse_after("-1"), None);
        assert_eq!(parse_after("99999999999999999999s"), None);
    }
}
