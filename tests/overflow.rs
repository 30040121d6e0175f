//! Stack overflow in a coroutine is caught by the guard page and reported — naming the
//! coroutine and its stack size — before the process aborts (checked in a child process).

use std::process::Command;

#[allow(unconditional_recursion)] // overflowing the stack is the point
fn recurse(n: u64) -> u64 {
    let buf = [n as u8; 512];
    std::hint::black_box(&buf);
    recurse(n + 1) + buf[7] as u64
}

#[test]
fn child_overflows() {
    if std::env::var_os("GORO_TEST_CHILD").is_none() {
        return;
    }
    let h = goro::Builder::new()
        .name("deep-diver")
        .stack_size(64 * 1024)
        .spawn(|| recurse(0))
        .unwrap();
    let _ = h.join();
    unreachable!("the overflow must abort the process");
}

#[test]
fn overflow_is_reported_and_aborts() {
    if std::env::var_os("GORO_TEST_CHILD").is_some() {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_overflows", "--nocapture"])
        .env("GORO_TEST_CHILD", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}, stderr:\n{err}",
        out.status
    );
    assert!(err.contains("'deep-diver'"), "{err}");
    assert!(err.contains("overflowed its stack of 65536 bytes"), "{err}");
}
