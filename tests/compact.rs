//! Idle-stack compaction, checked in child processes with `GORO_COMPACT_AFTER=0` (compact at
//! every idle pass): stack-resident data survives thousands of compactions and restores while
//! coroutines sleep, read sockets, pass values through every channel flavor both ways and
//! `select`, and wait for a mutex or a wait group, on 2 workers; compacted
//! coroutines show in `runtime::dump`; and parked coroutines cost less memory with it on
//! than with it off.
//!
//! No libtest harness: compaction stays off while the process has a thread that is not
//! goro's (a libtest main thread waiting for its test would be one). Run as `compact [FILTER]`.

use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use goro::chan;

/// A coroutine's stack-resident data: filled from `seed`, checked after every park.
struct Pattern([u64; 256]);

impl Pattern {
    fn new(seed: u64) -> Pattern {
        let mut a = [0u64; 256];
        let mut x = seed | 1;
        for v in a.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *v = x;
        }
        Pattern(a)
    }

    fn check(&self, seed: u64, when: &str) {
        let want = Pattern::new(seed);
        assert!(
            self.0 == want.0,
            "coroutine {seed}: stack data changed {when}"
        );
    }
}

/// Stack data of 2,000 coroutines stays intact across sleeps, socket reads and channel
/// receives, with compaction at every idle pass on 2 workers.
fn values_survive() -> u64 {
    goro::gomaxprocs(2);
    goro::run(|| {
        let l = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // A server that answers each connection's requests after a short pause.
        goro::go!(move || {
            for c in l.incoming() {
                let mut c = c.unwrap();
                goro::go!(move || {
                    let mut b = [0u8; 8];
                    while c.read_exact(&mut b).is_ok() {
                        goro::sleep(Duration::from_millis(2));
                        if c.write_all(&b).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let checked = Arc::new(AtomicU64::new(0));
        let release = Arc::new(AtomicBool::new(false));
        let (tx, rx) = chan::bounded::<u64>(16);
        let mut hs = Vec::new();
        for id in 0..2000u64 {
            let checked = checked.clone();
            let release = release.clone();
            let tx = tx.clone();
            hs.push(goro::spawn(move || {
                let seed = id * 7919 + 1;
                let data = Pattern::new(seed);
                let mut conn = (id % 4 == 0).then(|| goro::net::TcpStream::connect(addr).unwrap());
                for round in 0..20u64 {
                    goro::sleep(Duration::from_millis(1 + (id + round) % 3));
                    data.check(seed, "across a sleep");
                    if let Some(c) = conn.as_mut() {
                        c.write_all(&(seed + round).to_le_bytes()).unwrap();
                        let mut b = [0u8; 8];
                        c.read_exact(&mut b).unwrap();
                        assert_eq!(u64::from_le_bytes(b), seed + round);
                        data.check(seed, "across a socket read");
                    }
                    if round % 5 == 0 {
                        tx.send(seed).unwrap();
                    }
                    checked.fetch_add(1, Ordering::Relaxed);
                }
                drop(tx); // the receiving loop ends once everyone is in the last phase
                          // Sleep until released (compacted again at each idle pass meanwhile), so that
                          // the dump below finds nearly everyone compacted.
                while !release.load(Ordering::SeqCst) {
                    goro::sleep(Duration::from_millis(50));
                    data.check(seed, "across the last sleeps");
                }
            }));
        }
        drop(tx);
        let mut sum = 0u64;
        for v in rx {
            sum = sum.wrapping_add(v);
        }
        // Everyone is in the last phase now; the idle workers compact them.
        goro::sleep(Duration::from_millis(200));
        let dump = goro::runtime::dump();
        let compacted = dump.lines().filter(|l| l.contains("compacted:")).count();
        println!("COMPACTED-IN-DUMP {compacted}");
        release.store(true, Ordering::SeqCst);
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(checked.load(Ordering::Relaxed), 2000 * 20);
        let want: u64 = (0..2000u64)
            .map(|id| (id * 7919 + 1) * 4)
            .fold(0, u64::wrapping_add);
        assert_eq!(sum, want, "values through the channel");
        7
    })
}

/// The kinds of wait `waits_survive` parks coroutines in.
const KINDS: [&str; 10] = [
    "rendezvous recv",
    "rendezvous send",
    "rendezvous recv of a big message",
    "rendezvous send of a big message",
    "buffered recv",
    "buffered send",
    "unbounded recv",
    "select",
    "mutex lock",
    "waitgroup wait",
];

/// A message that fits a `Waiting`'s packet slot, and one that does not (boxed packet).
type Small = (u64, [u64; 3]);
type Big = [u64; 40];

/// Coroutines parked in every kind of wait that may be compacted (rendezvous, buffered and
/// unbounded channels both ways, `select`, a `sync` mutex and wait group) keep their stack
/// data and complete with exactly the values sent, round after round, with compaction at every
/// idle pass on 2 workers. Prints how many were seen compacted while parked.
fn waits_survive() -> u64 {
    goro::gomaxprocs(2);
    goro::run(|| {
        const N: u64 = 100; // coroutines per kind and round
        const ROUNDS: u64 = 8;
        let mut seen = 0;
        for round in 0..ROUNDS {
            let (zr_tx, zr_rx) = chan::bounded::<Small>(0);
            let (zs_tx, zs_rx) = chan::bounded::<Small>(0);
            let (br_tx, br_rx) = chan::bounded::<Big>(0);
            let (bs_tx, bs_rx) = chan::bounded::<Big>(0);
            let (ar_tx, ar_rx) = chan::bounded::<u64>(1);
            let (as_tx, as_rx) = chan::bounded::<u64>(1);
            let (lr_tx, lr_rx) = chan::unbounded::<u64>();
            let (s1_tx, s1_rx) = chan::bounded::<u64>(0);
            let (s2_tx, s2_rx) = chan::bounded::<u64>(2);
            let mutex = Arc::new(goro::sync::Mutex::new(0u64));
            let guard = mutex.lock();
            let gate = goro::sync::WaitGroup::new();
            gate.add(1);
            // Fill the buffered channel the senders block on.
            as_tx.send(0).unwrap();
            let (got_tx, got_rx) = chan::unbounded::<u64>();
            let mut hs = Vec::new();
            for kind in 0..KINDS.len() as u64 {
                for i in 0..N {
                    let seed = round * 1_000_000 + kind * 10_000 + i + 1;
                    let (zr, zs, br, bs) =
                        (zr_rx.clone(), zs_tx.clone(), br_rx.clone(), bs_tx.clone());
                    let (ar, as_, lr) = (ar_rx.clone(), as_tx.clone(), lr_rx.clone());
                    let (s1, s2) = (s1_rx.clone(), s2_rx.clone());
                    let (mutex, gate, got) = (mutex.clone(), gate.clone(), got_tx.clone());
                    hs.push(goro::spawn(move || {
                        let data = Pattern::new(seed);
                        let v = match kind {
                            0 => {
                                let (v, rest) = zr.recv().unwrap();
                                assert_eq!(rest, [v; 3]);
                                v
                            }
                            1 => {
                                zs.send((seed, [seed; 3])).unwrap();
                                seed
                            }
                            2 => {
                                let m = br.recv().unwrap();
                                assert!(m.iter().all(|&x| x == m[0]));
                                m[0]
                            }
                            3 => {
                                bs.send([seed; 40]).unwrap();
                                seed
                            }
                            4 => ar.recv().unwrap(),
                            5 => {
                                as_.send(seed).unwrap();
                                seed
                            }
                            6 => lr.recv().unwrap(),
                            7 => goro::select! {
                                recv(s1) -> v => v.unwrap(),
                                recv(s2) -> v => v.unwrap(),
                            },
                            8 => {
                                *mutex.lock() += seed;
                                seed
                            }
                            _ => {
                                gate.wait();
                                seed
                            }
                        };
                        data.check(seed, &format!("across a {}", KINDS[kind as usize]));
                        got.send(v).unwrap();
                    }));
                }
            }
            drop(got_tx);
            // Idle time for the workers to compact the parked (time is the feature here).
            goro::sleep(Duration::from_millis(30));
            seen += goro::runtime::dump()
                .lines()
                .filter(|l| l.contains("compacted:"))
                .count();
            // Release everyone; `want` sums what the receivers must get and the senders send.
            let mut want = 0u64;
            let mut sent = 0u64;
            for i in 0..N {
                let v = round * 1_000_000 + 900_000 + i;
                zr_tx.send((v, [v; 3])).unwrap();
                br_tx.send([v + 1; 40]).unwrap();
                ar_tx.send(v + 2).unwrap();
                lr_tx.send(v + 3).unwrap();
                if i % 2 == 0 {
                    s1_tx.send(v + 4).unwrap();
                } else {
                    s2_tx.send(v + 4).unwrap();
                }
                want = want.wrapping_add(5 * v + 10);
            }
            assert_eq!(as_rx.recv().unwrap(), 0);
            for _ in 0..N {
                let (v, rest) = zs_rx.recv().unwrap();
                assert_eq!(rest, [v; 3]);
                let m = bs_rx.recv().unwrap();
                assert!(m.iter().all(|&x| x == m[0]));
                sent = sent.wrapping_add(v).wrapping_add(m[0]);
                sent = sent.wrapping_add(as_rx.recv().unwrap());
            }
            drop(guard);
            gate.done();
            let mut total = 0u64;
            for v in got_rx {
                total = total.wrapping_add(v);
            }
            for h in hs {
                h.join().unwrap();
            }
            let seeds = |kind: u64| -> u64 {
                (0..N)
                    .map(|i| round * 1_000_000 + kind * 10_000 + i + 1)
                    .fold(0, u64::wrapping_add)
            };
            let senders = seeds(1).wrapping_add(seeds(3)).wrapping_add(seeds(5));
            assert_eq!(sent, senders, "round {round}: what the senders sent");
            assert_eq!(*mutex.lock(), seeds(8), "round {round}: the mutex total");
            let others = senders.wrapping_add(seeds(8)).wrapping_add(seeds(9));
            assert_eq!(
                total,
                want.wrapping_add(others),
                "round {round}: values received"
            );
        }
        println!("COMPACTED-IN-DUMP {seen}");
        println!("PARKED-IN-ALL {}", ROUNDS * N * KINDS.len() as u64);
        7
    })
}

/// Bytes per coroutine of 20,000 coroutines parked receiving on one rendezvous channel (the
/// peers' `parked_mem` shape).
fn chan_parked_bytes() -> u64 {
    goro::run(|| {
        const N: u64 = 20_000;
        let (before, pte_before) = (memory(), status_bytes("VmPTE:"));
        let (tx, rx) = chan::bounded::<u64>(0);
        let wg = goro::sync::WaitGroup::new();
        wg.add(N as isize);
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let (rx, wg) = (rx.clone(), wg.clone());
                goro::spawn(move || {
                    wg.done();
                    rx.recv().unwrap()
                })
            })
            .collect();
        wg.wait();
        // Idle time for the workers to compact everyone (time is the feature here).
        goro::sleep(Duration::from_millis(700));
        let per = memory().saturating_sub(before) / N;
        println!("BYTES-PER-COROUTINE {per}");
        let pte = status_bytes("VmPTE:").saturating_sub(pte_before) / N;
        println!("PTE-PER-COROUTINE {pte}");
        for i in 0..N {
            tx.send(i).unwrap();
        }
        let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, N * (N - 1) / 2);
        7
    })
}

/// The process's compactions so far, from the dump's summary line.
fn compactions_so_far() -> u64 {
    goro::runtime::dump()
        .lines()
        .find_map(|l| l.strip_prefix("stack compaction so far: "))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One coroutine sleeps 300 ms, 8 times, with `GORO_COMPACT_AFTER=100ms`: each sleep outlasts
/// the threshold, but it wakes soon after each compaction, so its threshold doubles until it
/// passes 300 ms and the rest of its sleeps keep the stack. Prints the compactions it caused.
/// (Idle ages are read from the monitor's coarse clock, which can lag by up to ~100 ms while
/// the process idles: hence sleeps that long.)
fn backoff() -> u64 {
    goro::run(|| {
        let before = compactions_so_far();
        let h = goro::spawn(|| {
            let data = Pattern::new(99);
            for _ in 0..8 {
                goro::sleep(Duration::from_millis(300));
                data.check(99, "across a sleep");
            }
        });
        h.join().unwrap();
        // The main coroutine's own join park may be compacted once too.
        println!("COMPACTIONS {}", compactions_so_far() - before);
        7
    })
}

/// A `/proc/self/status` field in bytes (`VmRSS:`, `VmPTE:`).
fn status_bytes(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    kb * 1024
}

/// RSS + page tables of this process, in bytes.
fn memory() -> u64 {
    status_bytes("VmRSS:") + status_bytes("VmPTE:")
}

/// Bytes per coroutine of 10,000 parked coroutines that each touched a 4 KiB stack buffer.
fn parked_bytes() -> u64 {
    goro::run(|| {
        const N: u64 = 10_000;
        let before = memory();
        let wg = goro::sync::WaitGroup::new();
        wg.add(N as isize);
        let hs: Vec<_> = (0..N)
            .map(|i| {
                let wg = wg.clone();
                goro::spawn(move || {
                    let mut buf = [0u8; 4096];
                    buf.iter_mut()
                        .enumerate()
                        .for_each(|(k, b)| *b = (k as u64 ^ i) as u8);
                    let buf = std::hint::black_box(buf);
                    wg.done();
                    goro::sleep(Duration::from_millis(1500));
                    std::hint::black_box(&buf);
                })
            })
            .collect();
        wg.wait();
        // Idle time for the workers to compact everyone (time is the feature here).
        goro::sleep(Duration::from_millis(700));
        let per = memory().saturating_sub(before) / N;
        println!("BYTES-PER-COROUTINE {per}");
        for h in hs {
            h.join().unwrap();
        }
        7
    })
}

#[allow(unconditional_recursion)] // overflowing the stack is the point
fn recurse(n: u64) -> u64 {
    let buf = [n as u8; 512];
    std::hint::black_box(&buf);
    recurse(n + 1) + buf[7] as u64
}

/// A coroutine is compacted while it sleeps, restored, then overflows its stack: the guard
/// below the stack still catches it and the report still names it (the process aborts).
fn overflow_after_restore() -> u64 {
    goro::run(|| {
        let h = goro::Builder::new()
            .name("compacted-diver")
            .stack_size(64 * 1024)
            .spawn(|| {
                goro::sleep(Duration::from_millis(400));
                recurse(0)
            })
            .unwrap();
        goro::sleep(Duration::from_millis(200));
        let dump = goro::runtime::dump();
        let compacted = dump
            .lines()
            .filter(|l| l.contains("compacted-diver") && l.contains("compacted:"))
            .count();
        println!("COMPACTED-IN-DUMP {compacted}");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let _ = h.join();
        unreachable!("the overflow must abort the process");
    })
}

fn child(name: &str) {
    let v = match name {
        "overflow_after_restore" => overflow_after_restore(),
        "values_survive" => values_survive(),
        "parked_bytes" => parked_bytes(),
        "waits_survive" => waits_survive(),
        "chan_parked_bytes" => chan_parked_bytes(),
        "backoff" => backoff(),
        other => panic!("unknown child {other}"),
    };
    println!("CHILD-OK {v}");
}

/// Run child `name` with `GORO_COMPACT_AFTER=after`; its stdout on success.
fn run_child(name: &str, after: &str) -> Result<String, String> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--child", name])
        .env("GORO_COMPACT_AFTER", after)
        .output()
        .map_err(|e| e.to_string())?;
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && so.contains("CHILD-OK 7") {
        Ok(so)
    } else {
        Err(format!(
            "status {:?}\nstdout:\n{so}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn number(out: &str, key: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in\n{out}"))
}

/// No exact saved stack pointer on the corosensei backend: compaction stays off there.
fn none_on_corosensei(compacted: u64) -> Result<(), String> {
    match compacted {
        0 => Ok(()),
        n => Err(format!("{n} compacted on corosensei")),
    }
}

/// Run child `name` with compaction at every pass and with it off; the compacted coroutines
/// must cost at least `margin` bytes less each (nothing to compare on corosensei).
fn compare_bytes(name: &str, what: &str, margin: u64) -> Result<(), String> {
    if cfg!(feature = "corosensei") {
        return Ok(()); // compaction is off on that backend
    }
    let on = number(&run_child(name, "0")?, "BYTES-PER-COROUTINE");
    let off = number(&run_child(name, "off")?, "BYTES-PER-COROUTINE");
    println!("parked coroutine {what}: {on} B compacted, {off} B not");
    if on + margin > off {
        return Err(format!("compacted {on} B vs {off} B per coroutine"));
    }
    Ok(())
}

type Check = (&'static str, fn() -> Result<(), String>);

const CHECKS: &[Check] = &[
    ("stack_data_survives_compaction_and_restore", || {
        let out = run_child("values_survive", "0")?;
        let n = number(&out, "COMPACTED-IN-DUMP");
        if cfg!(feature = "corosensei") {
            return none_on_corosensei(n);
        }
        if n < 1000 {
            return Err(format!(
                "only {n} of 2,000 sleeping coroutines compacted\n{out}"
            ));
        }
        Ok(())
    }),
    ("every_eligible_wait_keeps_stack_data_and_values", || {
        let out = run_child("waits_survive", "0")?;
        let n = number(&out, "COMPACTED-IN-DUMP");
        let all = number(&out, "PARKED-IN-ALL");
        if cfg!(feature = "corosensei") {
            return none_on_corosensei(n);
        }
        // Most of them are parked and compacted when the dump looks (a few are still on
        // their way to their wait, or woken by a spurious token).
        if n < all / 2 {
            return Err(format!(
                "only {n} of {all} parked coroutines seen compacted\n{out}"
            ));
        }
        Ok(())
    }),
    ("coroutines_parked_on_a_channel_cost_less_memory", || {
        // Not compacted: a touched stack page and its page-table share; compacted: the live
        // bytes on the heap (a few hundred). At least 2 KiB apart.
        compare_bytes("chan_parked_bytes", "parked on a rendezvous receive", 2048)
    }),
    (
        "compacted_default_stacks_give_back_their_page_tables",
        || {
            if cfg!(feature = "corosensei") {
                return Ok(()); // compaction is off on that backend
            }
            // A default (1 MiB) stack has a 2 MiB span slot of its own while compaction is on:
            // in use it pins its page-table page (4 KiB), compacted the kernel frees it. Packed
            // side by side, two stacks would share one that no compaction could free (2 KiB each).
            let on = number(&run_child("chan_parked_bytes", "0")?, "PTE-PER-COROUTINE");
            let off = number(&run_child("chan_parked_bytes", "off")?, "PTE-PER-COROUTINE");
            println!("page tables per parked coroutine: {on} B compacted, {off} B not");
            if on > 256 || off < 1024 {
                return Err(format!(
                    "page tables per coroutine: {on} B compacted (want <= 256), {off} B not \
                 (want >= 1024)"
                ));
            }
            Ok(())
        },
    ),
    ("a_coroutine_woken_soon_after_compaction_backs_off", || {
        let out = run_child("backoff", "100ms")?;
        let n = number(&out, "COMPACTIONS");
        if cfg!(feature = "corosensei") {
            return none_on_corosensei(n);
        }
        // Without the backoff every one of the 8 sleeps is compacted; with it the threshold
        // doubles twice (100 -> 200 -> 400 ms) and the sleeps after that keep their stack.
        if !(1..=5).contains(&n) {
            return Err(format!(
                "{n} compactions for 8 sleeps of 300 ms, want 1 to 5\n{out}"
            ));
        }
        Ok(())
    }),
    ("compaction_off_keeps_everything_in_place", || {
        let out = run_child("values_survive", "off")?;
        match number(&out, "COMPACTED-IN-DUMP") {
            0 => Ok(()),
            n => Err(format!("{n} compacted although GORO_COMPACT_AFTER=off")),
        }
    }),
    ("a_restored_stack_still_reports_its_overflow", || {
        use std::os::unix::process::ExitStatusExt;
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--child", "overflow_after_restore"])
            .env("GORO_COMPACT_AFTER", "0")
            .output()
            .map_err(|e| e.to_string())?;
        let so = String::from_utf8_lossy(&out.stdout);
        let se = String::from_utf8_lossy(&out.stderr);
        if out.status.signal() != Some(libc::SIGABRT)
            || !se.contains("'compacted-diver'")
            || !se.contains("overflowed its stack of 65536 bytes")
        {
            return Err(format!(
                "status {:?}\nstdout:\n{so}\nstderr:\n{se}",
                out.status
            ));
        }
        let n = number(&so, "COMPACTED-IN-DUMP");
        let want = if cfg!(feature = "corosensei") { 0 } else { 1 };
        if n != want {
            return Err(format!(
                "the diver was compacted {n} times before waking, want {want}\n{so}"
            ));
        }
        Ok(())
    }),
    ("compacted_coroutines_cost_less_memory", || {
        // Not compacted: two touched stack pages (the buffer and the frames above it); compacted:
        // the live bytes on the heap. At least 3 KiB apart.
        compare_bytes("parked_bytes", "with a 4 KiB stack buffer", 3072)
    }),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1]);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        for (name, _) in CHECKS {
            println!("{name}: test");
        }
        return;
    }
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    let mut failed = 0;
    let mut ran = 0;
    for (name, f) in CHECKS {
        if filter.as_ref().is_some_and(|x| !name.contains(x.as_str())) {
            continue;
        }
        ran += 1;
        match f() {
            Ok(()) => println!("test {name} ... ok"),
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED\n{e}");
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" },
        ran - failed
    );
    if failed > 0 {
        std::process::exit(101);
    }
}
