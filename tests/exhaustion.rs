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
