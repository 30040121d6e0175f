//! The same-worker hand-over fast path: a coroutine woken by the running one on its own
//! worker waits in the owner-only half of `runnext` and runs next. Checked on one worker (a
//! child process with `GOMAXPROCS=1`, so nothing is stolen and the order is the scheduler's):
//! a wake-up displaced from the slot by a newer one still runs, and a pair that keeps handing
//! the worker back and forth cannot starve a third coroutine that is runnable.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use goro::chan;

fn is_child() -> bool {
    std::env::var_os("GORO_TEST_CHILD").is_some()
}

/// Run test `name` of this binary in a child with one worker; it prints `CHILD-OK`. A child
/// still running after 60 s (a lost wake-up hangs it) is killed and fails the test.
fn on_one_worker(name: &str) {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("GORO_TEST_CHILD", "1")
        .env("GOMAXPROCS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(out) => out.expect("child output"),
        Err(_) => {
            // SAFETY: kill(2) of our own child's pid; no memory is involved.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{name}: hung for 60 s (a lost wake-up?)");
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn child_displaced_wakeups_all_run() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        assert_eq!(goro::gomaxprocs(0), 1);
        let (to_b, b_rx) = chan::bounded::<u64>(0);
        let (to_c, c_rx) = chan::bounded::<u64>(0);
        let (ack_tx, ack_rx) = chan::bounded::<u64>(0);
        let ack_b = ack_tx.clone();
        let b = goro::spawn(move || {
            for v in b_rx {
                ack_b.send(v * 2).unwrap();
            }
        });
        let c = goro::spawn(move || {
            for v in c_rx {
                ack_tx.send(v * 3).unwrap();
            }
        });
        for i in 0..20_000u64 {
            // Both are parked in `recv`: the first send wakes B into the slot, the second
            // wakes C and moves B to the queue. Both must answer.
            to_b.send(i).unwrap();
            to_c.send(i).unwrap();
            let mut got = [ack_rx.recv().unwrap(), ack_rx.recv().unwrap()];
            got.sort_unstable();
            let mut want = [i * 2, i * 3];
            want.sort_unstable();
            assert_eq!(got, want, "round {i}");
        }
        drop((to_b, to_c));
        b.join().unwrap();
        c.join().unwrap();
    });
    println!("CHILD-OK");
}

#[test]
fn displaced_wakeups_all_run() {
    if !is_child() {
        on_one_worker("child_displaced_wakeups_all_run");
    }
}

#[test]
fn child_a_pingpong_pair_does_not_starve_a_runnable_third() {
    if !is_child() {
        return;
    }
    goro::run(|| {
        for _ in 0..200 {
            let ran = Arc::new(AtomicBool::new(false));
            let (parked_tx, parked_rx) = chan::bounded::<()>(0);
            let (go_c, c_rx) = chan::bounded::<()>(0);
            let r2 = ran.clone();
            let p2 = parked_tx.clone();
            let third = goro::spawn(move || {
                p2.send(()).unwrap(); // on one worker: we run on into the recv and park there
                c_rx.recv().unwrap();
                r2.store(true, Ordering::SeqCst);
            });
            let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
            let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
            let partner = goro::spawn(move || {
                parked_tx.send(()).unwrap();
                while let Ok(v) = ping_rx.recv() {
                    if pong_tx.send(v).is_err() {
                        break;
                    }
                }
            });
            parked_rx.recv().unwrap();
            parked_rx.recv().unwrap();
            // Both are parked in `recv`. Waking the third puts it in the slot; the first ping
            // wakes the partner into the slot and moves the third to the queue. From then on
            // the pair hands the worker back and forth through the slot; the streak limit must
            // let the queued third one in well before this bound.
            go_c.send(()).unwrap();
            let mut rounds = 0u64;
            while !ran.load(Ordering::SeqCst) {
                ping_tx.send(rounds).unwrap();
                assert_eq!(pong_rx.recv().unwrap(), rounds);
                rounds += 1;
                assert!(rounds < 100_000, "the third coroutine starved");
            }
            drop(ping_tx);
            partner.join().unwrap();
            third.join().unwrap();
        }
    });
    println!("CHILD-OK");
}

#[test]
fn a_pingpong_pair_does_not_starve_a_runnable_third() {
    if !is_child() {
        on_one_worker("child_a_pingpong_pair_does_not_starve_a_runnable_third");
    }
}
