//! Running out of stack memory is an error, never a crash: with the pre-6.13 guard scheme
//! forced (`GORO_GUARD=mprotect`: two memory mappings per stack, budgeted against
//! vm.max_map_count), keep coroutines alive until `Builder::spawn` fails, then check the error,
//! that `spawn` panics with the same explanation, and that everything still works once
//! coroutines finish. Runs in a child process (the guard mode is process-wide).

use std::process::Command;

#[test]
fn child_exhausts_stacks() {
    if std::env::var_os("GORO_TEST_CHILD").is_none() {
        return;
    }
    let (tx, rx) = goro::chan::bounded::<()>(0);
    let mut held = Vec::new();
    let err = loop {
        let rx = rx.clone();
        match goro::Builder::new().stack_size(16 * 1024).spawn(move || {
            let _ = rx.recv();
        }) {
            Ok(h) => held.push(h),
            Err(e) => break e,
        }
        assert!(held.len() < 200_000, "no limit reached");
    };
    println!("HELD {}", held.len());
    println!("ERR {err}");
    // `spawn` (default-sized, stack taken lazily) must now panic with the explanation.
    let p = std::panic::catch_unwind(|| goro::spawn(|| ())).unwrap_err();
    let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
    println!("PANIC {msg}");
    // Release them all: afterwards spawning works again.
    tx.close();
    for h in held {
        h.join().unwrap();
    }
    assert_eq!(
        goro::Builder::new()
            .stack_size(16 * 1024)
            .spawn(|| 7)
            .unwrap()
            .join()
            .unwrap(),
        7
    );
    println!("RECOVERED");
}

#[test]
fn stack_exhaustion_is_an_error_not_a_crash() {
    if std::env::var_os("GORO_TEST_CHILD").is_some() {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_exhausts_stacks", "--nocapture"])
        .env("GORO_TEST_CHILD", "1")
        .env("GORO_GUARD", "mprotect")
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {:?}\nstdout:\n{so}\nstderr:\n{se}",
        out.status
    );
    let held: usize = so
        .lines()
        .find_map(|l| l.strip_prefix("HELD "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(held > 1000, "gave up too early: {held}");
    let err = so.lines().find(|l| l.starts_with("ERR ")).unwrap();
    assert!(err.contains("max_map_count"), "{err}");
    let panic = so.lines().find(|l| l.starts_with("PANIC ")).unwrap();
    assert!(
        panic.contains("cannot allocate a coroutine stack") && panic.contains("max_map_count"),
        "{panic}"
    );
    assert!(so.contains("RECOVERED"), "{so}");
}

/// A value whose `Drop` panics unless it was disarmed (by the coroutine that ran).
struct PanicOnDrop(bool);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if self.0 {
            panic!("PanicOnDrop dropped unrun");
        }
    }
}

/// Coroutines spawned with `spawn` (stack taken lazily, when they first run) are queued on the
/// one worker; then `Builder::spawn` takes every stack there is. When the queued ones run, they
/// cannot start: their closures are dropped unrun on the worker's own stack, and a panicking
/// `Drop` there must be reported, not unwind into the scheduler (a "fatal internal error").
#[test]
fn child_lazy_start_fails_with_a_panicking_drop() {
    if std::env::var_os("GORO_TEST_CHILD").is_none() {
        return;
    }
    goro::gomaxprocs(1);
    let h = goro::spawn(|| {
        let (tx, rx) = goro::chan::bounded::<()>(0);
        let lazy: Vec<_> = (0..4)
            .map(|_| {
                let p = PanicOnDrop(true);
                goro::spawn(move || {
                    let mut p = p;
                    p.0 = false;
                })
            })
            .collect();
        let mut held = Vec::new();
        let err = loop {
            let rx = rx.clone();
            match goro::Builder::new().stack_size(16 * 1024).spawn(move || {
                let _ = rx.recv();
            }) {
                Ok(h) => held.push(h),
                Err(e) => break e,
            }
            assert!(held.len() < 200_000, "no limit reached");
        };
        println!("ERR {err}");
        // Parking here lets the worker run the queued coroutines.
        let lazy: Vec<_> = lazy.into_iter().map(|h| h.join()).collect();
        for r in &lazy {
            match r {
                Err(e) if e.is_panic() => println!("LAZY {e}"),
                Err(e) => println!("LAZY unexpected {e}"),
                Ok(()) => println!("LAZY ran"),
            }
        }
        tx.close();
        for h in held {
            h.join().unwrap();
        }
        // (The same size class: the guards of the freed stacks still hold the mappings.)
        let again = goro::Builder::new().stack_size(16 * 1024).spawn(|| 7);
        again.unwrap().join().unwrap()
    });
    assert_eq!(h.join().unwrap(), 7);
    println!("RECOVERED");
}

#[test]
fn a_panicking_drop_of_a_closure_that_cannot_start_is_reported() {
    if std::env::var_os("GORO_TEST_CHILD").is_some() {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_lazy_start_fails_with_a_panicking_drop",
            "--nocapture",
        ])
        .env("GORO_TEST_CHILD", "1")
        .env("GORO_GUARD", "mprotect")
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    let all = format!("{:?}\nstdout:\n{so}\nstderr:\n{se}", out.status);
    assert!(out.status.success(), "child failed: {all}");
    assert!(!se.contains("fatal"), "{all}");
    let lazy: Vec<&str> = so.lines().filter(|l| l.starts_with("LAZY ")).collect();
    assert_eq!(lazy.len(), 4, "{all}");
    // At least one could not start (the rest may have found a stack freed meanwhile).
    assert!(
        lazy.iter()
            .any(|l| l.contains("cannot allocate a coroutine stack")),
        "{all}"
    );
    assert!(!lazy.iter().any(|l| l.contains("unexpected")), "{all}");
    assert!(
        se.contains("dropping the closure of a coroutine that could not start panicked"),
        "{all}"
    );
    assert!(so.contains("RECOVERED"), "{all}");
}

/// VmSize now, in bytes.
fn vm_size() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    pages * 4096
}

/// Under an address-space limit (RLIMIT_AS) of 4 GiB more than the process maps now, spawn
/// default-sized (1 MiB) coroutines until `Builder::spawn` fails, with lazily spawned ones
/// queued behind them. Then the program must go on: the queued ones report that they could
/// not start, the heap still allocates (stacks left it its headroom), every held coroutine
/// finishes, spawning works again and the process exits 0.
#[test]
fn child_address_space_runs_out() {
    if std::env::var_os("GORO_TEST_CHILD").is_none() {
        return;
    }
    let limit = vm_size() + (4 << 30);
    let lim = libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain setrlimit on this process.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    goro::gomaxprocs(1);
    let h = goro::spawn(|| {
        let (tx, rx) = goro::chan::bounded::<()>(0);
        let lazy: Vec<_> = (0..100).map(|i| goro::spawn(move || i)).collect();
        let mut held = Vec::new();
        let err = loop {
            let rx = rx.clone();
            match goro::Builder::new().spawn(move || {
                let _ = rx.recv();
            }) {
                Ok(h) => held.push(h),
                Err(e) => break e,
            }
            assert!(held.len() < 100_000, "no limit reached");
        };
        println!("HELD {}", held.len());
        println!("ERR {err}");
        let mut started = 0;
        for h in lazy {
            if h.join().is_ok() {
                started += 1;
            }
        }
        println!("LAZY STARTED {started}");
        // The heap still has room: a 64 MiB buffer, touched, and many small allocations.
        let mut big = vec![1u8; 64 << 20];
        big[12345] = 2;
        let small: Vec<Box<[u64; 16]>> = (0..100_000).map(|i| Box::new([i; 16])).collect();
        println!(
            "HEAP OK {}",
            big.iter().map(|&b| b as u64).sum::<u64>() + small[99_999][0]
        );
        tx.close();
        for h in held {
            h.join().unwrap();
        }
        goro::spawn(|| 7).join().unwrap()
    });
    assert_eq!(h.join().unwrap(), 7);
    println!("RECOVERED");
}

#[test]
fn running_out_of_address_space_is_an_error_and_the_heap_keeps_working() {
    if std::env::var_os("GORO_TEST_CHILD").is_some() {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_address_space_runs_out", "--nocapture"])
        .env("GORO_TEST_CHILD", "1")
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    let all = format!("{:?}\nstdout:\n{so}\nstderr:\n{se}", out.status);
    assert!(out.status.success(), "child failed: {all}");
    let held: usize = so
        .lines()
        .find_map(|l| l.strip_prefix("HELD "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(held > 500, "gave up too early: {all}");
    let err = so.lines().find(|l| l.starts_with("ERR ")).unwrap();
    assert!(err.contains("RLIMIT_AS"), "{all}");
    assert!(so.contains("HEAP OK"), "{all}");
    assert!(so.contains("RECOVERED"), "{all}");
    // One line for the whole episode, not one per coroutine that could not start.
    assert!(se.matches("cannot start").count() <= 1, "{all}");
}
