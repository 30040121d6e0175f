//! Go's `os/signal` on goro channels: [`notify`] relays incoming Unix signals to channels,
//! [`stop`] detaches a channel.
//!
//! ```no_run
//! use goro::signal::{self, SIGINT, SIGTERM};
//!
//! let (tx, rx) = goro::chan::bounded(1); // buffered: delivery never blocks
//! signal::notify(&tx, &[SIGINT, SIGTERM]).unwrap();
//! let sig = rx.recv().unwrap(); // wait for Ctrl-C or `kill`
//! signal::stop(&tx);
//! println!("shutting down on signal {sig}");
//! ```
//!
//! # Design
//! One process-wide registry (a `std` mutex) lists the registered channels, each with the set of
//! signals it wants. The signals themselves are caught with `signal-hook`'s self-pipe iterator,
//! served by one dedicated thread (`goro-signal`) that sleeps in a blocking read while no signal
//! arrives: no worker thread and no coroutine is spent on idle signal delivery. For each signal
//! the thread `try_send`s the number to every channel registered for it, so a full channel drops
//! that delivery instead of blocking (Go's rule: use a buffered channel).
//!
//! A signal that arrives while no channel wants it gets its *original* disposition: if it was
//! ignored when goro first caught it (e.g. SIGPIPE under Rust), it stays ignored; otherwise its
//! default action is emulated (SIGINT terminates the process again after `stop`, as in Go).
//!
//! Invariants: the registry holds a clone of each registered `Sender` until `stop` (so the
//! channel stays open); while the registry is non-empty it counts as one wake source for the
//! deadlock detector; delivery happens under the registry lock, so once `stop` returns the
//! channel receives nothing more.

use std::collections::HashSet;
use std::io;
use std::sync::Mutex;

use signal_hook::iterator::{backend::Handle, Signals};

use crate::chan::Sender;

/// Interrupt from the terminal (Ctrl-C).
pub const SIGINT: i32 = libc::SIGINT;
/// Termination request (the default of `kill`).
pub const SIGTERM: i32 = libc::SIGTERM;
/// Quit from the terminal (Ctrl-\).
pub const SIGQUIT: i32 = libc::SIGQUIT;
/// Hang-up of the controlling terminal; by convention "reload configuration" for daemons.
pub const SIGHUP: i32 = libc::SIGHUP;
/// User-defined signal 1.
pub const SIGUSR1: i32 = libc::SIGUSR1;
/// User-defined signal 2.
pub const SIGUSR2: i32 = libc::SIGUSR2;

/// Signals that cannot or must not be caught: SIGKILL and SIGSTOP cannot; SIGSEGV, SIGBUS,
/// SIGILL and SIGFPE report faults (goro's stack-overflow detection needs SIGSEGV and SIGBUS).
const FORBIDDEN: &[i32] = &[
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
];

struct Subscriber {
    tx: Sender<i32>,
    signals: HashSet<i32>,
}

struct State {
    handle: Handle,
    entries: Vec<Subscriber>,
    /// Signals goro has started catching.
    caught: HashSet<i32>,
    /// Of those, the ones that were ignored (SIG_IGN) before.
    originally_ignored: HashSet<i32>,
}

static REGISTRY: Mutex<Option<State>> = Mutex::new(None);

fn registry() -> std::sync::MutexGuard<'static, Option<State>> {
    crate::util::lock(&REGISTRY)
}

fn invalid(sig: i32) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("signal {sig} cannot be caught"),
    )
}

/// Whether `sig` is a signal number this process may catch.
fn check(sig: i32) -> io::Result<()> {
    // signal-hook's iterator supports numbers below 128.
    if sig < 1 || sig > libc::SIGRTMAX() || sig >= 128 || FORBIDDEN.contains(&sig) {
        return Err(invalid(sig));
    }
    if signal_hook::consts::FORBIDDEN.contains(&sig) {
        return Err(invalid(sig));
    }
    Ok(())
}

/// Whether `sig`'s current disposition is "ignore".
fn is_ignored(sig: i32) -> bool {
    // SAFETY: querying (null new action) with a zeroed, writable `sigaction` out-parameter is
    // always valid for a signal number `check` accepted.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

fn start() -> io::Result<State> {
    let mut signals = Signals::new(std::iter::empty::<i32>())?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("goro-signal".into())
        .spawn(move || {
            crate::census::runtime_thread();
            for sig in signals.forever() {
                deliver(sig);
            }
        })?;
    Ok(State {
        handle,
        entries: Vec::new(),
        caught: HashSet::new(),
        originally_ignored: HashSet::new(),
    })
}

fn deliver(sig: i32) {
    let reg = registry();
    let Some(st) = reg.as_ref() else { return };
    let mut wanted = false;
    for e in st.entries.iter().filter(|e| e.signals.contains(&sig)) {
        wanted = true;
        let _ = e.tx.try_send(sig); // full or closed: dropped, as in Go
    }
    let ignored = st.originally_ignored.contains(&sig);
    drop(reg);
    if !wanted && !ignored {
        let _ = signal_hook::low_level::emulate_default_handler(sig);
    }
}

/// The signals `notify` relays when given an empty list: every catchable standard signal.
fn all_signals() -> Vec<i32> {
    (1..32).filter(|s| check(*s).is_ok()).collect()
}

/// Relay the listed signals to `tx` (Go's `signal.Notify`). With an empty list, every catchable
/// signal is relayed. Delivery never blocks: if the channel is full, that signal is dropped for
/// this channel, so give it a buffer. Several channels may listen to one signal (each gets a
/// copy); calling `notify` again for the same channel adds signals. A clone of `tx` is held
/// until [`stop`], so the channel does not close meanwhile.
///
/// # Errors
/// `InvalidInput` for a signal that cannot or must not be caught (SIGKILL, SIGSTOP, SIGSEGV,
/// SIGBUS, SIGILL, SIGFPE) or a number that is no signal; nothing is registered then. Other
/// errors come from installing the handler.
pub fn notify(tx: &Sender<i32>, signals: &[i32]) -> io::Result<()> {
    for &s in signals {
        check(s)?;
    }
    let signals = if signals.is_empty() {
        all_signals()
    } else {
        signals.to_vec()
    };
    let mut reg = registry();
    if reg.is_none() {
        *reg = Some(start()?);
    }
    let st = reg.as_mut().expect("initialised above");
    for &s in &signals {
        if !st.caught.contains(&s) {
            if is_ignored(s) {
                st.originally_ignored.insert(s);
            }
            st.handle.add_signal(s)?;
            st.caught.insert(s);
        }
    }
    match st.entries.iter_mut().find(|e| e.tx.same_channel(tx)) {
        Some(e) => e.signals.extend(signals),
        None => {
            if st.entries.is_empty() {
                crate::sched::add_wake_source();
            }
            st.entries.push(Subscriber {
                tx: tx.clone(),
                signals: signals.into_iter().collect(),
            });
        }
    }
    Ok(())
}

/// Stop relaying signals to `tx`'s channel (Go's `signal.Stop`): once this returns, the channel
/// receives no more signals, and the held clone of `tx` is dropped. A signal nobody listens to
/// any more gets its original behaviour back (SIGINT terminates the process again).
pub fn stop(tx: &Sender<i32>) {
    let mut reg = registry();
    let Some(st) = reg.as_mut() else { return };
    let before = st.entries.len();
    st.entries.retain(|e| !e.tx.same_channel(tx));
    if before > 0 && st.entries.is_empty() {
        crate::sched::remove_wake_source();
    }
}
