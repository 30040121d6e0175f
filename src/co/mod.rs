//! The coroutine control block: [`Co`], its states ([`state`](self::state): the diagram and every
//! transition), and its counted reference [`CoRef`] (`coref.rs`, with its own allocator).
//!
//! A coroutine is a control block plus a stack and a machine context that exist once it has
//! started. The control block's atomic `state` is the only field other threads write;
//! everything else is touched only by the coroutine's *owner* worker (the one it started on;
//! it never changes — see `sched`), or before the coroutine started by whoever holds it in a
//! run queue.
//!
//! The block also holds the coroutine's *task* (its closure and result slot) without knowing
//! its type: the layer that spawns (`coroutine.rs`) implements [`Task`] for it, and the block
//! keeps it in `TASK_SPACE` inline bytes, or in a box of its own when it does not fit.
//!
//! This layer knows nothing of the scheduler: it sits on `stack` and `arch` only.

use std::cell::UnsafeCell;
use std::io;
use std::mem::{align_of, size_of, MaybeUninit};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::arch::SwitchContext;
use crate::stack::overflow::RunningInfo;
use crate::stack::Stack;

mod coref;
pub(crate) mod state;

pub(crate) use coref::CoRef;
pub(crate) use state::{FRESH, NOTIFIED, PARKED, RUNNABLE, RUNNING};

/// Worker index of a coroutine that has not started.
pub(crate) const NO_OWNER: usize = usize::MAX;

/// Bytes reserved in every control block for its task (the closure plus the result slot).
/// A task that fits (most do: a few captured handles and a small result) costs no allocation
/// of its own; a bigger or over-aligned one goes to its own heap box.
const TASK_SPACE: usize = 96;

#[repr(C, align(16))]
struct TaskSpace(UnsafeCell<MaybeUninit<[u8; TASK_SPACE]>>);

/// A coroutine's body as the control block sees it: run once, or fail without running.
/// Implemented by the spawning layer for its closure-plus-result type.
pub(crate) trait Task: Send + Sized {
    /// Run the body (catching its panics) and publish the result. `exiting` is called after
    /// the result is written and before anyone can observe it (the scheduler uncounts the
    /// coroutine there).
    ///
    /// # Safety
    /// `this` points to the live task; called at most once, and never after `fail`.
    unsafe fn run(this: *mut Self, exiting: fn());

    /// The coroutine cannot start (no stack): drop the body unrun and publish the error,
    /// calling `exiting` as `run` does.
    ///
    /// # Safety
    /// As for `run`.
    unsafe fn fail(this: *mut Self, err: io::Error, exiting: fn());
}

/// What the type-erased task function is asked to do.
enum TaskOp {
    Run(fn()),
    Fail(io::Error, fn()),
    /// The control block is being dropped: drop the task (and free its box if it has one).
    Drop,
}

/// A coroutine's control block.
pub(crate) struct Co {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    /// See [`state`](self::state); changed only through its transitions.
    pub(crate) state: AtomicU32,
    /// The worker it started on (`NO_OWNER` before); written once by that worker.
    pub(crate) owner: AtomicUsize,
    /// Bumped by every park, so a timeout registered for one park never wakes a later one.
    pub(crate) park_seq: AtomicU64,
    /// Encoded wait reason (see `sched::reasons`) and when the wait began (coarse ms clock).
    pub(crate) reason: AtomicU64,
    /// Unwinds in flight on this coroutine as goro counts them (panics seen by goro's panic
    /// hook, `goexit`s; reset when a goro catch point catches). Touched by the coroutine
    /// itself only (relaxed); it decides only when std's per-thread answer is ambiguous
    /// (see `sched::unwinding`).
    pub(crate) unwinds: AtomicU32,
    pub(crate) wait_since: AtomicU64,
    pub(crate) stack_size: usize,
    /// Set when the coroutine's registry slot is taken (owner only).
    pub(crate) slot: AtomicUsize,
    /// Heap bytes holding its stack's live part while compacted, else 0. Owner writes, dumps
    /// read (Relaxed).
    pub(crate) compacted_bytes: AtomicU32,
    /// The task's own heap box, or null when it lives in `space`.
    task_box: *mut (),
    /// Knows the task's concrete type: runs, fails or drops it (see [`TaskOp`]).
    task_fn: unsafe fn(*mut (), TaskOp),
    space: TaskSpace,
    inner: UnsafeCell<CoInner>,
}

pub(crate) struct CoInner {
    pub(crate) stack: Option<Stack>,
    pub(crate) ctx: Option<SwitchContext>,
    /// What the stack-overflow handler reports while this coroutine runs (set at start).
    pub(crate) info: Option<RunningInfo>,
    /// Set while the coroutine waits in a park whose stack may be compacted (`park::park_idle`;
    /// see `stack::compact`), cleared when it returns.
    pub(crate) idle_park: bool,
    /// How many times its compaction threshold has doubled: a coroutine woken soon after it
    /// was compacted waits longer before the next one (`sched::compaction`).
    pub(crate) compact_backoff: u8,
    /// The live bytes of its stack while compacted (restored before it runs again).
    pub(crate) compacted: Option<crate::stack::compact::Compacted>,
}

// SAFETY: `inner` is only accessed by the one thread that holds the coroutine for running it:
// before start, whoever popped it from a run queue (queues hand out each entry once); after
// start, its owner worker only. Every other field is atomic or immutable.
unsafe impl Sync for Co {}
// SAFETY: as above; a coroutine's task is `Send` (closure and result both are), its stack is plain memory, and a
// context only exists once the coroutine runs on its owner, which never hands it to another
// thread while started (the control block may be *dropped* elsewhere only once DONE).
unsafe impl Send for Co {}

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

/// The type-erased operations on a task `X` at `p` (`BOXED`: `p` is its own heap box).
///
/// # Safety
/// `p` points to a live `X`. `Run` and `Fail` are called at most once in total, by the thread
/// that holds the coroutine for running; `Drop` once, last, by the block's `Drop`.
unsafe fn task_fn<X: Task, const BOXED: bool>(p: *mut (), op: TaskOp) {
    let task = p as *mut X;
    match op {
        // SAFETY: per the contract (which is `Task::run`'s).
        TaskOp::Run(exiting) => unsafe { X::run(task, exiting) },
        // SAFETY: per the contract (which is `Task::fail`'s).
        TaskOp::Fail(err, exiting) => unsafe { X::fail(task, err, exiting) },
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

impl Co {
    /// A fresh coroutine running `task`. `stack` is `None` when it is taken lazily at the
    /// first run (`spawn`), `Some` when it was reserved up front (`Builder::spawn`).
    /// Returns two references to it and a pointer to the task (alive as long as the block).
    #[allow(clippy::new_ret_no_self)] // a control block only ever lives behind a CoRef
    #[inline]
    pub(crate) fn new<X: Task>(
        name: Option<Box<str>>,
        stack_size: usize,
        stack: Option<Stack>,
        task: X,
    ) -> (CoRef, CoRef, NonNull<X>) {
        let inline = size_of::<X>() <= TASK_SPACE && align_of::<X>() <= align_of::<TaskSpace>();
        type TaskFn = unsafe fn(*mut (), TaskOp);
        let (task_box, task_fn, in_space): (*mut (), TaskFn, _) = if inline {
            (std::ptr::null_mut(), task_fn::<X, false>, Some(task))
        } else {
            let b = Box::into_raw(Box::new(task)) as *mut ();
            (b, task_fn::<X, true>, None)
        };
        let (co, co2) = CoRef::new_pair(|| Co {
            id: next_id(),
            name,
            state: AtomicU32::new(FRESH),
            owner: AtomicUsize::new(NO_OWNER),
            park_seq: AtomicU64::new(0),
            reason: AtomicU64::new(0),
            unwinds: AtomicU32::new(0),
            wait_since: AtomicU64::new(0),
            stack_size,
            slot: AtomicUsize::new(usize::MAX),
            compacted_bytes: AtomicU32::new(0),
            task_box,
            task_fn,
            space: TaskSpace(UnsafeCell::new(MaybeUninit::uninit())),
            inner: UnsafeCell::new(CoInner {
                stack,
                idle_park: false,
                compact_backoff: 0,
                compacted: None,
                ctx: None,
                info: None,
            }),
        });
        let p = co.task_ptr() as *mut X;
        if let Some(task) = in_space {
            // SAFETY: `space` is ours alone (the block was just made), big and aligned enough
            // (checked above), and `task_fn` treats it as this type from now on. Nothing can
            // drop the block between its creation and this write (we hold both counts).
            unsafe { p.write(task) };
        }
        // SAFETY: `p` points to the initialised task, which lives as long as the block.
        let task = unsafe { NonNull::new_unchecked(p) };
        (co, co2, task)
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
    /// Called once, by the coroutine itself, and not after [`fail_task`](Self::fail_task).
    pub(crate) unsafe fn run_task(&self, exiting: fn()) {
        // SAFETY: per the contract; `task_fn` matches the task's type.
        unsafe { (self.task_fn)(self.task_ptr(), TaskOp::Run(exiting)) }
    }

    /// The coroutine cannot start: drop its closure unrun and give `join` the error.
    ///
    /// # Safety
    /// Called at most once, by the worker that took the fresh coroutine, instead of `run_task`.
    pub(crate) unsafe fn fail_task(&self, err: io::Error, exiting: fn()) {
        // SAFETY: per the contract; `task_fn` matches the task's type.
        unsafe { (self.task_fn)(self.task_ptr(), TaskOp::Fail(err, exiting)) }
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
        // by whoever finished last (see `coroutine::JoinInner`), so no user code runs here.
        unsafe { (self.task_fn)(self.task_ptr(), TaskOp::Drop) }
    }
}
