//! Tests of stack memory, guards and overflow reporting. Tests that need a fresh process
//! (a fatal fault, a different guard mode) re-run this test binary as a child with
//! `GORO_TEST_CHILD=<test name>`; the named test then does the real work.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use super::*;

/// True in the child process that should run `name`'s body.
fn is_child(name: &str) -> bool {
    std::env::var("GORO_TEST_CHILD").as_deref() == Ok(name)
}

fn run_child(name: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().unwrap();
    Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("GORO_TEST_CHILD", name)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn sized(n: usize) -> Stack {
    allocate(round_stack_size(n).unwrap()).unwrap()
}

/// Resident pages of `[lo, hi)` (page aligned), by mincore.
fn resident_pages(lo: usize, hi: usize) -> usize {
    let page = page_size();
    let n = (hi - lo) / page;
    let mut v = vec![0u8; n];
    // SAFETY: the range is mapped (one of our stacks); `v` has one byte per page.
    let rc = unsafe { libc::mincore(lo as *mut libc::c_void, hi - lo, v.as_mut_ptr()) };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    v.iter().filter(|&&b| b & 1 != 0).count()
}

fn maps_lines() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn sizes_round_and_limit() {
    let page = page_size();
    assert_eq!(round_stack_size(0).unwrap(), MIN_STACK_SIZE);
    assert_eq!(round_stack_size(1).unwrap(), MIN_STACK_SIZE);
    assert_eq!(
        round_stack_size(MIN_STACK_SIZE + 1).unwrap(),
        MIN_STACK_SIZE + page
    );
    assert_eq!(round_stack_size(1 << 20).unwrap(), 1 << 20);
    assert_eq!(round_stack_size(MAX_STACK_SIZE).unwrap(), MAX_STACK_SIZE);
    for bad in [MAX_STACK_SIZE + 1, usize::MAX] {
        let e = round_stack_size(bad).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("1 GiB"), "{e}");
    }
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(parse_size(" 64K "), Ok(64 << 10));
    assert_eq!(parse_size("8m"), Ok(8 << 20));
    assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    assert!(parse_size("").is_err());
    assert!(parse_size("12Q").is_err());
    assert!(parse_size("-5").is_err());
    assert!(parse_size("99999999999999999999999").is_err());
    assert!(parse_size("99999999999999G").is_err());
}

#[test]
fn default_stack_size_from_env_or_default() {
    const NAME: &str = "stack::tests::default_stack_size_from_env_or_default";
    if is_child(NAME) {
        println!("SIZE={}", default_stack_size());
        return;
    }
    if std::env::var_os("GORO_TEST_CHILD").is_some() {
        return;
    }
    let out = run_child(NAME, &[("GORO_STACK_SIZE", "256K")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("SIZE=262144"));
    let out = run_child(NAME, &[("GORO_STACK_SIZE", "lots")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("SIZE=1048576"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GORO_STACK_SIZE") && err.contains("lots"),
        "{err}"
    );
    let out = run_child(NAME, &[("GORO_STACK_SIZE", "2G")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("SIZE=1048576"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 GiB"));
}

#[test]
fn thousands_distinct_aligned_non_overlapping_and_reused() {
    let size = round_stack_size(24 * 1024).unwrap();
    let mut v: Vec<Stack> = (0..5000).map(|_| allocate(size).unwrap()).collect();
    for s in &v {
        assert_eq!(s.size(), size);
        assert_eq!(s.top() % 16, 0);
        assert_eq!(s.top() - s.bottom(), size);
    }
    v.sort_by_key(|s| s.bottom());
    for w in v.windows(2) {
        assert!(w[0].top() + w[0].guard_size() <= w[1].bottom(), "overlap");
    }
    let mut bottoms: Vec<usize> = v.iter().map(|s| s.bottom()).collect();
    drop(v);
    let reserved = stats().reserved;
    let mut again: Vec<usize> = (0..5000)
        .map(|_| {
            let s = allocate(size).unwrap();
            let b = s.bottom();
            std::mem::forget(s); // keep it out of the pool while we collect
            b
        })
        .collect();
    // Everything came from the pool: no new address space for this class.
    bottoms.sort_unstable();
    again.sort_unstable();
    assert_eq!(bottoms, again);
    assert!(stats().reserved >= reserved);
    for b in again {
        drop(Stack {
            bottom: b,
            size: size as u32,
            low_water: AtomicUsize::new(usize::MAX),
            unguarded: std::sync::atomic::AtomicBool::new(false),
        });
    }
}

#[test]
fn usable_to_the_bottom_and_lazily_committed() {
    // A size class no other test uses: a stack another test touched and returned to the
    // shared pool would otherwise make the "nothing resident yet" check below flaky.
    let s = sized(64 * 1024 + 3 * 4096);
    let page = page_size();
    assert_eq!(resident_pages(s.bottom(), s.top()), 0);
    let mut a = s.bottom();
    while a < s.top() {
        // SAFETY: inside the stack we own.
        unsafe { std::ptr::write_volatile(a as *mut u8, 0xAB) };
        a += page;
    }
    // SAFETY: the last byte below top.
    unsafe { std::ptr::write_volatile((s.top() - 1) as *mut u8, 1) };
    assert_eq!(resident_pages(s.bottom(), s.top()), s.size() / page);
}

#[test]
fn grown_stacks_shrink_when_dropped_or_trimmed() {
    let size = round_stack_size(200 * 1024).unwrap();
    let page = page_size();
    let touch = move |s: &Stack| {
        let mut a = s.bottom();
        while a < s.top() {
            // SAFETY: inside the stack we own.
            unsafe { std::ptr::write_volatile(a as *mut u8, 1) };
            a += page;
        }
    };
    // Reported deep: shrunk at drop.
    let s = allocate(size).unwrap();
    let (lo, hi) = (s.bottom(), s.top());
    touch(&s);
    s.note_sp(lo + 100);
    drop(s);
    assert!(resident_pages(lo, hi) <= KEEP / page);
    // Not reported (deep only between suspensions): kept, then trimmed from the pool. Drop
    // it on a thread that exits, so the thread cache hands it to the global pool.
    let (lo, hi) = std::thread::spawn(move || {
        let s = allocate(size).unwrap();
        touch(&s);
        s.note_sp(s.top() - 64); // shallow: no shrink at drop
        (s.bottom(), s.top())
    })
    .join()
    .unwrap();
    assert_eq!(resident_pages(lo, hi), size / page);
    assert!(trim_pool() >= 1);
    assert!(resident_pages(lo, hi) <= KEEP / page);
}

#[test]
fn hundred_thousand_live_stacks_use_few_mappings() {
    let before = maps_lines();
    let size = round_stack_size(64 * 1024).unwrap();
    let v: Vec<Stack> = (0..100_000).map(|_| allocate(size).unwrap()).collect();
    let after = maps_lines();
    assert_eq!(
        stats().mode,
        Mode::Madvise,
        "this kernel should have MADV_GUARD_INSTALL"
    );
    // Slabs double up to 4 GiB: 100k * 128 KiB = 12.5 GiB is ~10 slabs.
    assert!(after < before + 100, "maps: {before} -> {after}");
    drop(v);
}

/// Guard mode selection by env and the mprotect fallback's budget.
#[test]
fn mprotect_fallback_guards_and_budget() {
    const NAME: &str = "stack::tests::mprotect_fallback_guards_and_budget";
    if is_child(NAME) {
        let size = round_stack_size(16 * 1024).unwrap();
        let mut v = vec![];
        let err = loop {
            match allocate(size) {
                Ok(s) => v.push(s),
                Err(e) => break e,
            }
            assert!(v.len() < 100_000, "no budget limit hit");
        };
        assert_eq!(stats().mode, Mode::Mprotect);
        let msg = err.to_string();
        assert!(msg.contains("vm.max_map_count"), "{msg}");
        // Every stack cost two mappings; the budget is half of max_map_count.
        println!("STACKS={} MAPS={} ERR={msg}", v.len(), maps_lines());
        drop(v);
        // Freed stacks are reusable without new mappings.
        let again: Vec<Stack> = (0..1000).map(|_| allocate(size).unwrap()).collect();
        drop(again);
        return;
    }
    if std::env::var_os("GORO_TEST_CHILD").is_some() {
        return;
    }
    let out = run_child(NAME, &[("GORO_GUARD", "mprotect")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("STACKS="),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Entry for the overflow child: recurse until the guard is hit.
///
/// # Safety
///
/// Only as a context entry.
unsafe fn recurse_forever(_: *mut ()) {
    #[inline(never)]
    #[allow(unconditional_recursion)]
    fn down(n: u64) -> u64 {
        let pad = std::hint::black_box([n; 32]);
        down(n + 1).wrapping_add(pad[7])
    }
    std::hint::black_box(down(0));
}

/// In a child: run a coroutine that recurses without end, named, on a 64 KiB stack.
#[test]
fn overflow_is_reported_with_id_name_and_size() {
    const NAME: &str = "stack::tests::overflow_is_reported_with_id_name_and_size";
    if is_child(NAME) {
        overflow::install();
        overflow::ensure_altstack();
        let st = sized(64 * 1024);
        let info = overflow::RunningInfo::new(4242, "deep-recursion", &st);
        overflow::set_running(&info);
        // SAFETY: the stack outlives the context; the entry never returns.
        let mut ctx =
            unsafe { crate::arch::SwitchContext::new(&st, recurse_forever, std::ptr::null_mut()) };
        // SAFETY: fresh context, this thread.
        unsafe { ctx.resume() };
        println!("NOT REACHED");
        return;
    }
    if std::env::var_os("GORO_TEST_CHILD").is_some() {
        return;
    }
    for mode in ["auto", "mprotect"] {
        let out = run_child(NAME, &[("GORO_GUARD", mode)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{mode}: {err}");
        assert!(
            err.contains(
                "fatal: goro coroutine 4242 'deep-recursion' overflowed its stack of 65536 bytes"
            ),
            "{mode}: {err}"
        );
    }
}

/// In a child: touching the guard with no coroutine running is an ordinary fatal SIGSEGV
/// (the handler passes it on), in both guard modes.
#[test]
fn guard_faults_and_foreign_faults_pass_through() {
    const NAME: &str = "stack::tests::guard_faults_and_foreign_faults_pass_through";
    if is_child(NAME) {
        overflow::install();
        let st = sized(16 * 1024);
        // SAFETY: deliberately reads the guard: must fault.
        let v = unsafe { std::ptr::read_volatile((st.bottom() - 1) as *const u8) };
        println!("NOT REACHED {v}");
        return;
    }
    if std::env::var_os("GORO_TEST_CHILD").is_some() {
        return;
    }
    for mode in ["auto", "mprotect"] {
        let out = run_child(NAME, &[("GORO_GUARD", mode)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{mode}: {err}");
        assert!(!err.contains("goro coroutine"), "{err}");
    }
}

fn status_kib(field: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A million default-size stacks, each with its top page touched (what a parked shallow
/// coroutine costs in stack memory). Heavy (~6 GiB for a moment): run by hand with
/// `cargo test --release --lib -- --ignored million --nocapture`.
#[test]
#[ignore]
fn million_default_stacks_report() {
    let n = 1_000_000;
    let size = default_stack_size();
    let (maps0, pte0, rss0) = (maps_lines(), status_kib("VmPTE:"), status_kib("VmRSS:"));
    let t = std::time::Instant::now();
    let v: Vec<Stack> = (0..n).map(|_| allocate(size).unwrap()).collect();
    let t_alloc = t.elapsed();
    let (pte1, rss1) = (status_kib("VmPTE:"), status_kib("VmRSS:"));
    let t = std::time::Instant::now();
    for s in &v {
        // SAFETY: the top byte of a stack we own.
        unsafe { std::ptr::write_volatile((s.top() - 8) as *mut u64, 1) };
    }
    let t_touch = t.elapsed();
    let (maps2, pte2, rss2) = (maps_lines(), status_kib("VmPTE:"), status_kib("VmRSS:"));
    println!(
        "{n} stacks of {size} bytes ({:?}): allocated in {t_alloc:?}, top pages touched in \
         {t_touch:?}; mappings {maps0} -> {maps2}; \
         untouched: VmPTE +{} KiB, VmRSS +{} KiB; top page touched: VmPTE +{} KiB \
         ({:.2} KiB/stack), VmRSS +{} KiB ({:.2} KiB/stack)",
        stats().mode,
        pte1 - pte0,
        rss1.saturating_sub(rss0),
        pte2 - pte0,
        (pte2 - pte0) as f64 / n as f64,
        rss2.saturating_sub(rss0),
        rss2.saturating_sub(rss0) as f64 / n as f64,
    );
    let t = std::time::Instant::now();
    drop(v);
    let again: Vec<Stack> = (0..n).map(|_| allocate(size).unwrap()).collect();
    println!("free + reallocate {n} from the pools: {:?}", t.elapsed());
    drop(again);
}
