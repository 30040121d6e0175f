//! Cooperative scheduling, checked in child processes (each child has one worker, set through
//! `GOMAXPROCS`, and a livelocked child must be killed rather than hang the suite):
//! the monitor's "running without yielding" report reaches stderr even under libtest's output
//! capture.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// How long a child may run before the parent kills it and fails. Generous: a passing child
/// takes well under a second.
const LIMIT: Duration = Duration::from_secs(30);

/// Run this binary's test `name` as a child on one worker with libtest's output capture on (as
/// in a plain `cargo test`), `envs` added. `None` if it was still running after `LIMIT`.
fn child(name: &str, envs: &[(&str, &str)]) -> Option<Output> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--test-threads=1"])
        .env("GORO_TEST_CHILD", "1")
        .env("GOMAXPROCS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let c = cmd.spawn().expect("spawn child");
    let pid = c.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(out) => Some(out.expect("child output")),
        Err(_) => {
            // SAFETY: plain kill(2) of our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            None
        }
    }
}

fn is_child() -> bool {
    std::env::var_os("GORO_TEST_CHILD").is_some()
}

/// Run child `name` and return its stderr; fail if it hung or did not pass (libtest reports
/// "1 passed" on stdout: the child's own output is captured).
fn passing_child(name: &str, envs: &[(&str, &str)]) -> String {
    let Some(out) = child(name, envs) else {
        panic!("child {name} still running after {LIMIT:?}: livelocked");
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name}: status {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stderr
}

/// Spin on the CPU (no goro call at all) for `d`.
fn spin_for(d: Duration) {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < d {
        std::hint::spin_loop();
    }
}

// ---- the monitor's report ---------------------------------------------------------------------

#[test]
fn child_spins_on_the_cpu() {
    if !is_child() {
        return;
    }
    goro::run(|| spin_for(Duration::from_millis(800)));
}

/// The report used to go through `eprintln!` from the monitor thread, which inherits libtest's
/// output capture of the test that started the runtime: it showed only if that test failed, and
/// never when the process hung and was killed.
#[test]
fn a_coroutine_spinning_on_the_cpu_is_reported_on_stderr() {
    if is_child() {
        return;
    }
    let stderr = passing_child("child_spins_on_the_cpu", &[("GORO_STUCK_REPORT_MS", "200")]);
    assert!(
        stderr.contains("without yielding") && stderr.contains("on worker 0"),
        "no report on stderr:\n{stderr}"
    );
}
