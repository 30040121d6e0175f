//! The assembly backend for x86_64 System V (ELF): wraps `asm/x86_64.S`.
//!
//! A context is two saved stack pointers: `sp`, the coroutine's saved frame while it is
//! suspended (drawn in the `.S` file; 0 once it finished), and `parent_sp`, the resumer's
//! saved frame while the coroutine runs. `resume` calls `goro_resume(&parent_sp, sp)`;
//! `suspend` pushes its continuation and jumps to `goro_suspend(&sp, parent_sp)`; the
//! trampoline at the base of every coroutine performs the final switch when the entry
//! function returns, making that `resume` return `true`.
//!
//! FP control state (MXCSR, x87 control word): by default a switch leaves it alone, which
//! preserves it for every program that follows Rust's rule that Rust code runs with an
//! unchanged FP environment (the `.S` file explains why, and why reading MXCSR on every
//! switch is not affordable); a coroutine inherits its first resumer's, and the trampoline
//! restores that when the coroutine ends. Built with `GORO_PRESERVE_FP=1` in the environment,
//! [`SwitchContext`] is `RawContext<true>`, which uses the `_fp` routines: they save and restore
//! both control words on every switch.
//!
//! Invariants:
//! * `parent_sp` is at offset 0 and `sp` at offset 8 (`#[repr(C)]`): the trampoline finds
//!   them through the first resume's `&parent_sp`, which is why a context must not move
//!   once started.
//! * While suspended, `sp` points at a complete saved frame of the context's variant
//!   (`FP`), and so does `parent_sp` while it runs; one context never mixes variants.

use std::arch::{asm, global_asm};

use crate::stack::Stack;

global_asm!(include_str!("../../asm/x86_64.S"));

extern "sysv64" {
    // None of these is an ordinary function: they are reached only from the inline asm
    // in `resume`/`suspend`, which declares what they clobber, or by address.
    fn goro_resume();
    fn goro_suspend();
    fn goro_trampoline();
    fn goro_resume_fp();
    fn goro_suspend_fp();
    fn goro_trampoline_fp();
}

/// Name of this backend.
#[cfg(all(goro_asm, feature = "bench-support"))]
pub(crate) const BACKEND: &str = "asm";

/// Whether [`SwitchContext`] saves the FP control state on every switch: set at build time by
/// `GORO_PRESERVE_FP=1` in the environment of the build (see build.rs).
#[cfg(goro_asm)]
pub(crate) const PRESERVE_FP: bool = cfg!(goro_preserve_fp);

/// The context type the runtime uses (when it uses this backend).
#[cfg(goro_asm)]
pub(crate) type SwitchContext = RawContext<PRESERVE_FP>;

/// The saved state of a coroutine; see the module docs. `FP`: uses the `_fp` routines,
/// which save and restore the FP control state on every switch (a compile-time choice:
/// a run-time flag tested on every switch measurably slowed the round trip).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RawContext<const FP: bool> {
    /// The resumer's saved frame while the coroutine runs (offset 0: see the trampoline).
    parent_sp: usize,
    /// The coroutine's saved frame while suspended; 0 once finished (offset 8).
    sp: usize,
}

/// Called by the trampoline: run the coroutine's entry function.
///
/// # Safety
///
/// `entry` is the address of an `unsafe fn(*mut ())` and `arg` what it expects.
unsafe extern "sysv64" fn entry_shim(entry: usize, arg: *mut ()) {
    // SAFETY: `SwitchContext::new` stored an `unsafe fn(*mut ())` as `entry`.
    let entry: unsafe fn(*mut ()) = unsafe { std::mem::transmute(entry) };
    // SAFETY: the contract of `SwitchContext::new` (entry(arg) may run once, on this stack).
    // Should it unwind anyway, this non-unwinding `extern` fn aborts the process.
    unsafe { entry(arg) }
}

/// The current MXCSR (bytes 0-3) and x87 control word (bytes 4-5), as the `_fp` frames
/// store them.
fn current_fp_control() -> usize {
    let mut mxcsr: u32 = 0;
    let mut cw: u16 = 0;
    // SAFETY: only stores the two control registers into our locals.
    unsafe {
        asm!(
            "stmxcsr [{m}]",
            "fnstcw [{c}]",
            m = in(reg) &mut mxcsr,
            c = in(reg) &mut cw,
            options(nostack, preserves_flags),
        );
    }
    mxcsr as usize | (cw as usize) << 32
}

impl<const FP: bool> RawContext<FP> {
    /// Prepare a context that runs `entry(arg)` on `stack` at its first
    /// [`resume`](Self::resume). Writes the initial frame at the top of the stack. With
    /// `FP`, the coroutine starts with the caller's FP control state; otherwise it
    /// inherits its first resumer's.
    ///
    /// # Safety
    ///
    /// * `stack` is used by this context alone and stays allocated until the context
    ///   finished or is dropped;
    /// * `entry(arg)` must be sound to call once, on that stack, on the thread that first
    ///   resumes the context; it must not unwind (wrap the body in `catch_unwind`; an
    ///   escaping panic aborts) and returns when the coroutine is finished.
    pub(crate) unsafe fn new(
        stack: &Stack,
        entry: unsafe fn(*mut ()),
        arg: *mut (),
    ) -> RawContext<FP> {
        let top = stack.top();
        debug_assert_eq!(top % 16, 0);
        // See FRESH STACK in asm/x86_64.S.
        let (trampoline, fp_slot) = if FP {
            (goro_trampoline_fp as *const (), Some(current_fp_control()))
        } else {
            (goro_trampoline as *const (), None)
        };
        let common: [usize; 7] = [
            0,                                // rbx
            0,                                // rbp = 0: outermost frame
            trampoline as usize,              // continuation
            entry_shim as *const () as usize, // top - 32: read by the trampoline
            entry as *const () as usize,      // top - 24
            arg as usize,                     // top - 16
            0,                                // top - 8
        ];
        let mut sp = top - std::mem::size_of_val(&common);
        // SAFETY: `[top - 64, top)` lies at the top of a stack we may use exclusively
        // (contract; stacks are at least 16 KiB); `sp` is 8-aligned.
        unsafe {
            std::ptr::write(sp as *mut [usize; 7], common);
            if let Some(v) = fp_slot {
                sp -= 8;
                std::ptr::write(sp as *mut usize, v);
            }
        }
        RawContext { parent_sp: 0, sp }
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
        let this: *mut Self = self;
        let done: usize;
        macro_rules! resume_with {
            ($routine:ident) => {
                asm!(
                    "call {resume}",
                    resume = sym $routine,
                    in("rdi") std::ptr::addr_of_mut!((*this).parent_sp),
                    in("rsi") (*this).sp,
                    lateout("rax") done,
                    lateout("r12") _,
                    lateout("r13") _,
                    lateout("r14") _,
                    lateout("r15") _,
                    clobber_abi("sysv64"),
                )
            };
        }
        // SAFETY: `sp` is a complete frame of this context's variant (initial, or saved
        // by `suspend`). The call saves our rbx/rbp (and FP state) as a frame on this
        // stack, at `parent_sp`, which stays valid because we are inside this call until
        // the coroutine switches back; every other register is declared clobbered
        // (r12-r15 too: the coroutine runs arbitrary code), so the compiler saves what is
        // live. The asm block may push (no `nostack`), so rsp is 16-aligned at the call.
        unsafe {
            if FP {
                resume_with!(goro_resume_fp);
            } else {
                resume_with!(goro_resume);
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
        let this: *mut Self = self;
        macro_rules! suspend_with {
            ($routine:ident) => {
                asm!(
                    "lea rax, [rip + 2f]",
                    "push rax",
                    "jmp {suspend}",
                    "2:",
                    suspend = sym $routine,
                    in("rdi") std::ptr::addr_of_mut!((*this).sp),
                    in("rsi") (*this).parent_sp,
                    lateout("r12") _,
                    lateout("r13") _,
                    lateout("r14") _,
                    lateout("r15") _,
                    clobber_abi("sysv64"),
                )
            };
        }
        // SAFETY: `parent_sp` is the frame of the resumer, blocked in `goro_resume*`
        // until we come back. We push our continuation (label 2) and jump (not call, so
        // the return predictor stays in step, see the .S file) to `goro_suspend*`, which
        // saves our frame to `sp` below that address and returns into the resumer. The
        // next resume pops the continuation and jumps to label 2 with rbx, rbp (and the
        // FP state) restored and rsp as before the push; every other register is
        // declared clobbered, so the compiler saves what is live. The asm block may push
        // (no `nostack`), so rsp is 16-aligned at its start, as after a call.
        unsafe {
            if FP {
                suspend_with!(goro_suspend_fp);
            } else {
                suspend_with!(goro_suspend);
            }
        }
    }

    /// Whether the entry function has returned.
    #[cfg(any(goro_asm, test))]
    pub(crate) fn is_finished(&self) -> bool {
        self.sp == 0
    }

    /// Where the coroutine's stack pointer is while it is suspended (its saved frame);
    /// `usize::MAX` if it finished. Before the first resume: the initial frame, near the
    /// top. Feed it to [`Stack::note_sp`] after a `resume` that returned `false`, for the
    /// shrink policy (it is the depth of that suspension point). Not tracked inside the
    /// switch: any extra work on that path showed up at once in the round-trip cost.
    #[cfg(any(goro_asm, test))]
    pub(crate) fn suspended_sp(&self) -> usize {
        if self.sp == 0 {
            usize::MAX
        } else {
            self.sp
        }
    }
}
