//! Peer workloads of the sync area: W7 `mutex` (see `shared/peers/go/main.go`, `wMutex`).

use std::sync::Arc;
use std::time::Instant;

use goro::sync::{Mutex, WaitGroup};

use crate::{best, check, ns_per, result, REPS};

const MUTEX_TASKS: u64 = 100;
const MUTEX_ITERS: u64 = 10_000;

/// Run `workload` if it belongs to this file.
pub fn dispatch(workload: &str) -> bool {
    match workload {
        "mutex" => mutex(),
        _ => return false,
    }
    true
}

/// 100 coroutines x 10,000 lock/increment/unlock of one goro mutex, awaited with a WaitGroup.
fn mutex() {
    let mut last = 0;
    let d = best(REPS, || {
        let counter = Arc::new(Mutex::new(0u64));
        let wg = WaitGroup::new();
        wg.add(MUTEX_TASKS as isize);
        let t0 = Instant::now();
        for _ in 0..MUTEX_TASKS {
            let (counter, wg) = (counter.clone(), wg.clone());
            goro::go!(move || {
                for _ in 0..MUTEX_ITERS {
                    *counter.lock() += 1;
                }
                wg.done();
            });
        }
        wg.wait();
        let el = t0.elapsed();
        last = *counter.lock();
        el
    });
    result("mutex", ns_per(d, MUTEX_TASKS * MUTEX_ITERS), "ns/op");
    check("mutex", last, MUTEX_TASKS * MUTEX_ITERS);
}
