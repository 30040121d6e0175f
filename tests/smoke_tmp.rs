use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn spawn_join_many() {
    let hs: Vec<_> = (0..10_000u64).map(|i| goro::spawn(move || i * 2)).collect();
    let s: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(s, 2 * (9999 * 10000 / 2));
}

#[test]
fn nested_and_yield() {
    let v = goro::run(|| {
        let c = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..100)
            .map(|_| {
                let c = c.clone();
                goro::spawn(move || {
                    for _ in 0..100 {
                        c.fetch_add(1, Ordering::Relaxed);
                        goro::gosched();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        c.load(Ordering::Relaxed)
    });
    assert_eq!(v, 10_000);
}

#[test]
fn sleep_works() {
    let t = Instant::now();
    let hs: Vec<_> = (0..1000)
        .map(|_| goro::spawn(|| goro::sleep(Duration::from_millis(50))))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(50) && e < Duration::from_secs(2),
        "{e:?}"
    );
}

#[test]
fn panic_and_goexit() {
    let h = goro::spawn(|| -> u32 { panic!("boom") });
    let e = h.join().unwrap_err();
    assert!(e.is_panic());
    let h = goro::spawn(|| -> u32 {
        goro::defer! { eprintln!("deferred"); }
        goro::goexit()
    });
    assert!(h.join().unwrap_err().is_goexit());
}
