//! The portable backend: corosensei's `Coroutine` on goro's stack memory.
//!
//! corosensei hands the coroutine body a `&Yielder` that lives on the coroutine's own
//! stack for the coroutine's whole life. The body stores its address into the context at
//! the first resume (the resume input is a pointer to the `yielder` field), so `suspend`
//! can be called from anywhere on that stack with just the context.
//!
//! Invariants:
//! * `yielder` is null until the first resume, then the (stable) address of the yielder;
//!   this is why a context must not move once started.
//! * A suspended coroutine is never unwound by us: `Drop` resets it instead (leaking what
//!   lives on its stack), exactly like the asm backend, which cannot unwind at all.

use coro::stack::{Stack as CoroStack, StackPointer};
use coro::{Coroutine, CoroutineResult, Yielder};

use crate::stack::Stack;

/// Name of this backend.
#[cfg(all(not(goro_asm), feature = "bench-support"))]
pub(crate) const BACKEND: &str = "corosensei";

/// The address range of one of our stacks, as corosensei wants it.
struct Bounds {
    base: StackPointer,
    limit: StackPointer,
}

// SAFETY: `base`/`limit` describe a goro stack: 16-aligned (page aligned in fact), at least
// MIN_STACK_SIZE (16 KiB > corosensei's 4 KiB minimum) usable bytes, with a guard below
// the usable part that `limit` includes.
unsafe impl CoroStack for Bounds {
    fn base(&self) -> StackPointer {
        self.base
    }

    fn limit(&self) -> StackPointer {
        self.limit
    }
}

/// Resume input: where the body stores the yielder's address (`*mut *const Y`).
type Input = *mut ();
type Y = Yielder<Input, ()>;

/// The saved state of a coroutine; see the module docs.
pub(crate) struct SwitchContext {
    coro: Coroutine<Input, (), (), Bounds>,
    yielder: *const Y,
    /// About where the stack pointer was at the latest suspension (`usize::MAX`: none).
    suspended_sp: usize,
}

// SAFETY: before the first resume a context holds only the entry fn pointer and its
// argument (which the `new` contract makes sendable) and plain addresses; after it, the
// contract forbids resuming it on another thread than the first.
unsafe impl Send for SwitchContext {}

// SAFETY: the only `&self` methods read plain state (`done()`, a saved address); the
// yielder pointer is only dereferenced through `&mut self` on the coroutine itself.
unsafe impl Sync for SwitchContext {}

impl std::fmt::Debug for SwitchContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchContext")
            .field("started", &self.coro.started())
            .field("finished", &self.coro.done())
            .finish()
    }
}

impl SwitchContext {
    /// Prepare a context that runs `entry(arg)` on `stack` at its first
    /// [`resume`](Self::resume).
    ///
    /// # Safety
    ///
    /// * `stack` is used by this context alone and stays allocated until the context
    ///   finished or is dropped;
    /// * `entry(arg)` must be sound to call once, on that stack, on the thread that first
    ///   resumes the context; it must not unwind and returns when the coroutine is
    ///   finished.
    pub(crate) unsafe fn new(
        stack: &Stack,
        entry: unsafe fn(*mut ()),
        arg: *mut (),
    ) -> SwitchContext {
        let bounds = Bounds {
            base: StackPointer::new(stack.top()).expect("stack top is not null"),
            limit: StackPointer::new(stack.bottom() - stack.guard_size())
                .expect("stack limit is not null"),
        };
        let arg = arg as usize;
        let coro = Coroutine::with_stack(bounds, move |y: &Y, slot: Input| {
            // SAFETY: `slot` is `&mut self.yielder` of the resuming context, which does
            // not move from now on; the yielder lives as long as the coroutine.
            unsafe { *slot.cast::<*const Y>() = y };
            // SAFETY: the contract of `new`.
            unsafe { entry(arg as *mut ()) };
        });
        SwitchContext {
            coro,
            yielder: std::ptr::null(),
            suspended_sp: usize::MAX,
        }
    }

    /// Switch into the coroutine. Returns `true` if it finished, `false` if it suspended.
    ///
    /// # Safety
    ///
    /// * The context is not finished and not running;
    /// * from its first resume on, it stays at the same address (until finished or
    ///   dropped) and is resumed only on the OS thread that first resumed it;
    /// * its stack is still allocated (see [`new`](Self::new)).
    #[inline]
    pub(crate) unsafe fn resume(&mut self) -> bool {
        let slot = std::ptr::addr_of_mut!(self.yielder).cast::<()>();
        matches!(self.coro.resume(slot), CoroutineResult::Return(()))
    }

    /// Switch back to whoever resumed this context; returns at the next resume.
    ///
    /// # Safety
    ///
    /// Called on this context's own stack, by the coroutine it runs, while it runs.
    #[inline]
    pub(crate) unsafe fn suspend(&mut self) {
        let marker = 0u8;
        self.suspended_sp = std::ptr::addr_of!(marker) as usize;
        debug_assert!(!self.yielder.is_null(), "suspend outside the coroutine");
        // SAFETY: we run on this coroutine (contract), so it was resumed and its body
        // stored the yielder, which lives on this very stack.
        unsafe { (*self.yielder).suspend(()) };
    }

    /// Whether the entry function has returned.
    #[cfg(any(not(goro_asm), test))]
    pub(crate) fn is_finished(&self) -> bool {
        self.coro.done()
    }

    /// About where the coroutine's stack pointer is while it is suspended (`usize::MAX`
    /// before its first suspension and once finished); see the asm backend's twin.
    #[cfg(any(not(goro_asm), test))]
    pub(crate) fn suspended_sp(&self) -> usize {
        if self.coro.done() {
            usize::MAX
        } else {
            self.suspended_sp
        }
    }
}

impl Drop for SwitchContext {
    fn drop(&mut self) {
        if self.coro.started() && !self.coro.done() {
            // SAFETY: the coroutine is suspended; forgetting its frames without running
            // their destructors is what the module contract promises (no unwinding on
            // another thread's behalf). Not-started and finished ones need nothing special.
            unsafe { self.coro.force_reset() };
        }
    }
}
