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
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

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

/// The body a coroutine runs: the user's closure and its result slot, wrapped so that running
/// it never unwinds.
pub(crate) type Body = Arc<dyn Runnable>;

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
    inner: UnsafeCell<CoInner>,
}

pub(crate) struct CoInner {
    pub(crate) body: Option<Body>,
    pub(crate) stack: Option<Stack>,
    pub(crate) ctx: Option<Context>,
    /// What the stack-overflow handler reports while this coroutine runs (set at start).
    pub(crate) info: Option<RunningInfo>,
}

// SAFETY: `inner` is only accessed by the one thread that holds the coroutine for running it:
// before start, whoever popped it from a run queue (queues hand out each entry once); after
// start, its owner worker only. Every other field is atomic or immutable.
unsafe impl Sync for Co {}
// SAFETY: as above; a fresh coroutine's body is `Send`, its stack is plain memory, and a
// context only exists once the coroutine runs on its owner, which never hands it to another
// thread while started (the control block may be *dropped* elsewhere only once DONE).
unsafe impl Send for Co {}

/// A counted reference to a coroutine.
pub(crate) use crate::coref::CoRef;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Co {
    /// A fresh coroutine. `stack` is `None` when it is taken lazily at the first run
    /// (`spawn`), `Some` when it was reserved up front (`Builder::spawn`).
    #[allow(clippy::new_ret_no_self)] // a control block only ever lives behind a CoRef
    pub(crate) fn new(
        name: Option<Box<str>>,
        stack_size: usize,
        stack: Option<Stack>,
        body: Body,
    ) -> CoRef {
        CoRef::new(Co {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            state: AtomicU32::new(FRESH),
            owner: AtomicUsize::new(NO_OWNER),
            park_seq: AtomicU64::new(0),
            reason: AtomicU8::new(0),
            wait_since: AtomicU64::new(0),
            stack_size,
            slot: AtomicUsize::new(usize::MAX),
            inner: UnsafeCell::new(CoInner {
                body: Some(body),
                stack,
                ctx: None,
                info: None,
            }),
        })
    }

    /// The owner-only part of the control block, as a raw pointer: only the thread entitled
    /// to run this coroutine (see the `Sync` impl) may dereference it, field by field, without
    /// keeping references alive across a context switch.
    pub(crate) fn inner_ptr(&self) -> *mut CoInner {
        self.inner.get()
    }
}

// ---------------------------------------------------------------------------------------------
// Join

const J_RUNNING: u8 = 0;
const J_WAITING: u8 = 1;
const J_DONE: u8 = 2;

/// The result slot shared by a coroutine and its `JoinHandle`.
pub(crate) struct JoinInner<T> {
    state: AtomicU8,
    result: UnsafeCell<Option<Result<T, JoinError>>>,
    waiter: UnsafeCell<Option<Unparker>>,
}

/// A spawned closure and its result slot in one allocation, shared by the coroutine (as a
/// [`Runnable`]) and its `JoinHandle` (as a [`JoinSlot`]).
struct Task<T, F> {
    join: JoinInner<T>,
    f: UnsafeCell<Option<F>>,
}

// SAFETY: `f` is taken exactly once, by the coroutine, on the thread that runs it (`F: Send`);
// the join slot's protocol is described on its own impls below.
unsafe impl<T: Send, F: Send> Sync for Task<T, F> {}
// SAFETY: as above.
unsafe impl<T: Send, F: Send> Send for Task<T, F> {}

/// What a coroutine runs: its task, type-erased.
pub(crate) trait Runnable: Send + Sync {
    /// Run the closure (catching panics and goexit) and publish the result. Called once.
    fn run(&self);
    /// The coroutine cannot start (no stack could be had): drop the closure unrun and publish
    /// `err` as its result. Called at most once, instead of `run`.
    fn fail(&self, err: JoinError);
}

/// What a `JoinHandle` holds: the task, erased down to its result slot.
trait JoinSlot<T>: Send + Sync {
    fn slot(&self) -> &JoinInner<T>;
}

impl<T: Send, F: FnOnce() -> T + Send> Runnable for Task<T, F> {
    fn run(&self) {
        // SAFETY: `run` is called once, by the coroutine; nobody else touches `f`.
        let f = unsafe { (*self.f.get()).take() }.expect("goro: coroutine body run twice");
        let r = match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => Ok(v),
            Err(p) if p.is::<Goexit>() => Err(JoinError {
                repr: JoinRepr::Goexit,
            }),
            Err(p) => Err(JoinError {
                repr: JoinRepr::Panic(p),
            }),
        };
        self.join.complete(r);
    }

    fn fail(&self, err: JoinError) {
        // SAFETY: as in `run`: the closure is only ever touched by the one caller of run/fail.
        drop(unsafe { (*self.f.get()).take() });
        self.join.complete(Err(err));
    }
}

impl<T: Send, F: Send> JoinSlot<T> for Task<T, F> {
    fn slot(&self) -> &JoinInner<T> {
        &self.join
    }
}

impl<T> JoinInner<T> {
    fn complete(&self, r: Result<T, JoinError>) {
        // SAFETY: only the coroutine writes the result, once, before publishing J_DONE.
        unsafe { *self.result.get() = Some(r) };
        // Uncount the coroutine before anyone can observe its completion (API: "a coroutine is
        // uncounted before its join returns").
        sched::coroutine_exiting();
        if self.state.swap(J_DONE, Ordering::AcqRel) == J_WAITING {
            // SAFETY: the joiner wrote `waiter` before publishing J_WAITING and never touches it
            // again until it sees J_DONE.
            if let Some(w) = unsafe { (*self.waiter.get()).take() } {
                w.unpark();
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
    task: Arc<dyn JoinSlot<T>>,
    id: u64,
}

impl<T> JoinHandle<T> {
    /// Wait for the coroutine to finish and return its value, or why it ended without one.
    /// Parks the calling coroutine, or blocks the calling thread.
    pub fn join(self) -> Result<T, JoinError> {
        let inner = self.task.slot();
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
        self.task.slot().state.load(Ordering::Acquire) == J_DONE
    }

    /// The coroutine's id (as shown by `runtime::dump`).
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
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
/// `goexit` unwinds the coroutine's stack, so it needs `panic = "unwind"` (the default), and a
/// `std::panic::catch_unwind` in user code between here and the coroutine's entry would stop it
/// (it then sees a payload it does not know; re-raise it with `resume_unwind`).
///
/// # Panics
/// On a plain thread (not a goro coroutine), with a message saying so.
pub fn goexit() -> ! {
    if !park::in_coroutine() {
        panic!("goro::goexit called outside a coroutine (on a plain OS thread); it may only end a goro coroutine");
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
    let task = Arc::new(Task {
        join: JoinInner {
            state: AtomicU8::new(J_RUNNING),
            result: UnsafeCell::new(None),
            waiter: UnsafeCell::new(None),
        },
        f: UnsafeCell::new(Some(f)),
    });
    let body: Body = task.clone();
    let co = Co::new(name, stack_size, stack, body);
    let id = co.id;
    sched::spawn_co(co);
    JoinHandle { task, id }
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
