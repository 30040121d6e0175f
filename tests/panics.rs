//! Panics on coroutines, checked in child processes (an abort must fail a check, not the
//! test binary): issue 9 items 2 and 3.
//!
//! * std keeps "is this thread panicking" per OS thread, so a coroutine that parks in the
//!   middle of its unwind (a `defer!` that receives) leaves that state set for every other
//!   coroutine of its worker. goro's own decisions (`defer!`: swallow a panic only while the
//!   coroutine itself unwinds) must follow the coroutine, not the thread.
//! * A panic hook that parks would let another coroutine of the worker panic while std is
//!   still inside the first panic's hook, which std answers with an abort.
//! * A panic on the smallest stack must print its backtrace (`RUST_BACKTRACE=1`/`full`)
//!   without overflowing.
//!
//! No libtest harness: each check runs `panics --child NAME` and inspects its exit status,
//! stdout and stderr. Run as `panics [FILTER]`.

use std::panic;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use goro::chan;

fn join_line<T: std::fmt::Debug>(who: &str, r: Result<T, goro::JoinError>) {
    match r {
        Ok(v) => println!("{who} JOIN Ok({v:?})"),
        Err(e) => println!("{who} JOIN Err({e})"),
    }
}

// ---- children ------------------------------------------------------------------------------

/// A parks in a `defer!` while unwinding; B and C then run on the same (only) worker.
fn defer_while_another_coroutine_unwinds() {
    goro::gomaxprocs(1);
    goro::run(|| {
        let (tx, rx) = chan::bounded::<()>(0);
        let parked = Arc::new(AtomicBool::new(false));
        let p2 = parked.clone();
        let a = goro::spawn(move || {
            goro::defer! {
                p2.store(true, Ordering::SeqCst);
                let _ = rx.recv(); // parks in the middle of A's unwind
            }
            panic!("A's panic");
        });
        while !parked.load(Ordering::SeqCst) {
            goro::gosched();
        }
        // B ends normally, and its deferred block panics: a real panic, join must see it.
        let b = goro::spawn(|| {
            goro::defer! { panic!("B's own panic"); }
            1
        });
        join_line("B", b.join());
        // C panics, and its deferred block panics again while C unwinds: that one is reported
        // and swallowed, C's first panic reaches join.
        let c = goro::spawn(|| {
            goro::defer! { panic!("C's second panic"); }
            panic!("C's first panic");
        });
        join_line("C", c.join());
        // E calls goexit (an unwind without a panic hook), and its deferred block panics
        // meanwhile: reported and swallowed, join says goexit (a panic escaping a `Drop`
        // during an unwind would abort the process).
        let e = goro::spawn(|| {
            goro::defer! { panic!("E's panic during goexit"); }
            goro::goexit();
        });
        match e.join() {
            Err(e) if e.is_goexit() => println!("E JOIN goexit"),
            r => join_line("E", r.map(|_| ())),
        }
        tx.send(()).unwrap();
        join_line("A", a.join());
        // A finished: nothing unwinds any more; a panicking defer! is a plain panic again.
        let d = goro::spawn(|| {
            goro::defer! { panic!("D's own panic"); }
            4
        });
        join_line("D", d.join());
    });
    println!("CHILD-OK");
}

/// The previous hook (wrapped by goro's) yields and sleeps; two coroutines of one worker panic.
fn hook_that_parks() {
    let prev = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        goro::gosched();
        goro::sleep(Duration::from_millis(20));
        prev(info)
    }));
    goro::gomaxprocs(1);
    goro::run(|| {
        let a = goro::spawn(|| -> u32 { panic!("first panic") });
        let b = goro::spawn(|| -> u32 { panic!("second panic") });
        join_line("A", a.join());
        join_line("B", b.join());
    });
    println!("CHILD-OK");
}

#[inline(never)]
fn panic_marker_on_a_small_stack() -> u32 {
    panic!("small stack panic")
}

/// Panics on the smallest stacks (the parent sets RUST_BACKTRACE).
fn small_stack_panic() {
    goro::run(|| {
        for size in [0, 16 * 1024, 24 * 1024] {
            let h = goro::Builder::new()
                .stack_size(size)
                .spawn(panic_marker_on_a_small_stack)
                .unwrap();
            join_line(&format!("size {size}"), h.join());
        }
    });
    println!("CHILD-OK");
}

const CHILDREN: &[(&str, fn())] = &[
    (
        "defer_while_another_coroutine_unwinds",
        defer_while_another_coroutine_unwinds,
    ),
    ("hook_that_parks", hook_that_parks),
    ("small_stack_panic", small_stack_panic),
];

fn child(name: &str) {
    let (_, f) = CHILDREN
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no child {name}"));
    f();
}

// ---- checks --------------------------------------------------------------------------------

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
    all: String,
}

fn run_child(name: &str, env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--child", name]).env_remove("RUST_BACKTRACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let all = format!(
        "{:?}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}",
        out.status
    );
    Out {
        ok: out.status.success(),
        stdout,
        stderr,
        all,
    }
}

fn ensure(cond: bool, what: &str, o: &Out) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}\n{}", o.all))
    }
}

fn check_defer_follows_the_coroutine() -> Result<(), String> {
    let o = run_child("defer_while_another_coroutine_unwinds", &[]);
    ensure(o.ok && o.stdout.contains("CHILD-OK"), "child failed", &o)?;
    ensure(
        o.stdout
            .contains("B JOIN Err(coroutine panicked: B's own panic)"),
        "B's panic in its defer! was swallowed because A unwinds on the same worker",
        &o,
    )?;
    ensure(
        o.stdout
            .contains("C JOIN Err(coroutine panicked: C's first panic)"),
        "C's first panic did not reach join",
        &o,
    )?;
    ensure(
        o.stderr
            .contains("a defer! block panicked while unwinding (C's second panic)"),
        "C's second panic was not reported as swallowed",
        &o,
    )?;
    ensure(
        !o.stderr
            .contains("(B's own panic); the earlier panic continues"),
        "B's panic was reported as swallowed",
        &o,
    )?;
    ensure(
        o.stdout.contains("E JOIN goexit")
            && o.stderr
                .contains("a defer! block panicked while unwinding (E's panic during goexit)"),
        "E's goexit did not complete with its deferred panic swallowed",
        &o,
    )?;
    ensure(
        o.stdout
            .contains("A JOIN Err(coroutine panicked: A's panic)"),
        "A's panic did not reach join",
        &o,
    )?;
    ensure(
        o.stdout
            .contains("D JOIN Err(coroutine panicked: D's own panic)"),
        "D's panic was swallowed",
        &o,
    )
}

fn check_hook_that_parks_does_not_abort() -> Result<(), String> {
    let o = run_child("hook_that_parks", &[]);
    ensure(
        !o.stderr.contains("panicked while processing panic"),
        "std aborted: a second panic while the first was in its hook",
        &o,
    )?;
    ensure(o.ok && o.stdout.contains("CHILD-OK"), "child failed", &o)?;
    ensure(
        o.stdout
            .contains("A JOIN Err(coroutine panicked: first panic)")
            && o.stdout
                .contains("B JOIN Err(coroutine panicked: second panic)"),
        "a join did not return the panic",
        &o,
    )?;
    ensure(
        o.stderr.contains("first panic") && o.stderr.contains("second panic"),
        "the hook did not report both panics",
        &o,
    )
}

fn check_small_stack_backtrace(style: &str) -> Result<(), String> {
    let o = run_child("small_stack_panic", &[("RUST_BACKTRACE", style)]);
    ensure(o.ok && o.stdout.contains("CHILD-OK"), "child failed", &o)?;
    for size in [0, 16 * 1024, 24 * 1024] {
        ensure(
            o.stdout.contains(&format!(
                "size {size} JOIN Err(coroutine panicked: small stack panic)"
            )),
            "a join did not return the panic",
            &o,
        )?;
    }
    ensure(
        o.stderr.matches("stack backtrace:").count() == 3,
        "not three backtraces",
        &o,
    )?;
    // The backtrace walks from where it is printed into the coroutine's own frames.
    ensure(
        o.stderr.matches("panic_marker_on_a_small_stack").count() >= 3,
        "the backtraces miss the panicking function",
        &o,
    )
}

type Check = (&'static str, fn() -> Result<(), String>);

const CHECKS: &[Check] = &[
    (
        "defer_follows_the_coroutine_not_the_thread",
        check_defer_follows_the_coroutine,
    ),
    (
        "hook_that_parks_does_not_abort",
        check_hook_that_parks_does_not_abort,
    ),
    ("small_stack_backtrace_1", || {
        check_small_stack_backtrace("1")
    }),
    ("small_stack_backtrace_full", || {
        check_small_stack_backtrace("full")
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
    println!("\nrunning {} panic checks (child processes)", chosen.len());
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
