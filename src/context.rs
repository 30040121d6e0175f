//! Go's `context` package: cancellation, deadlines and request-scoped values that flow down a
//! tree of [`Context`]s.
//!
//! ```
//! use std::time::Duration;
//! use goro::context::{self, Error};
//!
//! let (ctx, cancel) = context::with_timeout(&context::background(), Duration::from_millis(10));
//! let req = context::with_value(&ctx, "request-id", 7u32);
//! let _ = req.done().recv(); // closed when the deadline passes
//! assert_eq!(req.err(), Some(Error::DeadlineExceeded));
//! assert_eq!(req.value::<&str, u32>(&"request-id"), Some(&7));
//! cancel.cancel(); // always call it: it releases the timer and the parent's reference
//! ```
//!
//! # Design
//! A [`Context`] is an `Arc` to an immutable node that points at its parent. Node kinds:
//! roots ([`background`], [`todo()`]), cancellable nodes ([`with_cancel`], [`with_cancel_cause`],
//! [`with_deadline`], [`with_timeout`] and their `_cause` forms), value nodes ([`with_value`]) and
//! [`without_cancel`] nodes. Values and deadlines are found by walking up the parent chain.
//!
//! A cancellable node keeps, under a small leaf lock: its error and cause once done, the sending
//! half of its `done` channel (created lazily, closed on cancel), the cancellable descendants that
//! registered with it (its *children*), the [`after_func`] registrations, and its deadline timer.
//!
//! - **Propagation** needs no coroutine or thread per context: a new cancellable node registers
//!   with its nearest cancellable ancestor (skipping value nodes; stopping at roots and
//!   `without_cancel`, which are never done). Cancelling a node cancels its whole subtree with
//!   the same error and cause, iteratively (a deep chain cannot overflow the stack): first it
//!   marks the subtree top-down, then makes the nodes done bottom-up, so that a context whose
//!   `err()` is set never has a descendant whose `err()` is not (Go's guarantee). Cancellation
//!   never flows upwards.
//! - **No leaks**: a node cancelled by its own `CancelFunc` (or its deadline) removes itself from
//!   the ancestor it registered with. As in Go, a child that is never cancelled stays registered
//!   until that ancestor is cancelled: always call the `CancelFunc`.
//! - **Deadlines** use the shared timer facility (`sched::timers`); the timer holds only a weak
//!   reference and is cancelled with the context.
//! - `after_func` callbacks are started in their own coroutine, exactly once, by whoever cancels.
//!
//! Invariants: a node's error is set once and never changes; its `done` channel is closed once
//! its error is set; a node's children map is empty once it is marked or done, and nothing
//! registers with a marked node. Locks are never nested: each step holds at most one node's lock.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::chan::{self, Receiver, Sender};
use crate::sched::timers::{self, TimerHandle};
use crate::util::lock;

/// Why a context is done (Go's `context.Canceled` / `context.DeadlineExceeded`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The context was cancelled (Go's `Canceled`).
    Canceled,
    /// The context's deadline passed (Go's `DeadlineExceeded`).
    DeadlineExceeded,
}

impl Error {
    /// True for [`Error::DeadlineExceeded`] (Go's `Timeout()` method on that error).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::DeadlineExceeded)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Canceled => "context canceled",
            Error::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl std::error::Error for Error {}

/// The reason a context was cancelled, as given to [`CancelCauseFunc::cancel`] or a `_cause`
/// constructor (Go's `error` value passed to `CancelCauseFunc`).
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// Carries a deadline, a cancellation signal and values across API boundaries and between
/// coroutines (Go's `context.Context`). Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Context {
    node: Arc<Node>,
}

struct Node {
    parent: Option<Context>,
    kind: Kind,
}

enum Kind {
    Background,
    Todo,
    Cancel(CancelNode),
    Value {
        key: Box<dyn Any + Send + Sync>,
        value: Box<dyn Any + Send + Sync>,
    },
    WithoutCancel,
}

struct CancelNode {
    /// Own deadline (only `with_deadline*`/`with_timeout*` nodes have one).
    deadline: Option<Instant>,
    /// Set (Release) together with `state.err`: lets `err()` skip the lock while not done.
    done: AtomicBool,
    state: std::sync::Mutex<CancelState>,
}

#[derive(Default)]
struct CancelState {
    /// Set by the mark phase of a cancellation in progress (see [`cancel`]).
    pending: Option<(Error, Cause)>,
    err: Option<Error>,
    cause: Option<Cause>,
    done_tx: Option<Sender<()>>,
    done_rx: Option<Receiver<()>>,
    children: PtrMap<Context>,
    after: PtrMap<Arc<AfterFuncRec>>,
    timer: Option<TimerHandle>,
}

impl Drop for Node {
    /// Unlink the parent chain iteratively: dropping the last handle to the leaf of a
    /// 10,000-deep chain must not recurse 10,000 frames deep.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(Context { node }) = next {
            match Arc::try_unwrap(node) {
                Ok(mut n) => next = n.parent.take(),
                Err(_) => break,
            }
        }
    }
}

impl Drop for CancelNode {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = st.timer.take() {
            t.cancel();
        }
    }
}

/// Maps keyed by the address of a live allocation (a child node, an `after_func` record): the
/// keys are unique and already well spread, so a multiply-shift hash is enough (SipHash was a
/// visible cost when building and cancelling large trees).
type PtrMap<V> = HashMap<usize, V, BuildHasherDefault<PtrHasher>>;

#[derive(Default)]
struct PtrHasher(u64);

impl Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        // Fold the well-mixed high half down: the table indexes by the low bits, and the low
        // bits of an aligned address are constant.
        let h = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

/// One shared, already-closed channel for contexts whose `done` is first asked for after they
/// were cancelled (Go's `closedchan`).
fn closed_chan() -> Receiver<()> {
    static CLOSED: OnceLock<Receiver<()>> = OnceLock::new();
    CLOSED
        .get_or_init(|| {
            let (tx, rx) = chan::bounded(0);
            tx.close();
            rx
        })
        .clone()
}

/// A never-done context: the root of every context tree (Go's `context.Background()`).
pub fn background() -> Context {
    static BG: OnceLock<Context> = OnceLock::new();
    BG.get_or_init(|| Context::root(Kind::Background)).clone()
}

/// A never-done placeholder context for code that does not know which context to use yet
/// (Go's `context.TODO()`).
pub fn todo() -> Context {
    static TODO: OnceLock<Context> = OnceLock::new();
    TODO.get_or_init(|| Context::root(Kind::Todo)).clone()
}

impl Context {
    fn root(kind: Kind) -> Context {
        Context {
            node: Arc::new(Node { parent: None, kind }),
        }
    }

    fn new_cancel(parent: &Context, deadline: Option<Instant>) -> Context {
        Context {
            node: Arc::new(Node {
                parent: Some(parent.clone()),
                kind: Kind::Cancel(CancelNode {
                    deadline,
                    done: AtomicBool::new(false),
                    state: Default::default(),
                }),
            }),
        }
    }

    fn key(&self) -> usize {
        Arc::as_ptr(&self.node) as usize
    }

    fn cancel_node(&self) -> &CancelNode {
        match &self.node.kind {
            Kind::Cancel(c) => c,
            _ => unreachable!("not a cancellable context"),
        }
    }

    /// The nearest cancellable context at or above `self`, if any can ever be done.
    fn cancel_ancestor(&self) -> Option<&Context> {
        let mut cur = self;
        loop {
            match &cur.node.kind {
                Kind::Cancel(_) => return Some(cur),
                Kind::Value { .. } => cur = cur.node.parent.as_ref()?,
                Kind::Background | Kind::Todo | Kind::WithoutCancel => return None,
            }
        }
    }

    /// A channel that is closed when this context is done (cancelled or past its deadline).
    /// For a context that can never be done it never closes (Go returns a nil channel).
    /// Usable in `select!`: `recv(ctx.done()) -> _ => ...`.
    pub fn done(&self) -> Receiver<()> {
        let Some(c) = self.cancel_ancestor() else {
            return chan::never();
        };
        let mut st = lock(&c.cancel_node().state);
        if let Some(rx) = &st.done_rx {
            return rx.clone();
        }
        if st.err.is_some() {
            return closed_chan();
        }
        let (tx, rx) = chan::bounded(0);
        st.done_tx = Some(tx);
        st.done_rx = Some(rx.clone());
        rx
    }

    /// `None` while the context is not done; then why it is done: [`Error::Canceled`] or
    /// [`Error::DeadlineExceeded`]. Once set, it never changes.
    pub fn err(&self) -> Option<Error> {
        let c = self.cancel_ancestor()?.cancel_node();
        if !c.done.load(Ordering::Acquire) {
            return None;
        }
        lock(&c.state).err
    }

    /// When this context will be cancelled by a deadline, if it has one: the earliest deadline
    /// of itself and its ancestors (up to the nearest `without_cancel`).
    pub fn deadline(&self) -> Option<Instant> {
        let mut cur = self;
        loop {
            match &cur.node.kind {
                Kind::Cancel(CancelNode {
                    deadline: Some(d), ..
                }) => return Some(*d),
                Kind::Cancel(_) | Kind::Value { .. } => cur = cur.node.parent.as_ref()?,
                Kind::Background | Kind::Todo | Kind::WithoutCancel => return None,
            }
        }
    }

    /// The value stored by the nearest [`with_value`] ancestor (or `self`) whose key has type `K`
    /// and equals `key` *and* whose value has type `V`; `None` if there is none (a value looked
    /// up with the wrong type is simply not found).
    pub fn value<K, V>(&self, key: &K) -> Option<&V>
    where
        K: PartialEq + 'static,
        V: 'static,
    {
        let mut cur = self;
        loop {
            if let Kind::Value { key: k, value: v } = &cur.node.kind {
                if let (Some(k), Some(v)) = (k.downcast_ref::<K>(), v.downcast_ref::<V>()) {
                    if k == key {
                        return Some(v);
                    }
                }
            }
            cur = cur.node.parent.as_ref()?;
        }
    }

    /// Number of cancellable descendants currently registered with this context (for tests and
    /// leak checks; 0 for contexts that are not cancellable).
    #[doc(hidden)]
    pub fn registered_children(&self) -> usize {
        match &self.node.kind {
            Kind::Cancel(c) => lock(&c.state).children.len(),
            _ => 0,
        }
    }

    fn name(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chain = vec![self];
        while let Some(p) = &chain[chain.len() - 1].node.parent {
            chain.push(p);
        }
        for c in chain.into_iter().rev() {
            c.name_one(f)?;
        }
        Ok(())
    }

    fn name_one(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node.kind {
            Kind::Background => f.write_str("context.Background"),
            Kind::Todo => f.write_str("context.TODO"),
            Kind::Cancel(CancelNode {
                deadline: Some(d), ..
            }) => {
                let left = d.saturating_duration_since(Instant::now());
                write!(f, ".WithDeadline({left:?} left)")
            }
            Kind::Cancel(_) => f.write_str(".WithCancel"),
            Kind::Value { .. } => f.write_str(".WithValue"),
            Kind::WithoutCancel => f.write_str(".WithoutCancel"),
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.name(f)
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.name(f)
    }
}

/// Register `child` (a fresh cancellable context) with the nearest cancellable ancestor of
/// `parent`, or cancel it at once if that ancestor is already done (Go's `propagateCancel`).
fn propagate(parent: &Context, child: &Context) {
    let Some(anc) = parent.cancel_ancestor() else {
        return; // the parent can never be done
    };
    let mut st = lock(&anc.cancel_node().state);
    // Done, or being cancelled right now: the child is cancelled with the same error and cause.
    let done = match (&st.err, &st.pending) {
        (Some(err), _) => Some((*err, st.cause.clone())),
        (None, Some((err, cause))) => Some((*err, Some(cause.clone()))),
        (None, None) => None,
    };
    match done {
        Some((err, cause)) => {
            drop(st);
            cancel(child, false, err, cause);
        }
        None => {
            st.children.insert(child.key(), child.clone());
        }
    }
}

/// Cancel `ctx` and all its descendants with `err`/`cause` (the cause defaults to `err`).
///
/// Two phases, so that a done context never has a descendant that still looks alive (Go gets
/// this by holding the parent's lock while it cancels the children; we must not recurse):
/// 1. *mark*, top-down: each node not yet done or marked gets `pending = (err, cause)` and gives
///    up its children map; new children registering meanwhile see the mark and are cancelled
///    at once;
/// 2. *commit*, bottom-up (reverse discovery order): set the error, close `done`, cancel the
///    timer, start the `after_func`s. Descendants are therefore done before their ancestors.
///
/// If `ctx` itself was already marked by a concurrent ancestor cancellation, this call commits
/// `ctx` with the marked values before returning, so "after `cancel` returns, `err()` is set"
/// holds for every caller.
fn cancel(ctx: &Context, remove_from_parent: bool, err: Error, cause: Option<Cause>) {
    let cause = cause.unwrap_or_else(|| Arc::new(err));
    let mut order: Vec<Context> = Vec::new();
    let mut work = vec![ctx.clone()];
    while let Some(c) = work.pop() {
        let mut st = lock(&c.cancel_node().state);
        if st.err.is_some() {
            continue; // already done (the first cancellation wins)
        }
        if st.pending.is_some() {
            if c.key() == ctx.key() {
                drop(st);
                commit(&c); // help the concurrent cancellation that marked us
            }
            continue;
        }
        st.pending = Some((err, cause.clone()));
        work.extend(std::mem::take(&mut st.children).into_values());
        drop(st);
        order.push(c);
    }
    for c in order.iter().rev() {
        commit(c);
    }
    if remove_from_parent {
        if let Some(anc) = ctx.node.parent.as_ref().and_then(Context::cancel_ancestor) {
            lock(&anc.cancel_node().state).children.remove(&ctx.key());
        }
    }
}

/// Make a marked node done (see [`cancel`]).
fn commit(c: &Context) {
    let cn = c.cancel_node();
    let mut st = lock(&cn.state);
    if st.err.is_some() {
        return;
    }
    let Some((err, cause)) = st.pending.clone() else {
        return;
    };
    st.err = Some(err);
    st.cause = Some(cause.clone());
    cn.done.store(true, Ordering::Release);
    let tx = st.done_tx.take();
    let timer = st.timer.take();
    let after = std::mem::take(&mut st.after);
    // `propagate` never registers with a marked node, so this is empty; be safe anyway.
    let late = std::mem::take(&mut st.children);
    drop(st);
    if let Some(tx) = tx {
        tx.close();
    }
    if let Some(t) = timer {
        t.cancel();
    }
    for rec in after.into_values() {
        rec.start();
    }
    for child in late.into_values() {
        cancel(&child, false, err, Some(cause.clone()));
    }
}

/// Cancels its context (Go's `context.CancelFunc`). Idempotent; dropping it does *not* cancel.
#[derive(Clone)]
pub struct CancelFunc {
    ctx: Context,
}

impl CancelFunc {
    /// Cancel the context (and every descendant) with [`Error::Canceled`]; later calls do
    /// nothing. Does not wait for anything to stop.
    pub fn cancel(&self) {
        cancel(&self.ctx, true, Error::Canceled, None);
    }
}

impl fmt::Debug for CancelFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CancelFunc({:?})", self.ctx)
    }
}

/// Cancels its context with a cause (Go's `context.CancelCauseFunc`).
#[derive(Clone)]
pub struct CancelCauseFunc {
    ctx: Context,
}

impl CancelCauseFunc {
    /// Cancel with [`Error::Canceled`] and record `cause` (retrieved by [`cause`]); `None`
    /// records the error itself. Only the first cancellation counts.
    pub fn cancel(&self, cause: Option<Cause>) {
        cancel(&self.ctx, true, Error::Canceled, cause);
    }
}

impl fmt::Debug for CancelCauseFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CancelCauseFunc({:?})", self.ctx)
    }
}

/// A child of `parent` that is done when `cancel` is called or when `parent` is done, whichever
/// happens first (Go's `WithCancel`).
pub fn with_cancel(parent: &Context) -> (Context, CancelFunc) {
    let ctx = Context::new_cancel(parent, None);
    propagate(parent, &ctx);
    (ctx.clone(), CancelFunc { ctx })
}

/// As [`with_cancel`], but the cancel function records a cause (Go's `WithCancelCause`).
pub fn with_cancel_cause(parent: &Context) -> (Context, CancelCauseFunc) {
    let ctx = Context::new_cancel(parent, None);
    propagate(parent, &ctx);
    (ctx.clone(), CancelCauseFunc { ctx })
}

/// A child that keeps `parent`'s values but is never done, has no deadline, and no cause, even
/// when `parent` is cancelled (Go's `WithoutCancel`).
pub fn without_cancel(parent: &Context) -> Context {
    Context {
        node: Arc::new(Node {
            parent: Some(parent.clone()),
            kind: Kind::WithoutCancel,
        }),
    }
}

/// Why `c` was cancelled (Go's `context.Cause`): `None` while it is not done; the cause given to
/// the first cancellation of `c` or of an ancestor when there was one; otherwise `c.err()`
/// (as a [`Cause`] holding an [`Error`]).
pub fn cause(c: &Context) -> Option<Cause> {
    let cn = c.cancel_ancestor()?.cancel_node();
    if !cn.done.load(Ordering::Acquire) {
        return None;
    }
    lock(&cn.state).cause.clone()
}

/// A child whose deadline is no later than `d` (Go's `WithDeadline`): done when `d` passes
/// ([`Error::DeadlineExceeded`]), when `cancel` is called, or when `parent` is done. If the
/// parent's deadline is already earlier, this is just [`with_cancel`].
pub fn with_deadline(parent: &Context, d: Instant) -> (Context, CancelFunc) {
    deadline_ctx(parent, d, None)
}

/// As [`with_deadline`], and `cause` is what [`cause`] reports when the deadline passes.
pub fn with_deadline_cause(parent: &Context, d: Instant, cause: Cause) -> (Context, CancelFunc) {
    deadline_ctx(parent, d, Some(cause))
}

/// `with_deadline(parent, now + timeout)` (Go's `WithTimeout`).
pub fn with_timeout(parent: &Context, timeout: Duration) -> (Context, CancelFunc) {
    deadline_ctx(parent, crate::deadline::after(timeout), None)
}

/// `with_deadline_cause(parent, now + timeout, cause)` (Go's `WithTimeoutCause`).
pub fn with_timeout_cause(
    parent: &Context,
    timeout: Duration,
    cause: Cause,
) -> (Context, CancelFunc) {
    deadline_ctx(parent, crate::deadline::after(timeout), Some(cause))
}

fn deadline_ctx(parent: &Context, d: Instant, cause: Option<Cause>) -> (Context, CancelFunc) {
    if let Some(cur) = parent.deadline() {
        if cur < d {
            // The parent's deadline comes first and will cancel us anyway.
            return with_cancel(parent);
        }
    }
    let ctx = Context::new_cancel(parent, Some(d));
    propagate(parent, &ctx);
    if d <= Instant::now() {
        cancel(&ctx, true, Error::DeadlineExceeded, cause);
        return (ctx.clone(), CancelFunc { ctx });
    }
    // Schedule without holding our lock (the timer facility has locks of its own, and a timer
    // callback cancelling an ancestor takes ours). If it fires before we store the handle, it
    // has simply cancelled us already.
    let weak: Weak<Node> = Arc::downgrade(&ctx.node);
    let timer = timers::schedule(d, move || {
        if let Some(node) = weak.upgrade() {
            cancel(&Context { node }, true, Error::DeadlineExceeded, cause);
        }
    });
    let mut st = lock(&ctx.cancel_node().state);
    if st.err.is_none() && st.pending.is_none() {
        st.timer = Some(timer);
        drop(st);
    } else {
        drop(st);
        timer.cancel();
    }
    (ctx.clone(), CancelFunc { ctx })
}

/// A child carrying `value` under `key` (Go's `WithValue`). Look it up with
/// [`Context::value`]`::<K, V>(&key)`. Use a key type of your own (a unit struct or enum) so
/// that packages cannot collide.
pub fn with_value<K, V>(parent: &Context, key: K, value: V) -> Context
where
    K: PartialEq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    Context {
        node: Arc::new(Node {
            parent: Some(parent.clone()),
            kind: Kind::Value {
                key: Box::new(key),
                value: Box::new(value),
            },
        }),
    }
}

type AfterFn = Box<dyn FnOnce() + Send>;

struct AfterFuncRec {
    f: std::sync::Mutex<Option<AfterFn>>,
}

impl AfterFuncRec {
    /// Start `f` in its own coroutine unless it was started or stopped already.
    fn start(&self) {
        if let Some(f) = lock(&self.f).take() {
            drop(crate::spawn(f));
        }
    }
}

/// Returned by [`after_func`]: [`stop`](AfterFuncStop::stop) dissociates the function from
/// the context.
pub struct AfterFuncStop {
    rec: Arc<AfterFuncRec>,
    anc: Option<Context>,
}

impl AfterFuncStop {
    /// Prevent the function from being started. True if this call stopped it; false if it had
    /// already been started (the context is done) or stopped. Does not wait for a running `f`.
    pub fn stop(&self) -> bool {
        let stopped = lock(&self.rec.f).take().is_some();
        if stopped {
            if let Some(anc) = &self.anc {
                let key = Arc::as_ptr(&self.rec) as usize;
                lock(&anc.cancel_node().state).after.remove(&key);
            }
        }
        stopped
    }
}

impl fmt::Debug for AfterFuncStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AfterFuncStop").finish_non_exhaustive()
    }
}

/// Arrange for `f` to run in its own coroutine once `ctx` is done (at once if it already is),
/// exactly once (Go's `AfterFunc`). Several registrations on one context are independent. A
/// context that can never be done never runs `f`.
pub fn after_func(ctx: &Context, f: impl FnOnce() + Send + 'static) -> AfterFuncStop {
    let rec = Arc::new(AfterFuncRec {
        f: std::sync::Mutex::new(Some(Box::new(f))),
    });
    let anc = ctx.cancel_ancestor().cloned();
    if let Some(a) = &anc {
        let mut st = lock(&a.cancel_node().state);
        if st.err.is_some() {
            drop(st);
            rec.start();
        } else {
            st.after.insert(Arc::as_ptr(&rec) as usize, rec.clone());
        }
    }
    AfterFuncStop { rec, anc }
}
