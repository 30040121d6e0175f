//! Where stacks come from and go back to: slabs, guard installation, the per-thread cache
//! and the global pool.
//!
//! Invariants:
//! * `GLOBAL` owns every slab; slabs are never unmapped. A class's `[bump, bump_end)` is
//!   the not-yet-carved tail of its newest slab.
//! * Every address in a free list (local or global) is the `bottom` of a stack of that
//!   list's size class, with its guard installed, owned by nobody.
//! * The thread cache is touched only by its own thread, never from a signal handler,
//!   and no callback runs while it is borrowed.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use super::{guard_size, shrink};

/// `madvise` advice that installs guard markers (Linux 6.13+); not yet in every `libc`.
const MADV_GUARD_INSTALL: libc::c_int = 102;
/// `madvise` advice that removes guard markers (Linux 6.13+).
pub(super) const MADV_GUARD_REMOVE: libc::c_int = 103;
/// Address space one page-table page maps (x86_64, 4 KiB pages): the unit in which
/// `CONFIG_PT_RECLAIM` gives page tables back.
const SPAN: usize = 2 << 20;

/// Stacks a thread cache holds per size class before it spills a batch.
const LOCAL_CAP: usize = 32;
/// Stacks moved between a thread cache and the global pool at once.
const BATCH: usize = 16;
/// Size classes a thread cache keeps (others go straight to the global pool).
const LOCAL_CLASSES: usize = 4;
/// Stacks in a class's first slab; each further slab doubles, up to [`MAX_SLAB_BYTES`].
const FIRST_SLAB_STACKS: usize = 16;
/// Address space of the largest slab: 4 GiB holds 3855 stacks of 1 MiB (+ guard), so a
/// million of them take ~270 mappings.
const MAX_SLAB_BYTES: usize = 4 << 30;

/// A free stack.
#[derive(Clone, Copy, Debug)]
struct Free {
    bottom: usize,
    /// Known to have nothing committed below its top `KEEP` bytes.
    trimmed: bool,
}

#[derive(Debug)]
struct Class {
    size: usize,
    /// Guard + size: the distance between neighbouring stacks of this class, rounded up to
    /// whole [`SPAN`]s for a class laid out in span slots ([`slot_len`]).
    stride: usize,
    /// Stacks sit in span slots (slabs and stacks' guards [`SPAN`]-aligned).
    slotted: bool,
    free: Vec<Free>,
    bump: usize,
    bump_end: usize,
    next_slab_stacks: usize,
}

#[derive(Debug)]
struct Global {
    classes: Vec<Class>,
    /// Mappings this module has created (slabs, plus two per `mprotect` guard).
    maps: usize,
    /// Address space reserved in slabs, in bytes.
    reserved: usize,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    classes: Vec::new(),
    maps: 0,
    reserved: 0,
});

fn global() -> MutexGuard<'static, Global> {
    // Nothing in this module panics while holding the lock with the data half-updated.
    crate::util::lock(&GLOBAL)
}

impl Global {
    fn class(&mut self, size: usize) -> usize {
        if let Some(i) = self.classes.iter().position(|c| c.size == size) {
            return i;
        }
        let slot = slot_len(size);
        self.classes.push(Class {
            size,
            stride: if slot != 0 { slot } else { size + guard_size() },
            slotted: slot != 0,
            free: Vec::new(),
            bump: 0,
            bump_end: 0,
            next_slab_stacks: FIRST_SLAB_STACKS,
        });
        self.classes.len() - 1
    }

    /// A never-used stack of class `ci`, guard installed.
    fn carve(&mut self, ci: usize) -> io::Result<usize> {
        if self.classes[ci].bump == self.classes[ci].bump_end {
            self.new_slab(ci)?;
        }
        let guard_lo = self.classes[ci].bump;
        install_guard(guard_lo, &mut self.maps)?;
        let c = &mut self.classes[ci];
        c.bump += c.stride;
        Ok(guard_lo + guard_size())
    }

    fn new_slab(&mut self, ci: usize) -> io::Result<()> {
        let stride = self.classes[ci].stride;
        let mut stacks = self.classes[ci]
            .next_slab_stacks
            .min(MAX_SLAB_BYTES / stride)
            .max(1);
        if mode() == Mode::Mprotect && self.maps + 1 > map_budget() {
            return Err(budget_error());
        }
        // Under an address-space limit (RLIMIT_AS), stacks must never take the heap's room:
        // a failed `malloc` aborts the process, a failed stack is only an error.
        if let Some(room) = address_space_room() {
            stacks = stacks.min(room / stride);
            if stacks == 0 {
                return Err(address_space_error(stride));
            }
        }
        // Span slots start on a span boundary: map one span more and skip to it.
        let slack = if self.classes[ci].slotted { SPAN } else { 0 };
        loop {
            let len = stacks * stride;
            // SAFETY: a fresh anonymous private mapping at an address of the kernel's
            // choosing; it overlaps nothing of ours.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len + slack,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                let c = &mut self.classes[ci];
                c.bump = (p as usize).next_multiple_of(slack.max(1));
                c.bump_end = c.bump + len;
                c.next_slab_stacks = (stacks * 2).min(MAX_SLAB_BYTES / stride).max(1);
                self.maps += 1;
                self.reserved += len + slack;
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENOMEM) && stacks > 1 {
                stacks /= 2;
                continue;
            }
            return Err(io::Error::new(
                err.kind(),
                format!(
                    "goro: cannot reserve address space for coroutine stacks ({len} bytes more, \
                     {} reserved so far): {err}; use smaller stacks (GORO_STACK_SIZE, \
                     Builder::stack_size) or fewer coroutines",
                    self.reserved
                ),
            ));
        }
    }
}

/// Address space kept free for everything but stacks (the heap, thread stacks, libraries)
/// under an `RLIMIT_AS` of `limit` bytes: an eighth of it, at least 256 MiB, at most 2 GiB.
fn heap_headroom(limit: usize) -> usize {
    (limit / 8).clamp(256 << 20, 2 << 30)
}

/// The `RLIMIT_AS` soft limit in bytes, if there is one.
fn address_space_limit() -> Option<usize> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX))
}

/// The process's mapped address space now (`VmSize`), in bytes.
fn address_space_used() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().next()?.parse().ok()?;
    Some(pages.saturating_mul(super::page_size()))
}

/// How many more bytes of slabs may be mapped without eating into [`heap_headroom`]; `None`
/// when there is no address-space limit. Read afresh for every new slab (slabs are few: they
/// double in size), so what the rest of the process mapped meanwhile counts.
fn address_space_room() -> Option<usize> {
    let limit = address_space_limit()?;
    // Where VmSize cannot be read, assume the worst for everything but our own slabs.
    let used = address_space_used().unwrap_or(limit);
    Some(
        limit
            .saturating_sub(used)
            .saturating_sub(heap_headroom(limit)),
    )
}

fn address_space_error(stride: usize) -> io::Error {
    let limit = address_space_limit().unwrap_or(usize::MAX);
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "goro: out of address space for coroutine stacks: the address-space limit \
             (RLIMIT_AS, ulimit -v) is {limit} bytes, {} are mapped, and goro keeps {} free for \
             the heap, so another stack of {stride} bytes does not fit; raise the limit, use \
             smaller stacks (GORO_STACK_SIZE, Builder::stack_size) or run fewer coroutines at once",
            address_space_used().map_or_else(|| "?".to_string(), |u| u.to_string()),
            heap_headroom(limit),
        ),
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// Not decided yet: try `MADV_GUARD_INSTALL`, fall back on `EINVAL`.
    Auto,
    /// Guards are `MADV_GUARD_INSTALL` markers (no mapping split).
    Madvise,
    /// Guards are `mprotect(PROT_NONE)` (two mappings per stack, budgeted).
    Mprotect,
}

static MODE: AtomicU8 = AtomicU8::new(u8::MAX);

/// The guard mode in use (decided at the first stack; `GORO_GUARD=mprotect` forces the
/// fallback).
pub(crate) fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        0 => Mode::Auto,
        1 => Mode::Madvise,
        2 => Mode::Mprotect,
        _ => {
            let m = match std::env::var("GORO_GUARD").as_deref() {
                Err(_) | Ok("" | "auto" | "madvise") => Mode::Auto,
                Ok("mprotect") => Mode::Mprotect,
                Ok(other) => {
                    eprintln!(
                        "goro: ignoring GORO_GUARD={other:?} (expected \"mprotect\" or \"auto\")"
                    );
                    Mode::Auto
                }
            };
            set_mode(m);
            m
        }
    }
}

fn set_mode(m: Mode) {
    MODE.store(m as u8, Ordering::Relaxed);
}

/// How many mappings the `mprotect` fallback may create: half of `vm.max_map_count`,
/// leaving the other half to the rest of the process (libraries, thread stacks, malloc).
fn map_budget() -> usize {
    max_map_count() / 2
}

fn max_map_count() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(65530)
    })
}

fn budget_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "goro: out of memory mappings for coroutine stack guards: this kernel lacks \
             MADV_GUARD_INSTALL (Linux 6.13+) or GORO_GUARD=mprotect is set, so every stack \
             costs two mappings, and goro's budget of {} (half of vm.max_map_count = {}) is \
             used up; raise the limit (sysctl vm.max_map_count=...) or run fewer coroutines \
             at once",
            map_budget(),
            max_map_count()
        ),
    )
}

/// The slot length of a stack of `size` usable bytes laid out in span slots, or 0 when its
/// class is packed. A stack whose guard and usable bytes take more than half a [`SPAN`] (the
/// default 1 MiB stack does) gets whole spans of its own, its guard at the bottom, when idle
/// stacks may be compacted: a compaction can then take its guard markers away and drop the
/// whole slot in one `MADV_DONTNEED`, which is what makes the kernel free the slot's
/// page-table pages (`CONFIG_PT_RECLAIM` frees a page-table page only when one call empties
/// all of the 2 MiB it maps; a guard marker is an entry that keeps it). The price: such a
/// stack pins a whole page-table page (4 KiB) while in use, where two packed ones share one,
/// and twice the address space. Smaller stacks stay packed, several to a page-table page.
/// A pure function of `size` for the life of the process (every input is decided once).
pub(super) fn slot_len(size: usize) -> usize {
    if super::compact::after_ms().is_none()
        || super::page_size() != 4096
        || size + guard_size() <= SPAN / 2
    {
        return 0;
    }
    (size + guard_size()).next_multiple_of(SPAN)
}

/// Whether guards are `MADV_GUARD_INSTALL` markers (which a slot release removes and a
/// restore puts back); `mprotect` guards are never touched after carving.
pub(super) fn guards_are_markers() -> bool {
    mode() == Mode::Madvise
}

/// Put back guard markers that a slot release took away.
///
/// # Safety
/// `[lo, lo + guard_size())` is such a guard, and nothing lives in it (it held no pages
/// since the markers went, as nobody ran on the stack; installing zaps whatever is there).
pub(super) unsafe fn reinstall_guard(lo: usize) -> io::Result<()> {
    // SAFETY: the caller's guard range (contract).
    unsafe { madvise_retrying(lo, guard_size(), MADV_GUARD_INSTALL) }
}

/// `madvise(advice)` on `[lo, lo + len)`, retried on `EINTR`/`EAGAIN` (the kernel's answer
/// to a transient race with a page fault or a fork).
///
/// # Safety
/// The range is ours and `advice` does to it only what its owner allows (dropping pages
/// nobody uses, adding or removing guard markers where nothing lives).
pub(super) unsafe fn madvise_retrying(
    lo: usize,
    len: usize,
    advice: libc::c_int,
) -> io::Result<()> {
    let mut tries = 0;
    loop {
        // SAFETY: the caller's range and advice (contract).
        let rc = unsafe { libc::madvise(lo as *mut libc::c_void, len, advice) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR | libc::EAGAIN) if tries < 100 => tries += 1,
            _ => return Err(err),
        }
    }
}

/// Install the guard at `[lo, lo + guard_size())`; `maps` counts mappings we created.
fn install_guard(lo: usize, maps: &mut usize) -> io::Result<()> {
    let len = guard_size();
    let mut m = mode();
    if m != Mode::Mprotect {
        // SAFETY: `[lo, lo + len)` is an uncarved part of one of our slabs: nothing lives
        // there. Guard markers make accesses fault; they do not split the mapping.
        match unsafe { madvise_retrying(lo, len, MADV_GUARD_INSTALL) } {
            Ok(()) => {
                if m == Mode::Auto {
                    set_mode(Mode::Madvise);
                }
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && m == Mode::Auto => {
                set_mode(Mode::Mprotect);
                m = Mode::Mprotect;
            }
            Err(err) => {
                return Err(io::Error::new(
                    err.kind(),
                    format!("goro: cannot install a coroutine stack guard: {err}"),
                ))
            }
        }
    }
    debug_assert_eq!(m, Mode::Mprotect);
    if *maps + 2 > map_budget() {
        return Err(budget_error());
    }
    // SAFETY: as above; PROT_NONE on part of our own mapping.
    let rc = unsafe { libc::mprotect(lo as *mut libc::c_void, len, libc::PROT_NONE) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!(
                "goro: cannot install a coroutine stack guard with mprotect: {err}; if the \
                 limit is vm.max_map_count (now {}), raise it or run fewer coroutines",
                max_map_count()
            ),
        ));
    }
    *maps += 2;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Thread cache

struct LocalClass {
    /// 0: slot unused.
    size: usize,
    stacks: Vec<Free>,
}

struct Local {
    classes: [LocalClass; LOCAL_CLASSES],
}

impl Local {
    fn slot(&mut self, size: usize) -> Option<&mut LocalClass> {
        let i = match self.classes.iter().position(|c| c.size == size) {
            Some(i) => i,
            None => {
                let i = self.classes.iter().position(|c| c.size == 0)?;
                self.classes[i].size = size;
                i
            }
        };
        Some(&mut self.classes[i])
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let mut g = global();
        for c in &mut self.classes {
            if !c.stacks.is_empty() {
                let ci = g.class(c.size);
                g.classes[ci].free.append(&mut c.stacks);
            }
        }
    }
}

const EMPTY: LocalClass = LocalClass {
    size: 0,
    stacks: Vec::new(),
};

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local { classes: [EMPTY; LOCAL_CLASSES] }) };
}

/// The bottom of a free stack of `size` usable bytes, guard installed.
pub(super) fn acquire(size: usize) -> io::Result<usize> {
    let fast = LOCAL.try_with(|l| {
        let mut l = l.borrow_mut();
        let slot = l.slot(size)?;
        if let Some(f) = slot.stacks.pop() {
            return Some(Ok(f.bottom));
        }
        // Refill a batch from the global pool, or carve a fresh stack.
        let mut g = global();
        let ci = g.class(size);
        let free = &mut g.classes[ci].free;
        if let Some(f) = free.pop() {
            let take = free.len().min(BATCH - 1);
            let from = free.len() - take;
            slot.stacks.extend(free.drain(from..));
            return Some(Ok(f.bottom));
        }
        Some(g.carve(ci))
    });
    match fast {
        Ok(Some(r)) => r,
        // No cache slot for this size, or the thread is exiting: use the global pool.
        _ => {
            let mut g = global();
            let ci = g.class(size);
            match g.classes[ci].free.pop() {
                Some(f) => Ok(f.bottom),
                None => g.carve(ci),
            }
        }
    }
}

/// Take back the stack at `bottom` of `size` usable bytes. `trimmed`: nothing is
/// committed below its top `KEEP` bytes (it was just shrunk).
pub(super) fn release(bottom: usize, size: usize, trimmed: bool) {
    let f = Free { bottom, trimmed };
    let done = LOCAL.try_with(|l| {
        let mut l = l.borrow_mut();
        let Some(slot) = l.slot(size) else {
            return false;
        };
        if slot.stacks.len() >= LOCAL_CAP {
            // Spill the coldest batch (the bottom of the LIFO).
            let mut g = global();
            let ci = g.class(size);
            g.classes[ci].free.extend(slot.stacks.drain(..BATCH));
        }
        slot.stacks.push(f);
        true
    });
    if done != Ok(true) {
        let mut g = global();
        let ci = g.class(size);
        g.classes[ci].free.push(f);
    }
}

/// Release the committed pages below the top `KEEP` bytes of every stack in the global
/// pool not known to be trimmed: one `madvise` per such stack. Meant for a background
/// thread (the scheduler's monitor) once in a while; never needed for correctness. Stacks
/// in thread caches are left alone (there are at most `LOCAL_CAP` per class and thread,
/// and they are about to be reused). Returns how many stacks it trimmed.
pub(crate) fn trim_pool() -> usize {
    let mut trimmed = 0;
    loop {
        // Take a batch out of the pool so nobody can get one while it is being trimmed.
        let mut taken: Vec<Free> = Vec::new();
        let mut size = 0;
        {
            let mut g = global();
            for c in &mut g.classes {
                let mut i = 0;
                while i < c.free.len() && taken.len() < 256 {
                    if c.free[i].trimmed {
                        i += 1;
                    } else {
                        taken.push(c.free.swap_remove(i));
                    }
                }
                if !taken.is_empty() {
                    size = c.size;
                    break;
                }
            }
        }
        if taken.is_empty() {
            return trimmed;
        }
        for f in &mut taken {
            shrink(f.bottom, size);
            f.trimmed = true;
        }
        trimmed += taken.len();
        let mut g = global();
        let ci = g.class(size);
        g.classes[ci].free.extend(taken);
    }
}

/// Counters for tests and diagnostics.
#[derive(Clone, Copy, Debug)]
#[cfg(test)]
pub(crate) struct Stats {
    /// Address space reserved, bytes.
    pub(crate) reserved: usize,
    /// Guard mode in use.
    pub(crate) mode: Mode,
}

#[cfg(test)]
pub(crate) fn stats() -> Stats {
    let g = global();
    Stats {
        reserved: g.reserved,
        mode: mode(),
    }
}
