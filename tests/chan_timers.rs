//! `goro::chan`'s timer channels follow crossbeam-channel (`at`, `after`, `tick`, `never`),
//! and so do `goro::time::after` and `time::tick`; `time::Timer`/`Ticker` keep Go's. Timing bounds are generous: time is the feature
//! here, but the machine is shared.

use goro::chan::{self, bounded, RecvTimeoutError, Select, TryRecvError};
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

#[test]
fn at_delivers_its_instant_once() {
    let when = Instant::now() + 5 * MS;
    let r = chan::at(when);
    assert_eq!(
        r.try_recv(),
        Err(TryRecvError::Empty),
        "not before its time"
    );
    assert_eq!(r.recv(), Ok(when));
    assert!(Instant::now() >= when);
    // One message only; the channel is never closed.
    assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(r.recv_timeout(10 * MS), Err(RecvTimeoutError::Timeout));
    assert!(!r.is_closed());
    assert!(!r.close(), "a timer channel cannot be closed");
}

#[test]
fn at_in_the_past_is_ready_at_once() {
    let when = Instant::now();
    let r = chan::at(when);
    assert_eq!(r.len(), 1);
    assert!(r.is_full());
    assert_eq!(r.capacity(), Some(1));
    assert_eq!(r.try_recv(), Ok(when));
    assert!(r.is_empty());
}

#[test]
fn after_delivers_the_deadline_not_the_receive_instant() {
    let d = 20 * MS;
    let before = Instant::now();
    let r = chan::after(d);
    let after_call = Instant::now();
    // Receive late: the message is still the deadline.
    let _ = chan::at(after_call + d + 30 * MS).recv();
    let got = r.recv().unwrap();
    assert!(got >= before + d, "{:?} early", before + d - got);
    assert!(
        got <= after_call + d,
        "delivered {:?} after the deadline",
        got - (after_call + d)
    );
}

#[test]
fn after_zero_and_after_max() {
    assert!(chan::after(Duration::ZERO).try_recv().is_ok());
    // A deadline past the end of time never fires (and does not panic).
    let r = chan::after(Duration::MAX);
    assert_eq!(r.recv_timeout(5 * MS), Err(RecvTimeoutError::Timeout));
}

#[test]
fn passed_timer_counts_as_ready_in_non_blocking_select() {
    let when = Instant::now();
    let got = goro::select! {
        recv(chan::at(when)) -> m => m,
        default => panic!("a timer whose deadline passed is ready"),
    };
    assert_eq!(got, Ok(when));
    let r = chan::at(when);
    let mut sel = Select::new();
    let i = sel.recv(&r);
    assert_eq!(sel.try_ready(), Ok(i));
    let op = sel.try_select().expect("ready");
    assert_eq!(op.recv(&r), Ok(when));
}

#[test]
fn earlier_after_beats_a_later_one() {
    for _ in 0..20 {
        let start = Instant::now();
        let late = chan::after(300 * MS);
        let early = chan::after(2 * MS);
        let which = goro::select! {
            recv(late) -> _ => "late",
            recv(early) -> _ => "early",
        };
        assert_eq!(which, "early");
        assert!(start.elapsed() < 300 * MS);
    }
}

#[test]
fn two_passed_timers_are_both_ready_and_chosen_at_random() {
    let (mut first, mut second) = (0, 0);
    for _ in 0..1000 {
        let a = Instant::now();
        let b = Instant::now();
        let (ra, rb) = (chan::at(a), chan::at(b));
        goro::select! {
            recv(ra) -> _ => first += 1,
            recv(rb) -> _ => second += 1,
        }
    }
    assert!(first > 100 && second > 100, "{first} vs {second}");
}

#[test]
fn blocking_select_wakes_for_a_timer_in_a_coroutine() {
    let h = goro::spawn(|| {
        let (_tx, rx) = bounded::<i32>(0);
        let when = Instant::now() + 10 * MS;
        let got = goro::select! {
            recv(rx) -> _ => None,
            recv(chan::at(when)) -> m => m.ok(),
        };
        (got, when, Instant::now())
    });
    let (got, when, done) = h.join().unwrap();
    assert_eq!(got, Some(when));
    assert!(done >= when);
}

#[test]
fn dynamic_select_timeout_shorter_than_the_timer() {
    let r = chan::after(Duration::from_secs(10));
    let mut sel = Select::new();
    sel.recv(&r);
    let t = Instant::now();
    assert!(sel.select_timeout(10 * MS).is_err());
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(sel.ready_timeout(10 * MS).is_err());
}

#[test]
fn tick_zero_fires_continuously() {
    let r = chan::tick(Duration::ZERO);
    for _ in 0..1000 {
        assert!(r.try_recv().is_ok());
    }
    for _ in 0..100 {
        assert!(r.recv_timeout(Duration::from_secs(1)).is_ok());
    }
    let ready = goro::select! {
        recv(r) -> _ => true,
        default => false,
    };
    assert!(ready);
}

#[test]
fn tick_delivers_due_times_and_skips_missed_ones() {
    let period = 10 * MS;
    let start = Instant::now();
    let r = chan::tick(period);
    let first = r.recv().unwrap();
    assert!(first >= start + period);
    let second = r.recv().unwrap();
    assert!(second >= first + period, "{:?}", second - first);
    // A slow reader finds at most one tick waiting, never a backlog.
    let _ = chan::at(Instant::now() + 10 * period).recv();
    assert_eq!(r.len(), 1);
    assert!(r.try_recv().is_ok());
    assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
    assert!(!r.is_closed());
}

#[test]
fn tick_in_select_with_timeout() {
    let r = chan::tick(Duration::from_secs(10));
    let t = Instant::now();
    let got = goro::select! {
        recv(r) -> _ => "tick",
        default(10 * MS) => "timeout",
    };
    assert_eq!(got, "timeout");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn never_channels_are_the_same_channel() {
    let a = chan::never::<i32>();
    let b = chan::never::<i32>();
    assert!(a.same_channel(&b));
    assert!(a.same_channel(&a.clone()));
    let (_tx, rx) = bounded::<i32>(1);
    assert!(!a.same_channel(&rx));
    assert!(!rx.same_channel(&a));
    // Distinct timer channels are distinct.
    let t = Instant::now();
    assert!(!chan::at(t).same_channel(&chan::at(t)));
}

#[test]
fn time_after_and_tick_are_the_chan_flavors() {
    // API.md: `time::after` and `time::tick` behave as crossbeam-channel's. So `tick(0)` fires
    // on every receive (Go's `time.Tick(0)` would be a nil channel) and `after` delivers its
    // deadline (Go's delivers the firing instant; that is `time::Timer`).
    let r = goro::time::tick(Duration::ZERO);
    assert!(r.recv_timeout(10 * MS).is_ok());
    assert!(r.try_recv().is_ok());
    let start = Instant::now();
    let got = goro::time::after(5 * MS).recv().unwrap();
    assert!(got >= start + 5 * MS);
    assert!(got <= Instant::now());
}
