//! Waiting for readiness: the loop every I/O operation runs ("try the syscall; on `EAGAIN`
//! wait for the next edge, a deadline change or the deadline itself; retry"), for coroutines
//! (park on the netpoller) and plain threads (`poll(2)` on the fd and a per-thread eventfd).
//!
//! Invariant: a waiter parks only after publishing itself on the slot *and* seeing that the
//! slot's edge counter still has the value it read before its syscall (see `desc.rs`), so no
//! readiness edge, deadline change or shutdown can slip between its `EAGAIN` and its park.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

use super::desc::{Desc, Dir, Waker};
use super::poll;
use super::thread_signal::thread_signal;
use crate::park;

/// The wait reason of a coroutine parked on I/O (`runtime::dump` adds the direction and fd).
pub(crate) use crate::sched::poller::IO_WAIT;

pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "I/O deadline or timeout reached")
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Run `f` (a non-blocking syscall on `desc`'s fd) until it does not report `WouldBlock`,
/// waiting for readiness in direction `dir` in between. `op_deadline` is the deadline of this
/// one call (from a per-operation timeout, or `connect_timeout`); the descriptor's absolute
/// deadline for `dir` is re-read on every round, so changing it wakes and re-aims the wait.
/// Every call spends one unit of the cooperative budget (`sched/coop.rs`): a coroutine whose
/// reads and writes always find the socket ready would otherwise never let others run.
pub(crate) fn op<R>(
    desc: &Desc,
    dir: Dir,
    op_deadline: Option<Instant>,
    mut f: impl FnMut() -> io::Result<R>,
) -> io::Result<R> {
    park::coop_spend();
    let slot = desc.slot(dir);
    loop {
        // The counter first, then the deadline: a deadline change stores the deadline and then
        // bumps the counter (`Slot::ready`), so either `seen` already includes that bump (and
        // its Acquire makes the new deadline visible to the read below), or the bump comes
        // after and `publish`'s re-check or the setter's wake-up catches it. Reading the
        // deadline first lost the reader that read the old deadline, then a `seen` that
        // already counted the change.
        let seen = slot.edges();
        let abs = desc.deadline(dir);
        let deadline = earliest(op_deadline, abs);
        if let Some(a) = abs {
            if a <= Instant::now() {
                return Err(timed_out());
            }
        }
        match f() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
        if let Some(d) = deadline {
            if d <= Instant::now() {
                return Err(timed_out());
            }
        }
        wait(desc, dir, seen, deadline)?;
    }
}

/// Wait once: until an edge after `seen`, a wake-up of the slot, `deadline`, or spuriously.
///
/// Never inlined, and the plain-thread path is a function of its own: while a coroutine is
/// parked here, the frames of `op` and this function are the live part of its stack that a
/// compaction copies (peers `conns`: 816 bytes per idle connection when the thread path's
/// `pollfd`s and timespec were inlined into `op`'s frame).
#[inline(never)]
fn wait(desc: &Desc, dir: Dir, seen: u64, deadline: Option<Instant>) -> io::Result<()> {
    if !park::in_coroutine() {
        return wait_thread(desc, dir, seen, deadline);
    }
    let slot = desc.slot(dir);
    let marker = 0u8;
    let token = &marker as *const u8 as usize;
    poll::add_waiter();
    if slot.publish(token, Waker::Coroutine(park::current()), seen) {
        // Eligible for stack compaction: the slot knows us by `token`, an address it only
        // compares, and wakes us through the unparker; the bytes move after we wake.
        park::park_idle(deadline, IO_WAIT);
    }
    slot.withdraw(token);
    poll::remove_waiter();
    Ok(())
}

/// [`wait`] on a plain thread: `poll(2)` on the fd and the thread's eventfd.
#[inline(never)]
fn wait_thread(desc: &Desc, dir: Dir, seen: u64, deadline: Option<Instant>) -> io::Result<()> {
    let slot = desc.slot(dir);
    let marker = 0u8;
    let token = &marker as *const u8 as usize;
    let sig = thread_signal()?;
    if slot.publish(token, Waker::Thread(sig.clone()), seen) {
        let events = match dir {
            Dir::Read => libc::POLLIN | libc::POLLRDHUP,
            Dir::Write => libc::POLLOUT,
        };
        let mut fds = [
            libc::pollfd {
                fd: desc.fd(),
                events,
                revents: 0,
            },
            libc::pollfd {
                fd: sig.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ts = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            libc::timespec {
                tv_sec: left.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            }
        });
        let tsp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        crate::sched::note_plain_thread();
        // SAFETY: ppoll(2) on two valid pollfds, a timespec or null, no signal mask. EINTR and
        // other failures just end this wait early; the caller loops.
        unsafe { libc::ppoll(fds.as_mut_ptr(), 2, tsp, std::ptr::null()) };
        if fds[1].revents != 0 {
            sig.drain();
        }
    }
    slot.withdraw(token);
    Ok(())
}
