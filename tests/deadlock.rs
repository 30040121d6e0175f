//! `run`'s deadlock detection, checked in child processes (the detector exits the process):
//! a real deadlock is reported with Go's message, the dump and exit status 2; programs that
//! only look idle (a sleeper, a plain thread that will send, a timer) are left alone.

use std::process::Command;
use std::time::Duration;

/// Re-run this test binary with only `test_name`, with `GORO_TEST_CHILD` set. A child that
/// is still running after 30 s (a deadlock that went unreported) is killed, failing the test.
fn child(test_name: &str) -> std::process::Output {
    let c = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env("GORO_TEST_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child");
    let pid = c.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.expect("child output"),
        Err(_) => {
            // SAFETY: plain kill(2) of our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("child {test_name} still running after 30 s: deadlock not reported");
        }
    }
}

fn is_child() -> bool {
    std::env::var_os("GORO_TEST_CHILD").is_some()
}

#[test]
fn child_deadlocks_on_a_channel() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        let (tx, rx) = goro::chan::bounded::<u32>(0);
        let _keep = tx.clone();
        let h = goro::Builder::new()
            .name("stuck-receiver")
            .spawn(move || rx.recv())
            .unwrap();
        drop(tx);
        let _ = h.join();
    });
    unreachable!("the detector should have ended the process");
}

#[test]
fn deadlock_is_reported_with_status_2_and_a_dump() {
    if is_child() {
        return;
    }
    let out = child("child_deadlocks_on_a_channel");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{err}");
    assert!(
        err.contains("fatal error: all coroutines are asleep - deadlock!"),
        "{err}"
    );
    assert!(
        err.contains("\"stuck-receiver\""),
        "dump should name the coroutine:\n{err}"
    );
    assert!(
        err.contains("\"main\""),
        "dump should show the main coroutine:\n{err}"
    );
}

#[test]
fn child_not_deadlocked_sleeper_and_thread() {
    if !is_child() {
        return;
    }
    let v = goro::run(|| {
        // The main coroutine waits on a channel a plain thread fills later; meanwhile another
        // coroutine sleeps: neither situation is a deadlock.
        let (tx, rx) = goro::chan::bounded::<u32>(0);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            tx.send(7).unwrap();
        });
        let s = goro::spawn(|| goro::sleep(Duration::from_millis(400)));
        let v = rx.recv().unwrap();
        s.join().unwrap();
        t.join().unwrap();
        v
    });
    println!("CHILD-OK {v}");
}

#[test]
fn waiting_on_a_thread_or_a_timer_is_not_a_deadlock() {
    if is_child() {
        return;
    }
    let out = child("child_not_deadlocked_sleeper_and_thread");
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(so.contains("CHILD-OK 7"), "{so}");
}

#[test]
fn child_deadlock_detection_off() {
    if !is_child() {
        return;
    }
    // With GORO_DEADLOCK=0 a stuck program stays stuck; the parent kills it.
    goro::run(|| {
        let (_tx, rx) = goro::chan::bounded::<u32>(0);
        let _ = rx.recv();
    });
}

#[test]
fn goro_deadlock_0_turns_detection_off() {
    if is_child() {
        return;
    }
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_deadlock_detection_off", "--nocapture"])
        .env("GORO_TEST_CHILD", "1")
        .env("GORO_DEADLOCK", "0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Detection would fire within ~300 ms; give it well over that (time is the feature here).
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        c.try_wait().unwrap().is_none(),
        "child exited although detection was off"
    );
    c.kill().unwrap();
    let _ = c.wait();
}

#[test]
fn child_deadlock_after_timers_and_blocking_calls() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        // Runtime-internal threads (timer callbacks, the blocking pool) have done work for
        // coroutines; once it is all over, a real deadlock must still be reported.
        let (tx, rx) = goro::chan::bounded::<u32>(0);
        let t = goro::time::after_func(std::time::Duration::from_millis(1), move || {
            tx.send(1).unwrap()
        });
        assert_eq!(rx.recv().unwrap(), 1);
        drop(t);
        assert_eq!(goro::blocking(|| 2), 2);
        let (_keep, stuck) = goro::chan::bounded::<u32>(0);
        let _ = stuck.recv();
    });
}

#[test]
fn deadlock_is_still_found_after_runtime_threads_did_work() {
    if is_child() {
        return;
    }
    let out = child("child_deadlock_after_timers_and_blocking_calls");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{err}");
    assert!(
        err.contains("all coroutines are asleep - deadlock!"),
        "{err}"
    );
}
