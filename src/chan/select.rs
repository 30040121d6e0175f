//! Selection over several channel operations: the engine behind `select!`, `select_biased!`
//! and the dynamic [`Select`].
//!
//! A selection first tries every case once without blocking, in a uniformly random order
//! (Fisher–Yates shuffle; in declaration order when biased). If none is ready and blocking is
//! allowed, it creates one `Waiting`, registers one entry per case (each case's id is the
//! address of its slot in the case array), and parks until a partner claims one case, a
//! channel closes, or the deadline passes (the caller's, or the earliest of its timer cases',
//! which become ready by themselves). It then unregisters every case; the claimed one is
//! *accepted* (for the rendezvous flavor this collects the packet the partner published),
//! anything else goes back to the non-blocking pass.
//!
//! The chosen case is returned as a [`SelectedOperation`] holding a `Token` (a claimed slot or
//! packet); the caller completes it with `recv`/`send`. This split is what lets `select!`
//! evaluate a send case's value only when that case was chosen.
//!
//! *Non-blocking* (`try_select`, `select!` with `default`, `try_ready`): a second pass over
//! the cases before reporting that none is ready, because one pass is not linearizable. While
//! it looks at case 2, another thread may fill case 1 (already seen empty) and then take case
//! 2's message, so that some case was ready at every instant and yet none was seen ready. The
//! second pass sees case 1's message, unless that was taken again in between too. That is as
//! far as a selection goes that does not lock all its channels at once (Go's does), and what
//! crossbeam-channel does (its registration round in between selects nothing). Only a
//! non-blocking selection that finds nothing pays for it.
//!
//! Invariants: every registered case is unregistered before the selection returns; a claimed
//! operation is always completed (dropping an uncompleted `SelectedOperation` is a bug and
//! panics, as in crossbeam-channel).

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::err::{
    ReadyTimeoutError, RecvError, SelectTimeoutError, SendError, TryReadyError, TrySelectError,
};
use super::token::Token;
use super::waiting::{self, Operation, Selected, Waiting};
use super::{Receiver, Sender};

/// One end of one channel as a select case, type-erased (implemented for `Receiver` and
/// `Sender` in `handle.rs`, which dispatch to their flavor's `Side`). See `side.rs` for what
/// each step means.
pub(crate) trait SelectHandle {
    /// Claim the operation now if it can proceed (or the channel is closed).
    fn try_select(&self, token: &mut Token) -> bool;
    /// The instant by which a blocked selection must look at this case again, if any.
    fn deadline(&self) -> Option<Instant>;
    /// Register a blocked case; true if it is ready anyway (the caller then aborts).
    fn register(&self, oper: Operation, cx: &Waiting) -> bool;
    fn unregister(&self, oper: Operation);
    /// The case was claimed by a partner: collect the claim into `token`.
    fn accept(&self, token: &mut Token, cx: &Waiting) -> bool;
    fn is_ready(&self) -> bool;
    fn watch(&self, oper: Operation, cx: &Waiting) -> bool;
    fn unwatch(&self, oper: Operation);
}

/// How long a selection may block.
#[derive(Clone, Copy)]
pub(crate) enum Blocking {
    /// Not at all: only the non-blocking pass.
    No,
    /// Until some case is ready.
    Forever,
    /// Until some case is ready or the instant passes.
    Until(Instant),
}

impl Blocking {
    fn after(d: Duration) -> Blocking {
        Blocking::Until(crate::deadline::after(d))
    }

    fn deadline(self) -> Option<Instant> {
        match self {
            Blocking::Until(t) => Some(t),
            _ => None,
        }
    }
}

/// A case: the handle, the user-visible index, and the identity of the case's channel and
/// direction (`Receiver::case_id`/`Sender::case_id`), which `SelectedOperation` checks: the
/// operation must be completed on the selected channel (through any of its receivers or
/// senders, as in crossbeam-channel) and in the selected direction.
pub(crate) type Case<'a> = (&'a dyn SelectHandle, usize, usize);

/// Fisher–Yates shuffle: every order equally likely (up to the generator's quality).
fn shuffle(cases: &mut [Case<'_>]) {
    let mut x = crate::util::random_u64();
    for i in (1..cases.len()).rev() {
        // A fresh 32-bit draw per step from a local LCG seeded by the thread's generator.
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = (((x >> 32) * (i as u64 + 1)) >> 32) as usize;
        cases.swap(i, j);
    }
}

/// Run a selection; `None` when it timed out (or, with `Blocking::No`, nothing was ready).
pub(crate) fn run_select<'a>(
    cases: &mut [Case<'a>],
    timeout: Blocking,
    biased: bool,
) -> Option<(Token, usize, usize)> {
    crate::park::coop_spend();
    if cases.is_empty() {
        match timeout {
            Blocking::No => return None,
            Blocking::Forever => {
                waiting::sleep_until(None, "select (no cases)");
                unreachable!("sleep_until(None) never returns")
            }
            Blocking::Until(d) => {
                waiting::sleep_until(Some(d), "select (no cases)");
                return None;
            }
        }
    }
    if !biased {
        shuffle(cases);
    }
    let mut token = Token::default();
    for &(h, i, p) in cases.iter() {
        if h.try_select(&mut token) {
            return Some((token, i, p));
        }
    }
    loop {
        let deadline = match timeout {
            Blocking::No => {
                // One more pass before reporting "nothing ready" (module docs: *Non-blocking*).
                for &(h, i, p) in cases.iter() {
                    if h.try_select(&mut token) {
                        return Some((token, i, p));
                    }
                }
                return None;
            }
            t => t.deadline(),
        };
        let cx = Waiting::new();
        let sel = publish_and_wait(
            cases,
            &cx,
            wake_by(cases, deadline),
            |h, oper, cx| h.register(oper, cx),
            |h, oper| h.unregister(oper),
        );
        if let Selected::Operation(o) = sel {
            let mut accepted = None;
            for case in cases.iter_mut() {
                if Operation::hook(case) == o {
                    if case.0.accept(&mut token, &cx) {
                        accepted = Some((case.1, case.2));
                    }
                    break;
                }
            }
            if let Some((i, p)) = accepted {
                cx.release();
                return Some((token, i, p));
            }
        }
        cx.release();
        for &(h, i, p) in cases.iter() {
            if h.try_select(&mut token) {
                return Some((token, i, p));
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
    }
}

/// When a blocked selection must wake up at the latest: the caller's `deadline` or the
/// earliest deadline of a timer case (which is ready from then on, without a partner to wake
/// the selection), whichever comes first.
fn wake_by(cases: &[Case<'_>], deadline: Option<Instant>) -> Option<Instant> {
    cases
        .iter()
        .filter_map(|c| c.0.deadline())
        .chain(deadline)
        .min()
}

/// Publish `cx` on every case in order with `publish` (blocked operations register, readiness
/// observers watch), stopping early when a case reports itself ready (then abort `cx`) or `cx`
/// was already claimed; park until `cx` is decided or `deadline` passes; then withdraw from
/// every case published on. Returns how `cx` was decided.
fn publish_and_wait(
    cases: &mut [Case<'_>],
    cx: &Waiting,
    deadline: Option<Instant>,
    publish: impl Fn(&dyn SelectHandle, Operation, &Waiting) -> bool,
    withdraw: impl Fn(&dyn SelectHandle, Operation),
) -> Selected {
    let mut sel = Selected::Pending;
    let mut published = 0;
    for case in cases.iter_mut() {
        published += 1;
        let oper = Operation::hook(case);
        if publish(case.0, oper, cx) {
            sel = match cx.try_select(Selected::Aborted) {
                Ok(()) => Selected::Aborted,
                Err(s) => s,
            };
            break;
        }
        sel = cx.selected();
        if sel != Selected::Pending {
            break;
        }
    }
    if sel == Selected::Pending {
        sel = cx.wait_until(deadline, "select");
    }
    for case in cases.iter_mut().take(published) {
        let oper = Operation::hook(case);
        withdraw(case.0, oper);
    }
    sel
}

/// Wait until some case is ready (without performing it).
pub(crate) fn run_ready(cases: &mut [Case<'_>], timeout: Blocking, biased: bool) -> Option<usize> {
    crate::park::coop_spend();
    if cases.is_empty() {
        match timeout {
            Blocking::No => return None,
            Blocking::Forever => {
                waiting::sleep_until(None, "select (no cases)");
                unreachable!("sleep_until(None) never returns")
            }
            Blocking::Until(d) => {
                waiting::sleep_until(Some(d), "select (no cases)");
                return None;
            }
        }
    }
    if !biased {
        shuffle(cases);
    }
    let mut passes = 0;
    loop {
        for &(h, i, _) in cases.iter() {
            if h.is_ready() {
                return Some(i);
            }
        }
        passes += 1;
        let deadline = match timeout {
            // A second pass before "nothing ready" (module docs: *Non-blocking*).
            Blocking::No if passes < 2 => continue,
            Blocking::No => return None,
            t => t.deadline(),
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let cx = Waiting::new();
        let sel = publish_and_wait(
            cases,
            &cx,
            wake_by(cases, deadline),
            |h, oper, cx| h.watch(oper, cx),
            |h, oper| h.unwatch(oper),
        );
        cx.release();
        if let Selected::Operation(o) = sel {
            for case in cases.iter_mut() {
                if Operation::hook(case) == o {
                    return Some(case.1);
                }
            }
        }
    }
}

/// Inline room for this many cases before a `Select` allocates.
const INLINE: usize = 8;

/// Select over a set of operations known only at run time (crossbeam-channel's `Select`).
/// Each selection (`select`, `try_select`, `ready`, ...) counts against the cooperative budget
/// (see [`crate::gosched`]).
///
/// ```
/// use goro::chan::{bounded, Select};
///
/// let (tx1, rx1) = bounded::<i32>(1);
/// let (_tx2, rx2) = bounded::<i32>(1);
/// tx1.send(7).unwrap();
/// let mut sel = Select::new();
/// let i1 = sel.recv(&rx1);
/// let _i2 = sel.recv(&rx2);
/// let oper = sel.select();
/// assert_eq!(oper.index(), i1);
/// assert_eq!(oper.recv(&rx1), Ok(7));
/// ```
pub struct Select<'a> {
    inline: [Case<'a>; INLINE],
    spill: Vec<Case<'a>>,
    len: usize,
    next_index: usize,
    biased: bool,
}

// SAFETY: a `Select` holds, per case, a shared reference to a `Receiver<T>` or `Sender<T>`
// (type-erased as `&dyn SelectHandle`), its index and its channel's identity (a plain
// number). Moving or sharing the `Select` to another thread only lets that thread run the
// selection there, i.e. call the `SelectHandle` methods (`try_select`, `register`,
// `unregister`, `accept`, `is_ready`, `watch`, `unwatch`, `deadline`) on those references.
// None of them creates, moves, reads or drops a `T`: they claim slots and packets, move
// waiter entries and read the clock, all through state that is synchronised for use from any
// thread (atomics, the waiter lists' mutexes, `Waiting`, which is `Send + Sync`); the empty
// heap packets the rendezvous flavor allocates and frees hold `None`. Messages move only in
// `SelectedOperation::recv`/`send`, which need a `&Receiver<T>`/`&Sender<T>` *of their own*
// on the completing thread (the selection's references are not handed out), and
// `SelectedOperation` is neither `Send` nor `Sync` (its token holds raw pointers): so a `T`
// reaches another thread only through a receiver or sender that is itself on that thread,
// which takes `T: Send`. This is crossbeam-channel's `Select`, which is `Send + Sync` too.
unsafe impl Send for Select<'_> {}
// SAFETY: see `Send` above; through `&Select` another thread can only `clone` it (copying
// the references) or format it, which leads to the case above.
unsafe impl Sync for Select<'_> {}

impl<'a> Select<'a> {
    /// An empty selection; ready cases are chosen uniformly at random.
    #[inline]
    pub fn new() -> Select<'a> {
        Select {
            inline: [(&NOOP, usize::MAX, 0); INLINE],
            spill: Vec::new(),
            len: 0,
            next_index: 0,
            biased: false,
        }
    }

    /// An empty selection that tries its cases in the order they were added.
    #[inline]
    pub fn new_biased() -> Select<'a> {
        Select {
            biased: true,
            ..Select::new()
        }
    }

    #[inline]
    fn push(&mut self, case: Case<'a>) -> usize {
        if self.len < INLINE && self.spill.is_empty() {
            self.inline[self.len] = case;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline[..self.len]);
            }
            self.spill.push(case);
        }
        self.len += 1;
        self.next_index += 1;
        case.1
    }

    /// Add a receive case; returns its index.
    pub fn recv<T>(&mut self, r: &'a Receiver<T>) -> usize {
        let i = self.next_index;
        self.push((r, i, r.case_id()))
    }

    /// Add a send case; returns its index.
    pub fn send<T>(&mut self, s: &'a Sender<T>) -> usize {
        let i = self.next_index;
        self.push((s, i, s.case_id()))
    }

    /// Remove the case with this index.
    ///
    /// # Panics
    /// If no case has this index.
    pub fn remove(&mut self, index: usize) {
        assert!(
            index < self.next_index,
            "index out of bounds; {} >= {}",
            index,
            self.next_index
        );
        let cases = self.cases_mut();
        let pos = cases
            .iter()
            .position(|c| c.1 == index)
            .expect("no operation with this index");
        if self.spill.is_empty() {
            // Keep the order (biased selections depend on it).
            self.inline.copy_within(pos + 1..self.len, pos);
        } else {
            self.spill.remove(pos);
        }
        self.len -= 1;
    }

    #[inline]
    fn cases_mut(&mut self) -> &mut [Case<'a>] {
        if self.spill.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.spill
        }
    }

    #[inline]
    fn with_cases<R>(&mut self, f: impl FnOnce(&mut [Case<'a>], bool) -> R) -> R {
        let biased = self.biased;
        f(self.cases_mut(), biased)
    }

    #[inline]
    fn run(&mut self, timeout: Blocking) -> Option<SelectedOperation<'a>> {
        self.with_cases(|cases, biased| run_select(cases, timeout, biased))
            .map(|(token, index, case_id)| SelectedOperation {
                token,
                index,
                case_id,
                completed: false,
                _marker: PhantomData,
            })
    }

    /// Empty this selection for reuse with other channels (a new lifetime), keeping whether
    /// it is biased; indexes start again from 0 (crossbeam-channel's `recycle`). Where the
    /// standard library collects in place, a selection of more than a few cases keeps its
    /// allocation.
    ///
    /// ```
    /// use goro::chan::{unbounded, Select};
    ///
    /// let mut sel = Select::new();
    /// {
    ///     let (_tx, rx) = unbounded::<i32>();
    ///     assert_eq!(sel.recv(&rx), 0);
    ///     sel = sel.recycle(); // `rx` may go now
    /// }
    /// let (tx, rx) = unbounded();
    /// tx.send(2).unwrap();
    /// assert_eq!(sel.recv(&rx), 0);
    /// assert_eq!(sel.select().recv(&rx), Ok(2));
    /// ```
    pub fn recycle<'b>(self) -> Select<'b> {
        let Select {
            mut spill, biased, ..
        } = self;
        spill.clear();
        // The vector is empty, so the closure never runs: this only changes the lifetime of
        // the element type (in place, where the standard library can).
        let spill: Vec<Case<'b>> = spill.into_iter().map(|_| unreachable!()).collect();
        Select {
            spill,
            biased,
            ..Select::new()
        }
    }

    /// Perform one ready operation without blocking.
    #[inline]
    pub fn try_select(&mut self) -> Result<SelectedOperation<'a>, TrySelectError> {
        self.run(Blocking::No).ok_or(TrySelectError)
    }

    /// Block until one operation can proceed and select it. With no cases, blocks forever.
    #[inline]
    pub fn select(&mut self) -> SelectedOperation<'a> {
        self.run(Blocking::Forever)
            .expect("a selection without timeout always selects")
    }

    /// As [`select`](Self::select), waiting at most `timeout`.
    pub fn select_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.run(Blocking::after(timeout)).ok_or(SelectTimeoutError)
    }

    /// As [`select`](Self::select), waiting until `deadline` at most.
    pub fn select_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.run(Blocking::Until(deadline))
            .ok_or(SelectTimeoutError)
    }

    /// The index of an operation that is ready now, without performing it.
    pub fn try_ready(&mut self) -> Result<usize, TryReadyError> {
        self.with_cases(|c, b| run_ready(c, Blocking::No, b))
            .ok_or(TryReadyError)
    }

    /// Block until some operation is ready and return its index (another thread may still
    /// take it before you do: then retry).
    pub fn ready(&mut self) -> usize {
        self.with_cases(|c, b| run_ready(c, Blocking::Forever, b))
            .expect("a selection without timeout always selects")
    }

    /// As [`ready`](Self::ready), waiting at most `timeout`.
    pub fn ready_timeout(&mut self, timeout: Duration) -> Result<usize, ReadyTimeoutError> {
        self.with_cases(|c, b| run_ready(c, Blocking::after(timeout), b))
            .ok_or(ReadyTimeoutError)
    }

    /// As [`ready`](Self::ready), waiting until `deadline` at most.
    pub fn ready_deadline(&mut self, deadline: Instant) -> Result<usize, ReadyTimeoutError> {
        self.with_cases(|c, b| run_ready(c, Blocking::Until(deadline), b))
            .ok_or(ReadyTimeoutError)
    }
}

/// A placeholder handle for unused inline slots (never selected).
struct Noop;

impl SelectHandle for Noop {
    fn try_select(&self, _: &mut Token) -> bool {
        false
    }
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn register(&self, _: Operation, _: &Waiting) -> bool {
        false
    }
    fn unregister(&self, _: Operation) {}
    fn accept(&self, _: &mut Token, _: &Waiting) -> bool {
        false
    }
    fn is_ready(&self) -> bool {
        false
    }
    fn watch(&self, _: Operation, _: &Waiting) -> bool {
        false
    }
    fn unwatch(&self, _: Operation) {}
}

static NOOP: Noop = Noop;

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl Clone for Select<'_> {
    fn clone(&self) -> Self {
        Select {
            inline: self.inline,
            spill: self.spill.clone(),
            len: self.len,
            next_index: self.next_index,
            biased: self.biased,
        }
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Select { .. }")
    }
}

/// The operation a selection chose; complete it with [`recv`](Self::recv) or
/// [`send`](Self::send) on the selected channel.
///
/// It stays on the thread that selected it (not `Send`, as in crossbeam-channel):
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let (_tx, rx) = goro::chan::bounded::<i32>(1);
/// let mut sel = goro::chan::Select::new();
/// sel.recv(&rx);
/// send(sel.try_select());
/// ```
#[must_use]
pub struct SelectedOperation<'a> {
    token: Token,
    index: usize,
    /// The `case_id` of the selected case.
    case_id: usize,
    completed: bool,
    _marker: PhantomData<&'a ()>,
}

impl SelectedOperation<'_> {
    /// The index of the chosen case (as returned when it was added).
    #[inline]
    pub fn index(&self) -> usize {
        self.index
    }

    /// Complete a chosen send case.
    ///
    /// `s` may be the sender given to the selection or any other sender of the same channel
    /// (a clone), as in crossbeam-channel.
    ///
    /// # Panics
    /// If `s` is not a sender of the chosen case's channel, or the chosen case is a receive.
    pub fn send<T>(mut self, s: &Sender<T>, msg: T) -> Result<(), SendError<T>> {
        assert!(
            s.case_id() == self.case_id,
            "passed a sender that wasn't selected"
        );
        self.completed = true;
        // SAFETY: the token comes from selecting a send on `s`'s channel: the case id names
        // the channel (its address, alive while `'a` borrows the selection's handles) and the
        // direction, and the assert above checked both.
        unsafe { s.as_chan().write(&mut self.token, msg) }.map_err(SendError)
    }

    /// Complete a chosen receive case.
    ///
    /// `r` may be the receiver given to the selection or any other receiver of the same
    /// channel (a clone), as in crossbeam-channel.
    ///
    /// # Panics
    /// If `r` is not a receiver of the chosen case's channel, or the chosen case is a send.
    pub fn recv<T>(mut self, r: &Receiver<T>) -> Result<T, RecvError> {
        assert!(
            r.case_id() == self.case_id,
            "passed a receiver that wasn't selected"
        );
        self.completed = true;
        // SAFETY: the token comes from selecting a receive on `r`'s channel (the assert above
        // checked channel and direction, see `send`).
        unsafe { r.as_chan().read(&mut self.token) }.map_err(|_| RecvError)
    }
}

impl Drop for SelectedOperation<'_> {
    fn drop(&mut self) {
        // The coroutine's own unwinding (`std::thread::panicking()` is per thread, and another
        // coroutine of this worker may be parked mid-unwind).
        if !self.completed && !crate::coroutine::panicking() {
            panic!("dropped `SelectedOperation` without completing the operation");
        }
    }
}

impl fmt::Debug for SelectedOperation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedOperation")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}
