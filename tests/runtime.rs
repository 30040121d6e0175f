//! The core runtime through its public API: spawn/join, panics, goexit/defer, Builder,
//! num_goroutine, sleep, run, dump.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn join_handle_is_send_sync() {
    assert_send_sync::<goro::JoinHandle<u32>>();
    assert_send_sync::<goro::JoinHandle<std::cell::Cell<u8>>>(); // T: Send suffices
}

#[test]
fn spawn_and_join_values_from_threads_and_coroutines() {
    let hs: Vec<_> = (0..5_000u64).map(|i| goro::spawn(move || i * 3)).collect();
    // Join half of them from a coroutine, half from this thread.
    let (a, b): (Vec<_>, Vec<_>) = hs.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let from_co = goro::spawn(move || a.into_iter().map(|(_, h)| h.join().unwrap()).sum::<u64>());
    let here: u64 = b.into_iter().map(|(_, h)| h.join().unwrap()).sum();
    assert_eq!(here + from_co.join().unwrap(), 3 * (4_999 * 5_000 / 2));
}

#[test]
fn coroutines_spawn_coroutines_stress() {
    // A tree of spawns and joins, repeated: exercises runnext, stealing and cross-worker joins.
    fn tree(depth: u32) -> u64 {
        if depth == 0 {
            return 1;
        }
        let hs: Vec<_> = (0..4)
            .map(|_| goro::spawn(move || tree(depth - 1)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    }
    for _ in 0..20 {
        assert_eq!(goro::spawn(|| tree(5)).join().unwrap(), 4u64.pow(5));
    }
}

#[test]
fn join_race_stress() {
    // The coroutine may finish before, during or after the joiner starts waiting.
    for i in 0..5_000u32 {
        let h = goro::spawn(move || {
            if i % 3 == 0 {
                goro::gosched();
            }
            i
        });
        if i % 2 == 0 {
            assert_eq!(h.join().unwrap(), i);
        } else {
            assert_eq!(goro::spawn(move || h.join().unwrap()).join().unwrap(), i);
        }
    }
}

#[test]
fn is_finished_turns_true() {
    let h = goro::spawn(|| 5);
    while !h.is_finished() {
        std::thread::yield_now();
    }
    assert_eq!(h.join().unwrap(), 5);
}

#[test]
fn panic_is_returned_by_join_and_runtime_survives() {
    let n = std::hint::black_box(7);
    let h = goro::spawn(move || -> u8 { panic!("boom {n}") });
    let e = h.join().unwrap_err();
    assert!(e.is_panic() && !e.is_goexit());
    assert_eq!(e.to_string(), "coroutine panicked: boom 7");
    let p = e.into_panic();
    assert_eq!(p.downcast_ref::<String>().unwrap(), "boom 7");
    // The runtime still works.
    assert_eq!(goro::spawn(|| 1).join().unwrap(), 1);
}

struct Noisy(&'static str, Arc<Mutex<Vec<&'static str>>>);
impl Drop for Noisy {
    fn drop(&mut self) {
        self.1.lock().unwrap().push(self.0);
    }
}

#[test]
fn goexit_runs_defers_and_drops_innermost_first() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let h = goro::spawn(move || -> u32 {
        let _outer = Noisy("outer drop", l.clone());
        let l2 = l.clone();
        goro::defer! { l2.lock().unwrap().push("outer defer"); }
        fn inner(l: Arc<Mutex<Vec<&'static str>>>) -> u32 {
            let _n = Noisy("inner drop", l.clone());
            goro::defer! { l.lock().unwrap().push("inner defer"); }
            goro::goexit()
        }
        inner(l.clone())
    });
    let e = h.join().unwrap_err();
    assert!(e.is_goexit() && !e.is_panic());
    assert_eq!(e.to_string(), "coroutine called goexit");
    assert_eq!(
        *log.lock().unwrap(),
        ["inner defer", "inner drop", "outer defer", "outer drop"]
    );
}

#[test]
fn goexit_on_a_plain_thread_panics_with_a_message() {
    let r = std::thread::spawn(|| goro::goexit()).join();
    let p = r.unwrap_err();
    let msg = p
        .downcast_ref::<&str>()
        .copied()
        .map(String::from)
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap();
    assert!(msg.contains("outside a coroutine"), "{msg}");
}

#[test]
fn defer_is_lifo_on_normal_exit_and_on_panic() {
    for panics in [false, true] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let h = goro::spawn(move || {
            for i in 0..3 {
                let l = l.clone();
                // each iteration's defer runs at the end of its own iteration scope
                goro::defer! { l.lock().unwrap().push(i); }
            }
            let (a, b) = (l.clone(), l.clone());
            goro::defer! { a.lock().unwrap().push(10); }
            goro::defer! { b.lock().unwrap().push(11); }
            if panics {
                panic!("deliberate");
            }
        });
        assert_eq!(h.join().is_err(), panics);
        assert_eq!(*log.lock().unwrap(), [0, 1, 2, 11, 10]);
    }
}

#[test]
fn a_panicking_defer_during_unwind_does_not_abort() {
    let h = goro::spawn(|| {
        goro::defer! { panic!("second panic, in a defer"); }
        panic!("first panic");
    });
    let e = h.join().unwrap_err();
    assert_eq!(
        *e.into_panic().downcast_ref::<&str>().unwrap(),
        "first panic"
    );
    // And during goexit too.
    let h = goro::spawn(|| {
        goro::defer! { panic!("panic in a defer during goexit"); }
        goro::goexit();
    });
    assert!(h.join().unwrap_err().is_goexit());
}

#[test]
fn builder_validates_stack_sizes() {
    let e = goro::Builder::new()
        .stack_size(usize::MAX)
        .spawn(|| ())
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = goro::Builder::new()
        .stack_size((1 << 30) + 1)
        .spawn(|| ())
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    // Tiny sizes round up to a usable minimum.
    for s in [0, 1, 100, 4097] {
        let h = goro::Builder::new()
            .stack_size(s)
            .spawn(move || s + 1)
            .unwrap();
        assert_eq!(h.join().unwrap(), s + 1);
    }
    let e = goro::Builder::new()
        .name("bad\0name")
        .spawn(|| ())
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn default_stack_holds_deep_recursion() {
    // The default stack lets a coroutine use well over 512 KiB.
    fn burn(n: u32) -> u64 {
        let buf = [n as u8; 1024];
        let x = std::hint::black_box(&buf)[0] as u64;
        if n == 0 {
            x
        } else {
            x + burn(n - 1)
        }
    }
    let h = goro::spawn(|| burn(700));
    assert!(h.join().unwrap() > 0);
}

#[test]
fn num_goroutine_counts_until_join() {
    let base_gate = Arc::new(AtomicUsize::new(0));
    let g = base_gate.clone();
    let h = goro::spawn(move || {
        while g.load(Ordering::Acquire) == 0 {
            goro::sleep(Duration::from_millis(1));
        }
    });
    assert!(goro::num_goroutine() >= 1);
    base_gate.store(1, Ordering::Release);
    h.join().unwrap();
    // Other tests run concurrently in this binary, so only check the handle's own coroutine
    // is gone by spawning a lone one in a fresh check below (tests/gomaxprocs.rs is exact).
}

#[test]
fn sleep_parks_for_at_least_the_duration() {
    let t = Instant::now();
    let hs: Vec<_> = (0..2_000)
        .map(|_| {
            goro::spawn(|| {
                let t = Instant::now();
                goro::sleep(Duration::from_millis(30));
                t.elapsed()
            })
        })
        .collect();
    for h in hs {
        assert!(h.join().unwrap() >= Duration::from_millis(30));
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    // On a plain thread too.
    let t = Instant::now();
    goro::sleep(Duration::from_millis(5));
    assert!(t.elapsed() >= Duration::from_millis(5));
}

#[test]
fn run_returns_the_value_and_resumes_panics() {
    assert_eq!(goro::run(|| goro::spawn(|| 20).join().unwrap() + 1), 21);
    let r = std::panic::catch_unwind(|| goro::run(|| -> u8 { panic!("in main coroutine") }));
    let p = r.unwrap_err();
    assert_eq!(p.downcast_ref::<&str>().copied(), Some("in main coroutine"));
}

#[test]
fn dump_names_sleeping_coroutines() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = goro::Builder::new()
        .name("dump-me")
        .spawn(move || {
            ready_tx.send(()).unwrap();
            goro::sleep(Duration::from_millis(300));
        })
        .unwrap();
    ready_rx.recv().unwrap();
    // It parks right after signalling; poll the dump until it shows the wait.
    let t = Instant::now();
    loop {
        let d = goro::runtime::dump();
        if d.lines()
            .any(|l| l.contains("\"dump-me\"") && l.contains("[sleep,"))
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "dump never showed the sleeper:\n{d}"
        );
        std::thread::yield_now();
    }
    h.join().unwrap();
}

#[test]
fn gosched_on_a_plain_thread_just_yields() {
    goro::gosched();
    assert!(goro::num_cpu() >= 1);
}

#[test]
fn blocking_runs_off_the_worker_and_returns_or_panics() {
    // 8 coroutines (more than there are workers) block in `blocking` until this thread
    // releases them, which it does only after a coroutine completed a 100-message exchange
    // with it. Had the blocked calls held their workers, that exchange could never happen.
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let blockers: Vec<_> = (0..8u32)
        .map(|i| {
            let rx = release_rx.clone();
            goro::spawn(move || {
                goro::blocking(move || {
                    let ok = rx
                        .lock()
                        .unwrap()
                        .recv_timeout(Duration::from_secs(10))
                        .is_ok();
                    (i * 10, ok)
                })
            })
        })
        .collect();
    let (tx, rx) = goro::chan::bounded::<()>(0);
    let pinger = goro::spawn(move || {
        for _ in 0..100 {
            tx.send(()).unwrap();
        }
    });
    for _ in 0..100 {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a coroutine could not run: workers held by blocking calls");
    }
    pinger.join().unwrap();
    for _ in 0..8 {
        release_tx.send(()).unwrap();
    }
    let got: Vec<(u32, bool)> = blockers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, (0..8).map(|i| (i * 10, true)).collect::<Vec<_>>());
    // A panic inside is resumed in the coroutine.
    let e = goro::spawn(|| goro::blocking(|| -> u8 { panic!("in pool") }))
        .join()
        .unwrap_err();
    assert_eq!(*e.into_panic().downcast_ref::<&str>().unwrap(), "in pool");
    // On a plain thread it is a direct call.
    assert_eq!(goro::blocking(|| 5), 5);
}

#[test]
fn a_result_whose_drop_panics_does_not_abort() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("Bomb dropped");
        }
    }
    // Detached: the result is dropped by the runtime, on the coroutine's stack.
    let (tx, rx) = goro::chan::bounded::<()>(0);
    drop(goro::spawn(move || {
        let _ = rx.recv();
        Bomb
    }));
    tx.send(()).unwrap();
    // Still alive and working.
    for i in 0..100 {
        assert_eq!(goro::spawn(move || i).join().unwrap(), i);
    }
}

/// Counts drops of itself; carries a payload of `N` bytes so a closure or result holding it can
/// be made small (kept in the control block) or large (boxed on its own).
struct Counted<const N: usize>(std::sync::Arc<std::sync::atomic::AtomicUsize>, [u8; N]);

impl<const N: usize> Drop for Counted<N> {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[repr(align(64))]
struct OverAligned(u64);

fn results_are_dropped_exactly_once<const N: usize>() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let closures = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(AtomicUsize::new(0));
    const ROUNDS: usize = 3_000;
    for i in 0..ROUNDS {
        let captured = Counted::<N>(closures.clone(), [i as u8; N]);
        let r = results.clone();
        let h = goro::spawn(move || {
            let c = &captured;
            if i % 4 == 0 {
                goro::gosched();
            }
            Counted::<N>(r, [c.1[0]; N])
        });
        match i % 3 {
            // Joined: the joiner gets the result (and drops it).
            0 => assert_eq!(h.join().unwrap().1[N - 1], i as u8),
            // Detached at once: usually before it finished, so the coroutine drops the result.
            1 => drop(h),
            // Detached after it finished: the handle drops the result.
            _ => {
                while !h.is_finished() {
                    std::thread::yield_now();
                }
                drop(h);
            }
        }
    }
    // Detached coroutines may still be running: wait until all have finished.
    let t = std::time::Instant::now();
    while results.load(Ordering::SeqCst) < ROUNDS || closures.load(Ordering::SeqCst) < ROUNDS {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "results or closures leaked"
        );
        std::thread::yield_now();
    }
    assert_eq!(
        results.load(Ordering::SeqCst),
        ROUNDS,
        "a result dropped twice"
    );
    assert_eq!(
        closures.load(Ordering::SeqCst),
        ROUNDS,
        "a closure dropped twice"
    );
}

#[test]
fn small_tasks_in_the_control_block_drop_everything_once() {
    results_are_dropped_exactly_once::<8>();
}

#[test]
fn large_tasks_on_their_own_box_drop_everything_once() {
    results_are_dropped_exactly_once::<4096>();
}

#[test]
fn over_aligned_closures_and_results_keep_their_alignment() {
    let v = OverAligned(7);
    let h = goro::spawn(move || {
        assert_eq!(&v as *const OverAligned as usize % 64, 0);
        OverAligned(v.0 * 6)
    });
    let r = h.join().unwrap();
    assert_eq!(&r as *const OverAligned as usize % 64, 0);
    assert_eq!(r.0, 42);
}
