//! `run`'s deadlock detection, checked in child processes (the detector exits the process).
//!
//! A real deadlock is reported with Go's message, the dump and exit status 2. A program that
//! only looks stuck is left alone: its waker may be a plain thread that holds the other end of
//! a channel (of every flavor, made inside or before `run`), a `sync::Mutex`, a `WaitGroup` or
//! a `CancelFunc` and has not called goro yet, or a timer however far away.
//!
//! This binary has no libtest harness: libtest runs each test on a thread of its own while its
//! main thread waits, and that waiting thread is one goro did not start, so in a libtest child
//! the detector (rightly) stays off. Here `main` is the child's only thread besides goro's.
//! Run as `deadlock [FILTER]` it checks every scenario whose name contains FILTER, each in a
//! child `deadlock --child NAME`.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use goro::chan;

/// How long a plain thread waits before it wakes the main coroutine: well past the ~200 ms of
/// stable sleep after which the detector declares a deadlock (time is the feature here).
const LATE: Duration = Duration::from_millis(700);

/// A thread that sleeps `LATE`, then runs `f`. It is started without touching goro.
fn later(f: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(LATE);
        f();
    })
}

// ---- children that must NOT be reported (they print CHILD-OK and exit 0) -------------------

fn zero_inside() -> u32 {
    goro::run(|| {
        let (tx, rx) = chan::bounded(0);
        let t = later(move || tx.send(7).unwrap());
        let v = rx.recv().unwrap();
        t.join().unwrap();
        v
    })
}

fn array_inside() -> u32 {
    goro::run(|| {
        let (tx, rx) = chan::bounded(1);
        let t = later(move || tx.send(7).unwrap());
        let v = rx.recv().unwrap();
        t.join().unwrap();
        v
    })
}

fn list_inside() -> u32 {
    goro::run(|| {
        let (tx, rx) = chan::unbounded();
        let t = later(move || tx.send(7).unwrap());
        let v = rx.recv().unwrap();
        t.join().unwrap();
        v
    })
}

fn sender_made_before_run(cap: Option<usize>) -> u32 {
    let (tx, rx) = match cap {
        Some(n) => chan::bounded(n),
        None => chan::unbounded(),
    };
    let t = later(move || tx.send(7).unwrap());
    let v = goro::run(move || rx.recv().unwrap());
    t.join().unwrap();
    v
}

fn mutex_held_by_a_thread() -> u32 {
    goro::run(|| {
        let m = std::sync::Arc::new(goro::sync::Mutex::new(0u32));
        let (locked_tx, locked_rx) = mpsc::channel();
        let m2 = m.clone();
        let t = std::thread::spawn(move || {
            let mut g = m2.lock();
            locked_tx.send(()).unwrap();
            std::thread::sleep(LATE);
            *g = 7;
        });
        locked_rx.recv().unwrap(); // a std channel: blocks this worker briefly, never parks
        let v = *m.lock();
        t.join().unwrap();
        v
    })
}

fn waitgroup_done_by_a_thread() -> u32 {
    goro::run(|| {
        let wg = goro::sync::WaitGroup::new();
        wg.add(1);
        let wg2 = wg.clone();
        let t = later(move || wg2.done());
        wg.wait();
        t.join().unwrap();
        7
    })
}

fn cancel_by_a_thread() -> u32 {
    goro::run(|| {
        let (ctx, cancel) = goro::context::with_cancel(&goro::context::background());
        let t = later(move || cancel.cancel());
        let _ = ctx.done().recv();
        t.join().unwrap();
        7
    })
}

/// The program of issue 9, verbatim in spirit: a thread made inside `run` sends after 1 s.
fn thread_sends_after_a_second() -> u32 {
    goro::run(|| {
        let (tx, rx) = chan::bounded(0);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            tx.send(7).unwrap();
        });
        rx.recv().unwrap()
    })
}

fn sleeper_and_thread() -> u32 {
    goro::run(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let t = later(move || tx.send(7).unwrap());
        let s = goro::spawn(|| goro::sleep(Duration::from_millis(400)));
        let v = rx.recv().unwrap();
        s.join().unwrap();
        t.join().unwrap();
        v
    })
}

// ---- children that MUST be reported (exit 2 with the message) ------------------------------

fn deadlock_on_a_channel() {
    goro::run(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let _keep = tx.clone();
        let h = goro::Builder::new()
            .name("stuck-receiver")
            .spawn(move || rx.recv())
            .unwrap();
        drop(tx);
        let _ = h.join();
    });
}

fn deadlock_after_runtime_threads_worked() {
    goro::run(|| {
        // Runtime threads (timer callbacks, the blocking pool) have done work for coroutines;
        // once it is all over, a real deadlock must still be reported.
        let (tx, rx) = chan::bounded::<u32>(0);
        let t = goro::time::after_func(Duration::from_millis(1), move || tx.send(1).unwrap());
        assert_eq!(rx.recv().unwrap(), 1);
        drop(t);
        assert_eq!(goro::blocking(|| 2), 2);
        let (_keep, stuck) = chan::bounded::<u32>(0);
        let _ = stuck.recv();
    });
}

fn deadlock_after_the_waking_thread_ended() {
    // A plain thread that held a sender has sent and ended; the second receive can never
    // complete (the sender lives on in the main coroutine's frame).
    let (tx, rx) = chan::bounded::<u32>(1);
    let keep = tx.clone();
    let t = std::thread::spawn(move || tx.send(1).unwrap());
    t.join().unwrap();
    goro::run(move || {
        let _keep = keep;
        assert_eq!(rx.recv().unwrap(), 1);
        let _ = rx.recv();
    });
}

/// The main coroutine waits on a pipe whose writer is another process (a waker goro cannot
/// see, and no foreign thread here): a coroutine parked on I/O is a possible waker's target,
/// never a deadlock, and the monitor does not call it stuck either.
fn io_from_another_process() -> u32 {
    use std::io::Read;
    goro::run(|| {
        let mut writer = Command::new("sh")
            .args(["-c", "sleep 0.7; printf late"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let mut out = goro::io::Fd::new(writer.stdout.take().unwrap()).unwrap();
        let mut got = String::new();
        out.read_to_string(&mut got).unwrap();
        assert!(writer.wait().unwrap().success());
        if got == "late" {
            7
        } else {
            0
        }
    })
}

/// A real deadlock with a registered but idle listening socket open: registration alone is
/// not a waiter, so it must not keep the detector quiet.
fn deadlock_with_an_idle_socket_open() {
    goro::run(|| {
        let _l = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (tx, rx) = chan::bounded::<u32>(0);
        let _keep = tx.clone();
        let _ = rx.recv();
    });
}

/// A real deadlock while the descriptor table is full: the detector must still read the
/// kernel's thread count (it may not need a new descriptor for that) once the plain thread
/// that could have woken the main coroutine has ended.
fn deadlock_with_a_full_fd_table() {
    let (tx, rx) = chan::bounded::<u32>(1);
    goro::run(move || {
        let _keep = tx;
        let highest = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .max()
            .unwrap();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        lim.rlim_cur = highest + 1; // room for exactly the descriptors open now
                                    // SAFETY: setrlimit reads the struct; a soft limit below the hard one is always allowed.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
        let mut fillers = Vec::new();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            fillers.push(f);
        }
        // A plain thread that lives a while and ends without touching goro.
        later(|| {});
        let _ = rx.recv();
        drop(fillers);
    });
}

fn deadlock_on_a_semaphore() {
    goro::run(|| {
        let sem = goro::sync::Semaphore::new(0);
        let _p = sem.acquire(); // nobody will ever release
    });
}

/// The only waker is a signal the parent sends from outside the process once we are ready.
fn woken_by_a_signal() -> u32 {
    goro::run(|| {
        let (tx, rx) = chan::bounded(1);
        goro::signal::notify(&tx, &[goro::signal::SIGUSR1]).unwrap();
        println!("READY");
        use std::io::Write as _;
        std::io::stdout().flush().unwrap();
        let sig = rx.recv().unwrap();
        assert_eq!(sig, goro::signal::SIGUSR1);
        7
    })
}

/// Waits that end only in a hundred years or more: a pending timer, however far, is a
/// possible waker (as in Go), so none of these is a deadlock. The parent kills the child.
fn wait_far(how: &str) {
    let how = how.to_string();
    goro::run(move || {
        let (_tx, rx) = chan::bounded::<u32>(0);
        match how.as_str() {
            "sleep" => goro::sleep(Duration::MAX),
            "after" => {
                let _ = goro::time::after(Duration::MAX).recv();
            }
            "timer" => {
                let t = goro::time::Timer::new(Duration::MAX);
                let _ = t.receiver().recv();
            }
            "recv_timeout" => {
                let _ = rx.recv_timeout(Duration::MAX);
            }
            "select" => goro::select! {
                recv(rx) -> _ => {},
                default(Duration::MAX) => {},
            },
            "context" => {
                let (ctx, _c) =
                    goro::context::with_timeout(&goro::context::background(), Duration::MAX);
                let _ = ctx.done().recv();
            }
            other => panic!("unknown wait {other}"),
        }
    });
}

fn deadlock_detection_off() {
    // Run with GORO_DEADLOCK=0: stays stuck; the parent kills it.
    goro::run(|| {
        let (_tx, rx) = chan::bounded::<u32>(0);
        let _ = rx.recv();
    });
}

fn child(name: &str) {
    let v = match name {
        "zero_inside" => zero_inside(),
        "array_inside" => array_inside(),
        "list_inside" => list_inside(),
        "zero_before" => sender_made_before_run(Some(0)),
        "array_before" => sender_made_before_run(Some(1)),
        "list_before" => sender_made_before_run(None),
        "mutex_held_by_a_thread" => mutex_held_by_a_thread(),
        "waitgroup_done_by_a_thread" => waitgroup_done_by_a_thread(),
        "cancel_by_a_thread" => cancel_by_a_thread(),
        "thread_sends_after_a_second" => thread_sends_after_a_second(),
        "sleeper_and_thread" => sleeper_and_thread(),
        "woken_by_a_signal" => woken_by_a_signal(),
        "deadlock_on_a_channel" => {
            deadlock_on_a_channel();
            0
        }
        "deadlock_after_runtime_threads_worked" => {
            deadlock_after_runtime_threads_worked();
            0
        }
        "deadlock_after_the_waking_thread_ended" => {
            deadlock_after_the_waking_thread_ended();
            0
        }
        "io_from_another_process" => io_from_another_process(),
        "deadlock_with_an_idle_socket_open" => {
            deadlock_with_an_idle_socket_open();
            0
        }
        "deadlock_with_a_full_fd_table" => {
            deadlock_with_a_full_fd_table();
            0
        }
        "deadlock_on_a_semaphore" => {
            deadlock_on_a_semaphore();
            0
        }
        far if far.starts_with("far_") => {
            wait_far(&far[4..]);
            0
        }
        "deadlock_detection_off" => {
            deadlock_detection_off();
            0
        }
        other => panic!("unknown child {other}"),
    };
    println!("CHILD-OK {v}");
}

// ---- the parent -----------------------------------------------------------------------------

/// Run child `name` (with extra env); kill it after `limit`. `None` if it had to be killed.
fn spawn_child(name: &str, env: &[(&str, &str)], limit: Duration) -> Option<std::process::Output> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--child", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let c = cmd.spawn().expect("spawn child");
    let pid = c.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Some(out.expect("child output")),
        Err(_) => {
            // SAFETY: kill(2) of our own child's pid; no memory is involved.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            let _ = rx.recv();
            None
        }
    }
}

fn expect_ok(name: &str) -> Result<(), String> {
    expect_ok_with(name, &[])
}

fn expect_ok_with(name: &str, env: &[(&str, &str)]) -> Result<(), String> {
    let out = spawn_child(name, env, Duration::from_secs(30)).ok_or("hung for 30 s")?;
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && so.contains("CHILD-OK 7") && !se.contains("without yielding") {
        Ok(())
    } else {
        Err(format!(
            "status {:?}\nstdout:\n{so}\nstderr:\n{se}",
            out.status
        ))
    }
}

fn expect_deadlock(name: &str, must_name: &[&str]) -> Result<(), String> {
    let out = spawn_child(name, &[], Duration::from_secs(30))
        .ok_or("still running after 30 s: deadlock not reported")?;
    let se = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) {
        return Err(format!("status {:?}, want 2; stderr:\n{se}", out.status));
    }
    if !se.contains("fatal error: all coroutines are asleep - deadlock!") {
        return Err(format!("no deadlock message; stderr:\n{se}"));
    }
    for n in must_name {
        if !se.contains(n) {
            return Err(format!("the report does not show {n}; stderr:\n{se}"));
        }
    }
    Ok(())
}

fn expect_signal_wakes() -> Result<(), String> {
    use std::io::BufRead as _;
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args(["--child", "woken_by_a_signal"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let pid = c.id() as i32;
    let (done, watchdog) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if watchdog.recv_timeout(Duration::from_secs(30)).is_err() {
            // SAFETY: kill(2) of our own child's pid; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut stdout = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    let read = stdout.read_line(&mut line);
    if read.is_err() || line.trim() != "READY" {
        let _ = c.kill();
        let out = c.wait_with_output().map_err(|e| e.to_string())?;
        return Err(format!(
            "child said {line:?}; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::thread::sleep(LATE);
    // SAFETY: kill(2) of our own child's pid with a valid signal; no memory is involved.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    let out = c.wait_with_output().map_err(|e| e.to_string())?;
    drop(done);
    if out.status.success() && rest.contains("CHILD-OK 7") {
        Ok(())
    } else {
        Err(format!(
            "status {:?}; stdout {rest:?}; stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn expect_detection_off() -> Result<(), String> {
    expect_still_running("deadlock_detection_off", &[("GORO_DEADLOCK", "0")])
}

/// The child must still run when the detector would long have fired (~300 ms; time is the
/// feature here).
fn expect_still_running(name: &str, env: &[(&str, &str)]) -> Result<(), String> {
    match spawn_child(name, env, Duration::from_millis(1500)) {
        None => Ok(()),
        Some(out) => Err(format!(
            "exited although it should still wait: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

type Check = (&'static str, fn() -> Result<(), String>);

const CHECKS: &[Check] = &[
    ("zero_sender_made_inside_run_and_sent_from_a_thread", || {
        expect_ok("zero_inside")
    }),
    (
        "array_sender_made_inside_run_and_sent_from_a_thread",
        || expect_ok("array_inside"),
    ),
    ("list_sender_made_inside_run_and_sent_from_a_thread", || {
        expect_ok("list_inside")
    }),
    ("zero_sender_made_before_run", || expect_ok("zero_before")),
    ("array_sender_made_before_run", || expect_ok("array_before")),
    ("list_sender_made_before_run", || expect_ok("list_before")),
    ("mutex_held_by_a_plain_thread", || {
        expect_ok("mutex_held_by_a_thread")
    }),
    ("waitgroup_done_from_a_plain_thread", || {
        expect_ok("waitgroup_done_by_a_thread")
    }),
    ("cancel_from_a_plain_thread", || {
        expect_ok("cancel_by_a_thread")
    }),
    ("the_issue_9_program", || {
        expect_ok("thread_sends_after_a_second")
    }),
    ("a_sleeper_and_a_thread", || expect_ok("sleeper_and_thread")),
    ("a_signal_registration_is_a_waker", expect_signal_wakes),
    ("deadlock_is_reported_with_status_2_and_a_dump", || {
        expect_deadlock("deadlock_on_a_channel", &["\"stuck-receiver\"", "\"main\""])
    }),
    ("deadlock_is_found_after_runtime_threads_did_work", || {
        expect_deadlock("deadlock_after_runtime_threads_worked", &[])
    }),
    ("deadlock_is_found_once_the_waking_thread_ended", || {
        expect_deadlock("deadlock_after_the_waking_thread_ended", &[])
    }),
    (
        "main_parked_on_io_from_another_process_is_not_a_deadlock",
        || {
            // A 50 ms stuck-report threshold: the monitor must not call an I/O wait "running".
            expect_ok_with("io_from_another_process", &[("GORO_STUCK_REPORT_MS", "50")])
        },
    ),
    ("deadlock_is_found_with_an_idle_socket_open", || {
        expect_deadlock("deadlock_with_an_idle_socket_open", &[])
    }),
    ("deadlock_is_found_with_a_full_fd_table", || {
        expect_deadlock("deadlock_with_a_full_fd_table", &[])
    }),
    ("semaphore_deadlock_is_reported", || {
        expect_deadlock("deadlock_on_a_semaphore", &["semacquire"])
    }),
    ("goro_deadlock_0_turns_detection_off", expect_detection_off),
    ("sleep_duration_max_is_not_a_deadlock", || {
        expect_still_running("far_sleep", &[])
    }),
    ("after_duration_max_is_not_a_deadlock", || {
        expect_still_running("far_after", &[])
    }),
    ("timer_duration_max_is_not_a_deadlock", || {
        expect_still_running("far_timer", &[])
    }),
    ("recv_timeout_max_is_not_a_deadlock", || {
        expect_still_running("far_recv_timeout", &[])
    }),
    ("select_default_max_is_not_a_deadlock", || {
        expect_still_running("far_select", &[])
    }),
    ("context_timeout_max_is_not_a_deadlock", || {
        expect_still_running("far_context", &[])
    }),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1]);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        for (name, _) in CHECKS {
            println!("{name}: test");
        }
        return;
    }
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    let chosen: Vec<&Check> = CHECKS
        .iter()
        .filter(|(n, _)| filter.as_ref().is_none_or(|f| n.contains(f.as_str())))
        .collect();
    println!(
        "\nrunning {} deadlock checks (child processes, in parallel)",
        chosen.len()
    );
    // The checks are mostly waiting: run them side by side.
    let results: Vec<(&str, Result<(), String>)> = std::thread::scope(|s| {
        let hs: Vec<_> = chosen.iter().map(|(n, f)| (*n, s.spawn(f))).collect();
        hs.into_iter()
            .map(|(n, h)| (n, h.join().unwrap_or_else(|_| Err("check panicked".into()))))
            .collect()
    });
    let mut failed = 0;
    for (name, r) in &results {
        match r {
            Ok(()) => println!("test {name} ... ok"),
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED\n{e}");
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" },
        results.len() - failed
    );
    if failed > 0 {
        std::process::exit(101);
    }
}
