//! Closing a rendezvous channel under a parked `select!` frees the select's heap packets
//! (its own binary: it counts every heap byte with a global allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// A coroutine selects over two rendezvous channels; this thread closes both while it (most
/// likely) waits there. Returns how many rounds saw the select end by the close.
fn rounds(n: usize) -> usize {
    let mut closed = 0;
    for _ in 0..n {
        let (tx_a, rx_a) = goro::chan::bounded::<u64>(0);
        let (tx_b, rx_b) = goro::chan::bounded::<u64>(0);
        let (ready_tx, ready_rx) = goro::chan::bounded::<()>(0);
        let h = goro::spawn(move || {
            ready_tx.send(()).unwrap();
            goro::select! {
                recv(rx_a) -> v => v.is_err(),
                recv(rx_b) -> v => v.is_err(),
            }
        });
        ready_rx.recv().unwrap();
        tx_a.close();
        tx_b.close();
        if h.join().unwrap() {
            closed += 1;
        }
    }
    closed
}

#[test]
fn closing_under_a_parked_select_leaks_nothing() {
    goro::gomaxprocs(2);
    rounds(5_000); // warm up pools and caches
    let before = LIVE.load(Ordering::Relaxed);
    let closed = rounds(20_000);
    let grown = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(closed, 20_000, "every select must end by the close");
    // Measured: leaking one packet per round grows the heap by ~1.3 MB here; without the leak
    // it moves by 20-215 KB (recycled control blocks and stacks kept in pools count as live).
    assert!(
        grown < 600_000,
        "live heap grew by {grown} bytes over 20,000 rounds"
    );
}
