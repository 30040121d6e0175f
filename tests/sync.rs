//! goro::sync: behaviour on coroutines and plain threads, mixed, on 2 workers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::sync::{Condvar, Mutex, Once, Pool, RwLock, Semaphore, WaitGroup};

/// Run `n_co` coroutines and `n_th` plain threads of `f(i)`, and wait for all of them.
fn mixed(n_co: usize, n_th: usize, f: impl Fn(usize) + Send + Sync + 'static) {
    goro::gomaxprocs(2);
    let f = Arc::new(f);
    let cos: Vec<_> = (0..n_co)
        .map(|i| {
            let f = f.clone();
            goro::spawn(move || f(i))
        })
        .collect();
    let ths: Vec<_> = (0..n_th)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || f(n_co + i))
        })
        .collect();
    for h in cos {
        h.join().unwrap();
    }
    for h in ths {
        h.join().unwrap();
    }
}

#[test]
fn mutex_excludes_and_counts() {
    let m = Arc::new(Mutex::new(0u64));
    let inside = Arc::new(AtomicBool::new(false));
    let (m2, in2) = (m.clone(), inside.clone());
    mixed(40, 4, move |_| {
        for i in 0..2_000 {
            let mut g = m2.lock();
            assert!(!in2.swap(true, Relaxed), "two holders at once");
            *g += 1;
            if i % 64 == 0 {
                goro::gosched(); // hold it across a yield now and then
            }
            in2.store(false, Relaxed);
        }
    });
    assert_eq!(*m.lock(), 44 * 2_000);
    let m = Arc::try_unwrap(m).ok().unwrap();
    assert_eq!(m.into_inner(), 88_000);
}

#[test]
fn mutex_try_lock_get_mut_and_panic_unlocks() {
    let mut m = Mutex::new(vec![1]);
    {
        let g = m.lock();
        assert!(m.try_lock().is_none());
        assert!(m.is_locked());
        drop(g);
    }
    m.try_lock().unwrap().push(2);
    m.get_mut().push(3);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = m.lock();
        panic!("boom");
    }));
    assert!(r.is_err());
    // No poisoning: the panic simply unlocked.
    assert_eq!(*m.lock(), vec![1, 2, 3]);
    assert_eq!(format!("{:?}", m), "Mutex { data: [1, 2, 3], .. }");
}

#[test]
fn mutex_waiter_parks_coroutine_not_worker() {
    // With ONE worker, a coroutine blocked in lock() must let the holder (another coroutine on
    // the same worker) run and release.
    goro::run(|| {
        let prev = goro::gomaxprocs(1);
        let m = Arc::new(Mutex::new(0));
        let g = m.lock();
        let m2 = m.clone();
        let h = goro::spawn(move || *m2.lock() + 1);
        goro::gosched(); // let it block on the lock
        drop(g);
        assert_eq!(h.join().unwrap(), 1);
        goro::gomaxprocs(prev);
    });
}

#[test]
fn mutex_cannot_starve_a_waiter() {
    // Two hogs re-lock in a tight loop; a third party must still get the lock every time,
    // within a bound far below "forever" (starvation mode hands it over after ~1 ms).
    goro::gomaxprocs(2);
    let m = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let (m, stop) = (m.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    let mut g = m.lock();
                    *g += 1;
                    for _ in 0..50 {
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    for _ in 0..200 {
        let t = Instant::now();
        drop(m.lock());
        worst = worst.max(t.elapsed());
    }
    stop.store(true, Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    assert!(worst < Duration::from_millis(500), "waited {worst:?}");
}

#[test]
fn mutex_stress_handoffs() {
    // Many short critical sections with yields inside, to push waiters past the 1 ms threshold
    // and exercise starvation-mode hand-off, mixed with plain threads.
    for _round in 0..3 {
        let m = Arc::new(Mutex::new(0u64));
        let m2 = m.clone();
        mixed(100, 3, move |i| {
            for _ in 0..500 {
                let mut g = m2.lock();
                *g += 1;
                if i % 3 == 0 {
                    goro::gosched();
                }
            }
        });
        assert_eq!(*m.lock(), 103 * 500);
    }
}

#[test]
fn rwlock_readers_share_writer_excludes() {
    let l = RwLock::new(5);
    let r1 = l.read();
    let r2 = l.try_read().expect("readers share");
    assert_eq!(*r1 + *r2, 10);
    assert!(l.try_write().is_none());
    drop((r1, r2));
    let mut w = l.try_write().unwrap();
    *w = 6;
    assert!(l.try_read().is_none());
    drop(w);
    let mut l = l;
    *l.get_mut() += 1;
    assert_eq!(l.into_inner(), 7);
}

#[test]
fn rwlock_stress_invariant() {
    // Writers keep the two halves equal; readers must never see them differ.
    let l = Arc::new(RwLock::new((0u64, 0u64)));
    let l2 = l.clone();
    mixed(60, 4, move |i| {
        for k in 0..1_000 {
            if (i + k) % 8 == 0 {
                let mut w = l2.write();
                w.0 += 1;
                if k % 16 == 0 {
                    goro::gosched();
                }
                w.1 += 1;
            } else {
                let r = l2.read();
                assert_eq!(r.0, r.1);
            }
        }
    });
    let g = l.read();
    assert_eq!(g.0, g.1);
    assert_eq!(
        g.0,
        (0..64usize)
            .map(|i| (0..1_000).filter(|k| (i + k) % 8 == 0).count() as u64)
            .sum()
    );
}

#[test]
fn rwlock_writer_not_starved_by_overlapping_readers() {
    // Readers overlap continuously (there is always at least one inside); a writer must still
    // get in, because new readers queue behind a waiting writer.
    let l = Arc::new(RwLock::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (l, stop) = (l.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    let g = l.read();
                    for _ in 0..200 {
                        std::hint::spin_loop();
                    }
                    n += *g;
                }
                n
            })
        })
        .collect();
    for i in 0..100 {
        let t = Instant::now();
        *l.write() = i;
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "writer waited {:?}",
            t.elapsed()
        );
    }
    stop.store(true, Relaxed);
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn rwlock_readers_not_starved_by_writer_stream() {
    // Writers queue back to back; a reader must still get in every time, because a writer's
    // unlock admits the readers that queued meanwhile before the next writer.
    let l = Arc::new(RwLock::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (l, stop) = (l.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    let mut g = l.write();
                    *g += 1;
                    for _ in 0..200 {
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    let h = goro::spawn({
        let l = l.clone();
        move || {
            let mut worst = Duration::ZERO;
            for _ in 0..200 {
                let t = Instant::now();
                drop(l.read());
                worst = worst.max(t.elapsed());
            }
            worst
        }
    });
    let worst = h.join().unwrap();
    stop.store(true, Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(
        worst < Duration::from_millis(500),
        "reader waited {worst:?}"
    );
}

#[test]
fn condvar_producer_consumer_mixed() {
    let pair = Arc::new((Mutex::new(Vec::<u64>::new()), Condvar::new()));
    let total = Arc::new(AtomicUsize::new(0));
    let done_producers = Arc::new(AtomicUsize::new(0));
    const PRODUCERS: usize = 10;
    const ITEMS: u64 = 1_000;
    let consumers: Vec<_> = (0..4)
        .map(|i| {
            let (pair, total, dp) = (pair.clone(), total.clone(), done_producers.clone());
            let body = move || loop {
                let (m, cv) = &*pair;
                let mut q = m.lock();
                loop {
                    if let Some(v) = q.pop() {
                        total.fetch_add(v as usize, Relaxed);
                        break;
                    }
                    if dp.load(SeqCst) == PRODUCERS {
                        return;
                    }
                    q = cv.wait(q);
                }
            };
            if i % 2 == 0 {
                either::Co(goro::spawn(body))
            } else {
                either::Th(std::thread::spawn(body))
            }
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let pair = pair.clone();
            goro::spawn(move || {
                for v in 1..=ITEMS {
                    pair.0.lock().push(v);
                    pair.1.notify_one();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    {
        let _g = pair.0.lock();
        done_producers.store(PRODUCERS, SeqCst);
    }
    pair.1.notify_all();
    for c in consumers {
        c.join();
    }
    assert_eq!(
        total.load(Relaxed) as u64,
        PRODUCERS as u64 * ITEMS * (ITEMS + 1) / 2
    );
    assert!(pair.0.lock().is_empty());
}

mod either {
    pub enum J {
        Co(goro::JoinHandle<()>),
        Th(std::thread::JoinHandle<()>),
    }
    pub use J::*;
    impl J {
        pub fn join(self) {
            match self {
                Co(h) => h.join().unwrap(),
                Th(h) => h.join().unwrap(),
            }
        }
    }
}

#[test]
fn condvar_wait_timeout_and_notify_all() {
    let m = Mutex::new(());
    let cv = Condvar::new();
    let t = Instant::now();
    let (g, timed_out) = cv.wait_timeout(m.lock(), Duration::from_millis(30));
    assert!(timed_out);
    assert!(t.elapsed() >= Duration::from_millis(30));
    drop(g);

    // notify_all wakes every waiter (coroutines and threads), and none times out.
    let shared = Arc::new((Mutex::new(0usize), Condvar::new()));
    const N: usize = 20;
    let waiters: Vec<_> = (0..N)
        .map(|i| {
            let s = shared.clone();
            let body = move || {
                let mut g = s.0.lock();
                *g += 1; // registered
                let (g2, to) = s.1.wait_timeout(g, Duration::from_secs(30));
                g = g2;
                assert!(!to);
                *g += 100;
            };
            if i % 2 == 0 {
                either::Co(goro::spawn(body))
            } else {
                either::Th(std::thread::spawn(body))
            }
        })
        .collect();
    // Wait until all are inside wait (each counted itself under the lock, then waited).
    loop {
        let g = shared.0.lock();
        if *g == N {
            break;
        }
        drop(g);
        std::thread::yield_now();
    }
    shared.1.notify_all();
    for w in waiters {
        w.join();
    }
    assert_eq!(*shared.0.lock(), N + 100 * N);
}

#[test]
fn condvar_timeouts_racing_notifies() {
    // Waiters with tiny timeouts race a notifier. A waiter reports "not timed out" only if a
    // notification claimed it, so such reports never outnumber the notifications; and a
    // notification that pops a waiter at the instant it times out is still reported (some get
    // through: the count is not zero).
    let s = Arc::new((Mutex::new(()), Condvar::new()));
    let woken = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    const NOTIFIES: usize = 20_000;
    let issued = Arc::new(AtomicUsize::new(0));
    let notifier = {
        let (s, stop, issued, woken) = (s.clone(), stop.clone(), issued.clone(), woken.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            // At least NOTIFIES, and on until one got through (bounded, for a stuck machine).
            while issued.load(SeqCst) < NOTIFIES
                || (woken.load(SeqCst) == 0 && t.elapsed() < Duration::from_secs(20))
            {
                issued.fetch_add(1, SeqCst);
                s.1.notify_one();
                std::thread::yield_now();
            }
            stop.store(true, SeqCst);
        })
    };
    let (s2, w2, stop2) = (s.clone(), woken.clone(), stop.clone());
    mixed(20, 2, move |_| {
        while !stop2.load(SeqCst) {
            let g = s2.0.lock();
            let (_g, to) = s2.1.wait_timeout(g, Duration::from_micros(50));
            if !to {
                w2.fetch_add(1, SeqCst);
            }
        }
    });
    notifier.join().unwrap();
    let (w, n) = (woken.load(SeqCst), issued.load(SeqCst));
    assert!(w <= n, "{w} wake-ups from {n} notifications");
    assert!(w > 0);
}

#[test]
fn once_runs_once_and_waiters_wait() {
    for _ in 0..200 {
        let once = Arc::new(Once::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let arrived = Arc::new(AtomicUsize::new(0));
        const N: usize = 8;
        let (o, r, f, a) = (
            once.clone(),
            runs.clone(),
            finished.clone(),
            arrived.clone(),
        );
        mixed(6, 2, move |_| {
            a.fetch_add(1, SeqCst);
            o.call_once(|| {
                r.fetch_add(1, SeqCst);
                // Keep running until every caller has arrived, so they must wait for us.
                while a.load(SeqCst) < N {
                    goro::gosched();
                }
                f.store(true, SeqCst);
            });
            assert!(
                f.load(SeqCst),
                "call_once returned before the call finished"
            );
        });
        assert_eq!(runs.load(SeqCst), 1);
        assert!(once.is_completed());
    }
}

#[test]
fn once_panic_counts_as_the_call() {
    let once = Once::new();
    let r = std::panic::catch_unwind(|| once.call_once(|| panic!("init failed")));
    assert!(r.is_err());
    assert!(once.is_completed());
    let mut ran = false;
    once.call_once(|| ran = true);
    assert!(!ran, "Go's Once does not retry after a panic");
}

#[test]
fn semaphore_limits_concurrency() {
    let sem = Arc::new(Semaphore::new(3));
    let inside = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (s, i2, m2) = (sem.clone(), inside.clone(), max.clone());
    mixed(50, 4, move |_| {
        for k in 0..200 {
            let _p = s.acquire();
            let now = i2.fetch_add(1, SeqCst) + 1;
            m2.fetch_max(now, SeqCst);
            if k % 4 == 0 {
                goro::gosched();
            }
            i2.fetch_sub(1, SeqCst);
        }
    });
    assert!(max.load(SeqCst) <= 3);
    assert_eq!(sem.available(), 3);
    let a = sem.try_acquire().unwrap();
    let b = sem.acquire();
    let c = sem.acquire();
    assert!(sem.try_acquire().is_none());
    assert_eq!(sem.available(), 0);
    drop((a, b));
    c.forget();
    assert_eq!(sem.available(), 2);
    sem.add_permits(1);
    assert_eq!(sem.available(), 3);
}

#[test]
fn waitgroup_fan_out_fan_in() {
    goro::gomaxprocs(2);
    let wg = WaitGroup::new();
    let n = Arc::new(AtomicUsize::new(0));
    wg.add(10_000);
    for _ in 0..10_000 {
        let (wg, n) = (wg.clone(), n.clone());
        goro::go!(move || {
            n.fetch_add(1, Relaxed);
            wg.done();
        });
    }
    wg.wait();
    assert_eq!(n.load(Relaxed), 10_000);
    assert_eq!(wg.count(), 0);
    wg.wait(); // zero: returns at once
}

#[test]
fn waitgroup_many_waiters_and_reuse() {
    for round in 0..300 {
        let wg = WaitGroup::default();
        let released = Arc::new(AtomicBool::new(false));
        wg.add(1);
        let waiters: Vec<_> = (0..4)
            .map(|i| {
                let (wg, rel) = (wg.clone(), released.clone());
                let body = move || {
                    wg.wait();
                    assert!(rel.load(SeqCst));
                };
                if (i + round) % 2 == 0 {
                    either::Co(goro::spawn(body))
                } else {
                    either::Th(std::thread::spawn(body))
                }
            })
            .collect();
        let wg2 = wg.clone();
        let rel = released.clone();
        goro::spawn(move || {
            rel.store(true, SeqCst);
            wg2.done();
        })
        .join()
        .unwrap();
        for w in waiters {
            w.join();
        }
    }
}

#[test]
fn waitgroup_negative_counter_panics_like_go() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    let err = std::panic::catch_unwind(|| wg.done()).unwrap_err();
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("negative WaitGroup counter"), "{msg}");
    // Also inside a coroutine: the panic reaches join.
    let h = goro::spawn(|| WaitGroup::new().add(-1));
    let e = h.join().unwrap_err();
    assert!(e.is_panic());
}

#[test]
fn waitgroup_negative_add_leaves_the_counter_unchanged() {
    let wg = WaitGroup::new();
    wg.add(2);
    let err = std::panic::catch_unwind(|| wg.add(-3)).unwrap_err();
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("negative WaitGroup counter"), "{msg}");
    assert_eq!(wg.count(), 2);
    wg.done();
    wg.done();
    assert!(std::panic::catch_unwind(|| wg.done()).is_err());
    assert_eq!(wg.count(), 0);
    // The counter is still valid: a wait returns at once instead of hanging.
    let h = goro::spawn(move || wg.wait());
    h.join().unwrap();
    let wg = WaitGroup::new();
    wg.add(isize::MAX);
    let err = std::panic::catch_unwind(|| wg.add(1)).unwrap_err();
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("overflow"), "{msg}");
    assert_eq!(wg.count(), isize::MAX);
}

#[test]
fn semaphore_add_permits_is_checked_and_constant_time() {
    // usize::MAX - 1 permits at once: one step, not a loop of that many releases (which would
    // never finish: the thread below would miss its deadline).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let sem = Semaphore::new(1);
        sem.add_permits(usize::MAX - 1);
        let _ = tx.send(sem.available());
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)), Ok(usize::MAX));
    // Overflow: a clear panic, nothing changed.
    let sem = Semaphore::new(usize::MAX);
    let err = std::panic::catch_unwind(|| sem.add_permits(1)).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("usize::MAX"), "{msg}");
    assert_eq!(sem.available(), usize::MAX);
    // A returned permit cannot overflow either.
    let sem = Semaphore::new(usize::MAX);
    let p = sem.try_acquire().unwrap();
    sem.add_permits(1);
    assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(p))).is_err());
    assert_eq!(sem.available(), usize::MAX);
}

#[test]
fn semaphore_add_permits_serves_waiters_first() {
    goro::gomaxprocs(2);
    for _ in 0..2000 {
        let sem = Arc::new(Semaphore::new(0));
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let s = sem.clone();
                goro::spawn(move || s.acquire().forget())
            })
            .collect();
        goro::gosched();
        sem.add_permits(5);
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(sem.available(), 2);
    }
}

#[test]
fn pool_reuses_objects() {
    let made = Arc::new(AtomicUsize::new(0));
    let m2 = made.clone();
    let pool = Pool::new(move || {
        m2.fetch_add(1, Relaxed);
        Vec::<u8>::with_capacity(64)
    });
    {
        let mut a = pool.get();
        a.push(1);
    }
    assert_eq!(pool.idle(), 1);
    let a = pool.get();
    assert_eq!(&a[..], &[1]); // the same object came back
    let b = pool.get(); // pool empty: made fresh
    assert_eq!(made.load(Relaxed), 2);
    drop((a, b));
    assert_eq!(pool.idle(), 2);
    pool.put(vec![9]);
    let kept = pool.get().into_inner();
    assert_eq!(pool.idle(), 2);
    drop(kept);

    // Shared by coroutines and threads.
    let pool = Arc::new(Pool::new(|| 0u64));
    let p2 = pool.clone();
    mixed(20, 2, move |_| {
        for _ in 0..500 {
            let mut g = p2.get();
            *g += 1;
        }
    });
    let mut sum = 0;
    while pool.idle() > 0 {
        sum += pool.get().into_inner();
    }
    assert_eq!(sum, 22 * 500);
}

/// Compile-time check that a type is NOT `Send`: `<T as NotSend<_>>::check()` is ambiguous (and
/// fails to compile) exactly when `T: Send`.
trait NotSend<A> {
    fn check() {}
}
impl<T: ?Sized> NotSend<()> for T {}
impl<T: ?Sized + Send> NotSend<u8> for T {}

#[test]
fn guards_are_not_send_like_std() {
    <goro::sync::MutexGuard<'static, u8> as NotSend<_>>::check();
    <goro::sync::RwLockReadGuard<'static, u8> as NotSend<_>>::check();
    <goro::sync::RwLockWriteGuard<'static, u8> as NotSend<_>>::check();
    fn sync<T: Sync>() {}
    fn send_sync<T: Send + Sync>() {}
    sync::<goro::sync::MutexGuard<'static, u8>>();
    send_sync::<Mutex<u8>>();
    send_sync::<RwLock<u8>>();
    send_sync::<Condvar>();
    send_sync::<Once>();
    send_sync::<Semaphore>();
    send_sync::<WaitGroup>();
    send_sync::<Pool<Vec<u8>>>();
}

#[test]
fn waitgroup_go_counts_and_survives_panics() {
    goro::gomaxprocs(2);
    let wg = WaitGroup::new();
    let n = Arc::new(AtomicUsize::new(0));
    for i in 0..1_000 {
        let n = n.clone();
        wg.go(move || {
            n.fetch_add(1, Relaxed);
            if i % 100 == 0 {
                panic!("worker {i} failed"); // still counted down
            }
        });
    }
    wg.wait();
    assert_eq!(n.load(Relaxed), 1_000);
    assert_eq!(wg.count(), 0);
}
