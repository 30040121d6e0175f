//! Runs the seed's example programs as child processes and checks what they print.
//!
//! The example binaries are built (or found up to date) with the same cargo, target directory,
//! profile and features as this test, then run directly; no test relies on sleeping: the
//! graceful-shutdown test sends its signals when the program says it is ready.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Build every example once per test process; return the path of `name`.
fn example(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf(); // target/<profile>
    let target_dir = profile_dir.parent().unwrap().to_path_buf();
    BUILD.call_once(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--examples", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir);
        match profile_dir.file_name().and_then(|s| s.to_str()) {
            Some("debug") => {}
            Some("release") => {
                cmd.arg("--release");
            }
            Some(other) => {
                cmd.args(["--profile", other]);
            }
            None => {}
        }
        if cfg!(feature = "corosensei") {
            cmd.args(["--features", "corosensei"]);
        }
        let status = cmd.status().expect("run cargo build --examples");
        assert!(status.success(), "building the examples failed");
    });
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} not found", path.display());
    path
}

/// Kill `pid` if the test is still running after `limit` (a hung child must not hang CI).
fn watchdog(pid: u32, limit: Duration) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    tx
}

#[test]
fn graceful_shutdown_stops_on_signals() {
    let mut child = Command::new(example("graceful_shutdown"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let dog = watchdog(pid, Duration::from_secs(60));
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut ticks_before_signal = 0;
    for line in out.lines() {
        let line = line.unwrap();
        if line.contains("ready: part 1") {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
        } else if line.contains("ready: part 2") {
            // Let the five workers show they are working, then stop them with SIGTERM.
            ticks_before_signal = usize::MAX;
        } else if ticks_before_signal == usize::MAX && line.ends_with("do task") {
            ticks_before_signal = 0;
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    drop(dog);
    let text = lines.join("\n");
    assert!(status.success(), "{status:?}\n{text}");
    let has = |s: &str| lines.iter().any(|l| l.ends_with(s));
    assert!(has(&format!("got signal {}", libc::SIGINT)), "{text}");
    assert!(has(&format!("got signal {}", libc::SIGTERM)), "{text}");
    assert!(has("closing ..."), "{text}");
    for n in 0..5 {
        assert!(has(&format!("{n} closing...")), "{text}");
    }
    assert_eq!(
        lines.iter().filter(|l| l.ends_with("] exit")).count(),
        2,
        "{text}"
    );
    assert!(lines.last().unwrap().ends_with("] exit"), "{text}");
    // Part 1 stops before part 2 starts; the workers close only after the signal.
    let pos = |s: &str| lines.iter().position(|l| l.ends_with(s)).unwrap();
    assert!(pos("closing ...") < pos("ready: part 2 waiting for SIGINT, SIGTERM or SIGQUIT"));
    assert!(pos(&format!("got signal {}", libc::SIGTERM)) < pos("0 closing..."));
}

#[test]
fn graceful_shutdown_sigquit_works_too() {
    let mut child = Command::new(example("graceful_shutdown"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let dog = watchdog(pid, Duration::from_secs(60));
    let mut n_exit = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("ready: part") {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGQUIT) };
        }
        if line.ends_with("] exit") {
            n_exit += 1;
        }
    }
    let status = child.wait().unwrap();
    drop(dog);
    assert!(status.success(), "{status:?}");
    assert_eq!(n_exit, 2);
}

#[test]
fn waitgroup_example_waits_for_all_five() {
    let t = Instant::now();
    let out = Command::new(example("waitgroup")).output().unwrap();
    let elapsed = t.elapsed();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    let mut nums: Vec<u32> = lines[..5].iter().map(|l| l.parse().unwrap()).collect();
    nums.sort();
    assert_eq!(nums, [0, 1, 2, 3, 4]);
    assert!(lines[5].starts_with("exit"), "{text}");
    // The five one-second sleeps overlap.
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
}

#[test]
fn context_example_shows_cancel_timeout_values() {
    let out = Command::new(example("context")).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for expect in [
        "cancel: ok",
        "err = context canceled",
        "timeout: fast op: Ok(\"finished\")",
        "timeout: slow op: context deadline exceeded",
        "cause: err = context canceled, cause = server shutting down",
        "values: handling request 42",
        "values: as a String: None",
        "values: no request id",
    ] {
        assert!(text.contains(expect), "missing {expect:?} in\n{text}");
    }
    let ok = text.find("cancel: ok").unwrap();
    let exit = text.find("cancel: exit").unwrap();
    assert!(ok < exit, "main waits for the cancel");
}
