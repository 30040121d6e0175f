//! Giving compacted stacks' memory back to the kernel in batches: one `process_madvise`
//! call takes the guard markers off up to 1,024 stacks, one more drops their pages.
//!
//! Why batch: every `madvise(MADV_DONTNEED)` of a process whose other threads run on other
//! CPUs ends with a TLB shootdown, an interrupt to each of those CPUs, and on this VM an
//! interrupt costs tens of microseconds (measured: 24 us per stack with one call per guard
//! and one per slot against 3-4 us per stack batched, 1,000 stacks, another thread spinning;
//! in peers `conns` the shootdowns were 5% of the server's CPU). `process_madvise` on the
//! process itself (`PIDFD_SELF`, Linux 6.14+; destructive advice on oneself since 6.13)
//! applies one advice to many ranges and flushes once. Where the kernel refuses, each range
//! gets its own `madvise`, as before.
//!
//! Invariant: guard removals are issued before the page drops of the same batch (a slot's
//! page-table page is freed only when the drop finds the whole slot empty, markers included),
//! and a failed call never loses correctness: a range that keeps its pages or its markers is
//! merely not released.

/// `process_madvise` target meaning "this process" (`PIDFD_SELF_THREAD_GROUP`).
const PIDFD_SELF: libc::c_int = -10001;
/// Ranges per `process_madvise` call (the kernel's `UIO_MAXIOV`).
const MAX_IOV: usize = 1024;

/// Ranges to release, collected during a compaction pass.
pub(crate) struct Release {
    /// Guard markers to remove (span-slot stacks only), then pages to drop.
    guards: Vec<libc::iovec>,
    pages: Vec<libc::iovec>,
}

impl Release {
    pub(crate) fn new() -> Release {
        Release {
            guards: Vec::new(),
            pages: Vec::new(),
        }
    }

    /// Queue a stack's release: `guard` markers to remove first, if any, then `pages`.
    ///
    /// # Safety
    /// Both ranges (start, length) belong to one stack whose coroutine is compacted: nothing
    /// reads or writes them, nor runs on the stack, until its restore, and the restore puts
    /// the guard back (`Stack::reguard`) and happens only after [`Release::flush`].
    pub(crate) unsafe fn add(&mut self, guard: Option<(usize, usize)>, pages: (usize, usize)) {
        if let Some((lo, len)) = guard {
            // A full batch is flushed first, keeping every removal ahead of its page drop.
            if self.guards.len() == MAX_IOV {
                self.flush();
            }
            self.guards.push(iovec(lo, len));
        }
        if self.pages.len() == MAX_IOV {
            self.flush();
        }
        self.pages.push(iovec(pages.0, pages.1));
    }

    /// Issue everything queued: the guard removals, then the page drops.
    pub(crate) fn flush(&mut self) {
        // SAFETY: every range was queued by `add`, whose contract says nobody uses it.
        unsafe {
            advise_all(&self.guards, super::pool::MADV_GUARD_REMOVE);
            advise_all(&self.pages, libc::MADV_DONTNEED);
        }
        self.guards.clear();
        self.pages.clear();
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        self.flush();
    }
}

fn iovec(lo: usize, len: usize) -> libc::iovec {
    libc::iovec {
        iov_base: lo as *mut libc::c_void,
        iov_len: len,
    }
}

/// Apply `advice` to every range of `v`: in one `process_madvise` if the kernel takes it,
/// else (for what it did not do) one `madvise` per range.
///
/// # Safety
/// Nobody uses the ranges; `advice` only drops pages or guard markers there.
unsafe fn advise_all(v: &[libc::iovec], advice: libc::c_int) {
    if v.is_empty() {
        return;
    }
    let total: usize = v.iter().map(|r| r.iov_len).sum();
    // SAFETY: `v` is a valid array of `v.len()` iovecs (at most MAX_IOV); the kernel only
    // reads it, and applies the advice to our own ranges (contract).
    let done = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            PIDFD_SELF,
            v.as_ptr(),
            v.len(),
            advice,
            0,
        )
    };
    if done >= 0 && done as usize == total {
        return;
    }
    // Not supported, or stopped part-way: redo what was not done, range by range (advice on
    // a range already done is harmless: its pages or markers are gone already).
    let mut skip = done.max(0) as usize;
    for r in v {
        if skip >= r.iov_len {
            skip -= r.iov_len;
            continue;
        }
        skip = 0;
        // SAFETY: one of the ranges, as above. A failure leaves it as it is.
        let _ = unsafe { super::pool::madvise_retrying(r.iov_base as usize, r.iov_len, advice) };
    }
}
