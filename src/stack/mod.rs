//! Coroutine stack memory: lazily committed, guarded, pooled, shrunk when it grew.
//!
//! # Layout
//!
//! Stacks are carved out of large `mmap(MAP_NORESERVE)` *slabs*, one size class per slab,
//! stacks of a class side by side, each with a guard region directly below its lowest
//! usable byte:
//!
//! ```text
//!   slab: | guard | stack 0 ............ | guard | stack 1 ............ | guard | ...
//!                 ^bottom           top^         ^bottom           top^
//! ```
//!
//! While idle stacks may be compacted, a class whose guard + stack exceed 1 MiB (the
//! default 1 MiB stack) is laid out in *span slots* instead: each stack gets whole 2 MiB
//! page-table spans of its own, 2 MiB-aligned, guard at the slot's bottom and the rest of
//! the slot above its top never used, so that a compaction can give back the slot's
//! page tables too (`pool::slot_len`, `compact`).
//!
//! Nothing is committed up front: the kernel commits a page when it is first touched, so a
//! parked shallow coroutine costs about one page of RSS however large its reserve is. A
//! stack is never returned to the kernel as address space (slabs are never unmapped, so no
//! live stack can lose its memory); free stacks are kept in pools and reused.
//!
//! # Guards
//!
//! Linux 6.13+ has `madvise(MADV_GUARD_INSTALL)`, which turns a range into guard pages
//! (any access faults) *without splitting the mapping*: a million guarded stacks cost a few
//! hundred mappings. Where the kernel rejects it (`EINVAL`), or when `GORO_GUARD=mprotect`
//! forces it (for testing), guards are made with `mprotect(PROT_NONE)`, which splits the
//! slab: two mappings per stack. Those are counted against a budget of half of
//! `/proc/sys/vm/max_map_count` (the other half stays for the rest of the process); past it
//! [`allocate`] fails with an error naming the limit and the remedy. The mode is chosen
//! once per process, at the first stack. See [`overflow`] for what happens on a guard hit.
//!
//! # Free stacks
//!
//! A dropped [`Stack`] goes to a small per-thread LIFO cache (no lock, no syscall), which
//! spills into a global per-size-class pool (a `Mutex`) in batches and refills from it in
//! batches. Spawning and finishing a shallow coroutine therefore costs no syscall.
//!
//! # Address-space limit
//!
//! Slabs are `MAP_NORESERVE`, but they still count against `RLIMIT_AS` (`ulimit -v`). Under
//! such a limit a new slab is sized so that an eighth of the limit (at least 256 MiB, at most
//! 2 GiB) stays unmapped for the heap, thread stacks and libraries; when not even one stack
//! fits, [`allocate`] fails with an error naming the limit. Running out of stacks is an
//! error for the spawner; running out of heap would abort the whole process.
//!
//! # Shrinking
//!
//! A stack that was used deeper than its top [`KEEP`] bytes gets `madvise(MADV_DONTNEED)`
//! on the part below those top bytes when it is dropped, so pooled stacks cost about
//! `KEEP` of RSS at most. Knowing whether it grew must not cost a syscall per shallow
//! stack, so it is based on a low-water mark: [`Stack::note_sp`] records the lowest stack
//! pointer the owner saw (the scheduler reports `Context::suspended_sp()` after each
//! `resume` that suspended: the depth of every suspension point). Depth reached *between* suspension
//! points and unwound before the next one is not seen; such a stack keeps its pages while
//! pooled (they are reused as-is by the next coroutine); [`trim_pool`] releases them in
//! the background. This is a memory policy only: correctness never depends on it.
//!
//! # Costs, honestly
//!
//! Besides the touched pages (RSS), every 2 MiB of address space in which anything is
//! touched (or a guard is installed) pins a 4 KiB page-table page (`VmPTE` in
//! `/proc/self/status`). With 1 MiB stacks side by side that is about 2 KiB of page tables
//! per stack, on top of the ~4 KiB page the stack itself touches. Smaller stacks (via
//! `GORO_STACK_SIZE` or `Builder::stack_size`) pack more stacks per page-table page.
//! Installing a guard populates the page table of its 2 MiB region at once, so these
//! page tables are paid when a stack is first carved, not when it is first touched.
//! Measured (Linux 6.18, `million_default_stacks_report`, packed): one million 1 MiB stacks
//! with their top page touched took 2 mappings (adjacent slabs merge), 2.13 KiB of
//! `VmPTE` and 4.02 KiB of RSS per stack; carving a fresh stack costs one `madvise`
//! (3 us at 100k stacks, 7 us at 1M in this VM, mostly page-table population), taking
//! a pooled one costs no syscall. In span slots a stack in use pins a whole page-table page
//! (4 KiB, `examples/million`: 3.9 KiB of `VmPTE` per parked coroutine before compaction)
//! and a compacted one none (10 B: the upper levels).
//!
//! # Invariants
//!
//! * Every `Stack` owns `[bottom, bottom + size)` exclusively until dropped (and, in a span
//!   slot, the whole slot); a guard of [`guard_size`] bytes is installed at
//!   `[bottom - guard_size, bottom)` whenever anything can run on the stack or it is pooled
//!   (only a compacted stack is without it, `Stack::unguard_for_release`).
//! * `bottom` and `size` are page multiples, so `top` is page- (hence 16-) aligned.
//! * Slab memory is never unmapped, so a pooled address stays valid forever.

// Until the scheduler calls into this module, parts of it are used only by tests and
// benches. TODO(lead): remove once `sched` uses the interface.

pub(crate) mod compact;
pub(crate) mod overflow;
mod pack;
mod pool;
pub(crate) mod release;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

pub(crate) use pool::trim_pool;
#[cfg(test)]
pub(crate) use pool::{stats, Mode};

/// Smallest stack handed out (usable bytes).
/// Set when a lazily taken stack could not be had (a coroutine could not start); `spawn` then
/// allocates eagerly (and panics on failure) until an allocation succeeds again.
pub(crate) static STACKS_EXHAUSTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

pub(crate) const MIN_STACK_SIZE: usize = 16 * 1024;
/// Largest stack that may be requested (Go's limit).
pub(crate) const MAX_STACK_SIZE: usize = 1 << 30;
/// Stack size when neither `GORO_STACK_SIZE` nor `Builder::stack_size` says otherwise.
pub(crate) const DEFAULT_STACK_SIZE: usize = 1 << 20;
/// Bytes at the top of a stack that shrinking keeps committed.
pub(crate) const KEEP: usize = 16 * 1024;
/// Guard bytes below every stack. Larger than one page so that a frame a little bigger
/// than a page cannot step over it (Rust probes every page of big frames anyway).
const GUARD: usize = 64 * 1024;

/// The system page size (cached).
pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let p = if p > 0 { p as usize } else { 4096 };
    PAGE.store(p, Ordering::Relaxed);
    p
}

/// Guard bytes installed below each stack.
pub(crate) fn guard_size() -> usize {
    GUARD.max(page_size())
}

/// One coroutine stack: `[bottom, top)` usable, a guard below `bottom`.
///
/// `Send + Sync` (it is plain memory); dropping it returns the memory to this thread's cache (or
/// the global pool). It must not be dropped while anything still runs on it or points into
/// it.
#[derive(Debug)]
pub(crate) struct Stack {
    bottom: usize,
    /// Usable bytes (at most [`MAX_STACK_SIZE`], 1 GiB: a `u32` keeps the struct, which
    /// every coroutine's control block embeds, at three words with the flag below).
    size: u32,
    /// Lowest stack pointer reported through [`Stack::note_sp`]; `usize::MAX` if none.
    /// (Atomic only so that `Stack` is `Sync`; relaxed accesses cost what a `Cell` does.)
    low_water: AtomicUsize,
    /// Its guard markers are taken away (a compacted stack in a span slot); they must be
    /// back before anything runs on it or it is pooled. (Atomic only for `Sync`, as above.)
    unguarded: AtomicBool,
}

impl Stack {
    /// One past the highest usable byte; 16-byte (in fact page) aligned.
    pub(crate) fn top(&self) -> usize {
        self.bottom + self.size()
    }

    /// The lowest usable byte (just above the guard).
    pub(crate) fn bottom(&self) -> usize {
        self.bottom
    }

    /// Usable bytes.
    pub(crate) fn size(&self) -> usize {
        self.size as usize
    }

    /// Bytes of guard below [`Stack::bottom`].
    pub(crate) fn guard_size(&self) -> usize {
        guard_size()
    }

    /// Report that something ran on this stack with its stack pointer at `sp` (typically
    /// `Context::suspended_sp()` after a `resume` that returned `false`). Decides whether the stack is
    /// shrunk when dropped; see the module docs. Values outside the stack are ignored.
    pub(crate) fn note_sp(&self, sp: usize) {
        if sp >= self.bottom && sp < self.low_water.load(Ordering::Relaxed) {
            self.low_water.store(sp, Ordering::Relaxed);
        }
    }

    /// What a compaction releases: guard markers to remove first, if any, and the pages to
    /// drop, each `(start, len)`. In a span slot (with marker guards) that is the guard and
    /// then the whole slot, so the kernel frees the slot's page tables too, and the stack
    /// counts as unguarded from now until [`Stack::reguard`]; else its usable bytes only.
    ///
    /// # Safety
    /// Nothing runs on the stack until [`Stack::reguard`] (a suspended, compacted coroutine).
    pub(crate) unsafe fn unguard_for_release(&self) -> (Option<(usize, usize)>, (usize, usize)) {
        let slot = pool::slot_len(self.size()); // 0: packed
        if slot != 0 && pool::guards_are_markers() {
            let guard_lo = self.bottom - guard_size();
            // Set before the markers go, so a restore or drop always puts them back.
            self.unguarded.store(true, Ordering::Relaxed);
            return (Some((guard_lo, guard_size())), (guard_lo, slot));
        }
        (None, (self.bottom, self.size()))
    }

    /// Put the guard back if [`Stack::unguard_for_release`] took it away. A failure (the
    /// kernel out of memory for the page table it needs) is an `Err`; the stack must then
    /// never run or be pooled.
    pub(crate) fn reguard(&self) -> io::Result<()> {
        if !self.unguarded.load(Ordering::Relaxed) {
            return Ok(());
        }
        // SAFETY: this stack's own guard range, unguarded by `unguard_for_release`, and empty
        // since (nothing ran on the stack meanwhile: its contract).
        unsafe { pool::reinstall_guard(self.bottom - guard_size()) }?;
        self.unguarded.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the low-water mark says the stack was used below its top [`KEEP`] bytes.
    fn grew(&self) -> bool {
        self.low_water.load(Ordering::Relaxed) < self.top().saturating_sub(KEEP)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.reguard().is_err() {
            return; // without its guard it must never be reused: leak it
        }
        let grew = self.grew();
        if grew {
            shrink(self.bottom, self.size());
        }
        pool::release(self.bottom, self.size(), grew);
    }
}

/// Give back the pages of the stack `[bottom, bottom + size)` below its top [`KEEP`] bytes.
fn shrink(bottom: usize, size: usize) {
    let len = size.saturating_sub(KEEP);
    if len == 0 {
        return;
    }
    // SAFETY: the range lies inside a stack this module owns and nobody uses (it is being
    // dropped or sits in a pool); MADV_DONTNEED only drops its private anonymous pages,
    // which read back as zero. Guard markers below `bottom` are not in the range.
    let rc = unsafe { libc::madvise(bottom as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    debug_assert_eq!(rc, 0, "madvise(MADV_DONTNEED) failed on a stack");
}

/// The stack size every coroutine gets unless it asks otherwise: `GORO_STACK_SIZE` (bytes,
/// or with a `K`/`M`/`G` suffix, binary units) rounded by [`round_stack_size`], or 1 MiB.
/// An invalid value is reported once on stderr and the default is used.
pub(crate) fn default_stack_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| {
        let Some(raw) = std::env::var_os("GORO_STACK_SIZE") else {
            return DEFAULT_STACK_SIZE;
        };
        let raw = raw.to_string_lossy();
        match parse_size(&raw).and_then(|n| round_stack_size(n).map_err(|e| e.to_string())) {
            Ok(n) => n,
            Err(why) => {
                eprintln!(
                    "goro: ignoring GORO_STACK_SIZE={raw:?}: {why}; using the default of {} bytes",
                    DEFAULT_STACK_SIZE
                );
                DEFAULT_STACK_SIZE
            }
        }
    })
}

/// Parse `123`, `64K`, `8M`, `1G` (also `KiB`/`KB`, any case; binary units).
fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    if num.is_empty() {
        return Err("expected a number of bytes, optionally followed by K, M or G".into());
    }
    let n: usize = num.parse().map_err(|_| "number too large".to_string())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("unknown unit {other:?} (use K, M or G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| "number too large".to_string())
}

/// Round a requested stack size up to whole pages and to at least [`MIN_STACK_SIZE`].
/// More than 1 GiB is an `InvalidInput` error.
pub(crate) fn round_stack_size(requested: usize) -> io::Result<usize> {
    if requested > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "goro: a coroutine stack of {requested} bytes exceeds the limit of {MAX_STACK_SIZE} bytes (1 GiB)"
            ),
        ));
    }
    let page = page_size();
    let n = requested.max(MIN_STACK_SIZE);
    Ok(n.div_ceil(page) * page)
}

/// Get a stack of `size` usable bytes (`size` as returned by [`round_stack_size`]).
/// Exhaustion (no address space, the mapping budget) is an `Err`, never a crash.
pub(crate) fn allocate(size: usize) -> io::Result<Stack> {
    debug_assert!(
        (MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&size) && size % page_size() == 0,
        "stack size {size} was not rounded by round_stack_size"
    );
    let bottom = pool::acquire(size)?;
    Ok(Stack {
        bottom,
        size: u32::try_from(size).expect("stack sizes are at most 1 GiB"),
        low_water: AtomicUsize::new(usize::MAX),
        unguarded: AtomicBool::new(false),
    })
}

#[cfg(test)]
mod tests;
