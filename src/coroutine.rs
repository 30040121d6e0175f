//! The coroutine object and its public face: `spawn`, `Builder`, `JoinHandle`, `JoinError`,
//! `goexit` and `defer!`.
//!
//! A coroutine is a control block ([`Co`], shared through [`CoRef`], a counted reference) plus a stack and
//! a machine context that exist once it has started. The control block's atomic `state` is the
//! only field other threads write; everything else is touched only by the coroutine's *owner*
//! worker (the one it started on; it never changes — see `sched`), or before the coroutine
//! started by whoever holds it in a run queue.
//!
//! State machine (`state`):
//! ```text
//!  FRESH --(a worker takes it)--> RUNNING --park--> PARKED --unpark--> RUNNABLE --owner--> RUNNING
//!                                  |   ^  unpark while running: RUNNING -> NOTIFIED (a token);
//!                                  |   |  park with a token: NOTIFIED -> RUNNING, returns at once
//!                                  +---+--> DONE (body returned; the stack goes back to the pool)
//! ```
//! Only the `PARKED -> RUNNABLE` transition enqueues the coroutine, so it is in at most one run
//! queue at a time, and only its owner worker ever resumes it.

use std::any::Any;
use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::{align_of, size_of, MaybeUninit};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use crate::arch::Context;
use crate::park::{self, Unparker};
use crate::sched;
use crate::stack::overflow::RunningInfo;
use crate::stack::{self, Stack};

pub(crate) const FRESH: u32 = 0;
pub(crate) const RUNNABLE: u32 = 1;
pub(crate) const RUNNING: u32 = 2;
pub(crate) const NOTIFIED: u32 = 3;
pub(crate) const PARKED: u32 = 4;
pub(crate) const DONE: u32 = 5;

/// Worker index of a coroutine that has not started.
pub(crate) const NO_OWNER: usize = usize::MAX;

/// Bytes reserved in every control block for its task (the closure plus the result slot).
/// A task that fits (most do: a few captured handles and a small result) costs no allocation
/// of its own; a bigger or over-aligned one goes to its own heap box.
const TASK_SPACE: usize = 96;

#[repr(C, align(16))]
struct TaskSpace(UnsafeCell<MaybeUninit<[u8; TASK_SPACE]>>);

/// What the type-erased task function is asked to do.
pub(crate) enum TaskOp {
    /// Run the closure (catching panics and goexit) and publish the result. Once.
    Run,
    /// The coroutine cannot start (no stack): drop the closure unrun, publish this error.
    Fail(JoinError),
    /// The control block is being dropped: drop the task (and free its box if it has one).
    Drop,
}

/// A coroutine's control block.
pub(crate) struct Co {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    pub(crate) state: AtomicU32,
    /// The worker it started on (`NO_OWNER` before); written once by that worker.
    pub(crate) owner: AtomicUsize,
    /// Bumped by every park, so a timeout registered for one park never wakes a later one.
    pub(crate) park_seq: AtomicU64,
    /// Interned wait reason (see `sched::reasons`) and when the wait began (coarse ms clock).
    pub(crate) reason: AtomicU8,
    pub(crate) wait_since: AtomicU64,
    pub(crate) stack_size: usize,
    /// Set when the coroutine's registry slot is taken (owner only).
    pub(crate) slot: AtomicUsize,
    /// The task's own heap box, or null when it lives in `space`.
    task_box: *mut (),
    /// Knows the task's concrete type: runs, fails or drops it (see [`TaskOp`]).
    task_fn: unsafe fn(*mut (), TaskOp),
    space: TaskSpace,
    inner: UnsafeCell<CoInner>,
}

pub(crate) struct CoInner {
    pub(crate) stack: Option<Stack>,
    pub(crate) ctx: Option<Context>,
    /// What the stack-overflow handler reports while this coroutine runs (set at start).
    pub(crate) info: Option<RunningInfo>,
}

// SAFETY: `inner` is only accessed by the one thread that holds the coroutine for running it:
// before start, whoever popped it from a run queue (queues hand out each entry once); after
// start, its owner worker only. Every other field is atomic or immutable.
unsafe impl Sync for Co {}
// SAFETY: as above; a coroutine's task is `Send` (closure and result both are), its stack is plain memory, and a
// context only exists once the coroutine runs on its owner, which never hands it to another
// thread while started (the control block may be *dropped* elsewhere only once DONE).
unsafe impl Send for Co {}

/// A counted reference to a coroutine.
pub(crate) use crate::coref::CoRef;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Ids are handed to each thread in batches (as Go's per-P `goidcache`): spawners on
/// different workers do not bounce one global counter's cache line on every spawn. Ids are
/// unique and never 0, but not in spawn order across threads.
const ID_BATCH: u64 = 256;

thread_local! {
    /// The next id this thread hands out, and the end of its batch.
    static IDS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

#[inline]
fn next_id() -> u64 {
    IDS.try_with(|c| {
        let (next, end) = c.get();
        if next < end {
            c.set((next + 1, end));
            next
        } else {
            let start = NEXT_ID.fetch_add(ID_BATCH, Ordering::Relaxed);
            c.set((start + 1, start + ID_BATCH));
            start
        }
    })
    .unwrap_or_else(|_| NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

impl Co {
    /// A fresh coroutine. `stack` is `None` when it is taken lazily at the first run
    /// (`spawn`), `Some` when it was reserved up front (`Builder::spawn`).
    /// Returns two references to it and a pointer to the task's result slot (alive as long as
    /// the control block).
    #[allow(clippy::new_ret_no_self)] // a control block only ever lives behind a CoRef
    fn new<T, F>(
        name: Option<Box<str>>,
        stack_size: usize,
        stack: Option<Stack>,
        f: F,
    ) -> (CoRef, CoRef, NonNull<JoinInner<T>>)
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let task = Task {
            join: JoinInner {
                state: AtomicU8::new(J_RUNNING),
                result: UnsafeCell::new(None),
                waiter: UnsafeCell::new(None),
            },
            f: UnsafeCell::new(Some(f)),
        };
        let inline = size_of::<Task<T, F>>() <= TASK_SPACE
            && align_of::<Task<T, F>>() <= align_of::<TaskSpace>();
        type TaskFn = unsafe fn(*mut (), TaskOp);
        let (task_box, task_fn, in_space): (*mut (), TaskFn, _) = if inline {
            (std::ptr::null_mut(), task_fn::<T, F, false>, Some(task))
        } else {
            let b = Box::into_raw(Box::new(task)) as *mut ();
            (b, task_fn::<T, F, true>, None)
        };
        let (co, co2) = CoRef::new_pair(|| Co {
            id: next_id(),
            name,
            state: AtomicU32::new(FRESH),
            owner: AtomicUsize::new(NO_OWNER),
            park_seq: AtomicU64::new(0),
            reason: AtomicU8::new(0),
            wait_since: AtomicU64::new(0),
            stack_size,
            slot: AtomicUsize::new(usize::MAX),
            task_box,
            task_fn,
            space: TaskSpace(UnsafeCell::new(MaybeUninit::uninit())),
            inner: UnsafeCell::new(CoInner {
                stack,
                ctx: None,
                info: None,
            }),
        });
        let p = co.task_ptr() as *mut Task<T, F>;
        if let Some(task) = in_space {
            // SAFETY: `space` is ours alone (the block was just made), big and aligned enough
            // (checked above), and `task_fn` treats it as this type from now on. Nothing can
            // drop the block between its creation and this write (we hold both counts).
            unsafe { p.write(task) };
        }
        // SAFETY: `p` points to the initialised task, which lives as long as the block.
        let join = unsafe { NonNull::new_unchecked(std::ptr::addr_of_mut!((*p).join)) };
        (co, co2, join)
    }

    /// Where the task lives: its own box, or the control block's `space`.
    fn task_ptr(&self) -> *mut () {
        if self.task_box.is_null() {
            self.space.0.get() as *mut ()
        } else {
            self.task_box
        }
    }

    /// Run the task (the coroutine's body, on its own stack). Never unwinds.
    ///
    /// # Safety
    /// Called once, by the coroutine itself, and not after [`fail`](Self::fail).
    pub(crate) unsafe fn run_task(&self) {
        // SAFETY: per the contract; `task_fn` matches the task's type.
        unsafe { (self.task_fn)(self.task_ptr(), TaskOp::Run) }
    }

    /// The coroutine cannot start: drop its closure unrun and give `join` the error.
    ///
    /// # Safety
    /// Called at most once, by the worker that took the fresh coroutine, instead of `run_task`.
    pub(crate) unsafe fn fail_task(&self, err: JoinError) {
        // SAFETY: per the contract; `task_fn` matches the task's type.
        unsafe { (self.task_fn)(self.task_ptr(), TaskOp::Fail(err)) }
    }

    /// The owner-only part of the control block, as a raw pointer: only the thread entitled
    /// to run this coroutine (see the `Sync` impl) may dereference it, field by field, without
    /// keeping references alive across a context switch.
    pub(crate) fn inner_ptr(&self) -> *mut CoInner {
        self.inner.get()
    }
}

impl Drop for Co {
    fn drop(&mut self) {
        // SAFETY: the last reference is gone, so nobody else uses the task; `task_fn` matches
        // its type. By now its closure has run (or failed) and its result was taken or dropped
        // by whoever finished last (see `JoinInner`), so no user code runs here.
        unsafe { (self.task_fn)(self.task_ptr(), TaskOp::Drop) }
    }
}

// ---------------------------------------------------------------------------------------------
// Join

const J_RUNNING: u8 = 0;
const J_WAITING: u8 = 1;
const J_DONE: u8 = 2;
/// The handle was dropped before the coroutine finished: the coroutine drops its own result.
const J_DETACHED: u8 = 3;

/// The result slot shared by a coroutine and its `JoinHandle`. Whichever of the two finishes
/// last drops an unjoined result: the handle's `Drop` if the coroutine was done, else the
/// coroutine itself (so a result's `Drop` never runs inside the scheduler).
pub(crate) struct JoinInner<T> {
    state: AtomicU8,
    result: UnsafeCell<Option<Result<T, JoinError>>>,
    waiter: UnsafeCell<Option<Unparker>>,
}

/// A spawned closure and its result slot, kept in (or hanging off) the control block.
struct Task<T, F> {
    join: JoinInner<T>,
    f: UnsafeCell<Option<F>>,
}

/// The type-erased operations on a `Task<T, F>` at `p` (`BOXED`: `p` is its own heap box).
///
/// # Safety
/// `p` points to a live `Task<T, F>`. `Run` and `Fail` are called at most once in total, by
/// the thread that holds the coroutine for running; `Drop` once, last, by the block's `Drop`.
unsafe fn task_fn<T, F, const BOXED: bool>(p: *mut (), op: TaskOp)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let task = p as *mut Task<T, F>;
    match op {
        TaskOp::Run => {
            // SAFETY: per the contract, nobody else touches `f` or writes the result now.
            let f = unsafe { (*(*task).f.get()).take() }.expect("goro: coroutine body run twice");
            let r = match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(v) => Ok(v),
                Err(p) if p.is::<Goexit>() => Err(JoinError {
                    repr: JoinRepr::Goexit,
                }),
                Err(p) => Err(JoinError {
                    repr: JoinRepr::Panic(p),
                }),
            };
            // SAFETY: the task is live (per the contract).
            unsafe { (*task).join.complete(r) };
        }
        TaskOp::Fail(err) => {
            // SAFETY: as for `Run`.
            drop(unsafe { (*(*task).f.get()).take() });
            // SAFETY: as for `Run`.
            unsafe { (*task).join.complete(Err(err)) };
        }
        TaskOp::Drop => {
            if BOXED {
                // SAFETY: a boxed task came from `Box::into_raw` and is dropped once, here.
                drop(unsafe { Box::from_raw(task) });
            } else {
                // SAFETY: the task was written into the block's space and is dropped once, here.
                unsafe { std::ptr::drop_in_place(task) };
            }
        }
    }
}

impl<T> JoinInner<T> {
    fn complete(&self, r: Result<T, JoinError>) {
        // SAFETY: only the coroutine writes the result, once, before publishing J_DONE.
        unsafe { *self.result.get() = Some(r) };
        // Uncount the coroutine before anyone can observe its completion (API: "a coroutine is
        // uncounted before its join returns").
        sched::coroutine_exiting();
        match self.state.swap(J_DONE, Ordering::AcqRel) {
            J_WAITING => {
                // SAFETY: the joiner wrote `waiter` before publishing J_WAITING and never
                // touches it again until it sees J_DONE.
                if let Some(w) = unsafe { (*self.waiter.get()).take() } {
                    w.unpark();
                }
            }
            J_DETACHED => {
                // Nobody will join: drop the result here, on the coroutine, where a panicking
                // `Drop` is reported rather than unwinding into the scheduler.
                // SAFETY: the handle is gone; the slot is ours alone.
                let r = unsafe { (*self.result.get()).take() };
                if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || drop(r))) {
                    let msg = panic_message(&*p).unwrap_or("(no message)");
                    eprintln!("goro: dropping a coroutine's unjoined result panicked: {msg}");
                }
            }
            _ => {}
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
        if inner.state.load(Ordering::Acquire) != J_DONE {
            // SAFETY: until we publish J_WAITING the coroutine does not read `waiter`.
            unsafe { *inner.waiter.get() = Some(park::current()) };
            if inner
                .state
                .compare_exchange(J_RUNNING, J_WAITING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                while inner.state.load(Ordering::Acquire) != J_DONE {
                    park::park("coroutine join");
                }
            }
        }
        // SAFETY: J_DONE was observed with acquire; the coroutine wrote the result before.
        unsafe { (*inner.result.get()).take() }.expect("goro: coroutine result taken twice")
    }

    /// Whether the coroutine has finished (its result is ready for `join`).
    pub fn is_finished(&self) -> bool {
        self.slot().state.load(Ordering::Acquire) == J_DONE
    }

    /// The coroutine's id (as shown by `runtime::dump`).
    pub fn id(&self) -> u64 {
        self.co.id
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let inner = self.slot();
        if inner.state.swap(J_DETACHED, Ordering::AcqRel) == J_DONE {
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
    pub(crate) fn no_stack(e: &io::Error) -> JoinError {
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

pub(crate) fn panic_message(p: &(dyn Any + Send)) -> Option<&str> {
    p.downcast_ref::<&'static str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str()))
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
    panic::resume_unwind(Box::new(Goexit))
}

#[doc(hidden)]
pub mod __private {
    /// Runs its closure when dropped: the guard behind `defer!`.
    pub struct Defer<F: FnOnce()>(pub Option<F>);

    impl<F: FnOnce()> Drop for Defer<F> {
        fn drop(&mut self) {
            let Some(f) = self.0.take() else { return };
            if std::thread::panicking() {
                // A panic in a deferred block while the coroutine is already unwinding would abort
                // the process; report it and let the original unwind carry on (in Go, the newer
                // panic would replace the older one; Rust cannot swap an in-flight payload).
                if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
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
    /// small minimum; only touched pages cost memory. Above 1 GiB `spawn` returns an error.
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
    let (co, queued, join) = Co::new(name, stack_size, stack, f);
    sched::spawn_co(queued);
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

/// Set when a lazily taken stack could not be had; `spawn` then checks eagerly (and panics)
/// until an allocation succeeds again.
pub(crate) static STACKS_EXHAUSTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

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
