//! `runtime::dump()`'s report: one line per live coroutine, read from the workers' registries.
//!
//! Reads only: the coroutines' states, wait reasons and wait times are atomics other threads
//! may read at any time; the registry lock keeps each control block alive while it is read.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::reasons;
use crate::co::{NOTIFIED, PARKED, RUNNABLE, RUNNING};

/// One line per live coroutine: id, name, state, what it waits on and for how long (wait
/// durations are approximate, to the monitor's ~10–100 ms clock). Coroutines not yet started
/// are summed up in one line, and the process's stack compactions and restores in another.
pub(crate) fn dump() -> String {
    let Some(r) = super::rt_if_started() else {
        return String::from("(goro runtime not started)\n");
    };
    let now = r.now_ms();
    let mut out = String::new();
    let mut started = 0usize;
    let mut io_waits = None;
    for i in 0..r.created() {
        let Some(w) = r.worker(i) else { continue };
        let reg = crate::util::lock(&w.registry);
        for co in reg.slots.iter().flatten() {
            started += 1;
            let _ = write!(out, "coroutine {}", co.id);
            if let Some(n) = &co.name {
                let _ = write!(out, " {n:?}");
            }
            let state = co.state.load(Ordering::Acquire);
            match state {
                PARKED => {
                    let why = reasons::decode(co.reason.load(Ordering::Relaxed));
                    let since = co.wait_since.load(Ordering::Relaxed);
                    let why = if why.is_empty() { "waiting" } else { why };
                    let ms = now.saturating_sub(since);
                    let io = (why == super::poller::IO_WAIT)
                        .then(|| io_waits.get_or_insert_with(io_wait_table).get(&co.id))
                        .flatten();
                    match io {
                        // e.g. "[IO wait (read, fd 7, 120 ms)]"
                        Some(what) => {
                            let _ = write!(out, " [{why} ({what}, {ms} ms)]");
                        }
                        None => {
                            let _ = write!(out, " [{why}, {ms} ms]");
                        }
                    }
                }
                RUNNABLE => out.push_str(" [runnable]"),
                RUNNING | NOTIFIED => out.push_str(" [running]"),
                _ => out.push_str(" [finishing]"),
            }
            let _ = write!(out, " on worker {i}, stack {} KiB", co.stack_size / 1024);
            match co.compacted_bytes.load(Ordering::Relaxed) {
                0 => out.push('\n'),
                held => {
                    let _ = writeln!(out, " (compacted: {held} B held)");
                }
            }
        }
    }
    let fresh = r.live().saturating_sub(started);
    if fresh > 0 {
        let _ = writeln!(out, "{fresh} coroutines not started yet [runnable]");
    }
    if out.is_empty() {
        out.push_str("(no coroutines)\n");
    }
    let (c, r) = super::compaction::totals();
    if c > 0 {
        let _ = writeln!(
            out,
            "stack compaction so far: {c} compactions, {r} restores"
        );
    }
    out
}

/// What each coroutine parked on I/O waits for ("read, fd 7"), by coroutine id.
fn io_wait_table() -> std::collections::HashMap<u64, String> {
    super::poller::get()
        .map(|p| p.describe_waits())
        .unwrap_or_default()
        .into_iter()
        .collect()
}
