//! The netpoller: one epoll instance for the whole process, driven by the scheduler.
//!
//! # Design (Go's `runtime/netpoll.go` and `internal/poll` are the reference)
//!
//! * **Registration.** Every fd goro waits on is registered once, for its whole life, with
//!   `EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET` (edge-triggered: the kernel reports each
//!   readiness change once and nobody ever re-arms). The event's `u64` carries the index of the
//!   fd's poll descriptor (`desc.rs`) and the descriptor's sequence number; closing bumps the
//!   sequence and deregisters (`EPOLL_CTL_DEL` before `close`, because a registration outlives
//!   a `close` while a `dup` of the fd is open), so an event that another thread had already
//!   taken out of `epoll_wait` is recognised as stale and dropped.
//! * **Operations** (`wait.rs`) try the syscall first. Only on `EAGAIN` do they wait: snapshot
//!   the slot's edge counter before the syscall, publish a waiter, re-check the counter, park.
//!   A ready fd therefore costs the syscall itself and one atomic load: no extra syscall, no
//!   lock. Readiness sets no "ready" flag that someone must consume; every edge bumps a
//!   counter and wakes every waiter of that direction, and each waiter retries its syscall, so
//!   two coroutines reading one socket cannot strand each other.
//! * **Who polls.** The scheduler (`sched::poller` is its hook; the scheduler never imports
//!   this module): a worker about to go idle polls without blocking; at most one sleeping
//!   worker blocks in `epoll_wait` until its next local timeout instead of `thread::park`, and
//!   whoever wakes that worker writes the poller's eventfd; the monitor polls without blocking
//!   when nobody has for ~10 ms (all workers busy). A coroutine made ready is woken with
//!   `Unparker::unpark`, which queues it on its owner worker (started coroutines never move).
//! * **Deadlines** are not timers of their own: a waiter parks with `park_until(min(operation
//!   deadline, absolute deadline))` (the worker's local timeout heap, whose own sequence number
//!   drops stale timeouts). Setting a deadline, `shutdown` and close wake the slot's waiters,
//!   which re-check: past the deadline gives `TimedOut`, `shutdown(Read)` gives `Ok(0)`.
//! * **Plain threads** never use epoll: they block in `poll(2)` on the fd and a per-thread
//!   eventfd (which deadline changes and shutdown write to), with the same deadlines.
//! * **Wake-up of the blocked poller.** The eventfd is registered level-triggered and only a
//!   *blocking* poll drains it: a non-blocking poll that happens to see it leaves it, so the
//!   blocked worker cannot miss an interrupt that another thread's poll saw first.
//!
//! Nothing here exists until the first fd is registered: a program without I/O has no epoll
//! instance and its workers pay one load of an empty `OnceLock` before they sleep.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::desc::{self, Desc, Dir};
use crate::sched::poller;

/// Event data of the poller's own eventfd.
const WAKE_TOKEN: u64 = u64::MAX;
/// Events taken per `epoll_wait`.
const BATCH: usize = 256;

pub(crate) struct Epoll {
    epfd: OwnedFd,
    wakefd: OwnedFd,
    wake_pending: AtomicBool,
    no_pwait2: AtomicBool,
}

/// Coroutines parked on I/O right now (`has_waiters`, and whether a non-blocking poll is worth
/// a syscall).
static WAITERS: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn add_waiter() {
    WAITERS.fetch_add(1, Ordering::SeqCst);
}

pub(crate) fn remove_waiter() {
    WAITERS.fetch_sub(1, Ordering::SeqCst);
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The process's poller, created (and installed in the scheduler) on first use.
pub(crate) fn get() -> io::Result<&'static Epoll> {
    static EPOLL: OnceLock<Epoll> = OnceLock::new();
    static INIT: Mutex<()> = Mutex::new(());
    if let Some(e) = EPOLL.get() {
        return Ok(e);
    }
    let _g = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = EPOLL.get() {
        return Ok(e);
    }
    // SAFETY: plain syscalls; each fd is owned right after it is created.
    let epfd = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
    // SAFETY: as above.
    let wakefd = unsafe {
        OwnedFd::from_raw_fd(cvt(libc::eventfd(
            0,
            libc::EFD_NONBLOCK | libc::EFD_CLOEXEC,
        ))?)
    };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32, // level-triggered: see the module docs
        u64: WAKE_TOKEN,
    };
    // SAFETY: both fds are open; `ev` is a valid event for the call.
    cvt(unsafe {
        libc::epoll_ctl(
            epfd.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            wakefd.as_raw_fd(),
            &mut ev,
        )
    })?;
    let e = EPOLL.get_or_init(|| Epoll {
        epfd,
        wakefd,
        wake_pending: AtomicBool::new(false),
        no_pwait2: AtomicBool::new(false),
    });
    poller::register(e);
    Ok(e)
}

impl Epoll {
    /// Register `fd` for its lifetime; returns its descriptor.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<&'static Desc> {
        let d = desc::alloc(fd)?;
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: d.token(),
        };
        // SAFETY: `epfd` is open; `ev` is valid; a bad `fd` is reported as an error.
        let r = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            let e = io::Error::last_os_error();
            desc::free(d);
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) => io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "goro::io: this file descriptor cannot be polled (a regular file or a \
                     directory?); use goro::blocking for it",
                ),
                _ => e,
            });
        }
        Ok(d)
    }

    /// Deregister `d`'s fd (still open) and recycle the descriptor.
    pub(crate) fn deregister(&self, d: &'static Desc) {
        let fd = d.fd();
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `fd` is still open (the caller closes it after this); errors are harmless.
        unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
        desc::free(d);
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout: Option<Duration>) -> usize {
        let epfd = self.epfd.as_raw_fd();
        let max = events.len() as libc::c_int;
        if !self.no_pwait2.load(Ordering::Relaxed) {
            let ts = timeout.map(|t| libc::timespec {
                tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: t.subsec_nanos() as libc::c_long,
            });
            let tsp = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: epoll_pwait2(2) with a valid buffer of `max` events, a timespec or null,
            // and no signal mask.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    epfd,
                    events.as_mut_ptr(),
                    max,
                    tsp,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            if n >= 0 {
                return n as usize;
            }
            if io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
                return 0; // EINTR
            }
            self.no_pwait2.store(true, Ordering::Relaxed);
        }
        let ms = match timeout {
            None => -1,
            // Round up, so a timeout never fires early.
            Some(t) => t
                .as_nanos()
                .div_ceil(1_000_000)
                .min(libc::c_int::MAX as u128) as libc::c_int,
        };
        // SAFETY: epoll_wait(2) with a valid buffer of `max` events.
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), max, ms) };
        n.max(0) as usize
    }

    fn drain_wakefd(&self) {
        let mut v = 0u64;
        // SAFETY: reading 8 bytes into a u64 from our non-blocking eventfd.
        unsafe { libc::read(self.wakefd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

impl poller::Poller for Epoll {
    fn poll(&self, timeout: Option<Duration>) -> usize {
        let blocking = timeout != Some(Duration::ZERO);
        if !blocking && WAITERS.load(Ordering::Relaxed) == 0 {
            return 0; // nobody waits: the events keep in the kernel until someone does
        }
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
        let n = self.wait(&mut events, timeout);
        let mut woken = 0;
        for ev in &events[..n] {
            let (bits, data) = (ev.events, ev.u64);
            if data == WAKE_TOKEN {
                if blocking {
                    self.drain_wakefd();
                    self.wake_pending.store(false, Ordering::SeqCst);
                }
                continue;
            }
            let Some(d) = desc::get(data as u32) else {
                continue;
            };
            if d.token() != data {
                continue; // stale: that fd was closed since
            }
            let err = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
            if bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) as u32 | err != 0 {
                woken += d.slot(Dir::Read).ready();
            }
            if bits & libc::EPOLLOUT as u32 | err != 0 {
                woken += d.slot(Dir::Write).ready();
            }
        }
        woken
    }

    fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::SeqCst) {
            let one = 1u64;
            // SAFETY: writing 8 bytes from a u64 to our non-blocking eventfd.
            unsafe { libc::write(self.wakefd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    fn has_waiters(&self) -> bool {
        WAITERS.load(Ordering::SeqCst) > 0
    }

    fn describe_waits(&self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for d in desc::all() {
            d.describe(&mut out);
        }
        out
    }
}
