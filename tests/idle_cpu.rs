//! An idle runtime burns no CPU: after a burst of work, one idle second costs the process under
//! 2% of a core (own binary, so no other test's work is counted).

use std::time::Duration;

fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[test]
fn idle_runtime_uses_almost_no_cpu() {
    goro::gomaxprocs(2);
    // Work first, so every worker has started and spun.
    let hs: Vec<_> = (0..10_000u64).map(|i| goro::spawn(move || i)).collect();
    assert_eq!(
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>(),
        9_999 * 10_000 / 2
    );
    // A parked sleeper with a far deadline must not cause polling either.
    let _sleeper = goro::spawn(|| goro::sleep(Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(200)); // let the spinners settle (time is the feature here)
    let before = cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time() - before;
    assert!(
        used < Duration::from_millis(20),
        "idle second cost {used:?} of CPU"
    );
}
