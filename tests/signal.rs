//! goro::signal: delivery to channels, several listeners, stop, full channels, bad input, and
//! (in child processes) default behaviour after stop and the deadlock detector staying quiet.

use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::sync::Mutex;
use std::time::Duration;

use goro::chan::{self, RecvTimeoutError, TryRecvError};
use goro::signal::{self, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

/// Signals are process-wide: the tests of this file take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn kill_self(sig: i32) {
    // SAFETY: kill(2) on our own pid with a valid signal number has no memory-safety concerns.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

const LONG: Duration = Duration::from_secs(10);

#[test]
fn constants_match_libc() {
    assert_eq!(
        [SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2],
        [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGQUIT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2
        ]
    );
}

#[test]
fn delivers_to_every_listener_and_stop_detaches_one() {
    let _s = serial();
    let (tx1, rx1) = chan::bounded(4);
    let (tx2, rx2) = chan::bounded(4);
    signal::notify(&tx1, &[SIGUSR1]).unwrap();
    signal::notify(&tx2, &[SIGUSR1, SIGUSR2]).unwrap();
    kill_self(SIGUSR1);
    assert_eq!(rx1.recv_timeout(LONG), Ok(SIGUSR1));
    assert_eq!(rx2.recv_timeout(LONG), Ok(SIGUSR1));
    kill_self(SIGUSR2);
    assert_eq!(rx2.recv_timeout(LONG), Ok(SIGUSR2));
    assert_eq!(
        rx1.try_recv(),
        Err(TryRecvError::Empty),
        "tx1 did not ask for SIGUSR2"
    );

    // notify again on the same channel adds a signal.
    signal::notify(&tx1, &[SIGUSR2]).unwrap();
    signal::stop(&tx2);
    kill_self(SIGUSR2);
    assert_eq!(rx1.recv_timeout(LONG), Ok(SIGUSR2));
    // After stop returned, tx2's channel gets nothing (rx1 got it, so delivery happened).
    assert_eq!(rx2.try_recv(), Err(TryRecvError::Empty));
    signal::stop(&tx1);
    signal::stop(&tx1); // stopping twice is harmless
}

#[test]
fn full_channel_drops_without_blocking_delivery() {
    let _s = serial();
    let (full_tx, full_rx) = chan::bounded(1);
    let (tx, rx) = chan::bounded(8);
    signal::notify(&full_tx, &[SIGUSR1]).unwrap();
    signal::notify(&tx, &[SIGUSR1]).unwrap();
    for _ in 0..3 {
        kill_self(SIGUSR1);
        // Each delivery reaches the roomy channel even though the other one is full.
        assert_eq!(rx.recv_timeout(LONG), Ok(SIGUSR1));
    }
    assert_eq!(
        full_rx.len(),
        1,
        "the full channel kept one, the rest were dropped"
    );
    assert_eq!(full_rx.try_recv(), Ok(SIGUSR1));
    assert_eq!(full_rx.try_recv(), Err(TryRecvError::Empty));
    signal::stop(&full_tx);
    signal::stop(&tx);
}

#[test]
fn registered_sender_is_held_until_stop() {
    let _s = serial();
    let (tx, rx) = chan::bounded::<i32>(1);
    let keep = tx.clone();
    signal::notify(&tx, &[SIGHUP]).unwrap();
    drop(tx);
    assert!(!rx.is_closed(), "the registry holds a Sender");
    let keeper_rx = rx.clone();
    signal::stop(&keep);
    drop(keep);
    assert!(keeper_rx.is_closed(), "stop dropped the held Sender");
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(1)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn forbidden_and_invalid_signals_are_invalid_input() {
    let _s = serial();
    let (tx, _rx) = chan::bounded(1);
    for sig in [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ] {
        let e = signal::notify(&tx, &[sig]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "signal {sig}");
    }
    for sig in [0, -1, -9, 65, 128, 1000, i32::MAX] {
        let e = signal::notify(&tx, &[sig]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "number {sig}");
    }
    // A bad entry rejects the whole call: nothing was registered.
    let e = signal::notify(&tx, &[SIGUSR1, libc::SIGKILL]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn delivers_to_a_coroutine_waiting_in_select() {
    let _s = serial();
    let (tx, rx) = chan::bounded(1);
    signal::notify(&tx, &[SIGUSR2]).unwrap();
    let h = goro::spawn(move || {
        goro::select! {
            recv(rx) -> s => s.unwrap(),
            recv(chan::after(LONG)) -> _ => -1,
        }
    });
    kill_self(SIGUSR2);
    assert_eq!(h.join().unwrap(), SIGUSR2);
    signal::stop(&tx);
}

fn child(test: &str) -> std::process::Output {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("GORO_SIGNAL_CHILD", "1")
        .output()
        .unwrap()
}

fn in_child() -> bool {
    std::env::var_os("GORO_SIGNAL_CHILD").is_some()
}

#[test]
fn after_stop_sigint_terminates_again() {
    if in_child() {
        // A shell that starts a job in the background (`cmd &` in a script, as CI runners may)
        // hands it SIGINT ignored, and goro rightly keeps an ignored signal ignored after
        // `stop`. This test is about the default action, so start from it.
        // SAFETY: signal(2) with SIG_DFL on a catchable signal, before anything else runs.
        unsafe { libc::signal(SIGINT, libc::SIG_DFL) };
        let (tx, rx) = chan::bounded(1);
        signal::notify(&tx, &[SIGINT]).unwrap();
        kill_self(SIGINT);
        assert_eq!(rx.recv_timeout(LONG), Ok(SIGINT)); // caught: still alive
        println!("caught");
        signal::stop(&tx);
        kill_self(SIGINT); // nobody listens: default action (terminate)
        std::thread::sleep(LONG);
        println!("survived");
        return;
    }
    let out = child("after_stop_sigint_terminates_again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("caught"), "{stdout}");
    assert!(!stdout.contains("survived"), "{stdout}");
    assert_eq!(out.status.signal(), Some(libc::SIGINT), "{:?}", out.status);
}

#[test]
fn registration_keeps_the_deadlock_detector_quiet() {
    if in_child() {
        let got = goro::run(|| {
            let (tx, rx) = chan::bounded(1);
            signal::notify(&tx, &[SIGUSR1]).unwrap();
            // A plain thread (invisible to goro) sends the signal later; meanwhile the only
            // coroutine is blocked and only the signal registration can wake it. The detector
            // declares a deadlock after ~200 ms of stable sleep, so wait well past that.
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(1000));
                kill_self(SIGUSR1);
            });
            rx.recv().unwrap()
        });
        println!("got {got}");
        return;
    }
    let out = child("registration_keeps_the_deadlock_detector_quiet");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("got {SIGUSR1}")), "{stdout}");
}

#[test]
fn empty_list_means_every_catchable_signal() {
    let _s = serial();
    let (tx, rx) = chan::bounded(64);
    signal::notify(&tx, &[]).unwrap();
    for sig in [SIGUSR2, SIGHUP, SIGUSR1] {
        kill_self(sig);
        // Other signals (e.g. SIGCHLD from another test's child process) may arrive too.
        loop {
            match rx.recv_timeout(LONG) {
                Ok(s) if s == sig => break,
                Ok(_) => continue,
                Err(e) => panic!("signal {sig} not delivered: {e:?}"),
            }
        }
    }
    signal::stop(&tx);
}
