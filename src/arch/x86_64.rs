//! The assembly backend for x86_64 System V (ELF): wraps `asm/x86_64.S`.
//!
//! A context is two saved stack pointers: `sp`, where the coroutine's state is while it
//! is suspended (a frame as drawn in the `.S` file; 0 once it finished), and `parent_sp`,
//! where the resumer's state is while the coroutine runs. `resume` is
//! `goro_switch(&parent_sp, sp)`, `suspend` is `goro_switch(&sp, parent_sp)`; the
//! trampoline at the bottom of every coroutine performs the final switch when the entry
//! function returns and makes that `resume` return `true`.
//!
//! Invariants:
//! * `parent_sp` is at offset 0 and `sp` at offset 8 (`#[repr(C)]`): the trampoline finds
//!   them through the `save` pointer of the first switch, which is `&parent_sp`. This is
//!   why a context must not move once started.
//! * While suspended, `sp` points at a complete saved frame on the coroutine's stack.

use std::arch::global_asm;

use crate::stack::Stack;

global_asm!(include_str!("../../asm/x86_64.S"));

extern "sysv64" {
    /// Save the current context as a frame on the current stack, store its address in
    /// `*save`, switch to the frame at `load`, and return `val` there.
    fn goro_switch(save: *mut usize, load: usize, val: usize) -> usize;
    /// First code on a fresh stack (never called from Rust; only its address is used).
    fn goro_trampoline();
}

/// Name of this backend.
pub(crate) const BACKEND: &str = "asm";

/// MXCSR 0x1F80 (all exceptions masked, round to nearest) in bytes 0-3 and the x87
/// control word 0x037F (same, 64-bit precision) in bytes 4-5: the ABI's initial state.
const DEFAULT_FP_CONTROL: usize = 0x1F80 | (0x037F << 32);

/// The saved state of a coroutine; see the module docs.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Context {
    /// The resumer's saved frame while the coroutine runs (offset 0: see the trampoline).
    parent_sp: usize,
    /// The coroutine's saved frame while suspended; 0 once finished (offset 8).
    sp: usize,
    /// Lowest `sp` seen at a suspension (`usize::MAX` before the first).
    lowest_sp: usize,
}

/// Called by the trampoline: run the coroutine's entry function.
///
/// # Safety
///
/// `entry` is the address of an `unsafe fn(*mut ())` and `arg` what it expects.
unsafe extern "sysv64" fn entry_shim(entry: usize, arg: *mut ()) {
    // SAFETY: `Context::new` stored an `unsafe fn(*mut ())` as `entry`.
    let entry: unsafe fn(*mut ()) = unsafe { std::mem::transmute(entry) };
    // SAFETY: the contract of `Context::new` (entry(arg) may run once, on this stack).
    // Should it unwind anyway, this non-unwinding `extern` fn aborts the process.
    unsafe { entry(arg) }
}

impl Context {
    /// Prepare a context that runs `entry(arg)` on `stack` at its first
    /// [`resume`](Self::resume). Writes the initial frame at the top of the stack.
    ///
    /// # Safety
    ///
    /// * `stack` is used by this context alone and stays allocated until the context
    ///   finished or is dropped;
    /// * `entry(arg)` must be sound to call once, on that stack, on the thread that first
    ///   resumes the context; it must not unwind (wrap the body in `catch_unwind`; an
    ///   escaping panic aborts) and returns when the coroutine is finished.
    pub(crate) unsafe fn new(stack: &Stack, entry: unsafe fn(*mut ()), arg: *mut ()) -> Context {
        let top = stack.top();
        debug_assert_eq!(top % 16, 0);
        let frame: [usize; 10] = [
            DEFAULT_FP_CONTROL,                    // sp + 0: MXCSR | x87 CW
            0,                                     // sp + 8: r15
            arg as usize,                          // sp + 16: r14
            entry as *const () as usize,           // sp + 24: r13
            entry_shim as *const () as usize,      // sp + 32: r12
            0,                                     // sp + 40: rbx
            0,                                     // sp + 48: rbp = 0: outermost frame
            goro_trampoline as *const () as usize, // sp + 56: "return address"
            0,                                     // top - 16
            0,                                     // top - 8
        ];
        let sp = top - std::mem::size_of_val(&frame);
        // SAFETY: `[sp, top)` is the top of a stack we may use exclusively (contract);
        // `sp` is 16-aligned, more than a usize needs.
        unsafe { std::ptr::write(sp as *mut [usize; 10], frame) };
        Context {
            parent_sp: 0,
            sp,
            lowest_sp: usize::MAX,
        }
    }

    /// Switch into the coroutine, from the resuming thread's own stack (or another
    /// coroutine's). Returns `true` if the coroutine finished (its entry function
    /// returned), `false` if it suspended.
    ///
    /// # Safety
    ///
    /// * The context is not finished and not running;
    /// * from its first resume on, it stays at the same address (until finished or
    ///   dropped) and is resumed only on the OS thread that first resumed it;
    /// * its stack is still allocated (see [`new`](Self::new)).
    #[inline]
    pub(crate) unsafe fn resume(&mut self) -> bool {
        debug_assert!(self.sp != 0, "resume of a finished context");
        let this: *mut Context = self;
        // SAFETY: `sp` is a complete frame (initial or saved by `suspend`); the switch
        // saves our frame at `parent_sp`, which stays valid because we are blocked in
        // this call until the coroutine switches back. All state the coroutine changes in
        // `*this` is written through pointers derived from `this` or read after the call.
        let done = unsafe { goro_switch(std::ptr::addr_of_mut!((*this).parent_sp), (*this).sp, 0) };
        if done == 0 {
            // SAFETY: the coroutine suspended: `sp` is its saved frame.
            unsafe {
                let sp = (*this).sp;
                if sp < (*this).lowest_sp {
                    (*this).lowest_sp = sp;
                }
            }
        }
        done != 0
    }

    /// Switch back to the thread (or coroutine) that resumed this context; returns at the
    /// next [`resume`](Self::resume).
    ///
    /// # Safety
    ///
    /// Called on this context's own stack, by the coroutine it runs, while it runs (it
    /// was resumed and has not suspended since).
    #[inline]
    pub(crate) unsafe fn suspend(&mut self) {
        let this: *mut Context = self;
        // SAFETY: `parent_sp` is the resumer's frame, saved by the `resume` that is
        // blocked waiting for us; our frame goes to `sp`.
        unsafe { goro_switch(std::ptr::addr_of_mut!((*this).sp), (*this).parent_sp, 0) };
    }

    /// Whether the entry function has returned.
    pub(crate) fn is_finished(&self) -> bool {
        self.sp == 0
    }

    /// The lowest stack pointer the coroutine had at any suspension so far (`usize::MAX`
    /// if it never suspended): a cheap low-water mark for [`Stack::note_sp`].
    pub(crate) fn lowest_sp(&self) -> usize {
        self.lowest_sp
    }
}
