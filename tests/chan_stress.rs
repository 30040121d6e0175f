//! Stress: no value is lost or delivered twice, with senders and receivers on coroutines and
//! plain threads mixed, racing against timeouts, closes and losing select cases.

use goro::chan::{bounded, unbounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Run `f` on a coroutine when `co`, else on a plain thread; returns a joiner.
fn start<T: Send + 'static>(
    co: bool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Box<dyn FnOnce() -> T> {
    if co {
        let h = goro::spawn(f);
        Box::new(move || h.join().expect("coroutine panicked"))
    } else {
        let h = std::thread::spawn(f);
        Box::new(move || h.join().expect("thread panicked"))
    }
}

fn make(cap: Option<usize>) -> (Sender<u64>, Receiver<u64>) {
    match cap {
        None => unbounded(),
        Some(c) => bounded(c),
    }
}

const CAPS: [Option<usize>; 4] = [Some(0), Some(1), Some(16), None];

/// Every value sent is received exactly once (sum and count), mixed ends, then close.
#[test]
fn mpmc_exactly_once_mixed() {
    goro::gomaxprocs(2);
    for cap in CAPS {
        for round in 0..20 {
            let (tx, rx) = make(cap);
            let per = 2000u64;
            let senders: Vec<_> = (0..4u64)
                .map(|p| {
                    let tx = tx.clone();
                    start((p + round) % 2 == 0, move || {
                        for i in 0..per {
                            tx.send(p * per + i).unwrap();
                        }
                    })
                })
                .collect();
            drop(tx);
            let receivers: Vec<_> = (0..3u64)
                .map(|c| {
                    let rx = rx.clone();
                    start((c + round) % 2 == 1, move || {
                        let mut s = 0u64;
                        let mut n = 0u64;
                        for v in rx.iter() {
                            s += v;
                            n += 1;
                        }
                        (s, n)
                    })
                })
                .collect();
            drop(rx);
            for s in senders {
                s();
            }
            let (mut sum, mut n) = (0, 0);
            for r in receivers {
                let (s, k) = r();
                sum += s;
                n += k;
            }
            let total = 4 * per;
            assert_eq!(n, total, "cap {cap:?}");
            assert_eq!(sum, total * (total - 1) / 2, "cap {cap:?}");
        }
    }
}

/// Timeouts race with hand-overs: a value is either received or returned to its sender.
#[test]
fn timeouts_never_lose_values() {
    goro::gomaxprocs(2);
    for cap in CAPS {
        let (tx, rx) = make(cap);
        let n = 3000u64;
        let received = Arc::new(AtomicU64::new(0));
        let recv_count = Arc::new(AtomicU64::new(0));
        let returned = Arc::new(AtomicU64::new(0));
        let ret_count = Arc::new(AtomicU64::new(0));
        let mut joins = Vec::new();
        for p in 0..2u64 {
            let tx = tx.clone();
            let (returned, ret_count) = (returned.clone(), ret_count.clone());
            joins.push(start(p == 0, move || {
                for i in 0..n {
                    let v = p * n + i + 1;
                    match tx.send_timeout(v, Duration::from_micros(50 + (i % 7) * 20)) {
                        Ok(()) => {}
                        Err(SendTimeoutError::Timeout(v)) => {
                            returned.fetch_add(v, Ordering::Relaxed);
                            ret_count.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(SendTimeoutError::Disconnected(_)) => panic!("closed early"),
                    }
                }
            }));
        }
        let done = Arc::new(AtomicUsize::new(0));
        for c in 0..2u64 {
            let rx = rx.clone();
            let (received, recv_count, done) = (received.clone(), recv_count.clone(), done.clone());
            joins.push(start(c == 1, move || loop {
                match rx.recv_timeout(Duration::from_micros(40 + c * 30)) {
                    Ok(v) => {
                        received.fetch_add(v, Ordering::Relaxed);
                        recv_count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }));
        }
        drop(rx);
        // Senders finish first (joins[0..2]); then close so receivers drain and stop.
        let mut joins = joins.into_iter();
        joins.next().unwrap()();
        joins.next().unwrap()();
        drop(tx);
        for j in joins {
            j();
        }
        let total: u64 = (1..=2 * n).sum();
        assert_eq!(
            received.load(Ordering::Relaxed) + returned.load(Ordering::Relaxed),
            total,
            "cap {cap:?}: a value was lost or duplicated"
        );
        assert_eq!(
            recv_count.load(Ordering::Relaxed) + ret_count.load(Ordering::Relaxed),
            2 * n
        );
    }
}

/// Close races with blocked and arriving senders: every value is received or handed back.
#[test]
fn close_races_with_senders() {
    goro::gomaxprocs(2);

    for cap in CAPS {
        for round in 0..300u64 {
            let (tx, rx) = make(cap);
            let got = Arc::new(Mutex::new(Vec::new()));
            let back = Arc::new(Mutex::new(Vec::new()));
            let mut joins = Vec::new();
            for p in 0..3u64 {
                let tx = tx.clone();
                let back = back.clone();
                joins.push(start((p + round) % 2 == 0, move || {
                    for i in 0..20 {
                        if let Err(e) = tx.send(p * 100 + i) {
                            back.lock().unwrap().push(e.into_inner());
                        }
                    }
                }));
            }
            let rx2 = rx.clone();
            let g = got.clone();
            let r = start(round % 2 == 1, move || {
                for v in rx2.iter() {
                    g.lock().unwrap().push(v);
                }
            });
            // Close after a few values (from the receiving side on odd rounds).
            // (The other receiver may take everything: then stop waiting and close anyway.)
            for _ in 0..5 {
                match rx.recv_timeout(Duration::from_millis(5)) {
                    Ok(v) => got.lock().unwrap().push(v),
                    Err(_) => break,
                }
            }
            let closed = if round % 2 == 0 {
                tx.close()
            } else {
                rx.close()
            };
            assert!(closed);
            assert!(!tx.close());
            drop(tx);
            for j in joins {
                j();
            }
            // Drain what is left in the buffer.
            for v in rx.try_iter() {
                got.lock().unwrap().push(v);
            }
            drop(rx);
            r();
            let mut all: Vec<u64> = got.lock().unwrap().clone();
            all.extend(back.lock().unwrap().iter());
            let set: HashSet<u64> = all.iter().copied().collect();
            assert_eq!(set.len(), all.len(), "cap {cap:?}: duplicated value");
            assert_eq!(all.len(), 60, "cap {cap:?}: lost value");
        }
    }
}

/// Losing select cases never consume a value: many selectors over several channels, mixed
/// with plain receivers and select send cases; the totals must match.
#[test]
fn select_losers_never_lose_values() {
    goro::gomaxprocs(2);
    for cap in CAPS {
        let chans: Vec<_> = (0..3).map(|_| make(cap)).collect();
        let n = 1500u64;
        let sum = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let mut joins = Vec::new();
        // Producers: some via plain send, some via select send over all channels.
        for p in 0..3u64 {
            let txs: Vec<Sender<u64>> = chans.iter().map(|c| c.0.clone()).collect();
            joins.push(start(p % 2 == 0, move || {
                for i in 0..n {
                    let v = p * n + i + 1;
                    if p == 2 {
                        goro::select! {
                            send(txs[0], v) -> r => r.unwrap(),
                            send(txs[1], v) -> r => r.unwrap(),
                            send(txs[2], v) -> r => r.unwrap(),
                        }
                    } else {
                        txs[(i % 3) as usize].send(v).unwrap();
                    }
                }
            }));
        }
        let producers = joins.len();
        for c in 0..3u64 {
            let rxs: Vec<Receiver<u64>> = chans.iter().map(|c| c.1.clone()).collect();
            let (sum, count) = (sum.clone(), count.clone());
            joins.push(start(c != 1, move || {
                let mut open = 3;
                let mut alive = [true; 3];
                while open > 0 {
                    let got = if c == 0 {
                        // plain receiver with a timeout on one channel at a time
                        let k = (count.load(Ordering::Relaxed) % 3) as usize;
                        if !alive[k] {
                            alive
                                .iter()
                                .position(|a| *a)
                                .map(|k| (k, rxs[k].recv_timeout(Duration::from_micros(100))))
                        } else {
                            Some((k, rxs[k].recv_timeout(Duration::from_micros(100))))
                        }
                        .map(|(k, r)| (k, r.map_err(|e| e.is_disconnected())))
                    } else {
                        let r = goro::select! {
                            recv(rxs[0]) -> m => (0, m.map_err(|_| true)),
                            recv(rxs[1]) -> m => (1, m.map_err(|_| true)),
                            recv(rxs[2]) -> m => (2, m.map_err(|_| true)),
                            default(Duration::from_micros(200)) => (9, Err(false)),
                        };
                        Some(r)
                    };
                    match got {
                        Some((_, Ok(v))) => {
                            sum.fetch_add(v, Ordering::Relaxed);
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Some((k, Err(true))) if k < 3 => {
                            if alive[k] {
                                alive[k] = false;
                                open -= 1;
                            }
                            if c != 0 && open > 0 {
                                // a select keeps hitting the closed channel: finish with recv on the others
                                for (j, a) in alive.iter().enumerate() {
                                    if *a {
                                        for v in rxs[j].iter() {
                                            sum.fetch_add(v, Ordering::Relaxed);
                                            count.fetch_add(1, Ordering::Relaxed);
                                        }
                                    }
                                }
                                return;
                            }
                        }
                        _ => {}
                    }
                }
            }));
        }
        drop(chans);
        let mut it = joins.into_iter();
        let prods: Vec<_> = (0..producers).map(|_| it.next().unwrap()).collect();
        for p in prods {
            p();
        }
        // Producers' senders dropped when they finished: channels close, receivers drain.
        for j in it {
            j();
        }
        let total: u64 = (1..=3 * n).sum();
        assert_eq!(count.load(Ordering::Relaxed), 3 * n, "cap {cap:?}");
        assert_eq!(sum.load(Ordering::Relaxed), total, "cap {cap:?}");
    }
}

/// Ping-pong on rendezvous channels between a coroutine and a thread, many rounds.
#[test]
fn rendezvous_pingpong_coroutine_thread() {
    goro::gomaxprocs(2);
    let (a_tx, a_rx) = bounded::<u64>(0);
    let (b_tx, b_rx) = bounded::<u64>(0);
    let h = goro::spawn(move || {
        for v in a_rx.iter() {
            b_tx.send(v + 1).unwrap();
        }
    });
    for i in 0..20_000 {
        a_tx.send(i).unwrap();
        assert_eq!(b_rx.recv(), Ok(i + 1));
    }
    drop(a_tx);
    h.join().unwrap();
}

/// Coroutines blocked in `select!` park: 10,000 of them cost no worker, other coroutines keep
/// running, and one close releases them all.
#[test]
fn blocked_selects_cost_no_worker() {
    goro::gomaxprocs(2);
    let (quit_tx, quit_rx) = bounded::<()>(0);
    let (_never_tx, never_rx) = bounded::<u64>(0);
    let released = Arc::new(AtomicUsize::new(0));
    let mut hs = Vec::new();
    for _ in 0..10_000 {
        let (q, n, released) = (quit_rx.clone(), never_rx.clone(), released.clone());
        hs.push(goro::spawn(move || {
            goro::select! {
                recv(n) -> _ => panic!("nothing is sent"),
                recv(q) -> r => assert!(r.is_err()),
            }
            released.fetch_add(1, Ordering::Relaxed);
        }));
    }
    // With every one of them blocked, a ping-pong between two more coroutines still runs.
    let (a_tx, a_rx) = bounded::<u64>(0);
    let (b_tx, b_rx) = bounded::<u64>(0);
    let echo = goro::spawn(move || {
        for v in a_rx.iter() {
            b_tx.send(v).unwrap();
        }
    });
    let pinger = goro::spawn(move || {
        for i in 0..10_000 {
            a_tx.send(i).unwrap();
            assert_eq!(b_rx.recv().unwrap(), i);
        }
    });
    pinger.join().unwrap();
    echo.join().unwrap();
    assert_eq!(released.load(Ordering::Relaxed), 0);
    assert!(quit_tx.close());
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(released.load(Ordering::Relaxed), 10_000);
}
