//! Rust ports of the classic programs in Go's `test/chan` directory (sieve, powser (reduced),
//! doubleselect, fifo, goroutines, nonblock, perm, select2–select7, sendstmt, zerosize), plus
//! two seed patterns: an alternating printer with 1-slot channels as semaphores, and a closed
//! channel as a broadcast exit signal. Each program runs on coroutines (`on_goro`), with
//! plain threads mixed in where that adds coverage.

use goro::chan::{self, bounded, never, unbounded, Receiver, Select, Sender};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Live heap bytes, for select2's "select does not leak" check.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Run `f` as a coroutine and wait for it (Go's main goroutine).
fn on_goro<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    goro::gomaxprocs(2);
    goro::spawn(f).join().expect("coroutine panicked")
}

// ---- sieve1.go: the concurrent prime sieve ----

fn generate(ch: Sender<u32>) {
    let mut i = 2;
    while ch.send(i).is_ok() {
        i += 1;
    }
}

fn filter(input: Receiver<u32>, out: Sender<u32>, prime: u32) {
    for i in input.iter() {
        if i % prime != 0 && out.send(i).is_err() {
            return;
        }
    }
}

#[test]
fn sieve() {
    let primes = on_goro(|| {
        let (tx, mut rx) = bounded(0);
        goro::go!(move || generate(tx));
        let mut out = Vec::new();
        for _ in 0..100 {
            let prime = rx.recv().unwrap();
            out.push(prime);
            let (tx1, rx1) = bounded(0);
            goro::go!(move || filter(rx, tx1, prime));
            rx = rx1;
        }
        out // dropping the last receiver unwinds the whole chain
    });
    let want: Vec<u32> = (2..)
        .filter(|n| (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0))
        .take(100)
        .collect();
    assert_eq!(primes, want);
}

// ---- sieve2.go spirit: the sieve with buffered channels and a shared done signal ----

#[test]
fn sieve_buffered_with_close() {
    let n = on_goro(|| {
        let (tx, mut rx) = bounded(16);
        goro::go!(move || {
            for i in 2..2000u32 {
                tx.send(i).unwrap();
            }
            // tx dropped: the chain drains and closes stage by stage
        });
        let mut count = 0;
        while let Ok(prime) = rx.recv() {
            count += 1;
            let (tx1, rx1) = bounded(16);
            goro::go!(move || filter(rx, tx1, prime));
            rx = rx1;
        }
        count
    });
    assert_eq!(n, 303); // primes below 2000
}

// ---- powser1.go, reduced: power series as streams of coefficients over channels ----

type Series = Receiver<i64>;

fn ones(n: usize) -> Series {
    let (tx, rx) = bounded(0);
    goro::go!(move || {
        for _ in 0..n {
            if tx.send(1).is_err() {
                return;
            }
        }
    });
    rx
}

fn add(f: Series, g: Series) -> Series {
    let (tx, rx) = bounded(0);
    goro::go!(move || {
        while let (Ok(a), Ok(b)) = (f.recv(), g.recv()) {
            if tx.send(a + b).is_err() {
                return;
            }
        }
    });
    rx
}

fn cmul(c: i64, f: Series) -> Series {
    let (tx, rx) = bounded(0);
    goro::go!(move || {
        for a in f.iter() {
            if tx.send(c * a).is_err() {
                return;
            }
        }
    });
    rx
}

/// Copy one series into two (Go's `Split`), using select to serve whichever reader is ready.
fn split(f: Series) -> (Series, Series) {
    let (t1, r1) = bounded(0);
    let (t2, r2) = bounded(0);
    goro::go!(move || {
        for a in f.iter() {
            // Send to both, in whichever order the readers come.
            let first = goro::select! {
                send(t1, a) -> r => { r.unwrap(); 1 },
                send(t2, a) -> r => { r.unwrap(); 2 },
            };
            let r = if first == 1 { t2.send(a) } else { t1.send(a) };
            r.unwrap();
        }
    });
    (r1, r2)
}

/// Product of two series: c_n = sum_{k<=n} f_k g_{n-k}.
fn mul(f: Series, g: Series) -> Series {
    let (tx, rx) = bounded(0);
    goro::go!(move || {
        let (mut fs, mut gs) = (Vec::new(), Vec::new());
        while let (Ok(a), Ok(b)) = (f.recv(), g.recv()) {
            fs.push(a);
            gs.push(b);
            let n = fs.len() - 1;
            let c: i64 = (0..=n).map(|k| fs[k] * gs[n - k]).sum();
            if tx.send(c).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn powser_reduced() {
    let (a, b, c) = on_goro(|| {
        const N: usize = 12;
        // 1/(1-x) + 1/(1-x) = 2/(1-x)
        let a: Vec<i64> = add(ones(N), ones(N)).iter().collect();
        // 1/(1-x)^2 = sum (n+1) x^n
        let (x, y) = split(ones(N));
        let b: Vec<i64> = mul(x, y).iter().collect();
        // 3 * 1/(1-x)^3 coefficients: 3 * (n+1)(n+2)/2
        let c: Vec<i64> = cmul(3, mul(mul(ones(N), ones(N)), ones(N)))
            .iter()
            .collect();
        (a, b, c)
    });
    assert_eq!(a, vec![2; 12]);
    assert_eq!(b, (1..=12).collect::<Vec<i64>>());
    assert_eq!(
        c,
        (0..12)
            .map(|n| 3 * (n + 1) * (n + 2) / 2)
            .collect::<Vec<i64>>()
    );
}

// ---- doubleselect.go: a value sent by a select must not be received twice ----

#[test]
fn doubleselect() {
    const N: u32 = 20_000;
    on_goro(|| {
        let chans: Vec<_> = (0..4).map(|_| bounded::<u32>(0)).collect();
        let txs: Vec<Sender<u32>> = chans.iter().map(|c| c.0.clone()).collect();
        goro::go!(move || {
            for i in 0..N {
                goro::select! {
                    send(txs[0], i) -> r => r.unwrap(),
                    send(txs[1], i) -> r => r.unwrap(),
                    send(txs[2], i) -> r => r.unwrap(),
                    send(txs[3], i) -> r => r.unwrap(),
                }
            }
            // dropping the senders closes c1..c4
        });
        let (cmux, rmux) = bounded::<u32>(0);
        let (done_tx, done_rx) = bounded::<bool>(0);
        for (k, (_, rx)) in chans.into_iter().enumerate() {
            let out = cmux.clone();
            let done = done_tx.clone();
            let body = move || {
                for v in rx.iter() {
                    out.send(v).unwrap();
                }
                done.send(true).unwrap();
            };
            // mix coroutines and threads as muxers
            if k % 2 == 0 {
                goro::go!(body);
            } else {
                std::thread::spawn(body);
            }
        }
        drop(cmux);
        goro::go!(move || {
            for _ in 0..4 {
                done_rx.recv().unwrap();
            }
            // every muxer is done and dropped its `out`: cmux is closed by now
        });
        let mut seen = HashSet::new();
        for v in rmux.iter() {
            assert!(seen.insert(v), "got duplicate value {v}");
        }
        assert_eq!(seen.len(), N as usize);
    });
}

// ---- fifo.go: channels are FIFO, buffered and through a chain of synchronous hand-offs ----

#[test]
fn fifo() {
    on_goro(|| {
        const N: i32 = 10;
        // AsynchFifo
        let (tx, rx) = bounded(N as usize);
        for i in 0..N {
            tx.send(i).unwrap();
        }
        for i in 0..N {
            assert_eq!(rx.recv().unwrap(), i, "bad receive");
        }
        // SynchFifo: each link waits for its predecessor, then checks its value.
        let (ch_tx, ch_rx) = bounded::<i32>(0);
        let (first_tx, mut inp) = bounded::<i32>(0);
        for i in 0..N {
            let (out_tx, out_rx) = bounded::<i32>(0);
            let ch = ch_rx.clone();
            let link_in = inp;
            goro::go!(move || {
                link_in.recv().unwrap();
                assert_eq!(ch.recv().unwrap(), i, "bad chain value");
                out_tx.send(1).unwrap();
            });
            inp = out_rx;
        }
        first_tx.send(0).unwrap();
        for i in 0..N {
            ch_tx.send(i).unwrap();
        }
        inp.recv().unwrap();
    });
}

// ---- goroutines.go: a long chain of coroutines passing one value ----

#[test]
fn goroutines_chain() {
    let v = on_goro(|| {
        const N: usize = 10_000;
        let (leftmost_tx, leftmost_rx) = bounded::<i32>(0);
        let mut left = leftmost_tx;
        let mut right_rx_last = None;
        for _ in 0..N {
            let (right_tx, right_rx) = bounded::<i32>(0);
            let l = left;
            let r = right_rx.clone();
            goro::go!(move || {
                let v = r.recv().unwrap();
                l.send(v).unwrap();
            });
            left = right_tx;
            right_rx_last = Some(right_rx);
        }
        drop(right_rx_last);
        let right = left;
        goro::go!(move || right.send(1).unwrap());
        leftmost_rx.recv().unwrap()
    });
    assert_eq!(v, 1);
}

// ---- nonblock.go: non-blocking sends and receives against blocked partners ----

#[test]
fn nonblock() {
    on_goro(|| {
        const MAX_TRIES: usize = 10_000;
        for buffer in [0usize, 1, 10] {
            // receiver side: a blocked sender must eventually be found by try_recv
            let (tx, rx) = bounded::<i32>(buffer);
            let (sync_tx, sync_rx) = bounded::<bool>(0);
            goro::go!(move || {
                tx.send(123).unwrap();
                sync_tx.send(true).unwrap();
            });
            let mut ok = false;
            for _ in 0..MAX_TRIES {
                if let Ok(v) = rx.try_recv() {
                    assert_eq!(v, 123);
                    ok = true;
                    break;
                }
                goro::gosched();
            }
            assert!(ok, "nonblock recv never succeeded (buffer {buffer})");
            sync_rx.recv().unwrap();

            // sender side: a blocked receiver must eventually accept try_send
            let (tx, rx) = bounded::<i32>(buffer);
            let (sync_tx, sync_rx) = bounded::<bool>(0);
            goro::go!(move || {
                assert_eq!(rx.recv().unwrap(), 456);
                sync_tx.send(true).unwrap();
            });
            let mut ok = false;
            for _ in 0..MAX_TRIES {
                if tx.try_send(456).is_ok() {
                    ok = true;
                    break;
                }
                goro::gosched();
            }
            assert!(ok, "nonblock send never succeeded (buffer {buffer})");
            sync_rx.recv().unwrap();

            // select with default, both directions
            let (tx, rx) = bounded::<i32>(buffer);
            let r = goro::select! { recv(rx) -> _ => 1, default => 0 };
            assert_eq!(r, 0, "recv on empty channel must not be ready");
            let s = goro::select! { send(tx, 1) -> _ => 1, default => 0 };
            assert_eq!(s, if buffer > 0 { 1 } else { 0 });
        }
    });
}

// ---- perm.go: channel directions. Go checks at compile time that a send-only channel cannot
// be received from; in goro the direction is the type (`Sender` has no `recv`, `Receiver` no
// `send`), so the port checks the run-time half: each end works alone through its own type. ----

fn send_only(c: &Sender<i32>) {
    c.send(1).unwrap();
}

fn recv_only(c: &Receiver<i32>) -> i32 {
    c.recv().unwrap()
}

#[test]
fn perm() {
    let (tx, rx) = bounded(1);
    send_only(&tx);
    assert_eq!(recv_only(&rx), 1);
    // A select over a receive-only and a send-only end.
    let mut sel = Select::new();
    let si = sel.send(&tx);
    let ri = sel.recv(&rx);
    let op = sel.select();
    assert_eq!(op.index(), si, "only the send can be ready");
    op.send(&tx, 2).unwrap();
    let op = sel.select();
    if op.index() == ri {
        assert_eq!(op.recv(&rx), Ok(2));
    } else {
        panic!("full channel: only the receive can be ready");
    }
}

// ---- select2.go: a long run of selects does not leak memory ----

#[test]
fn select2_no_leak() {
    on_goro(|| {
        let run = |n: u32| {
            let (tx, rx) = bounded::<u32>(0);
            let (_dtx, dummy) = bounded::<u32>(0);
            goro::go!(move || {
                for i in 0..n {
                    tx.send(i).unwrap();
                }
            });
            for _ in 0..n {
                goro::select! {
                    recv(rx) -> v => { v.unwrap(); },
                    recv(dummy) -> _ => panic!("dummy"),
                }
            }
        };
        run(10_000); // warm up (stacks, pools, queues)
        let before = LIVE.load(Ordering::Relaxed);
        run(100_000);
        let after = LIVE.load(Ordering::Relaxed);
        // Other tests allocate concurrently; only a large growth means a leak.
        assert!(
            after - before < 2_000_000,
            "select leaked {} bytes",
            after - before
        );
    });
}

// ---- select3.go: which operations block and which do not ----

/// Check whether `f` blocks (does not finish within a generous grace time).
fn blocks(f: impl FnOnce() + Send + 'static) -> bool {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    goro::go!(move || {
        f();
        d.store(true, Ordering::SeqCst);
    });
    // time is the feature here: "does not complete within 50 ms"
    goro::time::sleep(Duration::from_millis(50));
    !done.load(Ordering::SeqCst)
}

#[test]
fn select3_blocking_rules() {
    on_goro(|| {
        // a never (nil) channel blocks receives, alone and in select
        assert!(blocks(|| {
            let _ = never::<i32>().recv();
        }));
        assert!(blocks(|| {
            let n = never::<i32>();
            goro::select! { recv(n) -> _ => {} }
        }));
        // an empty select blocks
        assert!(blocks(|| {
            goro::select! {}
        }));
        // unbuffered: send and receive block without a partner
        assert!(blocks(|| {
            let (tx, _rx) = bounded::<i32>(0);
            let _ = tx.send(1);
        }));
        assert!(blocks(|| {
            let (_tx, rx) = bounded::<i32>(0);
            let _ = rx.recv();
        }));
        // buffered: send does not block while there is room, receive blocks when empty
        assert!(!blocks(|| {
            let (tx, _rx) = bounded::<i32>(1);
            tx.send(1).unwrap();
        }));
        assert!(blocks(|| {
            let (tx, _rx) = bounded::<i32>(1);
            tx.send(1).unwrap();
            let _ = tx.send(2);
        }));
        // a closed channel never blocks receives (alone and in select) nor sends (they fail)
        assert!(!blocks(|| {
            let (tx, rx) = bounded::<i32>(0);
            tx.close();
            assert!(rx.recv().is_err());
            goro::select! { recv(rx) -> r => assert!(r.is_err()) }
            assert!(tx.send(1).is_err());
            goro::select! { send(tx, 1) -> r => assert!(r.is_err()) }
        }));
        // select with default never blocks
        assert!(!blocks(|| {
            let (_tx, rx) = bounded::<i32>(0);
            let n = never::<i32>();
            goro::select! { recv(rx) -> _ => panic!(), recv(n) -> _ => panic!(), default => {} }
        }));
    });
}

// ---- select4.go: a select proceeds when a value is ready ----

#[test]
fn select4() {
    let (tx, rx) = bounded::<i32>(1);
    let (_tx1, rx1) = bounded::<i32>(0);
    tx.send(42).unwrap();
    goro::select! {
        recv(rx1) -> _ => panic!("BUG"),
        recv(rx) -> v => assert_eq!(v, Ok(42)),
    }
}

// ---- select5.go (the generated evaluation-order tests), in spirit: channel expressions are
// evaluated exactly once, in order; a send value only for the chosen case (goro's and
// crossbeam's rule, stricter than Go's). ----

#[test]
fn select5_evaluation_order() {
    let order = std::cell::RefCell::new(Vec::new());
    let (tx, rx) = bounded::<i32>(1);
    let (tx2, _rx2) = bounded::<i32>(0);
    tx.send(5).unwrap();
    let mark = |s: &'static str| order.borrow_mut().push(s);
    goro::select! {
        recv({ mark("c1"); &rx }) -> v => { mark("body1"); assert_eq!(v, Ok(5)); },
        send({ mark("c2"); &tx2 }, { mark("v2"); 1 }) -> _ => mark("body2"),
    }
    assert_eq!(*order.borrow(), vec!["c1", "c2", "body1"]);
    // A chosen send evaluates its value.
    order.borrow_mut().clear();
    goro::select! {
        recv({ mark("c1"); &rx }) -> _ => mark("body1"),
        send({ mark("c2"); &tx }, { mark("v2"); 1 }) -> r => { r.unwrap(); mark("body2"); },
    }
    assert_eq!(*order.borrow(), vec!["c1", "c2", "v2", "body2"]);
}

// ---- select6.go (issue 2075): a select must not corrupt the wait queues of its failed cases ----

#[test]
fn select6() {
    on_goro(|| {
        for _ in 0..200 {
            let (c1t, c1r) = bounded::<bool>(0);
            let (c2t, c2r) = bounded::<bool>(0);
            let (c3t, c3r) = bounded::<bool>(0);
            let r = c1r.clone();
            goro::go!(move || {
                r.recv().unwrap();
            });
            let r = c1r.clone();
            goro::go!(move || {
                goro::select! {
                    recv(r) -> _ => panic!("dummy"),
                    recv(c2r) -> _ => c3t.send(true).unwrap(),
                }
                r.recv().unwrap();
            });
            goro::go!(move || c2t.send(true).unwrap());
            c3r.recv().unwrap();
            c1t.send(true).unwrap();
            c1t.send(true).unwrap();
        }
    });
}

// ---- select7.go: sends and receives, plain and through selects, discarding the value ----

#[test]
fn select7() {
    on_goro(|| {
        type Recv = fn(&Receiver<i32>);
        type Send = fn(&Sender<i32>);
        let recv1: Recv = |c| {
            let _ = c.recv();
        };
        let recv2: Recv = |c| goro::select! { recv(c) -> _ => {} };
        let recv3: Recv = |c| {
            let (_t, c2) = bounded::<i32>(0);
            goro::select! { recv(c) -> _ => {}, recv(c2) -> _ => {} }
        };
        let send1: Send = |c| c.send(1).unwrap();
        let send2: Send = |c| goro::select! { send(c, 1) -> _ => {} };
        let send3: Send = |c| {
            let (c2, _r) = bounded::<i32>(0);
            goro::select! { send(c, 1) -> _ => {}, send(c2, 1) -> _ => {} }
        };
        for r in [recv1, recv2, recv3] {
            for s in [send1, send2, send3] {
                // send in a coroutine, receive here; then the other way round
                let (tx, rx) = bounded::<i32>(0);
                let h = goro::spawn(move || s(&tx));
                r(&rx);
                h.join().unwrap();
                let (tx, rx) = bounded::<i32>(0);
                let h = goro::spawn(move || r(&rx));
                s(&tx);
                h.join().unwrap();
            }
        }
    });
}

// ---- sendstmt.go: sends in statement positions, and values flowing through ----

#[test]
fn sendstmt() {
    on_goro(|| {
        let (tx, rx) = bounded::<i32>(1);
        let (tx2, rx2) = bounded::<i32>(1);
        tx.send(2).unwrap();
        let v = rx.recv().unwrap();
        tx2.send(v * 2).unwrap();
        assert_eq!(rx2.recv(), Ok(4));
        // a send as the body of a select arm, and a select inside a closure
        let f = |c: &Sender<i32>, x| goro::select! { send(c, x) -> r => r.is_ok() };
        assert!(f(&tx, 7));
        let got = goro::select! { recv(rx) -> v => { tx2.send(v.unwrap() + 1).unwrap(); rx2.recv().unwrap() } };
        assert_eq!(got, 8);
    });
}

// ---- zerosize.go: channels of zero-sized values ----

#[test]
fn zerosize() {
    on_goro(|| {
        let (t0, r0) = bounded::<()>(0);
        let (t1, r1) = bounded::<[u8; 0]>(4);
        let (t2, r2) = unbounded::<()>();
        goro::go!(move || {
            for _ in 0..100 {
                t0.send(()).unwrap();
                t1.send([]).unwrap();
                t2.send(()).unwrap();
            }
        });
        for _ in 0..100 {
            r0.recv().unwrap();
            r1.recv().unwrap();
            r2.recv().unwrap();
        }
        assert!(r0.recv().is_err() && r1.recv().is_err() && r2.recv().is_err());
    });
}

// ---- seed pattern 1: two coroutines take turns printing, 1-slot channels as semaphores ----

#[test]
fn alternating_printer() {
    let out = on_goro(|| {
        let (ch1_tx, ch1_rx) = bounded::<()>(1);
        let (ch2_tx, ch2_rx) = bounded::<()>(1);
        let (out_tx, out_rx) = unbounded::<i32>();
        let a_out = out_tx.clone();
        let a_next = ch2_tx;
        let b_next = ch1_tx.clone();
        let a = goro::spawn(move || {
            for i in (0..10).step_by(2) {
                ch1_rx.recv().unwrap();
                a_out.send(i).unwrap();
                a_next.send(()).unwrap();
            }
        });
        let b = goro::spawn(move || {
            for i in (1..10).step_by(2) {
                ch2_rx.recv().unwrap();
                out_tx.send(i).unwrap();
                let _ = b_next.send(());
            }
        });
        ch1_tx.send(()).unwrap(); // ch1 <- struct{}{} starts it
        a.join().unwrap();
        b.join().unwrap();
        out_rx.iter().collect::<Vec<_>>()
    });
    assert_eq!(out, (0..10).collect::<Vec<_>>());
}

// ---- seed pattern 2: closing a channel broadcasts "exit" to every waiter ----

#[test]
fn closed_channel_broadcast_exit() {
    let n = on_goro(|| {
        let (quit_tx, quit_rx) = bounded::<()>(0);
        let (work_tx, work_rx) = bounded::<u32>(0);
        let exited = Arc::new(AtomicUsize::new(0));
        let mut hs = Vec::new();
        for k in 0..50 {
            let quit = quit_rx.clone();
            let work = work_rx.clone();
            let exited = exited.clone();
            let body = move || loop {
                goro::select! {
                    recv(work) -> _ => {},
                    recv(quit) -> r => {
                        assert!(r.is_err(), "quit is only ever closed");
                        exited.fetch_add(1, Ordering::SeqCst);
                        return;
                    },
                }
            };
            if k % 10 == 0 {
                let h = std::thread::spawn(body);
                hs.push(Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() + Send>);
            } else {
                let h = goro::spawn(body);
                hs.push(Box::new(move || h.join().unwrap()));
            }
        }
        for i in 0..1000 {
            work_tx.send(i).unwrap();
        }
        assert!(quit_tx.close());
        for h in hs {
            h();
        }
        exited.load(Ordering::SeqCst)
    });
    assert_eq!(n, 50);
}

#[test]
fn after_as_timeout_in_loop() {
    // Go's `case <-time.After(d)` in a loop: only the timeout arm fires when nothing arrives.
    let (_tx, rx) = bounded::<i32>(0);
    let mut timeouts = 0;
    for _ in 0..5 {
        goro::select! {
            recv(rx) -> _ => panic!("nothing is sent"),
            recv(chan::after(Duration::from_millis(2))) -> _ => timeouts += 1,
        }
    }
    assert_eq!(timeouts, 5);
}
