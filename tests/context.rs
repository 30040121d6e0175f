//! goro::context: each sentence of Go's package documentation, on threads and coroutines.

use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::chan::{self, RecvTimeoutError, TryRecvError};
use goro::context::{self, Cause, Context, Error};

fn is_done(c: &Context) -> bool {
    matches!(c.done().try_recv(), Err(TryRecvError::Disconnected))
}

fn cause_str(c: &Context) -> Option<String> {
    context::cause(c).map(|e| e.to_string())
}

#[derive(Debug)]
struct MyErr(&'static str);
impl std::fmt::Display for MyErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for MyErr {}
fn my(s: &'static str) -> Cause {
    Arc::new(MyErr(s))
}

#[test]
fn background_and_todo_are_never_done() {
    for c in [context::background(), context::todo()] {
        assert!(c.err().is_none());
        assert!(c.deadline().is_none());
        assert!(context::cause(&c).is_none());
        assert!(c.value::<u32, u32>(&1).is_none());
        assert_eq!(c.done().try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            c.done().recv_timeout(Duration::from_millis(5)),
            Err(RecvTimeoutError::Timeout)
        );
    }
    assert_eq!(format!("{:?}", context::background()), "context.Background");
    assert_eq!(format!("{}", context::todo()), "context.TODO");
}

#[test]
fn errors_display_like_go() {
    assert_eq!(Error::Canceled.to_string(), "context canceled");
    assert_eq!(
        Error::DeadlineExceeded.to_string(),
        "context deadline exceeded"
    );
    assert!(Error::DeadlineExceeded.is_timeout());
    assert!(!Error::Canceled.is_timeout());
}

#[test]
fn cancel_closes_done_sets_err_and_is_idempotent() {
    let (ctx, cancel) = context::with_cancel(&context::background());
    let done = ctx.done(); // taken before cancel
    assert!(ctx.err().is_none());
    assert!(
        context::cause(&ctx).is_none(),
        "Cause is nil before cancellation"
    );
    assert!(!is_done(&ctx));
    cancel.cancel();
    assert_eq!(done.recv(), Err(goro::chan::RecvError));
    assert!(is_done(&ctx)); // taken after cancel
    assert_eq!(ctx.err(), Some(Error::Canceled));
    // No cause given: Cause returns the ctx error.
    let c = context::cause(&ctx).unwrap();
    assert_eq!(c.downcast_ref::<Error>(), Some(&Error::Canceled));
    cancel.cancel();
    cancel.clone().cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(format!("{ctx:?}"), "context.Background.WithCancel");
}

#[test]
fn dropping_cancel_func_does_not_cancel() {
    let (ctx, cancel) = context::with_cancel(&context::background());
    drop(cancel);
    assert!(ctx.err().is_none());
}

#[test]
fn cancellation_flows_down_never_up() {
    let (root, cancel_root) = context::with_cancel(&context::background());
    let (a, cancel_a) = context::with_cancel(&root);
    let va = context::with_value(&a, "k", 1u8); // a value node in between
    let (b, _cancel_b) = context::with_cancel(&va);
    let (sibling, _cs) = context::with_cancel(&root);

    cancel_a.cancel();
    assert_eq!(a.err(), Some(Error::Canceled));
    assert_eq!(
        b.err(),
        Some(Error::Canceled),
        "grandchild through a value node"
    );
    assert_eq!(va.err(), Some(Error::Canceled));
    assert!(root.err().is_none(), "never upwards");
    assert!(sibling.err().is_none());

    cancel_root.cancel();
    assert!(is_done(&sibling));
    // Descendants created after the parent is done are done at once.
    let (late, _c) = context::with_cancel(&b);
    assert_eq!(late.err(), Some(Error::Canceled));
}

#[test]
fn cancelled_child_is_removed_from_parent() {
    let (parent, _cp) = context::with_cancel(&context::background());
    for _ in 0..1_000 {
        let (child, cancel) = context::with_cancel(&parent);
        let (_grandchild, _cg) = context::with_cancel(&child);
        assert_eq!(parent.registered_children(), 1);
        cancel.cancel();
        assert_eq!(parent.registered_children(), 0);
        assert_eq!(child.registered_children(), 0);
    }
    // Deadline children remove themselves when the deadline fires, and value nodes register
    // their cancellable descendants with the nearest cancellable ancestor.
    let v = context::with_value(&parent, 1u8, 2u8);
    let (long, cancel_long) = context::with_timeout(&v, Duration::from_secs(3600));
    assert_eq!(parent.registered_children(), 1);
    cancel_long.cancel();
    assert_eq!(long.err(), Some(Error::Canceled));
    assert_eq!(parent.registered_children(), 0);
    let (d, _cd) = context::with_timeout(&v, Duration::from_millis(5));
    assert_eq!(d.done().recv(), Err(goro::chan::RecvError));
    let t = Instant::now();
    while parent.registered_children() != 0 {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::yield_now();
    }
}

#[test]
fn cancel_cause_semantics() {
    let (ctx, cancel) = context::with_cancel_cause(&context::background());
    let (child, _c) = context::with_cancel(&ctx);
    cancel.cancel(Some(my("shutdown requested")));
    assert_eq!(ctx.err(), Some(Error::Canceled), "Err stays Canceled");
    assert_eq!(cause_str(&ctx).as_deref(), Some("shutdown requested"));
    assert_eq!(
        cause_str(&child).as_deref(),
        Some("shutdown requested"),
        "children inherit the cause"
    );
    cancel.cancel(Some(my("second")));
    assert_eq!(
        cause_str(&ctx).as_deref(),
        Some("shutdown requested"),
        "first cancellation wins"
    );

    let (ctx2, cancel2) = context::with_cancel_cause(&context::background());
    cancel2.cancel(None);
    assert_eq!(
        context::cause(&ctx2).unwrap().downcast_ref::<Error>(),
        Some(&Error::Canceled)
    );

    // The parent's cancellation (with its cause) reaches a cause-child first.
    let (p, pc) = context::with_cancel_cause(&context::background());
    let (c, cc) = context::with_cancel_cause(&p);
    pc.cancel(Some(my("parent")));
    cc.cancel(Some(my("child")));
    assert_eq!(cause_str(&c).as_deref(), Some("parent"));
    // Cause of a value node is the cause of its cancellable ancestor.
    assert_eq!(
        cause_str(&context::with_value(&c, 0u8, 0u8)).as_deref(),
        Some("parent")
    );
}

#[test]
fn deadline_semantics() {
    let bg = context::background();
    // Part 1: deadlines as values. The parent's deadline is far away, so nothing here can
    // expire by accident on a loaded machine except the child that is meant to.
    let d = Instant::now() + Duration::from_secs(3600);
    let (ctx, _cancel) = context::with_deadline(&bg, d);
    assert_eq!(ctx.deadline(), Some(d));
    assert!(ctx.err().is_none());
    // A child's deadline is the earlier of its own and its parent's.
    let (later, _c1) = context::with_deadline(&ctx, d + Duration::from_secs(10));
    assert_eq!(later.deadline(), Some(d));
    let earlier_d = Instant::now() + Duration::from_millis(20);
    let (earlier, _c2) = context::with_deadline(&ctx, earlier_d);
    assert_eq!(earlier.deadline(), Some(earlier_d));
    let (plain, _c3) = context::with_cancel(&ctx);
    assert_eq!(plain.deadline(), Some(d));
    assert_eq!(context::with_value(&ctx, 1, 2).deadline(), Some(d));
    assert_eq!(earlier.done().recv(), Err(goro::chan::RecvError));
    assert!(Instant::now() >= earlier_d, "never before the deadline");
    assert_eq!(earlier.err(), Some(Error::DeadlineExceeded));
    assert!(
        ctx.err().is_none(),
        "a child's deadline does not cancel the parent"
    );
    assert!(
        later.err().is_none() && plain.err().is_none(),
        "nor its siblings"
    );

    // Part 2: a parent's deadline reaches every descendant.
    let d = Instant::now() + Duration::from_millis(30);
    let (ctx, _cancel) = context::with_deadline(&bg, d);
    let (later, _c1) = context::with_deadline(&ctx, d + Duration::from_secs(10));
    let (plain, _c3) = context::with_cancel(&ctx);
    let t = Instant::now();
    assert_eq!(ctx.done().recv(), Err(goro::chan::RecvError));
    assert!(Instant::now() >= d);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert_eq!(later.err(), Some(Error::DeadlineExceeded));
    assert_eq!(plain.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        context::cause(&ctx).unwrap().downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
}

#[test]
fn deadline_in_the_past_is_done_at_once_and_cancel_before_deadline_is_canceled() {
    let (ctx, _c) = context::with_deadline(&context::background(), Instant::now());
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    let (ctx, _c) = context::with_timeout(&context::background(), Duration::ZERO);
    assert!(is_done(&ctx));

    let (ctx, cancel) = context::with_timeout(&context::background(), Duration::from_secs(3600));
    cancel.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    // Never-ending timeout: no overflow, just never done.
    let (ctx, cancel) = context::with_timeout(&context::background(), Duration::MAX);
    assert!(ctx.err().is_none());
    cancel.cancel();
}

#[test]
fn deadline_and_timeout_causes() {
    let (ctx, _c) = context::with_timeout_cause(
        &context::background(),
        Duration::from_millis(10),
        my("too slow"),
    );
    assert_eq!(ctx.done().recv(), Err(goro::chan::RecvError));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert_eq!(cause_str(&ctx).as_deref(), Some("too slow"));

    let (ctx, cancel) = context::with_deadline_cause(
        &context::background(),
        Instant::now() + Duration::from_secs(3600),
        my("unused"),
    );
    cancel.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(
        context::cause(&ctx).unwrap().downcast_ref::<Error>(),
        Some(&Error::Canceled)
    );

    let (ctx, _c) =
        context::with_deadline_cause(&context::background(), Instant::now(), my("late"));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert_eq!(cause_str(&ctx).as_deref(), Some("late"));
}

#[derive(PartialEq, Debug)]
struct UserKey;
#[derive(PartialEq, Debug)]
struct OtherKey;

#[test]
fn value_lookup_semantics() {
    let bg = context::background();
    let a = context::with_value(&bg, UserKey, String::from("alice"));
    let b = context::with_value(&a, OtherKey, 7u32);
    let (c, cancel) = context::with_cancel(&b);
    let d = context::with_value(&c, UserKey, String::from("bob")); // shadows
    assert_eq!(
        d.value::<UserKey, String>(&UserKey).map(String::as_str),
        Some("bob")
    );
    assert_eq!(
        c.value::<UserKey, String>(&UserKey).map(String::as_str),
        Some("alice")
    );
    assert_eq!(d.value::<OtherKey, u32>(&OtherKey), Some(&7));
    // Wrong value type: not found (no panic), and lookup continues past a key whose value type
    // differs to an ancestor with the right one.
    assert_eq!(d.value::<OtherKey, u64>(&OtherKey), None);
    let e = context::with_value(&d, UserKey, 5u8);
    assert_eq!(
        e.value::<UserKey, String>(&UserKey).map(String::as_str),
        Some("bob")
    );
    assert_eq!(e.value::<UserKey, u8>(&UserKey), Some(&5));
    // Keys compare by type *and* value.
    let f = context::with_value(&bg, "id", 1i32);
    let g = context::with_value(&f, "other", 2i32);
    assert_eq!(g.value::<&str, i32>(&"id"), Some(&1));
    assert_eq!(g.value::<&str, i32>(&"missing"), None);
    assert_eq!(
        g.value::<String, i32>(&"id".to_string()),
        None,
        "&str and String are different key types"
    );
    cancel.cancel();
    assert_eq!(
        d.value::<OtherKey, u32>(&OtherKey),
        Some(&7),
        "values survive cancellation"
    );
    assert!(d.deadline().is_none());
    assert_eq!(
        format!("{e:?}"),
        "context.Background.WithValue.WithValue.WithCancel.WithValue.WithValue"
    );
}

#[test]
fn without_cancel_keeps_values_and_is_never_done() {
    let (p, cancel) = context::with_timeout(&context::background(), Duration::from_secs(3600));
    let p = context::with_value(&p, UserKey, 42u64);
    let w = context::without_cancel(&p);
    assert_eq!(w.value::<UserKey, u64>(&UserKey), Some(&42));
    assert!(w.deadline().is_none(), "no deadline");
    let (wc, cancel_wc) = context::with_cancel(&w);
    let stop = context::after_func(&w, || unreachable!("never done"));
    cancel.cancel();
    assert_eq!(p.err(), Some(Error::Canceled));
    assert!(w.err().is_none());
    assert!(context::cause(&w).is_none());
    assert_eq!(w.done().try_recv(), Err(TryRecvError::Empty));
    assert!(
        wc.err().is_none(),
        "children of without_cancel are detached from the parent"
    );
    cancel_wc.cancel();
    assert_eq!(wc.err(), Some(Error::Canceled));
    assert!(stop.stop(), "f was never started, so stop stops it");
    assert!(!stop.stop(), "already stopped");
}

#[test]
fn after_func_runs_once_in_its_own_coroutine() {
    let (ctx, cancel) = context::with_cancel(&context::background());
    let (tx, rx) = chan::bounded::<&'static str>(4);
    let (block_tx, block_rx) = chan::bounded::<()>(0);
    let tx1 = tx.clone();
    let s1 = context::after_func(&ctx, move || {
        // Blocks until the test lets it go: proves f does not run on the canceller's stack.
        block_rx.recv().unwrap();
        tx1.send("first").unwrap();
    });
    let tx2 = tx.clone();
    let s2 = context::after_func(&ctx, move || tx2.send("second").unwrap());
    let tx3 = tx.clone();
    let s3 = context::after_func(&ctx, move || tx3.send("stopped").unwrap());
    assert!(s3.stop(), "stopped before cancel");
    cancel.cancel(); // returns although the first f blocks
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("second"));
    block_tx.send(()).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("first"));
    assert!(!s1.stop() && !s2.stop(), "already started");
    cancel.cancel();
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "runs once; stopped one never runs"
    );

    // Already done: f starts immediately.
    let tx4 = tx.clone();
    let s4 = context::after_func(&ctx, move || tx4.send("late").unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("late"));
    assert!(!s4.stop());

    // Registered through a value node and a deadline.
    let (d, _c) = context::with_timeout(&context::background(), Duration::from_millis(10));
    let v = context::with_value(&d, 1u8, 1u8);
    let tx5 = tx.clone();
    let _s5 = context::after_func(&v, move || tx5.send("deadline").unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("deadline"));
}

#[test]
fn after_func_stop_races_cancel_exactly_once() {
    goro::gomaxprocs(2);
    for _ in 0..2_000 {
        let (ctx, cancel) = context::with_cancel(&context::background());
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let (tx, rx) = chan::bounded::<()>(1);
        let stop = context::after_func(&ctx, move || {
            r.fetch_add(1, SeqCst);
            tx.send(()).unwrap();
        });
        let h = goro::spawn(move || cancel.cancel());
        let stopped = stop.stop();
        h.join().unwrap();
        if stopped {
            assert_eq!(
                rx.try_recv(),
                Err(TryRecvError::Disconnected),
                "stopped: f never runs"
            );
        } else {
            rx.recv().unwrap();
            assert_eq!(ran.load(SeqCst), 1);
        }
    }
}

#[test]
fn done_works_in_select_from_coroutines() {
    let (ctx, cancel) = context::with_cancel(&context::background());
    let (tx, rx) = chan::bounded::<u32>(0);
    let workers: Vec<_> = (0..10)
        .map(|_| {
            let ctx = ctx.clone();
            let rx = rx.clone();
            goro::spawn(move || {
                let mut got = 0u32;
                loop {
                    goro::select! {
                        recv(ctx.done()) -> _ => return (got, ctx.err()),
                        recv(rx) -> v => got += v.unwrap(),
                    }
                }
            })
        })
        .collect();
    for _ in 0..100 {
        tx.send(1).unwrap();
    }
    cancel.cancel();
    let mut total = 0;
    for w in workers {
        let (got, err) = w.join().unwrap();
        assert_eq!(err, Some(Error::Canceled));
        total += got;
    }
    assert_eq!(total, 100);
}

#[test]
fn deep_chain_and_wide_tree_cancel_promptly() {
    // 10,000-deep chain: iterative cancellation, no stack overflow (on a coroutine too).
    let h = goro::spawn(|| {
        let (root, cancel) = context::with_cancel(&context::background());
        let mut cur = root.clone();
        let mut keep = Vec::new();
        for _ in 0..10_000 {
            let (c, cf) = context::with_cancel(&cur);
            keep.push(cf);
            cur = c;
        }
        let leaf_done = cur.done();
        cancel.cancel();
        assert_eq!(leaf_done.recv(), Err(goro::chan::RecvError));
        assert_eq!(cur.err(), Some(Error::Canceled));
    });
    h.join().unwrap();

    // Wide tree cancelled while coroutines wait on every node.
    goro::gomaxprocs(2);
    let (root, cancel) = context::with_cancel(&context::background());
    let woke = Arc::new(AtomicUsize::new(0));
    let mut hs = Vec::new();
    for _ in 0..50 {
        let (c, _cf) = context::with_cancel(&root);
        for _ in 0..20 {
            let (g, _gf) = context::with_timeout(&c, Duration::from_secs(3600));
            let woke = woke.clone();
            hs.push(goro::spawn(move || {
                let _ = g.done().recv();
                assert_eq!(g.err(), Some(Error::Canceled));
                woke.fetch_add(1, SeqCst);
            }));
        }
    }
    let t = Instant::now();
    cancel.cancel();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(woke.load(SeqCst), 1_000);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(root.registered_children(), 0);
}

#[test]
fn concurrent_create_and_cancel_stress() {
    // Children are created from coroutines and threads while the parent is cancelled: every
    // child ends up done (none slips through registration), and with Canceled.
    goro::gomaxprocs(2);
    for _ in 0..300 {
        let (parent, cancel) = context::with_cancel(&context::background());
        let mut hs = Vec::new();
        for i in 0..4 {
            let p = parent.clone();
            let body = move || {
                let mut kids = Vec::new();
                for _ in 0..20 {
                    let (c, _cf) = context::with_cancel(&p);
                    kids.push(c);
                }
                kids
            };
            if i % 2 == 0 {
                hs.push(Ok(goro::spawn(body)));
            } else {
                hs.push(Err(std::thread::spawn(body)));
            }
        }
        cancel.cancel();
        for h in hs {
            let kids = match h {
                Ok(h) => h.join().unwrap(),
                Err(h) => h.join().unwrap(),
            };
            for k in kids {
                assert_eq!(k.err(), Some(Error::Canceled));
                assert!(is_done(&k));
            }
        }
        assert_eq!(parent.registered_children(), 0);
    }
}

#[test]
fn context_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Context>();
    check::<context::CancelFunc>();
    check::<context::CancelCauseFunc>();
    fn copy_eq<T: Copy + Eq + std::error::Error>() {}
    copy_eq::<Error>();
}

#[test]
fn a_done_context_never_has_a_live_descendant() {
    // Go's guarantee (it holds the parent's lock while cancelling children): once err() of a
    // context is set, every descendant's err() is set too. Observers race the cancellation.
    goro::gomaxprocs(2);
    for _ in 0..300 {
        let (root, cancel) = context::with_cancel(&context::background());
        let mut leaves = Vec::new();
        for _ in 0..5 {
            let (mid, _m) = context::with_cancel(&root);
            for _ in 0..5 {
                let (leaf, _l) = context::with_timeout(&mid, Duration::from_secs(3600));
                leaves.push(leaf);
            }
        }
        let leaves = Arc::new(leaves);
        let observers: Vec<_> = (0..2)
            .map(|_| {
                let (root, leaves) = (root.clone(), leaves.clone());
                goro::spawn(move || loop {
                    if root.err().is_some() {
                        for l in leaves.iter() {
                            assert_eq!(l.err(), Some(Error::Canceled));
                        }
                        return;
                    }
                    goro::gosched();
                })
            })
            .collect();
        // A child's own cancel racing the parent's: when it returns, the child is done.
        let leaf0 = leaves[0].clone();
        let (own, own_cancel) = context::with_cancel(&leaf0);
        let racer = std::thread::spawn(move || {
            own_cancel.cancel();
            assert!(own.err().is_some());
        });
        cancel.cancel();
        racer.join().unwrap();
        for o in observers {
            o.join().unwrap();
        }
    }
}
