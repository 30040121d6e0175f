//! The `select!` and `select_biased!` macros: crossbeam-channel's syntax, parsed into calls
//! on a [`Select`](crate::chan::Select) (the engine in `select.rs`). Parsing normalises every
//! case, binding evaluates each channel expression once and adds it to the selection, and
//! dispatch completes the chosen case and runs its arm; a send case's value expression sits in
//! its arm, so it is evaluated only if that case is chosen.

/// Wait until one of several channel operations can proceed, perform it, and run its arm
/// (crossbeam-channel's syntax; Go's `select`).
///
/// ```
/// use goro::chan::{bounded, after};
/// use std::time::Duration;
///
/// let (tx, rx) = bounded::<i32>(1);
/// tx.send(1).unwrap();
/// goro::select! {
///     recv(rx) -> msg => assert_eq!(msg, Ok(1)),
///     recv(after(Duration::from_secs(1))) -> _ => panic!("timed out"),
/// }
/// ```
///
/// Cases: `recv(r) -> res => expr` (`res: Result<T, RecvError>`; a closed channel is ready and
/// gives `Err`), `send(s, value) -> res => expr` (`value` is evaluated only if this case is
/// chosen), and at most one `default => expr` or `default() => expr` (nothing ready: run it
/// at once) or `default(timeout) => expr` (nothing became ready in time). A trailing comma is
/// allowed inside the parentheses (`recv(r,)`, `send(s, v,)`, `default(t,)`), as in
/// crossbeam-channel. Ready cases are chosen uniformly at random. An arm's body is an
/// expression followed by `,`, or a block.
/// Counts against the cooperative budget (see [`gosched`](crate::gosched)).
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__goro_select!(@parse (new) () $($tokens)*)
    };
}

/// As [`select!`](crate::select!), but ready cases are tried in the order they are written.
#[macro_export]
macro_rules! select_biased {
    ($($tokens:tt)*) => {
        $crate::__goro_select!(@parse (new_biased) () $($tokens)*)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __goro_select {
    // ---- parsing: normalise the cases into (kind (args) (pattern) (body)) groups ----
    (@parse $ctor:tt ($($cases:tt)*)) => {
        $crate::__goro_select!(@bind $ctor __goro_sel ($($cases)*))
    };
    (@parse $ctor:tt ($($cases:tt)*) recv($r:expr $(,)?) -> $res:pat => $body:block $(, $($rest:tt)*)?) => {
        $crate::__goro_select!(@parse $ctor ($($cases)* (recv ($r) ($res) ($body))) $($($rest)*)?)
    };
    (@parse $ctor:tt ($($cases:tt)*) recv($r:expr $(,)?) -> $res:pat => $body:block $($rest:tt)*) => {
        $crate::__goro_select!(@parse $ctor ($($cases)* (recv ($r) ($res) ($body))) $($rest)*)
    };
    (@parse $ctor:tt ($($cases:tt)*) recv($r:expr $(,)?) -> $res:pat => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__goro_select!(@parse $ctor ($($cases)* (recv ($r) ($res) ($body))) $($($rest)*)?)
    };
    (@parse $ctor:tt ($($cases:tt)*) send($s:expr, $v:expr $(,)?) -> $res:pat => $body:block $(, $($rest:tt)*)?) => {
        $crate::__goro_select!(@parse $ctor ($($cases)* (send ($s, $v) ($res) ($body))) $($($rest)*)?)
    };
    (@parse $ctor:tt ($($cases:tt)*) send($s:expr, $v:expr $(,)?) -> $res:pat => $body:block $($rest:tt)*) => {
        $crate::__goro_select!(@parse $ctor ($($cases)* (send ($s, $v) ($res) ($body))) $($rest)*)
    };
    (@parse $ctor:tt ($($cases:tt)*) send($s:expr, $v:expr $(,)?) -> $res:pat => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__goro_select!(@parse $ctor ($($cases)* (send ($s, $v) ($res) ($body))) $($($rest)*)?)
    };
    (@parse $ctor:tt ($($cases:tt)*) default => $body:block $(, $($rest:tt)*)?) => {
        $crate::__goro_select!(@parse $ctor ($($cases)* (default () () ($body))) $($($rest)*)?)
    };
    (@parse $ctor:tt ($($cases:tt)*) default => $body:block $($rest:tt)*) => {
        $crate::__goro_select!(@parse $ctor ($($cases)* (default () () ($body))) $($rest)*)
    };
    (@parse $ctor:tt ($($cases:tt)*) default => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__goro_select!(@parse $ctor ($($cases)* (default () () ($body))) $($($rest)*)?)
    };
    (@parse $ctor:tt ($($cases:tt)*) default() => $($rest:tt)*) => {
        $crate::__goro_select!(@parse $ctor ($($cases)*) default => $($rest)*)
    };
    (@parse $ctor:tt ($($cases:tt)*) default($t:expr $(,)?) => $body:block $(, $($rest:tt)*)?) => {
        $crate::__goro_select!(@parse $ctor ($($cases)* (default_timeout ($t) () ($body))) $($($rest)*)?)
    };
    (@parse $ctor:tt ($($cases:tt)*) default($t:expr $(,)?) => $body:block $($rest:tt)*) => {
        $crate::__goro_select!(@parse $ctor ($($cases)* (default_timeout ($t) () ($body))) $($rest)*)
    };
    (@parse $ctor:tt ($($cases:tt)*) default($t:expr $(,)?) => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__goro_select!(@parse $ctor ($($cases)* (default_timeout ($t) () ($body))) $($($rest)*)?)
    };
    (@parse $ctor:tt ($($cases:tt)*) $($bad:tt)+) => {
        ::core::compile_error!(concat!(
            "invalid select! case near `", stringify!($($bad)+),
            "`: expected `recv(r) -> res => body`, `send(s, v) -> res => body`, ",
            "`default => body` or `default(timeout) => body`"
        ))
    };

    // ---- binding: evaluate each channel expression once, register it, keep its index ----
    (@bind ($ctor:ident) $sel:ident ($($cases:tt)*)) => {{
        #[allow(unused_mut)]
        let mut $sel = $crate::chan::Select::$ctor();
        $crate::__goro_select!(@bind2 $sel ($($cases)*) ())
    }};
    (@bind2 $sel:ident () ($($bound:tt)*)) => {
        $crate::__goro_select!(@run $sel () () $($bound)*)
    };
    (@bind2 $sel:ident ((recv ($r:expr) ($res:pat) ($body:expr)) $($cases:tt)*) ($($bound:tt)*)) => {
        match &$r {
            __goro_r => {
                let __goro_r: &$crate::chan::Receiver<_> = __goro_r;
                let __goro_i = $sel.recv(__goro_r);
                $crate::__goro_select!(@bind2 $sel ($($cases)*)
                    ($($bound)* (recv __goro_r __goro_i ($res) ($body))))
            }
        }
    };
    (@bind2 $sel:ident ((send ($s:expr, $v:expr) ($res:pat) ($body:expr)) $($cases:tt)*) ($($bound:tt)*)) => {
        match &$s {
            __goro_s => {
                let __goro_s: &$crate::chan::Sender<_> = __goro_s;
                let __goro_i = $sel.send(__goro_s);
                $crate::__goro_select!(@bind2 $sel ($($cases)*)
                    ($($bound)* (send __goro_s __goro_i ($v) ($res) ($body))))
            }
        }
    };
    (@bind2 $sel:ident ((default () () ($body:expr)) $($cases:tt)*) ($($bound:tt)*)) => {
        $crate::__goro_select!(@bind2 $sel ($($cases)*) ($($bound)* (default ($body))))
    };
    (@bind2 $sel:ident ((default_timeout ($t:expr) () ($body:expr)) $($cases:tt)*) ($($bound:tt)*)) => {
        $crate::__goro_select!(@bind2 $sel ($($cases)*) ($($bound)* (default_timeout ($t) ($body))))
    };

    // ---- run: split off the default case, then dispatch on the chosen index ----
    (@run $sel:ident ($($ops:tt)*) ($($def:tt)*) (default ($body:expr)) $($rest:tt)*) => {
        $crate::__goro_select!(@run $sel ($($ops)*) ($($def)* (now ($body))) $($rest)*)
    };
    (@run $sel:ident ($($ops:tt)*) ($($def:tt)*) (default_timeout ($t:expr) ($body:expr)) $($rest:tt)*) => {
        $crate::__goro_select!(@run $sel ($($ops)*) ($($def)* (timeout ($t) ($body))) $($rest)*)
    };
    (@run $sel:ident ($($ops:tt)*) ($($def:tt)*) $op:tt $($rest:tt)*) => {
        $crate::__goro_select!(@run $sel ($($ops)* $op) ($($def)*) $($rest)*)
    };
    (@run $sel:ident ($($ops:tt)*) ()) => {{
        let __goro_oper = $sel.select();
        $crate::__goro_select!(@dispatch __goro_oper $($ops)*)
    }};
    (@run $sel:ident ($($ops:tt)*) ((now ($body:expr)))) => {{
        match $sel.try_select() {
            ::core::result::Result::Ok(__goro_oper) => {
                $crate::__goro_select!(@dispatch __goro_oper $($ops)*)
            }
            ::core::result::Result::Err(_) => { $body }
        }
    }};
    (@run $sel:ident ($($ops:tt)*) ((timeout ($t:expr) ($body:expr)))) => {{
        match $sel.select_timeout($t) {
            ::core::result::Result::Ok(__goro_oper) => {
                $crate::__goro_select!(@dispatch __goro_oper $($ops)*)
            }
            ::core::result::Result::Err(_) => { $body }
        }
    }};
    (@run $sel:ident ($($ops:tt)*) ($($def:tt)+)) => {
        ::core::compile_error!("select! takes at most one `default` case")
    };

    (@dispatch $oper:ident) => {{
        let _ = $oper;
        ::core::unreachable!("select!: no case selected")
    }};
    (@dispatch $oper:ident (recv $r:ident $i:ident ($res:pat) ($body:expr)) $($rest:tt)*) => {
        if $oper.index() == $i {
            let $res = $oper.recv($r);
            $body
        } else {
            $crate::__goro_select!(@dispatch $oper $($rest)*)
        }
    };
    (@dispatch $oper:ident (send $s:ident $i:ident ($v:expr) ($res:pat) ($body:expr)) $($rest:tt)*) => {
        if $oper.index() == $i {
            let $res = $oper.send($s, $v);
            $body
        } else {
            $crate::__goro_select!(@dispatch $oper $($rest)*)
        }
    };
}
