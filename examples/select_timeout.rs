//! Go's `time.After` pattern: wait for a result, but not forever.
//!
//! ```go
//! select {
//! case res := <-c:
//!     fmt.Println(res)
//! case <-time.After(100 * time.Millisecond):
//!     fmt.Println("timeout")
//! }
//! ```
//!
//! Run: `cargo run --example select_timeout`

use std::time::Duration;

use goro::chan::{self, bounded};

/// A slow computation in its own coroutine, reporting on a 1-slot channel (so that it can
/// finish and exit even if nobody waits for it any more).
fn slow_job(name: &'static str, takes: Duration) -> chan::Receiver<String> {
    let (tx, rx) = bounded(1);
    goro::go!(move || {
        goro::sleep(takes);
        let _ = tx.send(format!("{name} done after {takes:?}"));
    });
    rx
}

fn main() {
    goro::run(|| {
        for (name, takes) in [("fast", 20), ("slow", 300)] {
            let c = slow_job(name, Duration::from_millis(takes));
            goro::select! {
                recv(c) -> res => println!("{}", res.unwrap()),
                recv(goro::time::after(Duration::from_millis(100))) -> _ => {
                    println!("{name}: timeout after 100ms");
                }
            }
        }

        // The same with `default(timeout)`, which needs no timer channel at all.
        let c = slow_job("slow again", Duration::from_millis(300));
        goro::select! {
            recv(c) -> res => println!("{}", res.unwrap()),
            default(Duration::from_millis(50)) => println!("slow again: timeout after 50ms"),
        }

        // A ticker with a deadline: tick every 30 ms until 100 ms have passed.
        let ticker = goro::time::Ticker::new(Duration::from_millis(30));
        let deadline = goro::time::after(Duration::from_millis(100));
        let mut ticks = 0;
        loop {
            goro::select! {
                recv(ticker.receiver()) -> _ => ticks += 1,
                recv(deadline) -> _ => break,
            }
        }
        ticker.stop();
        println!("{ticks} ticks in 100ms");
    });
}
