//! Cooperative scheduling, checked in child processes (each child has one worker, set through
//! `GOMAXPROCS`, and a livelocked child must be killed rather than hang the suite):
//! - the monitor's "running without yielding" report reaches stderr even under libtest's output
//!   capture, for a pure CPU loop and for a loop of goro calls that never park;
//! - the cooperative budget (`sched/coop.rs`): a coroutine spinning on goro operations that
//!   never park (`try_send`, unbounded `send`, buffered send/recv, `try_recv`, `try_iter`,
//!   `select!` with `default`, mutex lock/unlock, socket I/O) lets the coroutine it waits for,
//!   on the same worker, run. Each spinner fails its child after a few seconds instead of
//!   livelocking.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a child may run before the parent kills it and fails. Generous: a passing child
/// takes well under a second.
const LIMIT: Duration = Duration::from_secs(30);

/// Run this binary's test `name` as a child on one worker with libtest's output capture on (as
/// in a plain `cargo test`), `envs` added. `None` if it was still running after `LIMIT`.
fn child(name: &str, envs: &[(&str, &str)]) -> Option<Output> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--test-threads=1"])
        .env("GORO_TEST_CHILD", "1")
        .env("GOMAXPROCS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let c = cmd.spawn().expect("spawn child");
    let pid = c.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(out) => Some(out.expect("child output")),
        Err(_) => {
            // SAFETY: plain kill(2) of our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            None
        }
    }
}

fn is_child() -> bool {
    std::env::var_os("GORO_TEST_CHILD").is_some()
}

/// Run child `name` and return its stderr; fail if it hung or did not pass (libtest reports
/// "1 passed" on stdout: the child's own output is captured).
fn passing_child(name: &str, envs: &[(&str, &str)]) -> String {
    let Some(out) = child(name, envs) else {
        panic!("child {name} still running after {LIMIT:?}: livelocked");
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name}: status {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stderr
}

/// Spin on the CPU (no goro call at all) for `d`.
fn spin_for(d: Duration) {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < d {
        std::hint::spin_loop();
    }
}

// ---- the monitor's report ---------------------------------------------------------------------

#[test]
fn child_spins_on_the_cpu() {
    if !is_child() {
        return;
    }
    goro::run(|| spin_for(Duration::from_millis(800)));
}

/// The report used to go through `eprintln!` from the monitor thread, which inherits libtest's
/// output capture of the test that started the runtime: it showed only if that test failed, and
/// never when the process hung and was killed.
#[test]
fn a_coroutine_spinning_on_the_cpu_is_reported_on_stderr() {
    if is_child() {
        return;
    }
    let stderr = passing_child("child_spins_on_the_cpu", &[("GORO_STUCK_REPORT_MS", "200")]);
    assert!(
        stderr.contains("without yielding") && stderr.contains("on worker 0"),
        "no report on stderr:\n{stderr}"
    );
}

#[test]
fn child_spins_on_try_recv_alone() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        let (_tx, rx) = goro::chan::bounded::<u32>(1);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(800) {
            assert!(rx.try_recv().is_err());
        }
    });
}

/// goro operations that never park are not progress: a coroutine alone on its worker that
/// spins on `try_recv` does not yield (nothing else could run) and is reported like any busy
/// loop.
#[test]
fn a_coroutine_spinning_on_try_recv_alone_is_reported() {
    if is_child() {
        return;
    }
    let stderr = passing_child(
        "child_spins_on_try_recv_alone",
        &[("GORO_STUCK_REPORT_MS", "200")],
    );
    assert!(
        stderr.contains("without yielding"),
        "no report on stderr:\n{stderr}"
    );
}

// ---- the budget: a spinner lets the coroutine it waits for run (one worker) ------------------

/// A spinner's guard: panics (failing the child, instead of livelocking until the parent's
/// limit) after `SPIN_LIMIT` of spinning.
struct Spin {
    t0: Instant,
    rounds: u64,
}

const SPIN_LIMIT: Duration = Duration::from_secs(5);

impl Spin {
    fn new() -> Spin {
        assert_eq!(goro::gomaxprocs(0), 1, "the child must run on one worker");
        Spin {
            t0: Instant::now(),
            rounds: 0,
        }
    }

    fn round(&mut self) {
        self.rounds += 1;
        if self.rounds % 1024 == 0 && self.t0.elapsed() > SPIN_LIMIT {
            panic!("still spinning after {SPIN_LIMIT:?}: the coroutine it waits for never ran");
        }
    }
}

/// A consumer parked on `wake`, which sets `done` once woken.
fn consumer_setting_done<T: Send + 'static>(
    wake: goro::chan::Receiver<T>,
) -> (Arc<AtomicBool>, goro::JoinHandle<()>) {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let h = goro::go!(move || {
        let _ = wake.recv();
        d.store(true, Ordering::SeqCst);
    });
    goro::gosched(); // let it start and park on `wake`
    (done, h)
}

#[test]
fn child_try_send_spinner() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        let (tx, rx) = goro::chan::bounded::<u64>(1);
        let (done, h) = consumer_setting_done(rx);
        let mut spin = Spin::new();
        let mut n = 0;
        while !done.load(Ordering::SeqCst) {
            let _ = tx.try_send(n); // the first wakes the consumer; then Full, then Disconnected
            n += 1;
            spin.round();
        }
        h.join().unwrap();
    });
}

#[test]
fn a_try_send_spinner_lets_the_consumer_it_woke_run() {
    if !is_child() {
        passing_child("child_try_send_spinner", &[]);
    }
}

#[test]
fn child_unbounded_send_spinner() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        let (tx, rx) = goro::chan::unbounded::<u64>();
        let (done, h) = consumer_setting_done(rx);
        let mut n = 0u64;
        while !done.load(Ordering::SeqCst) {
            let _ = tx.send(n);
            n += 1;
            // Every message stays queued while the consumer cannot run: give up early rather
            // than eat the machine's memory (the bug grew it by ~150 MB/s).
            assert!(
                n < 1_000_000,
                "{n} sends and the consumer they woke never ran"
            );
        }
        h.join().unwrap();
    });
}

#[test]
fn an_unbounded_send_spinner_lets_the_consumer_it_woke_run() {
    if !is_child() {
        passing_child("child_unbounded_send_spinner", &[]);
    }
}

#[test]
fn child_buffered_round_trip_spinner() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        let (wake_tx, wake_rx) = goro::chan::bounded::<()>(1);
        let (done, h) = consumer_setting_done(wake_rx);
        wake_tx.send(()).unwrap();
        // A bounded send and receive on a channel of its own: both always succeed at once.
        let (tx, rx) = goro::chan::bounded::<u64>(4);
        let mut spin = Spin::new();
        while !done.load(Ordering::SeqCst) {
            tx.send(1).unwrap();
            rx.recv().unwrap();
            spin.round();
        }
        h.join().unwrap();
    });
}

#[test]
fn a_buffered_send_recv_spinner_lets_the_consumer_it_woke_run() {
    if !is_child() {
        passing_child("child_buffered_round_trip_spinner", &[]);
    }
}

#[test]
fn child_try_recv_spinner() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        let (tx, rx) = goro::chan::bounded::<u32>(1);
        // A fresh coroutine on this worker that the spinner waits for.
        goro::go!(move || tx.send(7).unwrap());
        let mut spin = Spin::new();
        let v = loop {
            match rx.try_recv() {
                Ok(v) => break v,
                Err(goro::chan::TryRecvError::Empty) => spin.round(),
                Err(e) => panic!("{e:?}"),
            }
        };
        assert_eq!(v, 7);
    });
}

#[test]
fn a_try_recv_spinner_lets_the_sender_run() {
    if !is_child() {
        passing_child("child_try_recv_spinner", &[]);
    }
}

#[test]
fn child_try_iter_spinner() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        let (go_tx, go_rx) = goro::chan::bounded::<()>(0);
        let (tx, rx) = goro::chan::unbounded::<u32>();
        // A started coroutine, parked until the spinner wakes it.
        let h = goro::go!(move || {
            go_rx.recv().unwrap();
            for i in 0..10 {
                tx.send(i).unwrap();
            }
        });
        goro::gosched();
        go_tx.try_send(()).unwrap();
        let mut spin = Spin::new();
        let mut got = Vec::new();
        while got.len() < 10 {
            got.extend(rx.try_iter());
            spin.round();
        }
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        h.join().unwrap();
    });
}

#[test]
fn a_try_iter_spinner_lets_the_coroutine_it_woke_send() {
    if !is_child() {
        passing_child("child_try_iter_spinner", &[]);
    }
}

#[test]
fn child_select_default_spinner() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        let (tx, rx) = goro::chan::bounded::<u32>(0);
        let (_never_tx, never_rx) = goro::chan::bounded::<u32>(0);
        goro::go!(move || tx.send(7).unwrap());
        let mut spin = Spin::new();
        let v = loop {
            goro::select! {
                recv(rx) -> v => break v.unwrap(),
                recv(never_rx) -> _ => unreachable!(),
                default => spin.round(),
            }
        };
        assert_eq!(v, 7);
    });
}

#[test]
fn a_select_default_spinner_lets_the_sender_run() {
    if !is_child() {
        passing_child("child_select_default_spinner", &[]);
    }
}

#[test]
fn child_mutex_spinner() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        let m = Arc::new(goro::sync::Mutex::new(0u64));
        let done = Arc::new(AtomicBool::new(false));
        let g = m.lock();
        let (m2, d) = (m.clone(), done.clone());
        let h = goro::go!(move || {
            *m2.lock() += 1; // parks: the spinner holds the lock
            d.store(true, Ordering::SeqCst);
        });
        goro::gosched(); // the waiter starts and parks on the lock
        drop(g); // wakes it
        let mut spin = Spin::new();
        while !done.load(Ordering::SeqCst) {
            *m.lock() += 1;
            spin.round();
        }
        h.join().unwrap();
    });
}

#[test]
fn a_mutex_lock_unlock_spinner_lets_the_waiter_it_woke_run() {
    if !is_child() {
        passing_child("child_mutex_spinner", &[]);
    }
}

#[test]
fn child_socket_spinner() {
    if !is_child() {
        return;
    }
    use std::io::{Read, Write};
    goro::run(|| {
        let (wake_tx, wake_rx) = goro::chan::bounded::<()>(1);
        let (done, h) = consumer_setting_done(wake_rx);
        wake_tx.send(()).unwrap();
        // Writes and reads on a socket pair of its own: each finds the socket ready.
        let (mut a, mut b) = goro::net::UnixStream::pair().unwrap();
        let mut spin = Spin::new();
        let mut byte = [0u8; 1];
        while !done.load(Ordering::SeqCst) {
            a.write_all(b"x").unwrap();
            b.read_exact(&mut byte).unwrap();
            spin.round();
        }
        h.join().unwrap();
    });
}

#[test]
fn a_socket_io_spinner_lets_the_consumer_it_woke_run() {
    if !is_child() {
        passing_child("child_socket_spinner", &[]);
    }
}

#[test]
fn child_spinner_beside_a_ping_pong_pair() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        // A pair that keeps each other runnable forever (each wakes the other into `runnext`).
        let (ab_tx, ab_rx) = goro::chan::bounded::<u64>(0);
        let (ba_tx, ba_rx) = goro::chan::bounded::<u64>(0);
        let s = stop.clone();
        let p = goro::go!(move || {
            let mut v = 0;
            while !s.load(Ordering::SeqCst) {
                ab_tx.send(v).unwrap();
                v = ba_rx.recv().unwrap();
            }
            drop(ab_tx);
        });
        let q = goro::go!(move || {
            while let Ok(v) = ab_rx.recv() {
                if ba_tx.send(v + 1).is_err() {
                    break;
                }
            }
        });
        goro::gosched(); // the pair starts
                         // A coroutine whose every call returns at once: its budget runs out again and again,
                         // and each time it yields to the pair. It must still get turns of its own.
        let (_tx, rx) = goro::chan::bounded::<u32>(1);
        let mut spin = Spin::new();
        for _ in 0..10 * 128 {
            assert!(rx.try_recv().is_err());
            spin.round();
        }
        stop.store(true, Ordering::SeqCst);
        p.join().unwrap();
        q.join().unwrap();
    });
}

/// A coroutine that yields (here: because its budget ran out) waits in a slot that runs when
/// nothing else is runnable; a ping-pong pair on its worker is never "nothing else", so the
/// slot must also be served every few scheduling rounds.
#[test]
fn a_budget_yielder_is_not_starved_by_a_ping_pong_pair() {
    if !is_child() {
        passing_child("child_spinner_beside_a_ping_pong_pair", &[]);
    }
}
