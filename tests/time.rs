//! Time: sleep, after, tick, Timer and Ticker (Go 1.23 stop/reset semantics), after_func,
//! and 100,000 coroutines sleeping or waiting with a timeout (lateness distribution).
//! Timing bounds are generous: time is the feature here, but the machine is shared.

use goro::chan::{self, bounded, RecvTimeoutError, TryRecvError};
use goro::time::{after_func, Ticker, Timer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

#[test]
fn sleep_on_thread_and_coroutine() {
    let t = Instant::now();
    goro::time::sleep(20 * MS);
    assert!(t.elapsed() >= 20 * MS);
    let h = goro::spawn(|| {
        let t = Instant::now();
        goro::time::sleep(20 * MS);
        t.elapsed()
    });
    let e = h.join().unwrap();
    assert!(e >= 20 * MS && e < 2000 * MS, "{e:?}");
}

#[test]
fn after_delivers_once() {
    let t = Instant::now();
    let r = goro::time::after(30 * MS);
    let at = r.recv().unwrap();
    assert!(at >= t + 30 * MS);
    assert!(t.elapsed() >= 30 * MS);
    assert_eq!(r.recv_timeout(50 * MS), Err(RecvTimeoutError::Timeout));
    assert!(!r.is_closed());
    // zero fires at once
    let r = chan::after(Duration::ZERO);
    assert!(r.recv_timeout(Duration::from_secs(1)).is_ok());
}

#[test]
fn after_in_select_times_out() {
    let (_tx, rx) = bounded::<i32>(0);
    let t = Instant::now();
    let timed_out = goro::select! {
        recv(rx) -> _ => false,
        recv(chan::after(25 * MS)) -> _ => true,
    };
    assert!(timed_out);
    assert!(t.elapsed() >= 25 * MS);
}

#[test]
fn tick_drops_ticks_for_slow_reader() {
    // The clock starts before the ticker: the first tick is due 10 ms after `tick` is called.
    let t = Instant::now();
    let r = goro::time::tick(10 * MS);
    r.recv().unwrap();
    assert!(t.elapsed() >= 10 * MS);
    std::thread::sleep(100 * MS); // a slow reader: ~10 ticks pass
                                  // At most one tick is queued (capacity 1), never a backlog.
    assert!(r.len() <= 1);
    let mut n = 0;
    while r.try_recv().is_ok() {
        n += 1;
    }
    assert!(n <= 1, "{n} ticks queued");
    // And it keeps ticking.
    assert!(r.recv_timeout(Duration::from_secs(2)).is_ok());
}

#[test]
fn a_one_nanosecond_ticker_never_spins_the_timer_thread() {
    if std::env::var_os("GORO_TIME_CHILD").is_none() {
        // In a child of its own: the process's CPU time is the measurement.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_one_nanosecond_ticker_never_spins_the_timer_thread",
                "--nocapture",
            ])
            .env("GORO_TIME_CHILD", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let t = Ticker::new(Duration::from_nanos(1));
    let r = t.receiver();
    // An active reader gets ticks.
    for _ in 0..100 {
        r.recv_timeout(Duration::from_secs(5)).unwrap();
    }
    // Nobody receives for a second: the timer thread must not burn it (it used to spin at
    // 100% of a core). Time is the feature here; the bound is generous.
    let cpu = cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time() - cpu;
    assert!(used < Duration::from_millis(250), "{used:?} of CPU in 1 s");
    // And it still ticks.
    while r.try_recv().is_ok() {}
    r.recv_timeout(Duration::from_secs(5)).unwrap();
    let c = goro::chan::tick(Duration::from_nanos(1));
    c.recv_timeout(Duration::from_secs(5)).unwrap();
}

#[test]
fn ticker_stop_and_reset() {
    let t = Instant::now();
    let tk = Ticker::new(10 * MS);
    for _ in 0..3 {
        tk.receiver().recv().unwrap();
    }
    assert!(t.elapsed() >= 30 * MS);
    std::thread::sleep(30 * MS);
    tk.stop();
    // After stop, no stale tick.
    assert_eq!(
        tk.receiver().recv_timeout(50 * MS),
        Err(RecvTimeoutError::Timeout)
    );
    let t = Instant::now();
    tk.reset(20 * MS);
    tk.receiver().recv().unwrap();
    assert!(t.elapsed() >= 20 * MS);
}

#[test]
#[should_panic(expected = "non-positive interval for NewTicker")]
fn ticker_zero_panics() {
    let _ = Ticker::new(Duration::ZERO);
}

#[test]
fn timer_go123_semantics() {
    // stop before firing: true, nothing delivered
    let tm = Timer::new(Duration::from_secs(5));
    assert!(tm.stop());
    assert!(!tm.stop());
    assert_eq!(
        tm.receiver().recv_timeout(60 * MS),
        Err(RecvTimeoutError::Timeout)
    );
    // fired but not received: stop drains the stale value and reports true
    let tm = Timer::new(MS);
    std::thread::sleep(30 * MS);
    assert!(tm.stop());
    assert_eq!(tm.receiver().try_recv(), Err(TryRecvError::Empty));
    // fired and received: stop is false
    let tm = Timer::new(MS);
    tm.receiver().recv().unwrap();
    assert!(!tm.stop());
    // reset of a pending timer: true, and it fires at the new time, once
    let tm = Timer::new(Duration::from_secs(10));
    let t = Instant::now();
    assert!(tm.reset(20 * MS));
    let at = tm.receiver().recv().unwrap();
    assert!(at >= t + 20 * MS);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        tm.receiver().recv_timeout(40 * MS),
        Err(RecvTimeoutError::Timeout)
    );
    // reset of an expired, unreceived timer: no stale value afterwards
    let tm = Timer::new(MS);
    std::thread::sleep(20 * MS);
    let t = Instant::now();
    tm.reset(30 * MS);
    let at = tm.receiver().recv().unwrap();
    assert!(at >= t + 30 * MS, "received a stale value");
    // zero timer fires at once
    let tm = Timer::new(Duration::ZERO);
    assert!(tm.receiver().recv_timeout(Duration::from_secs(1)).is_ok());
}

#[test]
fn timer_stop_races_never_deliver_stale_values() {
    // Hammer the deadline: stop right around the firing time, many times.
    for i in 0..2000u64 {
        let tm = Timer::new(Duration::from_micros(i % 200));
        std::thread::yield_now();
        let stopped = tm.stop();
        let got = tm.receiver().try_recv();
        assert_eq!(
            got,
            Err(TryRecvError::Empty),
            "stale value after stop (stopped={stopped})"
        );
    }
}

#[test]
fn after_func_runs_stop_reset() {
    let (tx, rx) = bounded::<&'static str>(4);
    let t = Instant::now();
    let tx1 = tx.clone();
    let _tm = after_func(20 * MS, move || {
        tx1.send("ran").unwrap();
    });
    assert_eq!(rx.recv(), Ok("ran"));
    assert!(t.elapsed() >= 20 * MS);
    // stop prevents it
    let tx2 = tx.clone();
    // (A long delay, so that a loaded machine cannot make it run before `stop`.)
    let tm = after_func(Duration::from_secs(5), move || {
        tx2.send("stopped one ran").unwrap();
    });
    assert!(tm.stop());
    assert_eq!(rx.recv_timeout(60 * MS), Err(RecvTimeoutError::Timeout));
    // reset after stop re-arms it (it has not run)
    assert!(!tm.reset(10 * MS));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(2)),
        Ok("stopped one ran")
    );
    // reset after it ran does nothing
    assert!(!tm.reset(MS));
    assert_eq!(rx.recv_timeout(40 * MS), Err(RecvTimeoutError::Timeout));
    // It runs on a coroutine.
    let (ctx, crx) = bounded::<bool>(1);
    let _tm = after_func(MS, move || {
        ctx.send(goro::runtime::dump().contains("coroutine"))
            .unwrap();
    });
    assert_eq!(crx.recv_timeout(Duration::from_secs(2)), Ok(true));
}

/// User + system CPU time of the whole process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// 100,000 coroutines: half sleep 50 ms, half wait on a channel with a 50 ms timeout. Every
/// one wakes on time (never early), and the lateness distribution is reported.
#[test]
fn hundred_thousand_timed_waits() {
    goro::gomaxprocs(2);
    const N: usize = 100_000;
    let d = 50 * MS;
    let late = Arc::new(Mutex::new(Vec::with_capacity(N)));
    let done = Arc::new(AtomicUsize::new(0));
    let (_keep, rx) = bounded::<()>(0);
    let (fin_tx, fin_rx) = bounded::<()>(1);
    let t0 = Instant::now();
    let cpu0 = cpu_time();
    for i in 0..N {
        let late = late.clone();
        let done = done.clone();
        let rx = rx.clone();
        let fin_tx = fin_tx.clone();
        goro::go!(move || {
            let start = Instant::now();
            if i % 2 == 0 {
                goro::time::sleep(d);
            } else {
                assert_eq!(rx.recv_timeout(d), Err(RecvTimeoutError::Timeout));
            }
            let el = start.elapsed();
            assert!(el >= d, "woke early: {el:?}");
            late.lock().unwrap().push(el - d);
            if done.fetch_add(1, Ordering::AcqRel) + 1 == N {
                fin_tx.send(()).unwrap();
            }
        });
    }
    fin_rx.recv().unwrap();
    let wall = t0.elapsed();
    let cpu = cpu_time() - cpu0;
    let mut v = late.lock().unwrap().clone();
    v.sort();
    let (p50, p99, max) = (
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        *v.last().unwrap(),
    );
    eprintln!(
        "100k timed waits of {d:?}: wall {wall:?}, process CPU {cpu:?} (spawning included); \
         lateness p50 {p50:?} p99 {p99:?} max {max:?}"
    );
    assert!(p50 < 200 * MS, "p50 lateness {p50:?}");
    assert!(wall < Duration::from_secs(20), "wall {wall:?}");
}
