//! `goro::chan` as a drop-in for crossbeam-channel: the behaviours where it used to differ
//! (issue 9 item 8), each checked on its own. Written for goro; no test code is taken from
//! crossbeam-channel's suite.

use goro::chan::{self, bounded, unbounded, Receiver, Select, Sender};
use std::time::Duration;

/// Rounds of each linearizability check.
const ROUNDS: usize = 100_000;

/// One round trip of the non-blocking select check: the selecting side sends to `a`, then must
/// find *some* message on `a` or `b` without blocking, while the other side concurrently sends
/// to `b` and then steals the message from `a`. At every instant one of the two holds a
/// message, so a linearizable non-blocking select can never come back empty.
fn select_side(
    (a_tx, a_rx): &(Sender<u32>, Receiver<u32>),
    b_rx: &Receiver<u32>,
    go: &Sender<()>,
    done: &Sender<()>,
    use_macro: bool,
) {
    for round in 0..ROUNDS {
        go.send(()).unwrap();
        a_tx.send(1).unwrap();
        let got = if use_macro {
            goro::select! {
                recv(a_rx) -> m => m.is_ok(),
                recv(b_rx) -> m => m.is_ok(),
                default => panic!("round {round}: a message was ready, select saw none"),
            }
        } else {
            let mut sel = Select::new();
            let ia = sel.recv(a_rx);
            let ib = sel.recv(b_rx);
            let op = sel.try_select().unwrap_or_else(|_| {
                panic!("round {round}: a message was ready, try_select saw none")
            });
            if op.index() == ia {
                op.recv(a_rx).is_ok()
            } else {
                assert_eq!(op.index(), ib);
                op.recv(b_rx).is_ok()
            }
        };
        assert!(got);
        done.send(()).unwrap();
        // Whatever is left over (the other side's message or ours) goes before the next round.
        let _ = b_rx.try_recv();
        let _ = a_rx.try_recv();
    }
}

fn steal_side(a_rx: &Receiver<u32>, b_tx: &Sender<u32>, go: &Receiver<()>, done: &Receiver<()>) {
    for _ in 0..ROUNDS {
        go.recv().unwrap();
        b_tx.send(2).unwrap();
        let _ = a_rx.try_recv();
        done.recv().unwrap();
    }
}

fn linearizable(make: fn() -> (Sender<u32>, Receiver<u32>), use_macro: bool, coroutines: bool) {
    let a = make();
    let (b_tx, b_rx) = make();
    let (go_tx, go_rx) = bounded::<()>(0);
    let (done_tx, done_rx) = bounded::<()>(0);
    let a_rx = a.1.clone();
    let stealer = move || steal_side(&a_rx, &b_tx, &go_rx, &done_rx);
    let selector = move || select_side(&a, &b_rx, &go_tx, &done_tx, use_macro);
    if coroutines {
        if goro::gomaxprocs(0) < 2 {
            goro::gomaxprocs(2);
        }
        let h1 = goro::spawn(stealer);
        let h2 = goro::spawn(selector);
        h2.join().unwrap();
        h1.join().unwrap();
    } else {
        let h1 = std::thread::spawn(stealer);
        let h2 = std::thread::spawn(selector);
        h2.join().unwrap();
        h1.join().unwrap();
    }
}

fn bounded1() -> (Sender<u32>, Receiver<u32>) {
    bounded(1)
}

#[test]
fn try_select_is_linearizable_bounded_threads() {
    linearizable(bounded1, false, false);
}

#[test]
fn try_select_is_linearizable_unbounded_threads() {
    linearizable(unbounded, false, false);
}

#[test]
fn select_default_is_linearizable_bounded_threads() {
    linearizable(bounded1, true, false);
}

#[test]
fn select_default_is_linearizable_unbounded_coroutines() {
    linearizable(unbounded, true, true);
}

#[test]
fn try_select_is_linearizable_bounded_coroutines() {
    linearizable(bounded1, false, true);
}

// ---- SelectedOperation compares channels, not handles ----

#[test]
fn selected_operation_accepts_a_clone_of_the_selected_end() {
    let (tx, rx) = bounded::<i32>(1);
    tx.send(5).unwrap();
    let rx2 = rx.clone();
    let mut sel = Select::new();
    sel.recv(&rx);
    assert_eq!(sel.select().recv(&rx2), Ok(5));

    let tx2 = tx.clone();
    let mut sel = Select::new();
    sel.send(&tx);
    sel.select().send(&tx2, 6).unwrap();
    assert_eq!(rx.try_recv(), Ok(6));

    // Rendezvous and unbounded channels too.
    let (tx, rx) = bounded::<i32>(0);
    let h = std::thread::spawn(move || tx.send(7).unwrap());
    let rx2 = rx.clone();
    let mut sel = Select::new();
    sel.recv(&rx);
    assert_eq!(sel.select().recv(&rx2), Ok(7));
    h.join().unwrap();

    let (tx, rx) = unbounded::<i32>();
    let tx2 = tx.clone();
    let mut sel = Select::new();
    sel.send(&tx);
    sel.select().send(&tx2, 8).unwrap();
    assert_eq!(rx.recv(), Ok(8));
}

#[test]
#[should_panic(expected = "passed a receiver that wasn't selected")]
fn selected_operation_rejects_another_channel() {
    let (tx, rx) = bounded::<i32>(1);
    let (_tx2, other) = bounded::<i32>(1);
    tx.send(1).unwrap();
    let mut sel = Select::new();
    sel.recv(&rx);
    let _ = sel.select().recv(&other);
}

#[test]
#[should_panic(expected = "passed a sender that wasn't selected")]
fn selected_operation_rejects_the_other_direction_of_the_same_channel() {
    // A receive case of a channel may not be completed as a send on that channel: its token
    // names a full slot, not a free one.
    let (tx, rx) = bounded::<i32>(2);
    tx.send(1).unwrap();
    let mut sel = Select::new();
    sel.recv(&rx);
    let _ = sel.select().send(&tx, 2);
}

// ---- the last receiver's drop drops buffered messages ----

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A payload that counts its constructions and drops in `counts`.
struct Counted(Arc<Counts>);

#[derive(Default)]
struct Counts {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

impl Counts {
    fn make(self: &Arc<Self>) -> Counted {
        self.made.fetch_add(1, Ordering::SeqCst);
        Counted(self.clone())
    }
    fn alive(&self) -> usize {
        let made = self.made.load(Ordering::SeqCst);
        let dropped = self.dropped.load(Ordering::SeqCst);
        assert!(
            dropped <= made,
            "dropped {dropped} of {made} made: a double drop"
        );
        made - dropped
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

fn check_drop_on_last_receiver(make: fn() -> (Sender<Counted>, Receiver<Counted>), n: usize) {
    let counts = Arc::new(Counts::default());
    let (tx, rx) = make();
    for _ in 0..n {
        tx.send(counts.make()).unwrap();
    }
    let rx2 = rx.clone();
    drop(rx);
    assert_eq!(
        counts.alive(),
        n,
        "a receiver is left: nothing is dropped yet"
    );
    drop(rx2.recv().unwrap());
    drop(rx2);
    assert_eq!(
        counts.alive(),
        0,
        "the last receiver is gone, the sender is not"
    );
    assert!(tx.is_closed());
    assert!(tx.is_empty());
    assert_eq!(tx.len(), 0);
    // A send now fails and hands the value back (dropped with the error).
    assert!(tx.send(counts.make()).is_err());
    assert!(tx.try_send(counts.make()).is_err());
    assert_eq!(counts.alive(), 0);
    drop(tx);
    assert_eq!(counts.alive(), 0);
}

#[test]
fn last_receiver_drop_drops_buffered_messages_bounded() {
    check_drop_on_last_receiver(|| bounded(10), 10);
    check_drop_on_last_receiver(|| bounded(10), 3);
    check_drop_on_last_receiver(|| bounded(1), 1);
}

#[test]
fn last_receiver_drop_drops_buffered_messages_unbounded() {
    // Several blocks' worth (a block holds 31), one, and a block boundary exactly.
    for n in [1, 5, 31, 32, 62, 100, 1000] {
        check_drop_on_last_receiver(unbounded, n);
    }
}

#[test]
fn last_receiver_drop_after_close_drops_what_close_kept() {
    for make in [(|| bounded(8)) as fn() -> _, unbounded] {
        let counts = Arc::new(Counts::default());
        let (tx, rx) = make();
        for _ in 0..5 {
            tx.send(counts.make()).unwrap();
        }
        assert!(tx.close());
        // Closing keeps buffered messages for the receivers...
        assert_eq!(counts.alive(), 5);
        drop(rx.recv().unwrap());
        assert_eq!(counts.alive(), 4);
        // ...until there are none.
        drop(rx);
        assert_eq!(counts.alive(), 0);
        drop(tx);
    }
}

#[test]
fn last_receiver_drop_in_a_wrapping_ring() {
    // Head and tail in the middle of the ring, wrapped: the discard must follow the lap.
    let counts = Arc::new(Counts::default());
    let (tx, rx) = bounded::<Counted>(4);
    for _ in 0..4 {
        tx.send(counts.make()).unwrap();
    }
    for _ in 0..3 {
        drop(rx.recv().unwrap());
        tx.send(counts.make()).unwrap();
    }
    assert_eq!(counts.alive(), 4);
    drop(rx);
    assert_eq!(counts.alive(), 0);
}

/// Senders race with the last receiver's drop: every message is dropped exactly once, and
/// all of them by the time the senders have returned (while a sender still holds the
/// channel), never later.
fn drop_race(make: fn() -> (Sender<Counted>, Receiver<Counted>), coroutines: bool) {
    let rounds = if coroutines { 3000 } else { 1000 };
    for round in 0..rounds {
        let counts = Arc::new(Counts::default());
        let (tx, rx) = make();
        let keep = tx.clone();
        let senders: Vec<Box<dyn FnOnce() + Send>> = (0..2)
            .map(|_| {
                let (tx, counts) = (tx.clone(), counts.clone());
                Box::new(move || {
                    // Until the receivers are gone (the failed send's value drops here), or
                    // enough for an unbounded channel.
                    for _ in 0..2_000 {
                        if tx.send(counts.make()).is_err() {
                            break;
                        }
                    }
                }) as Box<dyn FnOnce() + Send>
            })
            .collect();
        drop(tx);
        let done: Vec<Box<dyn FnOnce() + Send>> = if coroutines {
            senders
                .into_iter()
                .map(|f| {
                    let h = goro::spawn(f);
                    Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() + Send>
                })
                .collect()
        } else {
            senders
                .into_iter()
                .map(|f| {
                    let h = std::thread::spawn(f);
                    Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() + Send>
                })
                .collect()
        };
        for _ in 0..round % 7 {
            drop(rx.recv().unwrap());
        }
        drop(rx);
        for join in done {
            join();
        }
        assert_eq!(
            counts.alive(),
            0,
            "round {round}: leaked while a sender lives"
        );
        drop(keep);
        assert_eq!(counts.alive(), 0, "round {round}");
    }
}

#[test]
fn last_receiver_drop_races_with_senders_bounded_threads() {
    drop_race(|| bounded(3), false);
}

#[test]
fn last_receiver_drop_races_with_senders_unbounded_threads() {
    drop_race(unbounded, false);
}

#[test]
fn last_receiver_drop_races_with_senders_coroutines() {
    if goro::gomaxprocs(0) < 2 {
        goro::gomaxprocs(2);
    }
    drop_race(|| bounded(3), true);
    drop_race(unbounded, true);
}

/// A message whose destructor panics the first time, and counts.
struct PanicsOnDrop(Arc<AtomicUsize>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("first drop");
        }
    }
}

#[test]
fn a_panicking_destructor_in_the_last_receivers_drop_never_drops_twice() {
    for make in [
        (|| bounded(4)) as fn() -> (Sender<PanicsOnDrop>, Receiver<PanicsOnDrop>),
        unbounded,
    ] {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = make();
        for _ in 0..3 {
            tx.send(PanicsOnDrop(drops.clone())).unwrap();
        }
        drop(tx);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(rx)));
        assert_eq!(
            *r.unwrap_err().downcast_ref::<&str>().unwrap(),
            "first drop"
        );
        // The first message's drop panicked; the others leak (as in crossbeam-channel) rather
        // than being dropped during the unwinding (a second panic there would abort).
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn a_forgotten_selected_send_leaves_an_empty_slot_behind() {
    // `mem::forget` on a `SelectedOperation` is safe code: the slot it claimed is never
    // written, and freeing the channel must not drop what is not there.
    for make in [
        (|| bounded(4)) as fn() -> (Sender<Counted>, Receiver<Counted>),
        unbounded,
    ] {
        for before in [0, 1, 3] {
            let counts = Arc::new(Counts::default());
            let (tx, rx) = make();
            for _ in 0..before {
                tx.send(counts.make()).unwrap();
            }
            {
                let mut sel = Select::new();
                sel.send(&tx);
                std::mem::forget(sel.select());
            }
            drop(tx);
            drop(rx);
            assert_eq!(counts.alive(), 0);
        }
    }
}

// ---- timer and never channels ----

use goro::chan::TryRecvError;
use std::time::Instant;

#[test]
fn never_channels_are_one_channel() {
    let a = chan::never::<u8>();
    assert!(a.same_channel(&chan::never::<u8>()));
    assert!(chan::never::<u8>().same_channel(&a.clone()));
}

#[test]
fn time_after_and_tick_are_crossbeams() {
    // `after` delivers its deadline, whenever it is received.
    let before = Instant::now();
    let r = goro::time::after(Duration::from_millis(5));
    let call = Instant::now();
    let _ = chan::at(call + Duration::from_millis(30)).recv();
    let got = r.recv().unwrap();
    assert!(got >= before + Duration::from_millis(5));
    assert!(got <= call + Duration::from_millis(5), "not the deadline");
    assert_eq!(r.try_recv(), Err(TryRecvError::Empty), "one message only");

    // `tick(0)` fires on every receive.
    let t = goro::time::tick(Duration::ZERO);
    for _ in 0..1000 {
        assert!(t.try_recv().is_ok());
    }
    // `after(0)` is ready at once, also to a non-blocking select.
    let ready = goro::select! {
        recv(goro::time::after(Duration::ZERO)) -> m => m.is_ok(),
        default => false,
    };
    assert!(ready);
}

#[test]
fn the_earlier_timer_wins() {
    // Both created before the select blocks: the earlier deadline is ready first, always.
    // The later one is far enough away that no stall of a loaded machine makes both ready by
    // the time the select looks (with 40 ms, one suite run in forty picked "late": both had
    // expired, and then either may win).
    for make in [goro::time::after, chan::after] {
        for _ in 0..50 {
            let late = make(Duration::from_secs(10));
            let early = make(Duration::from_millis(1));
            let which = goro::select! {
                recv(late) -> _ => "late",
                recv(early) -> _ => "early",
            };
            assert_eq!(which, "early");
        }
    }
}

#[test]
fn go_semantics_stay_with_timer_and_ticker() {
    let result = std::panic::catch_unwind(|| goro::time::Ticker::new(Duration::ZERO));
    assert!(result.is_err(), "Ticker::new(0) panics, as Go's NewTicker");
    let start = Instant::now();
    let t = goro::time::Timer::new(Duration::from_millis(2));
    let fired = t.receiver().recv().unwrap();
    assert!(fired >= start + Duration::from_millis(2));
}

// ---- syntax and API ----

#[test]
fn select_macro_accepts_crossbeams_spellings() {
    let (tx, rx) = bounded::<i32>(1);
    let got = goro::select! {
        recv(rx,) -> m => m.ok(),
        default() => Some(-1),
    };
    assert_eq!(got, Some(-1));
    let sent = goro::select! {
        send(tx, 3,) -> res => res.is_ok(),
        default(Duration::from_secs(1),) => false,
    };
    assert!(sent);
    let got = goro::select_biased! {
        recv(rx,) -> m => m.unwrap(),
        default() => -1,
    };
    assert_eq!(got, 3);
    // `default()` with a block body, and a trailing comma after the last arm.
    let n = goro::select! {
        recv(rx) -> _ => 0,
        default() => { 1 },
    };
    assert_eq!(n, 1);
}

fn is_send_sync<T: Send + Sync>(_: &T) {}

#[test]
fn select_is_send_and_sync_and_runs_on_another_thread() {
    let (tx, rx) = bounded::<i32>(0);
    let rx = &rx;
    let mut sel = Select::new();
    let i = sel.recv(rx);
    is_send_sync(&sel);
    std::thread::scope(|s| {
        s.spawn(|| tx.send(9).unwrap());
        let h = s.spawn(move || {
            let op = sel.select();
            assert_eq!(op.index(), i);
            op.recv(rx).unwrap()
        });
        assert_eq!(h.join().unwrap(), 9);
    });
}

#[test]
fn recycle_reuses_a_selection() {
    let mut sel = Select::new_biased();
    {
        let chans: Vec<_> = (0..20).map(|_| unbounded::<i32>()).collect();
        for (_, rx) in &chans {
            sel.recv(rx);
        }
        chans[13].0.send(1).unwrap();
        let op = sel.select();
        assert_eq!(op.index(), 13);
        assert_eq!(op.recv(&chans[13].1), Ok(1));
        sel = sel.recycle();
    }
    let (a_tx, a) = unbounded::<i32>();
    let (b_tx, b) = unbounded::<i32>();
    assert_eq!(sel.recv(&a), 0, "indexes start again from 0");
    assert_eq!(sel.recv(&b), 1);
    a_tx.send(1).unwrap();
    b_tx.send(2).unwrap();
    // Still biased: the first case wins.
    assert_eq!(sel.select().recv(&a), Ok(1));
}

fn is_fused<I: std::iter::FusedIterator>(_: &I) {}

#[test]
fn blocking_iterators_are_fused() {
    let (tx, rx) = bounded::<i32>(2);
    tx.send(1).unwrap();
    drop(tx);
    let mut it = rx.iter();
    is_fused(&it);
    assert_eq!(it.next(), Some(1));
    assert_eq!(it.next(), None);
    assert_eq!(it.next(), None);
    let it = rx.clone().into_iter();
    is_fused(&it);
}
