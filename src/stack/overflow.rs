//! Stack overflow detection for coroutines.
//!
//! A process-wide SIGSEGV/SIGBUS handler (run on the thread's `sigaltstack`, since the
//! faulting stack is exhausted) checks whether the fault address lies in the guard of the
//! coroutine running on the faulting thread. If so it writes
//!
//! ```text
//! fatal: goro coroutine 42 'name' overflowed its stack of 1048576 bytes
//! ```
//!
//! to stderr with plain `write(2)` calls (async-signal-safe: no allocation, no locks) and
//! aborts. Every other fault goes to the handler that was installed before ours (Rust's
//! std installs one that reports overflows of thread stacks); if there was none, the
//! default action is restored and the handler returns, so the fault repeats and kills the
//! process as it would have without us.
//!
//! Invariants:
//! * The worker stores a pointer to a [`RunningInfo`] that outlives the resume in a
//!   const-initialised, destructor-free thread-local before each resume and clears it
//!   after; that is the only thing the handler reads besides the saved old actions.
//! * The old actions are written once, before our handler is installed, and only read
//!   afterwards.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Once;

/// What the overflow handler needs to know about the coroutine running on a thread.
/// The worker keeps it alive (and unchanged) while the pointer is published.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RunningInfo {
    /// Coroutine id.
    pub id: u64,
    /// UTF-8 name (may be empty: `name_len == 0`); must stay valid while published.
    pub name_ptr: *const u8,
    /// Length of the name in bytes.
    pub name_len: usize,
    /// Lowest usable byte of its stack ([`super::Stack::bottom`]).
    pub stack_bottom: usize,
    /// One past the highest usable byte ([`super::Stack::top`]).
    pub stack_top: usize,
    /// Guard bytes below `stack_bottom` ([`super::Stack::guard_size`]).
    pub guard_size: usize,
}

impl RunningInfo {
    /// Describe coroutine `id` named `name` running on `stack`. `name` must outlive every
    /// period in which the result is published with [`set_running`].
    pub(crate) fn new(id: u64, name: &str, stack: &super::Stack) -> RunningInfo {
        RunningInfo {
            id,
            name_ptr: name.as_ptr(),
            name_len: name.len(),
            stack_bottom: stack.bottom(),
            stack_top: stack.top(),
            guard_size: stack.guard_size(),
        }
    }
}

thread_local! {
    // `const` and no destructor: a plain `#[thread_local]` static underneath, which a
    // signal handler may read (no lazy initialisation, no registration).
    static RUNNING: Cell<*const RunningInfo> = const { Cell::new(ptr::null()) };
}

/// Publish the coroutine about to run on this thread (`null` when none does). Call it on
/// the worker's own stack right before each resume, and with `null` right after.
#[inline(never)]
pub(crate) fn set_running(info: *const RunningInfo) {
    RUNNING.set(info);
}

/// The previously installed actions for SIGSEGV and SIGBUS.
struct OldActions(UnsafeCell<MaybeUninit<[libc::sigaction; 2]>>);

// SAFETY: written exactly once inside `INSTALL.call_once` before our handler can run, and
// only read afterwards (by the handler, on any thread).
unsafe impl Sync for OldActions {}

static OLD: OldActions = OldActions(UnsafeCell::new(MaybeUninit::uninit()));
static INSTALL: Once = Once::new();

const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Install the handler for SIGSEGV and SIGBUS (idempotent, process-wide).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: plain sigaction calls with properly initialised structs; `OLD` is not
        // yet read by anyone (our handler is installed only after it is filled).
        unsafe {
            let old = &mut *(*OLD.0.get()).as_mut_ptr();
            for (i, &sig) in SIGNALS.iter().enumerate() {
                libc::sigaction(sig, ptr::null(), &mut old[i]);
            }
            for &sig in &SIGNALS {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = handler as *const () as libc::sighandler_t;
                act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut act.sa_mask);
                libc::sigaction(sig, &act, ptr::null_mut());
            }
        }
    });
}

/// Size of the alternate signal stack a worker needs.
fn altstack_size() -> usize {
    // SAFETY: getauxval has no preconditions; 0 means unknown.
    let min = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    libc::SIGSTKSZ.max(min + 4096)
}

struct AltStack {
    base: *mut libc::c_void,
    len: usize,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        if self.base.is_null() {
            return;
        }
        // SAFETY: we mapped `base..base+len`; we disable the alternate stack first if it
        // is still ours, so no signal can be delivered onto the memory we unmap.
        unsafe {
            let mut cur: libc::stack_t = std::mem::zeroed();
            libc::sigaltstack(ptr::null(), &mut cur);
            let page = super::page_size();
            if cur.ss_sp as usize == self.base as usize + page {
                if cur.ss_flags & libc::SS_ONSTACK != 0 {
                    return; // cannot happen in a destructor; leak rather than pull the rug
                }
                let off = libc::stack_t {
                    ss_sp: ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                libc::sigaltstack(&off, ptr::null_mut());
            }
            libc::munmap(self.base, self.len);
        }
    }
}

thread_local! {
    /// The alternate stack this module installed on this thread (unmapped at thread exit).
    static OWN_ALTSTACK: Cell<Option<AltStack>> = const { Cell::new(None) };
}

/// Make sure this thread has an alternate signal stack big enough for the handler (std's
/// threads and main thread usually have one already). Call on every worker thread.
pub(crate) fn ensure_altstack() {
    let need = altstack_size();
    // SAFETY: sigaltstack with a null new stack only reads the current setting.
    let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::sigaltstack(ptr::null(), &mut cur) };
    if cur.ss_flags & libc::SS_ONSTACK != 0
        || (cur.ss_flags & libc::SS_DISABLE == 0 && cur.ss_size >= need)
    {
        return;
    }
    let page = super::page_size();
    let len = need.div_ceil(page) * page + page;
    // SAFETY: a fresh private anonymous mapping; the lowest page becomes a guard.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return; // no worse than before: overflows are still fatal, just less well reported
    }
    let st = libc::stack_t {
        ss_sp: (base as usize + page) as *mut libc::c_void,
        ss_flags: 0,
        ss_size: len - page,
    };
    // SAFETY: `base` is ours; the guard page and the stack lie inside the mapping, which
    // stays mapped until `AltStack::drop` has disabled it again.
    unsafe {
        libc::mprotect(base, page, libc::PROT_NONE);
        libc::sigaltstack(&st, ptr::null_mut());
    }
    let own = AltStack { base, len };
    // A previous one of ours (too small, which cannot happen) is dropped here.
    let _ = OWN_ALTSTACK.try_with(|c| c.set(Some(own)));
}

/// The SIGSEGV/SIGBUS handler.
extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let running = RUNNING.try_with(|r| r.get()).unwrap_or(ptr::null());
    if !running.is_null() {
        // SAFETY: the worker keeps the published RunningInfo alive while it is published.
        let ri = unsafe { &*running };
        let guard_lo = ri.stack_bottom.saturating_sub(ri.guard_size);
        if addr >= guard_lo && addr < ri.stack_bottom {
            report(ri);
        }
    }
    // SAFETY: forwarding the arguments the kernel gave us.
    unsafe { chain(sig, info, uctx) }
}

/// Write the overflow message and abort. Async-signal-safe.
fn report(ri: &RunningInfo) -> ! {
    let mut num = [0u8; 20];
    write_all(b"\nfatal: goro coroutine ");
    write_all(fmt_u64(ri.id, &mut num));
    if ri.name_len > 0 && !ri.name_ptr.is_null() {
        // SAFETY: the publisher guarantees the name outlives the publication.
        let name = unsafe { std::slice::from_raw_parts(ri.name_ptr, ri.name_len) };
        write_all(b" '");
        write_all(name);
        write_all(b"'");
    }
    write_all(b" overflowed its stack of ");
    write_all(fmt_u64(
        ri.stack_top.saturating_sub(ri.stack_bottom) as u64,
        &mut num,
    ));
    write_all(
        b" bytes\n(give it a bigger stack with Builder::stack_size, or all coroutines with \
          GORO_STACK_SIZE)\n",
    );
    // SAFETY: abort is async-signal-safe.
    unsafe { libc::abort() }
}

fn write_all(mut b: &[u8]) {
    while !b.is_empty() {
        // SAFETY: writing from a valid buffer to fd 2.
        let n = unsafe { libc::write(2, b.as_ptr().cast(), b.len()) };
        if n <= 0 {
            // EINTR: retry; anything else: give up on the message, we abort anyway.
            // SAFETY: reading errno of this thread.
            if n < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            return;
        }
        b = &b[n as usize..];
    }
}

fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Hand a fault that is not a coroutine overflow to whoever handled it before us.
///
/// # Safety
///
/// Only from the signal handler, with the kernel's arguments.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    let i = if sig == libc::SIGSEGV { 0 } else { 1 };
    // SAFETY: `OLD` was filled before our handler was installed (see `install`).
    let old = unsafe { &(*(*OLD.0.get()).as_ptr())[i] };
    let h = old.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction runs again
        // and the fault now terminates the process (with a core dump) as usual.
        // SAFETY: sigaction is async-signal-safe; the struct is fully initialised.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut dfl.sa_mask);
            libc::sigaction(sig, &dfl, ptr::null_mut());
        }
    } else if old.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous owner registered this as a three-argument handler.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, uctx);
    } else {
        // SAFETY: the previous owner registered this as a one-argument handler.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}
