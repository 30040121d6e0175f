//! Channel API behaviour: flavors, close semantics, errors, iterators, select basics.
//! (Stress tests live in `chan_stress.rs`.)

use goro::chan::{
    self, bounded, never, unbounded, RecvError, RecvTimeoutError, Select, SendError,
    SendTimeoutError, TryRecvError, TrySendError,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn buffered_fifo_and_len() {
    let (tx, rx) = bounded(3);
    assert_eq!(tx.capacity(), Some(3));
    assert!(rx.is_empty());
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    tx.send(3).unwrap();
    assert!(tx.is_full());
    assert_eq!(rx.len(), 3);
    assert_eq!(tx.try_send(4), Err(TrySendError::Full(4)));
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.recv_timeout(Duration::from_millis(10)), Ok(3));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn unbounded_many() {
    let (tx, rx) = unbounded();
    assert_eq!(tx.capacity(), None);
    for i in 0..1000 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.len(), 1000);
    for i in 0..1000 {
        assert_eq!(rx.recv(), Ok(i));
    }
    assert!(rx.is_empty());
}

#[test]
fn rendezvous_send_completes_only_when_received() {
    let (tx, rx) = bounded::<i32>(0);
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    let taken = Arc::new(AtomicUsize::new(0));
    let t2 = taken.clone();
    let h = thread::spawn(move || {
        tx.send(5).unwrap();
        // The receiver must have taken the value before send returned.
        assert_eq!(t2.load(Ordering::SeqCst), 1);
    });
    thread::sleep(Duration::from_millis(20)); // not synchronisation: only to let the sender block first
    taken.store(1, Ordering::SeqCst);
    assert_eq!(rx.recv(), Ok(5));
    h.join().unwrap();
}

#[test]
fn close_semantics_all_flavors() {
    for cap in [None, Some(0), Some(1), Some(4)] {
        let (tx, rx) = match cap {
            None => unbounded(),
            Some(c) => bounded(c),
        };
        if cap != Some(0) {
            tx.send(1).unwrap();
        }
        assert!(!tx.is_closed());
        assert!(tx.close());
        assert!(!tx.close());
        assert!(!rx.close());
        assert!(rx.is_closed());
        assert_eq!(tx.send(2), Err(SendError(2)));
        assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
        assert_eq!(
            tx.send_timeout(4, Duration::from_millis(1)),
            Err(SendTimeoutError::Disconnected(4))
        );
        if cap != Some(0) {
            assert_eq!(rx.recv(), Ok(1), "buffered values drain after close");
        }
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Disconnected)
        );
    }
}

#[test]
fn receiver_close_fails_senders_but_drains() {
    let (tx, rx) = bounded(2);
    tx.send(1).unwrap();
    assert!(rx.close());
    assert_eq!(tx.send(2), Err(SendError(2)));
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn drop_all_senders_closes() {
    let (tx, rx) = bounded::<i32>(1);
    let tx2 = tx.clone();
    drop(tx);
    assert!(!rx.is_closed());
    drop(tx2);
    assert!(rx.is_closed());
    assert!(!rx.close());
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn drop_all_receivers_fails_blocked_sender_with_value() {
    for cap in [0usize, 1] {
        let (tx, rx) = bounded::<String>(cap);
        if cap == 1 {
            tx.send("fill".into()).unwrap();
        }
        let h = thread::spawn(move || tx.send("x".to_string()));
        thread::sleep(Duration::from_millis(20));
        drop(rx);
        assert_eq!(h.join().unwrap(), Err(SendError("x".to_string())));
    }
}

#[test]
fn blocked_receivers_wake_on_close() {
    for cap in [0usize, 3] {
        let (tx, rx) = bounded::<i32>(cap);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let rx = rx.clone();
                thread::spawn(move || rx.recv())
            })
            .collect();
        thread::sleep(Duration::from_millis(20));
        assert!(tx.close());
        for h in hs {
            assert_eq!(h.join().unwrap(), Err(RecvError));
        }
    }
}

#[test]
fn timeouts() {
    let (tx, rx) = bounded::<i32>(0);
    let t = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(30)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    let t = Instant::now();
    assert_eq!(
        tx.send_timeout(9, Duration::from_millis(30)),
        Err(SendTimeoutError::Timeout(9))
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    let (tx, _rx) = bounded::<i32>(1);
    tx.send(1).unwrap();
    assert_eq!(
        tx.send_timeout(2, Duration::from_millis(10)),
        Err(SendTimeoutError::Timeout(2))
    );
}

#[test]
fn iterators() {
    let (tx, rx) = unbounded();
    let h = thread::spawn(move || {
        for i in 0..10 {
            tx.send(i).unwrap();
        }
    });
    let v: Vec<i32> = rx.iter().collect();
    assert_eq!(v, (0..10).collect::<Vec<_>>());
    h.join().unwrap();
    let (tx, rx) = bounded(5);
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
    drop(tx);
    let mut n = 0;
    for _ in &rx {
        n += 1;
    }
    assert_eq!(n, 0);
}

#[test]
fn same_channel() {
    let (tx, rx) = bounded::<()>(1);
    let (tx2, rx2) = bounded::<()>(1);
    assert!(tx.same_channel(&tx.clone()));
    assert!(!tx.same_channel(&tx2));
    assert!(rx.same_channel(&rx.clone()));
    assert!(!rx.same_channel(&rx2));
}

#[test]
fn never_blocks() {
    let r = never::<i32>();
    assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        r.recv_timeout(Duration::from_millis(10)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(!r.close());
}

#[test]
#[should_panic(expected = "capacity")]
fn huge_capacity_panics_clearly() {
    let _ = bounded::<u64>(usize::MAX / 2);
}

#[test]
#[should_panic(expected = "18014398509481984")]
fn huge_capacity_names_it() {
    let _ = bounded::<[u8; 64]>(1 << 54);
}

#[test]
fn error_types() {
    use std::error::Error;
    let e: Box<dyn Error> = Box::new(SendError(1));
    assert_eq!(e.to_string(), "sending on a closed channel");
    assert_eq!(SendError(3).into_inner(), 3);
    assert!(TrySendError::Full(1).is_full());
    assert!(TrySendError::Disconnected(1).is_disconnected());
    assert_eq!(TrySendError::Full(7).into_inner(), 7);
    assert!(SendTimeoutError::Timeout(1).is_timeout());
    assert!(SendTimeoutError::Disconnected(1).is_disconnected());
    assert!(TryRecvError::Empty.is_empty());
    assert!(TryRecvError::Disconnected.is_disconnected());
    assert!(RecvTimeoutError::Timeout.is_timeout());
    assert!(RecvTimeoutError::Disconnected.is_disconnected());
    let _: Box<dyn Error + Send + Sync> = Box::new(chan::TrySelectError);
    let _: Box<dyn Error + Send + Sync> = Box::new(chan::SelectTimeoutError);
    let _: Box<dyn Error + Send + Sync> = Box::new(chan::TryReadyError);
    let _: Box<dyn Error + Send + Sync> = Box::new(chan::ReadyTimeoutError);
    let _: Box<dyn Error + Send + Sync> = Box::new(RecvError);
    assert_eq!(format!("{:?}", TrySendError::Full(1)), "Full(..)");
}

#[test]
fn select_macro_basic() {
    let (tx1, rx1) = bounded::<i32>(1);
    let (tx2, rx2) = bounded::<i32>(1);
    tx2.send(2).unwrap();
    let got = goro::select! {
        recv(rx1) -> m => m.unwrap(),
        recv(rx2) -> m => m.unwrap() * 10,
    };
    assert_eq!(got, 20);
    // A send case's value is evaluated only when chosen.
    let evaluated = std::cell::Cell::new(0);
    let (txf, _rxf) = bounded::<i32>(0);
    tx1.send(1).unwrap();
    goro::chan::select! {
        send(txf, { evaluated.set(evaluated.get() + 1); 5 }) -> _ => panic!("no receiver"),
        recv(&rx1) -> m => { assert_eq!(m, Ok(1)); }
    }
    assert_eq!(evaluated.get(), 0);
    let r = goro::select! {
        recv(rx1) -> _ => 1,
        default => 2,
    };
    assert_eq!(r, 2);
    let t = Instant::now();
    let r = goro::select_biased! {
        recv(rx1) -> _ => 1,
        default(Duration::from_millis(20)) => 3,
    };
    assert_eq!(r, 3);
    assert!(t.elapsed() >= Duration::from_millis(20));
    drop(tx1);
    goro::chan::select_biased! {
        recv(rx1) -> m => assert_eq!(m, Err(RecvError)),
    }
    let r = goro::select! { default => 7 };
    assert_eq!(r, 7);
}

#[test]
fn select_macro_send_blocks_until_receiver() {
    let (tx, rx) = bounded::<i32>(0);
    let h = thread::spawn(move || rx.recv().unwrap());
    goro::select! {
        send(tx, 42) -> r => assert_eq!(r, Ok(())),
    }
    assert_eq!(h.join().unwrap(), 42);
}

#[test]
fn select_is_fair() {
    let (tx1, rx1) = unbounded::<i32>();
    let (tx2, rx2) = unbounded::<i32>();
    let (tx3, rx3) = unbounded::<i32>();
    let mut counts = [0usize; 3];
    for _ in 0..3000 {
        tx1.send(0).unwrap();
        tx2.send(1).unwrap();
        tx3.send(2).unwrap();
        let i = goro::select! {
            recv(rx1) -> m => m.unwrap(),
            recv(rx2) -> m => m.unwrap(),
            recv(rx3) -> m => m.unwrap(),
        };
        counts[i as usize] += 1;
        // drain the rest so every round starts with all three ready
        let _ = rx1.try_recv();
        let _ = rx2.try_recv();
        let _ = rx3.try_recv();
    }
    for c in counts {
        assert!((800..1200).contains(&c), "unfair: {counts:?}");
    }
    // Biased: always the first ready case.
    for _ in 0..100 {
        tx1.send(0).unwrap();
        tx2.send(1).unwrap();
        let i = goro::select_biased! {
            recv(rx1) -> m => m.unwrap(),
            recv(rx2) -> m => m.unwrap(),
        };
        assert_eq!(i, 0);
        rx2.recv().unwrap();
    }
}

#[test]
fn dynamic_select() {
    let chans: Vec<_> = (0..20).map(|_| bounded::<usize>(1)).collect();
    chans[13].0.send(13).unwrap();
    let mut sel = Select::new();
    for (_, rx) in &chans {
        sel.recv(rx);
    }
    let oper = sel.select();
    let i = oper.index();
    assert_eq!(i, 13);
    assert_eq!(oper.recv(&chans[i].1), Ok(13));
    assert!(sel.try_select().is_err());
    assert!(sel.try_ready().is_err());
    assert!(sel.select_timeout(Duration::from_millis(5)).is_err());
    assert!(sel.ready_timeout(Duration::from_millis(5)).is_err());
    chans[3].0.send(3).unwrap();
    assert_eq!(sel.ready(), 3);
    sel.remove(3);
    assert!(sel.try_select().is_err());
    // send cases
    let (tx, rx) = bounded::<i32>(1);
    let mut sel = Select::new_biased();
    let si = sel.send(&tx);
    let oper = sel.select();
    assert_eq!(oper.index(), si);
    oper.send(&tx, 99).unwrap();
    assert_eq!(rx.recv(), Ok(99));
}

#[test]
fn select_recv_and_send_same_rendezvous_does_not_pair_with_itself() {
    let (tx, rx) = bounded::<i32>(0);
    let r = goro::select! {
        recv(rx) -> _ => 1,
        send(tx, 1) -> _ => 2,
        default(Duration::from_millis(20)) => 3,
    };
    assert_eq!(r, 3);
}

#[test]
fn select_between_two_blocked_selects() {
    // A select send case meets a select receive case on a rendezvous channel.
    for _ in 0..200 {
        let (tx, rx) = bounded::<i32>(0);
        let (_tx2, rx2) = bounded::<i32>(0);
        let h = thread::spawn(move || {
            goro::select! {
                recv(rx) -> m => m.unwrap(),
                recv(rx2) -> _ => unreachable!(),
            }
        });
        let (_t3, r3) = bounded::<i32>(0);
        goro::select! {
            send(tx, 7) -> r => r.unwrap(),
            recv(r3) -> _ => unreachable!(),
        }
        assert_eq!(h.join().unwrap(), 7);
    }
}

#[test]
fn ends_and_timers_are_send_sync_clone() {
    fn send_sync<T: Send + Sync>() {}
    fn clone<T: Clone>() {}
    send_sync::<goro::chan::Sender<String>>();
    send_sync::<goro::chan::Receiver<String>>();
    clone::<goro::chan::Sender<String>>();
    clone::<goro::chan::Receiver<String>>();
    send_sync::<goro::time::Timer>();
    send_sync::<goro::time::Ticker>();
    send_sync::<SendError<String>>();
    send_sync::<TrySendError<String>>();
}
