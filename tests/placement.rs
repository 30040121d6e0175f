//! Placement of fresh coroutines on 2 workers (the rule: `src/sched/placement.rs`). A started
//! coroutine never moves, so where it starts is where it lives: a burst of spawns, from `main`
//! in `goro::run` or from a plain thread, and the connection coroutines of an accept loop must
//! start on both workers, not pile up on the spawner's.
//!
//! Every coroutine reports `goro::runtime::worker_id()` when it starts; the tests count the
//! reports per worker. No sleeps: reports and shutdown go over channels. The tests share one
//! runtime and would skew each other's loads, so they take turns (`SERIAL`).

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use goro::chan::{self, RecvTimeoutError};

const WORKERS: usize = 2;
const BURST: usize = 16;
/// The most a worker may host of the burst.
const BURST_MAX: usize = 12;
const CONNS: usize = 1000;
/// Rounds per test (each is checked on its own).
const ROUNDS: usize = 5;

static SERIAL: Mutex<()> = Mutex::new(());

fn setup() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    goro::gomaxprocs(WORKERS);
    g
}

/// A coroutine body: report where it started, then park in a loop (timed waits on a channel)
/// until `stop` closes.
fn parker(report: chan::Sender<usize>, stop: chan::Receiver<()>) -> impl FnOnce() + Send {
    move || {
        report
            .send(goro::runtime::worker_id().expect("runs on a worker"))
            .unwrap();
        while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(Duration::from_millis(1)) {}
    }
}

/// Spawn `BURST` parkers from the calling context (a coroutine or a plain thread), wait for all
/// to start, stop them and return how many started on each worker.
fn burst() -> Vec<usize> {
    let (report_tx, report_rx) = chan::bounded::<usize>(BURST);
    let (stop_tx, stop_rx) = chan::bounded::<()>(0);
    let hs: Vec<_> = (0..BURST)
        .map(|_| goro::spawn(parker(report_tx.clone(), stop_rx.clone())))
        .collect();
    let mut per = vec![0; WORKERS];
    for _ in 0..BURST {
        per[report_rx.recv().unwrap()] += 1;
    }
    stop_tx.close();
    for h in hs {
        h.join().unwrap();
    }
    per
}

fn check_burst(per: &[usize], from: &str, round: usize) {
    eprintln!("burst from {from}, round {round}: {per:?} per worker");
    assert_eq!(per.iter().sum::<usize>(), BURST);
    assert!(
        per.iter().all(|&n| n > 0 && n <= BURST_MAX),
        "round {round}: {BURST} parking coroutines spawned from {from} started {per:?} per \
         worker (want each worker used, none above {BURST_MAX})"
    );
}

#[test]
fn burst_from_main_uses_both_workers() {
    let _g = setup();
    for round in 0..ROUNDS {
        let per = goro::run(burst);
        check_burst(&per, "main", round);
    }
}

#[test]
fn burst_from_plain_thread_uses_both_workers() {
    let _g = setup();
    for round in 0..ROUNDS {
        let per = burst();
        check_burst(&per, "a plain thread", round);
    }
}

/// An accept loop spawning one coroutine per connection, 1,000 connections from std threads:
/// each worker hosts between 15% and 85% of the connection coroutines (without placement the
/// accepting worker hosts them all; a split is ~500/500 on a quiet machine, and the official
/// CI saw 778/222 once, on a loaded one, where a worker's thread can lose its CPU for a while).
#[test]
fn accepted_connections_spread_over_workers() {
    let _g = setup();
    for round in 0..ROUNDS.min(3) {
        let per = goro::spawn(accept_round).join().unwrap();
        eprintln!("connections, round {round}: {per:?} per worker");
        assert_eq!(per.iter().sum::<usize>(), CONNS);
        let (lo, hi) = (CONNS * 15 / 100, CONNS * 85 / 100);
        assert!(
            per.iter().all(|&n| (lo..=hi).contains(&n)),
            "round {round}: {CONNS} connection coroutines started {per:?} per worker (want \
             each in {lo}..={hi})"
        );
    }
}

/// One round of the connection test, run on a coroutine. Returns connections per worker.
fn accept_round() -> Vec<usize> {
    const CLIENTS: usize = 4;
    let listener = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (report_tx, report_rx) = chan::bounded::<usize>(CONNS);
    let acceptor = goro::spawn(move || {
        let mut conns = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            let (mut s, _) = listener.accept().unwrap();
            let report = report_tx.clone();
            conns.push(goro::spawn(move || {
                report.send(goro::runtime::worker_id().unwrap()).unwrap();
                // Serve until the client hangs up.
                let mut buf = [0u8; 64];
                while s.read(&mut buf).is_ok_and(|n| n > 0) {}
            }));
        }
        conns
    });
    // Clients: plain threads that connect and hold their connections until told to hang up.
    let (hangup_tx, hangup_rx) = chan::bounded::<()>(0);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let hangup = hangup_rx.clone();
            std::thread::spawn(move || {
                let held: Vec<_> = (0..CONNS / CLIENTS)
                    .map(|_| std::net::TcpStream::connect(addr).unwrap())
                    .collect();
                let _ = hangup.recv(); // closed: hang up
                drop(held);
            })
        })
        .collect();
    let mut per = vec![0; WORKERS];
    for _ in 0..CONNS {
        per[report_rx.recv().unwrap()] += 1;
    }
    hangup_tx.close();
    for h in acceptor.join().unwrap() {
        h.join().unwrap();
    }
    for c in clients {
        // A coroutine may not block its worker on a thread join for long: these threads only
        // close their sockets now, so the wait is short.
        c.join().unwrap();
    }
    per
}
