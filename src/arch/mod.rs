//! Context switch — PROVISIONAL stand-in on corosensei until the assembly backend lands.
use crate::stack::Stack;
use coro::stack::{Stack as CoroStack, StackPointer};
use coro::{Coroutine, CoroutineResult, Yielder};

pub(crate) const BACKEND: &str = "corosensei";

struct Borrowed {
    top: usize,
    bottom: usize,
}
// SAFETY: the memory stays mapped for the Context's lifetime (caller contract of `new`).
unsafe impl CoroStack for Borrowed {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.top).unwrap()
    }
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.bottom).unwrap()
    }
}

pub(crate) struct Context {
    co: Coroutine<(), (), (), Borrowed>,
    yielder: *const Yielder<(), ()>,
}

impl Context {
    /// # Safety
    /// `stack` must outlive the context; `entry` must not unwind.
    pub(crate) unsafe fn new(stack: &Stack, entry: unsafe fn(*mut ()), arg: *mut ()) -> Context {
        let b = Borrowed {
            top: stack.top(),
            bottom: stack.bottom(),
        };
        let arg = arg as usize;
        let co = Coroutine::with_stack(b, move |y: &Yielder<(), ()>, ()| {
            // SAFETY: the yielder lives on this coroutine's stack for its whole life.
            unsafe {
                let ctx = arg as *mut ();
                SELF_YIELDER.with(|c| c.set(y as *const _));
                entry(ctx)
            }
        });
        Context {
            co,
            yielder: std::ptr::null(),
        }
    }
    /// # Safety
    /// Only on the thread that owns the coroutine; not re-entrantly.
    pub(crate) unsafe fn resume(&mut self) -> bool {
        let r = self.co.resume(());
        if let Some(y) = SELF_YIELDER.with(|c| c.replace(std::ptr::null())).into() {
            if !y.is_null() {
                self.yielder = y;
            }
        }
        matches!(r, CoroutineResult::Return(()))
    }
    /// # Safety
    /// Only from inside this context's coroutine.
    pub(crate) unsafe fn suspend(&mut self) {
        let y = if self.yielder.is_null() {
            SELF_YIELDER.with(|c| c.get())
        } else {
            self.yielder
        };
        // SAFETY: caller contract.
        unsafe { (*y).suspend(()) }
    }
}

thread_local! {
    static SELF_YIELDER: std::cell::Cell<*const Yielder<(), ()>> = const { std::cell::Cell::new(std::ptr::null()) };
}
