//! WaitGroup (the seed notes' example): five coroutines each sleep a second and print their
//! number; main waits for all of them with `wait`, then prints "exit". Total time: about one
//! second, because the coroutines sleep concurrently.

use std::time::{Duration, Instant};

use goro::sync::WaitGroup;

fn main() {
    let start = Instant::now();
    goro::run(move || {
        let wg = WaitGroup::new();
        for i in 0..5 {
            wg.add(1); // before starting the coroutine, as Go's docs ask
            let wg = wg.clone();
            goro::go!(move || {
                goro::sleep(Duration::from_secs(1));
                println!("{i}");
                wg.done();
            });
        }
        wg.wait(); // blocks main until the counter is zero
        println!("exit after {:.1}s", start.elapsed().as_secs_f64());
    });
}
