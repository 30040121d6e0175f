//! The context package in three scenes (the seed notes' "context通知退出", plus the timeout and
//! value uses the notes list):
//! 1. cancel: a coroutine cancels after a while; main waits on `ctx.done()`;
//! 2. timeout: work that takes too long is abandoned when the context's deadline passes;
//! 3. values: request-scoped data found by key *and* type; a wrong type is simply absent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::chan::{self, select};
use goro::context::{self, Context};

#[derive(PartialEq)]
struct RequestId;

#[derive(Debug)]
struct Shutdown;
impl std::fmt::Display for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("server shutting down")
    }
}
impl std::error::Error for Shutdown {}

/// Pretend to work for `d`, unless the context is done first.
fn slow_operation(ctx: &Context, d: Duration) -> Result<&'static str, context::Error> {
    select! {
        recv(chan::after(d)) -> _ => Ok("finished"),
        recv(ctx.done()) -> _ => Err(ctx.err().expect("done implies err")),
    }
}

fn handle(ctx: &Context) {
    match ctx.value::<RequestId, u64>(&RequestId) {
        Some(id) => println!("values: handling request {id}"),
        None => println!("values: no request id"),
    }
    // Same key, other type: not found (no panic).
    println!(
        "values: as a String: {:?}",
        ctx.value::<RequestId, String>(&RequestId)
    );
}

fn main() {
    goro::run(|| {
        // 1. cancel
        let t = Instant::now();
        let (ctx, cancel) = context::with_cancel(&context::background());
        goro::go!(move || {
            goro::sleep(Duration::from_millis(300));
            println!("cancel: ok");
            cancel.cancel(); // exit notice
        });
        let _ = ctx.done().recv(); // wait for the notice
        println!(
            "cancel: exit after {:.1}s, err = {}",
            t.elapsed().as_secs_f64(),
            ctx.err().unwrap()
        );

        // 2. timeout, with and without enough time; and a cause
        let (ctx, _cancel) =
            context::with_timeout(&context::background(), Duration::from_millis(200));
        println!(
            "timeout: fast op: {:?}",
            slow_operation(&ctx, Duration::from_millis(10))
        );
        match slow_operation(&ctx, Duration::from_secs(5)) {
            Ok(s) => println!("timeout: slow op: {s}"),
            Err(e) => println!("timeout: slow op: {e}"),
        }
        let (ctx, cancel) = context::with_cancel_cause(&context::background());
        cancel.cancel(Some(Arc::new(Shutdown)));
        println!(
            "cause: err = {}, cause = {}",
            ctx.err().unwrap(),
            context::cause(&ctx).unwrap()
        );

        // 3. values
        let ctx = context::with_value(&context::background(), RequestId, 42u64);
        let (child, cancel) = context::with_cancel(&ctx);
        goro::spawn(move || handle(&child)).join().unwrap();
        cancel.cancel();
        handle(&context::background());
    });
}
