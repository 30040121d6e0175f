//! Thread census for `run`'s deadlock detector: which of the process's threads are goro's own.
//!
//! A coroutine parked on a goro primitive can be woken by any thread that holds the other end
//! (a `Sender`, a `sync::Mutex` guard, a `WaitGroup`, a `CancelFunc`), and goro cannot know
//! what a thread it did not start will do. So the detector's rule is: while the process has a
//! thread that is neither one of the runtime's own (workers, the monitor, the timer thread,
//! the blocking pool, the signal thread) nor a thread waiting in `run`, no deadlock is
//! reported. The process's thread count comes from the kernel (`/proc/self/status`); where it
//! cannot be read, every thread counts as foreign and detection stays off. The file is opened
//! once, when `run` starts, and re-read in place (`pread` at offset 0 makes procfs regenerate
//! it): the detector never takes a descriptor while the program runs, so it cannot turn a
//! program's `accept` or `open` into `EMFILE` at a full descriptor table.
//!
//! Invariant: the own count never exceeds the own threads the kernel lists. A thread counts
//! itself only once it runs (it is listed from its creation) and uncounts itself before it
//! ends (it stays listed until it is gone), and [`foreign_threads`] takes the smaller of two
//! readings of the count around its kernel reading. An error can only make goro see a foreign
//! thread too many, which turns detection off: a missed report, never a false one.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// `/proc/self/status`, opened once by [`open_status`] (`None`: it could not be opened).
static STATUS: OnceLock<Option<File>> = OnceLock::new();

/// Threads counted as the runtime's own right now (runtime threads and `run`'s waiting callers).
static OWN: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether the calling thread is counted in `OWN` (never twice).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
    /// A runtime thread's guard, dropped with the thread's locals (it is still listed then).
    static OWN_GUARD: RefCell<Option<Counted>> = const { RefCell::new(None) };
}

/// Keeps the calling thread counted as goro's own until dropped.
pub(crate) struct Counted(());

impl Drop for Counted {
    fn drop(&mut self) {
        let _ = COUNTED.try_with(|c| c.set(false));
        OWN.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Count the calling thread as goro's own, unless it already is.
fn count_me() -> Option<Counted> {
    let fresh = COUNTED.try_with(|c| !c.replace(true)).unwrap_or(false);
    fresh.then(|| {
        OWN.fetch_add(1, Ordering::SeqCst);
        Counted(())
    })
}

/// Mark the calling thread as one of the runtime's own for the rest of its life. Call it first
/// thing in every thread goro starts.
pub(crate) fn runtime_thread() {
    if let Some(g) = count_me() {
        let _ = OWN_GUARD.try_with(|s| *s.borrow_mut() = Some(g));
    }
}

/// Count the calling thread while it waits in `run` (it can wake no coroutine then). `None`
/// when it is counted already (a runtime thread) or is a coroutine's worker.
pub(crate) fn run_caller() -> Option<Counted> {
    count_me()
}

/// Whether the process may have a thread that is not goro's own (see the module docs).
pub(crate) fn foreign_threads() -> bool {
    let before = OWN.load(Ordering::SeqCst);
    let Some(total) = process_threads() else {
        return true;
    };
    let after = OWN.load(Ordering::SeqCst);
    total > before.min(after)
}

/// Open `/proc/self/status` for the detector, once per process. `run` calls it before the
/// main coroutine starts, so later readings take no descriptor.
pub(crate) fn open_status() {
    STATUS.get_or_init(|| File::open("/proc/self/status").ok());
}

/// The number of threads of this process, from the kernel.
fn process_threads() -> Option<usize> {
    let file = STATUS.get()?.as_ref()?;
    // Read the whole file from offset 0: procfs builds it afresh for a read there.
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let status = std::str::from_utf8(&buf[..len]).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}
