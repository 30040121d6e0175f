//! Graceful shutdown on SIGINT/SIGTERM/SIGQUIT (the seed notes' "监听信号并通知协程退出").
//!
//! Part 1: one ticker-driven worker; a signal closes the `stop` channel, the worker says
//! "closing ...", stops its ticker and closes `done`; main waits for `done`.
//! Part 2: five workers loop until a cancelled context tells them to stop; main waits for them
//! with a `WaitGroup`.
//!
//! Each part prints a `ready:` line once its signal handler is installed, then waits for a
//! signal. Try it: `cargo run --example graceful_shutdown`, then Ctrl-C twice.
//! (The seed uses a 3 s ticker and 1 s pauses; they are shorter here so the demo is snappy.)

use std::time::{Duration, Instant};

use goro::chan::{self, select};
use goro::context;
use goro::signal::{self, SIGINT, SIGQUIT, SIGTERM};
use goro::sync::WaitGroup;
use goro::time::Ticker;

const TICK: Duration = Duration::from_millis(300);
const PAUSE: Duration = Duration::from_millis(200);

fn log(start: Instant, msg: impl std::fmt::Display) {
    println!("[{:>6.3}s] {msg}", start.elapsed().as_secs_f64());
}

/// Block until SIGINT, SIGTERM or SIGQUIT arrives (the seed's `Notify()`).
fn wait_for_signal(start: Instant, part: u32) {
    let (tx, rx) = chan::bounded(1);
    signal::notify(&tx, &[SIGINT, SIGTERM, SIGQUIT]).expect("install signal handlers");
    log(
        start,
        format!("ready: part {part} waiting for SIGINT, SIGTERM or SIGQUIT"),
    );
    let sig = rx.recv().expect("the registry holds a sender");
    signal::stop(&tx);
    log(start, format!("got signal {sig}"));
}

fn main() {
    let start = Instant::now();
    goro::run(move || {
        // Part 1: a channel closes to stop one worker; another channel reports it has stopped.
        let (stop_tx, stop_rx) = chan::bounded::<()>(0);
        let (done_tx, done_rx) = chan::bounded::<()>(0);
        goro::go!(move || {
            let tk = Ticker::new(TICK);
            loop {
                select! {
                    recv(stop_rx) -> _ => {
                        log(start, "closing ...");
                        tk.stop();
                        done_tx.close();
                        return;
                    }
                    recv(tk.receiver()) -> _ => log(start, "do task"),
                }
            }
        });
        wait_for_signal(start, 1);
        stop_tx.close(); // exit notice: a closed channel never blocks its receivers
        let _ = done_rx.recv(); // one worker: wait on its done channel
        log(start, "exit");

        // Part 2: a context tells five workers to stop; a WaitGroup waits for them.
        let (ctx, cancel) = context::with_cancel(&context::background());
        let wg = WaitGroup::new();
        for n in 0..5 {
            wg.add(1);
            let (ctx, wg) = (ctx.clone(), wg.clone());
            goro::go!(move || loop {
                select! {
                    recv(ctx.done()) -> _ => {
                        log(start, format!("{n} closing..."));
                        wg.done();
                        return;
                    }
                    default => {
                        log(start, format!("{n} do task"));
                        goro::sleep(PAUSE);
                    }
                }
            });
        }
        wait_for_signal(start, 2);
        cancel.cancel(); // notify the workers
        wg.wait(); // several workers: wait with a WaitGroup
        log(start, "exit");
    });
}
