//! The public face of coroutines: `spawn`, `Builder`, `JoinHandle`, `JoinError`, `goexit`,
//! `defer!` and `go!`.
//!
//! Above the scheduler: a spawn builds the coroutine's task (its closure and the result slot
//! it shares with the `JoinHandle`), puts it in a fresh control block (`co`) and hands that to
//! the scheduler (`sched::spawn_co`). The join slot waits with a `park::OneShot`. The control
//! block, its state machine and its counted reference live in `co/`.

use std::any::Any;
use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use crate::co::{self, Co, CoRef};
use crate::park::{self, OneShot};
use crate::sched;
use crate::stack::{self, Stack, STACKS_EXHAUSTED};
use crate::util::panic_message;

// ---------------------------------------------------------------------------------------------
// Join

/// `JoinInner::done`'s values (it is unset while the coroutine runs and nobody dropped the
/// handle): the coroutine finished and the result is in the slot ...
const J_DONE: usize = 0;
/// ... or the handle was dropped first: the coroutine drops its own result.
const J_DETACHED: usize = 1;

/// The result slot shared by a coroutine and its `JoinHandle`. Whichever of the two finishes
/// last drops an unjoined result: the handle's `Drop` if the coroutine was done, else the
/// coroutine itself (so a result's `Drop` never runs inside the scheduler).
///
/// `done` is set once, by whichever comes first: the coroutine (`J_DONE`, after writing
/// `result`) or the dropped handle (`J_DETACHED`). A joiner arms it and waits for `J_DONE`.
pub(crate) struct JoinInner<T> {
    done: OneShot,
    result: UnsafeCell<Option<Result<T, JoinError>>>,
}

/// A spawned closure and its result slot, kept in (or hanging off) the control block.
struct Body<T, F> {
    join: JoinInner<T>,
    f: UnsafeCell<Option<F>>,
}

// `co::Task`'s contract: `run` and `fail` are called at most once in total, by the thread
// that holds the coroutine for running, so nobody else touches `f` or writes the result then.
impl<T, F> co::Task for Body<T, F>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    unsafe fn run(this: *mut Self, exiting: fn()) {
        // SAFETY: per the contract, nobody else touches `f` or writes the result now.
        let f = unsafe { (*(*this).f.get()).take() }.expect("goro: coroutine body run twice");
        let caught = panic::catch_unwind(AssertUnwindSafe(f));
        // Whatever unwound in the body is over now (goro's per-coroutine count, `sched::unwinding`).
        sched::set_unwinds(0);
        let r = match caught {
            Ok(v) => Ok(v),
            Err(p) if p.is::<Goexit>() => Err(JoinError {
                repr: JoinRepr::Goexit,
            }),
            Err(p) => Err(JoinError {
                repr: JoinRepr::Panic(p),
            }),
        };
        // SAFETY: the task is live (per the contract).
        unsafe { (*this).join.complete(r, exiting) };
    }

    unsafe fn fail(this: *mut Self, err: io::Error, exiting: fn()) {
        // SAFETY: as for `run`.
        let f = unsafe { (*(*this).f.get()).take() };
        // This runs on the worker's own stack, inside its scheduling loop: a panicking `Drop`
        // of something the closure captured must not unwind into the scheduler (that is a
        // "fatal internal error" abort). Report it; `join` gets the no-stack error.
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || drop(f))) {
            let msg = panic_message(&*p).unwrap_or("(no message)");
            eprintln!(
                "goro: dropping the closure of a coroutine that could not start panicked: {msg}"
            );
        }
        // SAFETY: as for `run`.
        unsafe {
            (*this)
                .join
                .complete(Err(JoinError::no_stack(&err)), exiting)
        };
    }
}

impl<T> JoinInner<T> {
    fn complete(&self, r: Result<T, JoinError>, exiting: fn()) {
        // SAFETY: only the coroutine writes the result, once, before publishing J_DONE.
        unsafe { *self.result.get() = Some(r) };
        // Uncount the coroutine before anyone can observe its completion (API: "a coroutine is
        // uncounted before its join returns"): `exiting` is the scheduler's.
        exiting();
        // Sets `done` (Release: the result write above is visible to the joiner that sees
        // J_DONE) and unparks an armed joiner; fails only if the handle was dropped first.
        if let Err(J_DETACHED) = self.done.try_set(J_DONE) {
            // Nobody will join: drop the result here, on the coroutine, where a panicking
            // `Drop` is reported rather than unwinding into the scheduler.
            // SAFETY: the handle is gone (its J_DETACHED was read with Acquire); the slot is
            // ours alone.
            let r = unsafe { (*self.result.get()).take() };
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || drop(r))) {
                let msg = panic_message(&*p).unwrap_or("(no message)");
                eprintln!("goro: dropping a coroutine's unjoined result panicked: {msg}");
            }
        }
    }
}

/// An owned permission to join a coroutine (wait for its result). Dropping it detaches the
/// coroutine, which keeps running.
///
/// ```
/// let h = goro::spawn(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
pub struct JoinHandle<T> {
    /// Keeps the control block, and with it the task's result slot, alive.
    co: CoRef,
    join: NonNull<JoinInner<T>>,
    _result: PhantomData<T>,
}

// SAFETY: the handle only moves results of type `T` (sent from the coroutine's thread to the
// joiner's) through the slot's atomic protocol; `CoRef` is `Send + Sync`.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: shared use is `is_finished` and `id` only (atomic / immutable reads).
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    fn slot(&self) -> &JoinInner<T> {
        // SAFETY: the slot lives in (or hangs off) the control block `co` keeps alive.
        unsafe { self.join.as_ref() }
    }

    /// Wait for the coroutine to finish and return its value, or why it ended without one.
    /// Parks the calling coroutine, or blocks the calling thread.
    pub fn join(self) -> Result<T, JoinError> {
        let inner = self.slot();
        // SAFETY: `join` consumes the only handle, so this is the one `arm` of `done` ever.
        if unsafe { inner.done.arm() } {
            inner.done.wait("coroutine join");
        }
        // `done` can only be J_DONE here (J_DETACHED is set by this handle's `Drop`), seen
        // with Acquire; the coroutine wrote the result before.
        // SAFETY: the coroutine no longer touches the slot once J_DONE is set.
        unsafe { (*inner.result.get()).take() }.expect("goro: coroutine result taken twice")
    }

    /// Whether the coroutine has finished (its result is ready for `join`).
    pub fn is_finished(&self) -> bool {
        self.slot().done.get() == Some(J_DONE)
    }

    /// The coroutine's id (as shown by `runtime::dump`).
    pub fn id(&self) -> u64 {
        self.co.id
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let inner = self.slot();
        if inner.done.try_set(J_DETACHED) == Err(J_DONE) {
            // The coroutine finished first: an unjoined result is ours to drop (`join` took
            // it already if it ran).
            // SAFETY: J_DONE seen with acquire; the coroutine no longer touches the slot.
            drop(unsafe { (*inner.result.get()).take() });
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.co.id)
            .finish_non_exhaustive()
    }
}

/// Why a coroutine ended without a value: it panicked, or it called [`goexit`].
pub struct JoinError {
    repr: JoinRepr,
}

enum JoinRepr {
    Panic(Box<dyn Any + Send>),
    Goexit,
}

impl JoinError {
    /// A coroutine that could not start because no stack could be had.
    fn no_stack(e: &io::Error) -> JoinError {
        JoinError {
            repr: JoinRepr::Panic(Box::new(format!(
                "goro: cannot allocate a coroutine stack: {e}"
            ))),
        }
    }

    /// The coroutine panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, JoinRepr::Panic(_))
    }

    /// The coroutine ended by calling [`goexit`].
    pub fn is_goexit(&self) -> bool {
        matches!(self.repr, JoinRepr::Goexit)
    }

    /// The panic payload (to re-raise it with `std::panic::resume_unwind`).
    ///
    /// # Panics
    /// If the coroutine did not panic (it called `goexit`).
    pub fn into_panic(self) -> Box<dyn Any + Send> {
        match self.repr {
            JoinRepr::Panic(p) => p,
            JoinRepr::Goexit => {
                panic!("goro: JoinError::into_panic on a coroutine that called goexit")
            }
        }
    }

    /// The panic payload, or `Err(self)` if the coroutine called `goexit`.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send>, JoinError> {
        match self.repr {
            JoinRepr::Panic(p) => Ok(p),
            JoinRepr::Goexit => Err(self),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            JoinRepr::Panic(p) => match panic_message(&**p) {
                Some(m) => write!(f, "JoinError::Panic({m:?})"),
                None => f.write_str("JoinError::Panic(..)"),
            },
            JoinRepr::Goexit => f.write_str("JoinError::Goexit"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            JoinRepr::Panic(p) => match panic_message(&**p) {
                Some(m) => write!(f, "coroutine panicked: {m}"),
                None => f.write_str("coroutine panicked"),
            },
            JoinRepr::Goexit => f.write_str("coroutine called goexit"),
        }
    }
}

impl std::error::Error for JoinError {}

// ---------------------------------------------------------------------------------------------
// goexit / defer

/// The unwind payload `goexit` uses; caught at the coroutine's entry.
pub(crate) struct Goexit;

/// End the calling coroutine now. Every pending [`defer!`](crate::defer) block and every live
/// value's `Drop` runs first (innermost first), as in an unwind; `join` then gives `Err(e)` with
/// `e.is_goexit()`.
///
/// `goexit` unwinds the coroutine's stack, so it needs `panic = "unwind"` (the default; built
/// with `panic = "abort"`, it prints why and aborts the process), and a
/// `std::panic::catch_unwind` in user code between here and the coroutine's entry would stop it
/// (it then sees a payload it does not know; re-raise it with `resume_unwind`).
///
/// # Panics
/// On a plain thread (not a goro coroutine), with a message saying so.
pub fn goexit() -> ! {
    if !park::in_coroutine() {
        panic!("goro::goexit called outside a coroutine (on a plain OS thread); it may only end a goro coroutine");
    }
    if cfg!(panic = "abort") {
        // `resume_unwind` would abort without a word: say why first.
        eprintln!("goro: goexit() needs panic = \"unwind\" (it unwinds the coroutine's stack); this program is built with panic = \"abort\", so it aborts");
        std::process::abort();
    }
    // `resume_unwind` runs no panic hook: count this unwind for `sched::unwinding` here.
    sched::unwind_started();
    panic::resume_unwind(Box::new(Goexit))
}

/// Whether the calling coroutine unwinds (a panic or `goexit` is in flight on it), or, on a
/// plain thread, whether that thread panics. Unlike `std::thread::panicking()` it is not
/// fooled by another coroutine of the same worker thread that parked in the middle of its
/// own unwind; see `sched::unwinding` for how, and for its limits.
pub(crate) fn panicking() -> bool {
    sched::unwinding()
}

#[doc(hidden)]
pub mod __private {
    /// Runs its closure when dropped: the guard behind `defer!`.
    pub struct Defer<F: FnOnce()>(pub Option<F>);

    impl<F: FnOnce()> Drop for Defer<F> {
        fn drop(&mut self) {
            let Some(f) = self.0.take() else { return };
            // This coroutine's own unwinding, not std's per-thread view (which another
            // coroutine of this worker, parked mid-unwind, would set for us too).
            if super::panicking() {
                // A panic in a deferred block while the coroutine is already unwinding would abort
                // the process; report it and let the original unwind carry on (in Go, the newer
                // panic would replace the older one; Rust cannot swap an in-flight payload).
                let unwinds = crate::sched::unwinds();
                let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                crate::sched::set_unwinds(unwinds); // the caught panic is over
                if let Err(p) = caught {
                    if !p.is::<super::Goexit>() {
                        let msg = super::panic_message(&*p).unwrap_or("Box<dyn Any>");
                        eprintln!("goro: a defer! block panicked while unwinding ({msg}); the earlier panic continues");
                    }
                }
            } else {
                f()
            }
        }
    }
}

/// Run a block when the enclosing scope ends: normally, by panic, or by [`goexit`] — in LIFO
/// order, like Go's `defer`.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// let log = Arc::new(Mutex::new(Vec::new()));
/// {
///     let l = log.clone();
///     goro::defer! { l.lock().unwrap().push("first deferred, runs last"); }
///     let l = log.clone();
///     goro::defer! { l.lock().unwrap().push("second deferred, runs first"); }
/// }
/// assert_eq!(*log.lock().unwrap(), ["second deferred, runs first", "first deferred, runs last"]);
/// ```
///
/// A `defer!` block that panics while the scope is already unwinding is reported on stderr and
/// swallowed, so the original panic (or `goexit`) completes instead of aborting the process.
/// "Already unwinding" means the coroutine's own unwind, as goro tracks it per coroutine: not
/// `std::thread::panicking()`, which is per OS thread and so also true while another coroutine
/// of the same worker is parked in the middle of its unwind (a real panic of this block then
/// reaches `join` as it should). See the [module docs](crate#panics-and-unwinding) for what
/// std's per-thread state still affects.
#[macro_export]
macro_rules! defer {
    ($($body:tt)*) => {
        let _goro_defer_guard = $crate::__private::Defer(::core::option::Option::Some(|| { $($body)* }));
    };
}

// ---------------------------------------------------------------------------------------------
// Spawning

/// Configures a coroutine before spawning it: its name (shown in panics, `runtime::dump` and
/// overflow reports) and its stack size.
///
/// ```
/// let h = goro::Builder::new().name("worker").stack_size(256 * 1024).spawn(|| 1).unwrap();
/// assert_eq!(h.join().unwrap(), 1);
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the defaults: no name, the default stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Name the coroutine.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// The largest stack the coroutine may use, in bytes. Rounded up to whole pages and to a
    /// small minimum (16 KiB); only touched pages cost memory. Above 1 GiB `spawn` returns an
    /// error. A panic is reported on a stack of the default size when the coroutine's own has
    /// less than 64 KiB left (printing a backtrace takes about 20 KiB), so a small stack is
    /// enough for a panic and its `RUST_BACKTRACE` report.
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Start the coroutine. Errors: an impossible stack size (`InvalidInput`), or stack memory
    /// exhausted (address space or mapping limit; the message names the remedy).
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let size = match self.stack_size {
            Some(s) => stack::round_stack_size(s)?,
            None => stack::default_stack_size(),
        };
        let name = match self.name {
            Some(n) if n.contains('\0') => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "coroutine name contains a NUL byte",
                ))
            }
            n => n.map(String::into_boxed_str),
        };
        sched::ensure_started();
        // Reserved now, so that exhaustion is this call's error (and `spawn`'s next panic).
        let stack = match stack::allocate(size) {
            Ok(s) => s,
            Err(e) => {
                STACKS_EXHAUSTED.store(true, Ordering::Relaxed);
                return Err(e);
            }
        };
        Ok(spawn_with(name, size, Some(stack), f))
    }
}

fn spawn_with<F, T>(
    name: Option<Box<str>>,
    stack_size: usize,
    stack: Option<Stack>,
    f: F,
) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let body = Body {
        join: JoinInner {
            done: OneShot::new(),
            result: UnsafeCell::new(None),
        },
        f: UnsafeCell::new(Some(f)),
    };
    let (co, queued, body) = Co::new(name, stack_size, stack, body);
    sched::spawn_co(queued);
    // SAFETY: `body` points to the task, which lives as long as the control block.
    let join = unsafe { NonNull::new_unchecked(std::ptr::addr_of_mut!((*body.as_ptr()).join)) };
    JoinHandle {
        co,
        join,
        _result: PhantomData,
    }
}

/// Start a coroutine running `f`; the first call starts the runtime. Returns a handle to join it.
///
/// ```
/// let (tx, rx) = goro::chan::bounded(0);
/// goro::spawn(move || tx.send("hello").unwrap());
/// assert_eq!(rx.recv().unwrap(), "hello");
/// ```
///
/// # Panics
/// When no stack can be had (address space or memory-mapping limit exhausted); the message
/// names the limit and the remedy. Use [`Builder::spawn`] to get an error instead.
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    sched::ensure_started();
    let size = stack::default_stack_size();
    // The stack is taken when the coroutine first runs, from that worker's cache: a burst of
    // spawns then reuses a few hot stacks instead of touching one cold stack per coroutine.
    // If stack memory ran out recently, check now so that this call can panic as documented.
    if STACKS_EXHAUSTED.load(Ordering::Relaxed) {
        match stack::allocate(size) {
            Ok(stack) => {
                STACKS_EXHAUSTED.store(false, Ordering::Relaxed);
                return spawn_with(None, size, Some(stack), f);
            }
            Err(e) => panic!("goro::spawn: cannot allocate a coroutine stack: {e}"),
        }
    }
    spawn_with(None, size, None, f)
}

/// Start a coroutine: `go!(closure)` is [`spawn`] with the handle usually ignored.
///
/// ```
/// let (tx, rx) = goro::chan::bounded(1);
/// goro::go!(move || tx.send(1).unwrap());
/// assert_eq!(rx.recv().unwrap(), 1);
/// ```
#[macro_export]
macro_rules! go {
    ($f:expr) => {
        $crate::spawn($f)
    };
}
