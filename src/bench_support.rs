//! Hooks for goro's own benchmarks (`benches/switch.rs`); not part of the public API and
//! not covered by semver.
//!
//! [`PingPong`] keeps one coroutine that does nothing but suspend, so that
//! [`PingPong::round_trip`] measures exactly one resume plus one suspend of a backend.

use std::io;

/// A context-switch backend to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// goro's own assembly (x86_64 System V ELF only), default variant.
    Asm,
    /// goro's own assembly, variant that saves the FP control state on every switch
    /// (what a build with `GORO_PRESERVE_FP=1` uses).
    AsmFp,
    /// corosensei.
    Corosensei,
}

impl Backend {
    /// Backends that exist on this target.
    pub fn available() -> &'static [Backend] {
        #[cfg(goro_asm_available)]
        return &[Backend::Asm, Backend::AsmFp, Backend::Corosensei];
        #[cfg(not(goro_asm_available))]
        return &[Backend::Corosensei];
    }

    /// The backend the runtime uses.
    pub fn selected() -> &'static str {
        crate::arch::BACKEND
    }
}

enum Ctx {
    #[cfg(goro_asm_available)]
    Asm(crate::arch::x86_64::RawContext<false>),
    #[cfg(goro_asm_available)]
    AsmFp(crate::arch::x86_64::RawContext<true>),
    Corosensei(crate::arch::corosensei::SwitchContext),
}

struct Inner {
    /// `Some` once built (it needs the address of `Inner`).
    ctx: Option<Ctx>,
    // Dropped after `ctx`.
    stack: crate::stack::Stack,
}

/// One coroutine that suspends forever; see the module docs. `!Send`: once started, it
/// must stay on its thread.
pub struct PingPong {
    inner: Box<Inner>,
    _not_send: std::marker::PhantomData<*mut ()>,
}

/// Entry of the bench coroutine: `arg` is the `Inner` (which never moves: boxed).
///
/// # Safety
///
/// `arg` points to the live `Inner` whose context runs this.
unsafe fn spin(arg: *mut ()) {
    let inner = arg.cast::<Inner>();
    loop {
        // SAFETY: we run on this context's stack, resumed by `round_trip`.
        unsafe {
            match (*inner).ctx.as_mut().unwrap_unchecked() {
                #[cfg(goro_asm_available)]
                Ctx::Asm(c) => c.suspend(),
                #[cfg(goro_asm_available)]
                Ctx::AsmFp(c) => c.suspend(),
                Ctx::Corosensei(c) => c.suspend(),
            }
        }
    }
}

impl PingPong {
    /// A coroutine for `backend` on a fresh 64 KiB stack.
    pub fn new(backend: Backend) -> io::Result<PingPong> {
        let stack = crate::stack::allocate(crate::stack::round_stack_size(64 * 1024)?)?;
        let mut inner = Box::new(Inner { ctx: None, stack });
        let arg = std::ptr::addr_of_mut!(*inner).cast::<()>();
        let stack = &inner.stack;
        // SAFETY: the stack belongs to this one context, stays alive as long as `inner`
        // (and is dropped after the context), and `spin(arg)` only touches `inner`, which
        // is boxed and never moves; `spin` never returns, so never unwinds.
        let ctx = unsafe {
            match backend {
                #[cfg(goro_asm_available)]
                Backend::Asm => Ctx::Asm(crate::arch::x86_64::RawContext::new(stack, spin, arg)),
                #[cfg(goro_asm_available)]
                Backend::AsmFp => {
                    Ctx::AsmFp(crate::arch::x86_64::RawContext::new(stack, spin, arg))
                }
                #[cfg(not(goro_asm_available))]
                Backend::Asm | Backend::AsmFp => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "no asm backend on this target",
                    ))
                }
                Backend::Corosensei => Ctx::Corosensei(
                    crate::arch::corosensei::SwitchContext::new(stack, spin, arg),
                ),
            }
        };
        inner.ctx = Some(ctx);
        Ok(PingPong {
            inner,
            _not_send: std::marker::PhantomData,
        })
    }

    /// Resume the coroutine once; it suspends at once.
    #[inline]
    pub fn round_trip(&mut self) {
        // SAFETY: the context is boxed (stable), never finishes, and a `PingPong` is
        // `!Send`, so it is always resumed on this thread.
        let done = unsafe {
            match self.inner.ctx.as_mut().unwrap_unchecked() {
                #[cfg(goro_asm_available)]
                Ctx::Asm(c) => c.resume(),
                #[cfg(goro_asm_available)]
                Ctx::AsmFp(c) => c.resume(),
                Ctx::Corosensei(c) => c.resume(),
            }
        };
        debug_assert!(!done);
    }
}
