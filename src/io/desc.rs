//! Poll descriptors: the per-fd state the netpoller and the waiting operations share (Go's
//! `pollDesc`), kept in a slab that is never freed.
//!
//! Invariants:
//! - a descriptor lives forever once allocated (`&'static`); closing an fd returns its
//!   descriptor to a free list and bumps its `seq`, so an epoll event or a reference that names
//!   the old `(index, seq)` is recognised as stale;
//! - each direction (read, write) has a [`Slot`]: an edge counter the poller bumps on every
//!   readiness edge (a deadline change, a `shutdown(Read)` and the fd's end bump it too), and
//!   a list of waiters. A waiter snapshots the counter *before* its deadline check and its
//!   syscall, publishes itself, re-checks the counter (SeqCst on both sides) and only then
//!   parks, so an edge or change that lands between its `EAGAIN` and its park is never lost;
//! - waiter records live in the descriptor (heap), never on a parked coroutine's stack.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::park::Unparker;

/// Read or write side of a descriptor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Dir {
    Read,
    Write,
}

impl Dir {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dir::Read => "read",
            Dir::Write => "write",
        }
    }
}

/// Something parked on a slot.
pub(crate) enum Waker {
    /// A coroutine: woken through its owner worker (`park::Unparker`).
    Coroutine(Unparker),
    /// A plain thread blocked in `poll(2)`: woken through its eventfd.
    Thread(Arc<super::thread_signal::ThreadSignal>),
}

impl Waker {
    fn wake(&self) {
        match self {
            Waker::Coroutine(u) => u.unpark(),
            Waker::Thread(t) => t.signal(),
        }
    }
}

struct Waiter {
    /// Identifies the waiting call (an address on its stack, compared, never dereferenced).
    token: usize,
    waker: Waker,
}

/// One direction of a descriptor.
pub(crate) struct Slot {
    edges: AtomicU64,
    /// `waiters.len()`, readable without the lock (the poller skips the lock when it is 0).
    waiting: AtomicU32,
    waiters: Mutex<Vec<Waiter>>,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            edges: AtomicU64::new(0),
            waiting: AtomicU32::new(0),
            waiters: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Waiter>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The edge counter, read before trying the syscall.
    #[inline]
    pub(crate) fn edges(&self) -> u64 {
        self.edges.load(Ordering::Acquire)
    }

    /// Publish a waiter, then tell whether an edge arrived since `seen` (then do not park:
    /// withdraw and retry the syscall).
    pub(crate) fn publish(&self, token: usize, waker: Waker, seen: u64) -> bool {
        let mut w = self.lock();
        if w.capacity() == 0 {
            // Nearly always the only waiter: one record (32 bytes with the allocator's
            // header) instead of `Vec`'s first growth to four (112), for every idle
            // connection's read side. A second waiter grows it as usual.
            w.reserve_exact(1);
        }
        w.push(Waiter { token, waker });
        self.waiting.store(w.len() as u32, Ordering::SeqCst);
        drop(w);
        std::sync::atomic::fence(Ordering::SeqCst);
        self.edges.load(Ordering::SeqCst) == seen
    }

    /// Remove the waiter `token` if it is still listed (a wake-up takes it off already).
    pub(crate) fn withdraw(&self, token: usize) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut w = self.lock();
        if let Some(i) = w.iter().position(|x| x.token == token) {
            w.swap_remove(i);
            self.waiting.store(w.len() as u32, Ordering::SeqCst);
        }
    }

    /// An edge: readiness, or a change a waiter must see (a deadline, a shutdown, the fd's
    /// end). Bump the counter and wake every waiter; returns how many were woken.
    ///
    /// The bump is what makes the change safe to race with a waiter, which reads the counter
    /// *first* and the deadline (or state) after it, before its syscall (`wait::op`): if its
    /// read already saw this bump, its Acquire makes the change (stored before the bump)
    /// visible and it acts on it; if not, either its re-check in [`publish`](Self::publish)
    /// sees the new count (it retries and then sees the change) or its publication comes
    /// first in the SeqCst order and this call finds it in `waiting` and wakes it. Waking
    /// alone, without the bump, lost a reader that had read the old deadline and published
    /// after this call looked at `waiting`.
    pub(crate) fn ready(&self) -> usize {
        self.edges.fetch_add(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return 0;
        }
        let mut w = self.lock();
        let n = w.len();
        // Waking never blocks nor takes this lock, so it is done under it (no allocation).
        for x in w.drain(..) {
            x.waker.wake();
        }
        self.waiting.store(0, Ordering::SeqCst);
        n
    }

    /// `(coroutine id)` of each waiting coroutine, for dumps.
    fn waiting_coroutines(&self, out: &mut Vec<u64>) {
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        for x in self.lock().iter() {
            if let Waker::Coroutine(u) = &x.waker {
                if let Some(id) = u.coroutine_id() {
                    out.push(id);
                }
            }
        }
    }
}

/// The base of the descriptors' time encoding.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// `None` as 0, an instant as nanoseconds after `base()` plus one (earlier ones as 1: past).
fn encode_instant(t: Option<Instant>) -> u64 {
    match t {
        None => 0,
        Some(t) => {
            let ns = t.saturating_duration_since(base()).as_nanos();
            (ns.min(u64::MAX as u128 - 2) as u64) + 1
        }
    }
}

fn decode_instant(v: u64) -> Option<Instant> {
    (v != 0).then(|| base() + Duration::from_nanos(v - 1))
}

/// The per-fd state. See the module docs.
pub(crate) struct Desc {
    index: u32,
    seq: AtomicU32,
    fd: AtomicI32,
    read: Slot,
    write: Slot,
    /// Absolute deadlines (`encode_instant`) and per-operation timeouts (ns, 0 = none).
    read_deadline: AtomicU64,
    write_deadline: AtomicU64,
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    shut_read: AtomicBool,
}

impl Desc {
    const fn new(index: u32) -> Self {
        Desc {
            index,
            seq: AtomicU32::new(0),
            fd: AtomicI32::new(-1),
            read: Slot::new(),
            write: Slot::new(),
            read_deadline: AtomicU64::new(0),
            write_deadline: AtomicU64::new(0),
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
            shut_read: AtomicBool::new(false),
        }
    }

    pub(crate) fn slot(&self, d: Dir) -> &Slot {
        match d {
            Dir::Read => &self.read,
            Dir::Write => &self.write,
        }
    }

    /// The epoll event data naming this descriptor in its current life.
    pub(crate) fn token(&self) -> u64 {
        (self.seq.load(Ordering::Acquire) as u64) << 32 | self.index as u64
    }

    pub(crate) fn fd(&self) -> i32 {
        self.fd.load(Ordering::Relaxed)
    }

    /// The absolute deadline of direction `d`.
    #[inline]
    pub(crate) fn deadline(&self, d: Dir) -> Option<Instant> {
        let v = match d {
            Dir::Read => self.read_deadline.load(Ordering::Acquire),
            Dir::Write => self.write_deadline.load(Ordering::Acquire),
        };
        decode_instant(v)
    }

    /// Set the absolute deadline of `d` and wake its waiters so they re-check it (an edge,
    /// see [`Slot::ready`]: a waiter between its deadline check and its park retries).
    pub(crate) fn set_deadline(&self, d: Dir, t: Option<Instant>) {
        let v = encode_instant(t);
        match d {
            Dir::Read => self.read_deadline.store(v, Ordering::Release),
            Dir::Write => self.write_deadline.store(v, Ordering::Release),
        }
        self.slot(d).ready();
    }

    /// The per-operation timeout of `d`.
    #[inline]
    pub(crate) fn timeout(&self, d: Dir) -> Option<Duration> {
        let v = match d {
            Dir::Read => self.read_timeout.load(Ordering::Relaxed),
            Dir::Write => self.write_timeout.load(Ordering::Relaxed),
        };
        (v != 0).then(|| Duration::from_nanos(v))
    }

    /// Set the per-operation timeout of `d` (std's semantics: `Some(ZERO)` is an error).
    pub(crate) fn set_timeout(&self, d: Dir, t: Option<Duration>) -> io::Result<()> {
        let v = match t {
            Some(t) if t.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ))
            }
            Some(t) => (t.as_nanos().min(u64::MAX as u128) as u64).max(1),
            None => 0,
        };
        match d {
            Dir::Read => self.read_timeout.store(v, Ordering::Relaxed),
            Dir::Write => self.write_timeout.store(v, Ordering::Relaxed),
        }
        Ok(())
    }

    /// Record a `shutdown(Read)` and wake the readers (they then get `Ok(0)`).
    pub(crate) fn shutdown_read(&self) {
        self.shut_read.store(true, Ordering::Release);
        self.read.ready();
    }

    pub(crate) fn is_shut_read(&self) -> bool {
        self.shut_read.load(Ordering::Acquire)
    }

    /// Reset for a new fd (the descriptor comes off the free list).
    fn reset(&self, fd: i32) {
        self.fd.store(fd, Ordering::Relaxed);
        for a in [
            &self.read_deadline,
            &self.write_deadline,
            &self.read_timeout,
            &self.write_timeout,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        self.shut_read.store(false, Ordering::Relaxed);
    }

    /// End this life: stale events and references are recognised from now on; any waiter
    /// (there should be none: closing needs ownership) is woken.
    fn retire(&self) {
        self.seq.fetch_add(1, Ordering::AcqRel);
        self.fd.store(-1, Ordering::Relaxed);
        self.read.ready();
        self.write.ready();
    }

    /// Coroutines waiting here, with what they wait for (for dumps).
    pub(crate) fn describe(&self, out: &mut Vec<(u64, String)>) {
        let fd = self.fd();
        for d in [Dir::Read, Dir::Write] {
            let mut ids = Vec::new();
            self.slot(d).waiting_coroutines(&mut ids);
            out.extend(
                ids.into_iter()
                    .map(|id| (id, format!("{}, fd {fd}", d.name()))),
            );
        }
    }
}

const CHUNK: usize = 256;
const CHUNKS: usize = 16 * 1024; // 4 Mi descriptors

#[allow(clippy::declare_interior_mutable_const)]
const NO_CHUNK: AtomicPtr<Desc> = AtomicPtr::new(std::ptr::null_mut());
static TABLE: [AtomicPtr<Desc>; CHUNKS] = [NO_CHUNK; CHUNKS];

struct FreeList {
    free: Vec<u32>,
    /// Descriptors handed out so far (`0..next` exist).
    next: u32,
}

static FREE: Mutex<FreeList> = Mutex::new(FreeList {
    free: Vec::new(),
    next: 0,
});

/// The descriptor at `index`, if it was ever allocated.
pub(crate) fn get(index: u32) -> Option<&'static Desc> {
    let c = TABLE.get(index as usize / CHUNK)?.load(Ordering::Acquire);
    if c.is_null() {
        return None;
    }
    // SAFETY: a non-null chunk pointer was published (release) after the chunk of CHUNK
    // descriptors was leaked; chunks are never freed or moved.
    Some(unsafe { &*c.add(index as usize % CHUNK) })
}

/// Every descriptor handed out so far (for dumps).
pub(crate) fn all() -> impl Iterator<Item = &'static Desc> {
    let n = FREE.lock().unwrap_or_else(|e| e.into_inner()).next;
    (0..n).filter_map(get)
}

/// Take a descriptor for `fd`.
pub(crate) fn alloc(fd: i32) -> io::Result<&'static Desc> {
    let mut f = FREE.lock().unwrap_or_else(|e| e.into_inner());
    let index = match f.free.pop() {
        Some(i) => i,
        None => {
            let i = f.next;
            let chunk = i as usize / CHUNK;
            if chunk >= CHUNKS {
                return Err(io::Error::other(
                    "goro: too many registered file descriptors",
                ));
            }
            if i as usize % CHUNK == 0 {
                let descs: Box<[Desc]> = (0..CHUNK as u32).map(|k| Desc::new(i + k)).collect();
                let p = Box::leak(descs).as_mut_ptr();
                TABLE[chunk].store(p, Ordering::Release);
            }
            f.next = i + 1;
            i
        }
    };
    drop(f);
    let d = get(index).expect("allocated chunk");
    d.reset(fd);
    Ok(d)
}

/// Return a descriptor whose fd is being closed.
pub(crate) fn free(d: &'static Desc) {
    d.retire();
    FREE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .free
        .push(d.index);
}
