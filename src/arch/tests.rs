//! Tests of both context-switch backends (each test runs once per backend).

/// FP control state as (MXCSR control bits, x87 control word).
#[cfg(target_arch = "x86_64")]
fn fp_control() -> (u32, u16) {
    let mut mxcsr: u32 = 0;
    let mut cw: u16 = 0;
    // SAFETY: stores the control registers into our locals.
    unsafe {
        std::arch::asm!(
            "stmxcsr [{m}]",
            "fnstcw [{c}]",
            m = in(reg) &mut mxcsr,
            c = in(reg) &mut cw,
            options(nostack),
        );
    }
    (mxcsr & 0xFFC0, cw)
}

/// Set MXCSR and the x87 control word.
#[cfg(target_arch = "x86_64")]
fn set_fp_control(mxcsr: u32, cw: u16) {
    // SAFETY: loads valid control values (reserved bits zero).
    unsafe {
        std::arch::asm!(
            "ldmxcsr [{m}]",
            "fldcw [{c}]",
            m = in(reg) &mxcsr,
            c = in(reg) &cw,
            options(nostack),
        );
    }
}

macro_rules! backend_tests {
    ($modname:ident, $ctx:path) => {
        mod $modname {
            use std::hint::black_box;
            use $ctx as Context;

            use crate::stack::{allocate, round_stack_size, Stack};

            fn stack(size: usize) -> Stack {
                allocate(round_stack_size(size).unwrap()).unwrap()
            }

            /// A context plus data shared with its coroutine, boxed so it never moves.
            struct Shared<T> {
                ctx: Option<Context>,
                data: T,
            }

            fn new_shared<T>(stack: &Stack, entry: unsafe fn(*mut ()), data: T) -> Box<Shared<T>> {
                let mut b = Box::new(Shared { ctx: None, data });
                let arg = std::ptr::addr_of_mut!(*b).cast::<()>();
                // SAFETY: the stack outlives the box in every test; entries don't unwind.
                b.ctx = Some(unsafe { Context::new(stack, entry, arg) });
                b
            }

            /// # Safety
            /// `arg` is the `Shared<T>` whose context runs the caller.
            unsafe fn shared<'a, T>(arg: *mut ()) -> &'a mut Shared<T> {
                // SAFETY: contract.
                unsafe { &mut *arg.cast::<Shared<T>>() }
            }

            fn resume<T>(s: &mut Shared<T>) -> bool {
                // SAFETY: boxed, resumed only on this test's thread.
                unsafe { s.ctx.as_mut().unwrap().resume() }
            }

            fn suspend<T>(s: &mut Shared<T>) {
                // SAFETY: called on the coroutine while it runs.
                unsafe { s.ctx.as_mut().unwrap().suspend() }
            }

            #[test]
            fn ping_pong_carries_values() {
                // SAFETY (entry): `arg` is the Shared<u64> running it.
                unsafe fn entry(arg: *mut ()) {
                    // SAFETY: see above.
                    let s = unsafe { shared::<u64>(arg) };
                    loop {
                        if s.data == u64::MAX {
                            return;
                        }
                        s.data = s.data * 3 + 1;
                        suspend(s);
                    }
                }
                let st = stack(64 * 1024);
                let mut s = new_shared(&st, entry, 0u64);
                let n: u64 = if cfg!(debug_assertions) {
                    1_000_000
                } else {
                    5_000_000
                };
                for i in 0..n {
                    s.data = i;
                    assert!(!resume(&mut s));
                    assert_eq!(s.data, i * 3 + 1);
                }
                s.data = u64::MAX;
                assert!(resume(&mut s));
                assert!(s.ctx.as_ref().unwrap().is_finished());
            }

            #[test]
            fn suspends_many_times_from_deep_frames_then_finishes() {
                #[inline(never)]
                fn deep(s: &mut Shared<(u32, u64)>, depth: u32) -> u64 {
                    let pad = black_box([depth as u64; 16]);
                    if depth == 0 {
                        s.data.1 += 1;
                        suspend(s);
                        return pad[1];
                    }
                    deep(s, depth - 1) + pad[0]
                }
                // SAFETY (entry): `arg` is the Shared running it.
                unsafe fn entry(arg: *mut ()) {
                    // SAFETY: see above.
                    let s = unsafe { shared::<(u32, u64)>(arg) };
                    for _ in 0..1000 {
                        let d = s.data.0;
                        black_box(deep(s, d));
                    }
                }
                let st = stack(256 * 1024);
                let mut s = new_shared(&st, entry, (0u32, 0u64));
                let mut rounds = 0;
                while !resume(&mut s) {
                    rounds += 1;
                    s.data.0 = (rounds % 200) as u32;
                }
                assert_eq!(rounds, 1000);
                assert_eq!(s.data.1, 1000);
                let low = s.ctx.as_ref().unwrap().lowest_sp();
                assert!(low >= st.bottom() && low < st.top() - 4096, "{low:#x}");
            }

            #[test]
            fn never_resumed_and_suspended_contexts_drop() {
                // SAFETY (entry): never called with anything but a Shared<bool>.
                unsafe fn entry(arg: *mut ()) {
                    // SAFETY: see above.
                    let s = unsafe { shared::<bool>(arg) };
                    s.data = true;
                    loop {
                        suspend(s);
                    }
                }
                let st = stack(32 * 1024);
                let s = new_shared(&st, entry, false);
                assert!(!s.data);
                drop(s);
                let mut s = new_shared(&st, entry, false);
                assert!(!resume(&mut s));
                assert!(s.data);
                assert!(!s.ctx.as_ref().unwrap().is_finished());
                drop(s);
            }

            #[test]
            fn entry_runs_16_byte_aligned_and_can_catch_panics_and_backtrace() {
                #[repr(align(16))]
                struct A(#[allow(dead_code)] [u8; 16]);
                // SAFETY (entry): `arg` is the Shared running it.
                unsafe fn entry(arg: *mut ()) {
                    // SAFETY: see above.
                    let s = unsafe { shared::<(usize, String, bool)>(arg) };
                    let a = black_box(A([1; 16]));
                    s.data.0 = std::ptr::addr_of!(a) as usize;
                    // Float formatting uses SSE; unwinding walks this stack.
                    let r = std::panic::catch_unwind(|| {
                        let x = black_box(2.5f64);
                        panic!("boom {}", x * 2.0)
                    });
                    let msg = r.unwrap_err();
                    s.data.1 = msg.downcast_ref::<String>().cloned().unwrap_or_default();
                    // Walking the whole coroutine stack must stop cleanly at the trampoline.
                    let bt = std::backtrace::Backtrace::force_capture();
                    s.data.2 = bt.to_string().contains("entry");
                }
                let st = stack(256 * 1024);
                let mut s = new_shared(&st, entry, (1usize, String::new(), false));
                let hook = std::panic::take_hook();
                std::panic::set_hook(Box::new(|_| {}));
                let done = resume(&mut s);
                std::panic::set_hook(hook);
                assert!(done);
                assert_eq!(s.data.0 % 16, 0);
                assert_eq!(s.data.1, "boom 5");
                assert!(s.data.2, "backtrace did not show the coroutine's frames");
            }

            #[test]
            fn nested_resume_from_a_coroutine() {
                // SAFETY (inner): `arg` is the Shared<u32> running it.
                unsafe fn inner(arg: *mut ()) {
                    // SAFETY: see above.
                    let s = unsafe { shared::<u32>(arg) };
                    for _ in 0..3 {
                        s.data += 1;
                        suspend(s);
                    }
                }
                // SAFETY (outer): `arg` is the Shared running it.
                unsafe fn outer(arg: *mut ()) {
                    // SAFETY: see above.
                    let s = unsafe { shared::<(Stack, u32)>(arg) };
                    let mut i = new_shared(&s.data.0, inner, 0u32);
                    while !resume(&mut i) {
                        s.data.1 = i.data;
                        suspend(s);
                    }
                    s.data.1 += 100;
                }
                let st = stack(64 * 1024);
                let mut s = new_shared(&st, outer, (stack(64 * 1024), 0u32));
                let mut seen = vec![];
                while !resume(&mut s) {
                    seen.push(s.data.1);
                }
                assert_eq!(seen, [1, 2, 3]);
                assert_eq!(s.data.1, 103);
            }

            #[test]
            fn many_coroutines_interleaved() {
                // SAFETY (entry): `arg` is the Shared<u64> running it.
                unsafe fn entry(arg: *mut ()) {
                    // SAFETY: see above.
                    let s = unsafe { shared::<u64>(arg) };
                    let me = s.data;
                    for k in 0..10 {
                        s.data = me * 100 + k;
                        suspend(s);
                    }
                }
                let stacks: Vec<Stack> = (0..200).map(|_| stack(16 * 1024)).collect();
                let mut cs: Vec<_> = stacks
                    .iter()
                    .enumerate()
                    .map(|(i, st)| new_shared(st, entry, i as u64))
                    .collect();
                for k in 0..10 {
                    for (i, c) in cs.iter_mut().enumerate() {
                        assert!(!resume(c));
                        assert_eq!(c.data, i as u64 * 100 + k);
                    }
                }
                for c in &mut cs {
                    assert!(resume(c));
                }
            }
        }
    };
}

#[cfg(goro_asm_available)]
backend_tests!(asm, crate::arch::x86_64::Context);
backend_tests!(corosensei, crate::arch::corosensei::Context);

/// The asm backend keeps each context's FP control state (corosensei does not save it).
#[cfg(goro_asm_available)]
#[test]
fn asm_preserves_fp_control_state() {
    use crate::arch::x86_64::Context;
    use crate::stack::{allocate, round_stack_size};

    const DEFAULT: (u32, u16) = (0x1F80, 0x037F);
    struct Sh {
        ctx: Option<Context>,
        seen: Vec<(u32, u16)>,
    }
    // SAFETY (entry): `arg` is the Sh running it.
    unsafe fn entry(arg: *mut ()) {
        // SAFETY: see above.
        let s = unsafe { &mut *arg.cast::<Sh>() };
        // A fresh coroutine starts with the ABI default, whatever its resumer runs with.
        s.seen.push(super::tests::fp_control());
        // Round toward zero, flush-to-zero; x87 53-bit precision.
        super::tests::set_fp_control(0x7F80 | 0x8000, 0x027F);
        for _ in 0..3 {
            // SAFETY: on the coroutine while it runs.
            unsafe { s.ctx.as_mut().unwrap().suspend() };
            s.seen.push(super::tests::fp_control());
        }
        let x = std::hint::black_box(1.0f64) / std::hint::black_box(10.0f64);
        // Toward zero: the last bit is rounded down (to nearest it rounds up).
        assert_eq!(x.to_bits(), 0x3FB9_9999_9999_9999);
    }
    let saved = fp_control();
    let st = allocate(round_stack_size(64 * 1024).unwrap()).unwrap();
    let mut s = Box::new(Sh {
        ctx: None,
        seen: vec![],
    });
    let arg = std::ptr::addr_of_mut!(*s).cast::<()>();
    // SAFETY: `st` outlives `s`; entry does not unwind unless the test fails.
    s.ctx = Some(unsafe { Context::new(&st, entry, arg) });
    // The resumer runs with round-up.
    set_fp_control(0x5F80, 0x037F);
    let resume = |s: &mut Sh| {
        // SAFETY: boxed, resumed on this thread only, not finished before the last call.
        unsafe { s.ctx.as_mut().unwrap().resume() }
    };
    assert!(!resume(&mut s));
    assert_eq!(fp_control(), (0x5F80, 0x037F));
    set_fp_control(0x1F80, 0x037F);
    assert!(!resume(&mut s));
    assert_eq!(fp_control(), DEFAULT);
    assert!(!resume(&mut s));
    assert_eq!(fp_control(), DEFAULT);
    let x = std::hint::black_box(1.0f64) / std::hint::black_box(10.0f64);
    assert_eq!(x.to_bits(), 0x3FB9_9999_9999_999A);
    assert!(resume(&mut s));
    assert_eq!(fp_control(), DEFAULT);
    set_fp_control(saved.0, saved.1);
    assert_eq!(s.seen[0], DEFAULT);
    for &v in &s.seen[1..] {
        assert_eq!(v, (0xFF80, 0x027F));
    }
}
