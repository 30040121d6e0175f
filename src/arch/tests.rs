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
    ($modname:ident, $ctx:ty) => {
        mod $modname {
            use std::hint::black_box;
            type SwitchContext = $ctx;

            use crate::stack::{allocate, round_stack_size, Stack};

            fn stack(size: usize) -> Stack {
                allocate(round_stack_size(size).unwrap()).unwrap()
            }

            /// A context plus data shared with its coroutine, boxed so it never moves.
            struct Shared<T> {
                ctx: Option<SwitchContext>,
                data: T,
            }

            fn new_shared<T>(stack: &Stack, entry: unsafe fn(*mut ()), data: T) -> Box<Shared<T>> {
                let mut b = Box::new(Shared { ctx: None, data });
                let arg = std::ptr::addr_of_mut!(*b).cast::<()>();
                // SAFETY: the stack outlives the box in every test; entries don't unwind.
                b.ctx = Some(unsafe { SwitchContext::new(stack, entry, arg) });
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
                let mut low = usize::MAX;
                while !resume(&mut s) {
                    low = low.min(s.ctx.as_ref().unwrap().suspended_sp());
                    rounds += 1;
                    s.data.0 = (rounds % 200) as u32;
                }
                assert_eq!(rounds, 1000);
                assert_eq!(s.data.1, 1000);
                assert_eq!(s.ctx.as_ref().unwrap().suspended_sp(), usize::MAX);
                // 199 frames of >128 bytes deep: well below the top pages.
                assert!(low >= st.bottom() && low < st.top() - 16 * 1024, "{low:#x}");
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
            fn live_registers_survive_switches_on_both_sides() {
                // Many values live across every switch, on both sides, so that the
                // compiler keeps some in callee-saved registers (rbx, rbp, r12-r15).
                // SAFETY (entry): `arg` is the Shared<u64> running it.
                unsafe fn entry(arg: *mut ()) {
                    // SAFETY: see above.
                    let s = unsafe { shared::<u64>(arg) };
                    let mut v = [0u64; 12];
                    for (i, x) in v.iter_mut().enumerate() {
                        *x = black_box(i as u64 * 7 + 1);
                    }
                    let (mut a, mut b, mut c, mut d, mut e, mut f) =
                        (v[0], v[1], v[2], v[3], v[4], v[5]);
                    let (mut g, mut h, mut i, mut j, mut k, mut l) =
                        (v[6], v[7], v[8], v[9], v[10], v[11]);
                    for _ in 0..1000 {
                        suspend(s);
                        a += 1;
                        b += 2;
                        c += 3;
                        d += 4;
                        e += 5;
                        f += 6;
                        g += 7;
                        h += 8;
                        i += 9;
                        j += 10;
                        k += 11;
                        l += 12;
                    }
                    s.data = a
                        ^ b.rotate_left(5)
                        ^ c.rotate_left(10)
                        ^ d.rotate_left(15)
                        ^ e.rotate_left(20)
                        ^ f.rotate_left(25)
                        ^ g.rotate_left(30)
                        ^ h.rotate_left(35)
                        ^ i.rotate_left(40)
                        ^ j.rotate_left(45)
                        ^ k.rotate_left(50)
                        ^ l.rotate_left(55);
                }
                let expect = {
                    let v: Vec<u64> = (0..12).map(|i| i * 7 + 1 + 1000 * (i + 1)).collect();
                    v.iter()
                        .enumerate()
                        .fold(0, |acc, (n, x)| acc ^ x.rotate_left(5 * n as u32))
                };
                let st = stack(64 * 1024);
                let mut s = new_shared(&st, entry, 0u64);
                let mut w = [0u64; 10];
                for (n, x) in w.iter_mut().enumerate() {
                    *x = black_box(n as u64 + 100);
                }
                let (mut p, mut q, mut r, mut t, mut u) = (w[0], w[1], w[2], w[3], w[4]);
                let mut rounds = 0u64;
                while !resume(&mut s) {
                    p += 1;
                    q += 2;
                    r += 3;
                    t += 4;
                    u += 5;
                    rounds += 1;
                }
                assert_eq!(rounds, 1000);
                assert_eq!(s.data, expect);
                assert_eq!((p, q, r, t, u), (1100, 2101, 3102, 4103, 5104));
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
backend_tests!(asm, crate::arch::x86_64::RawContext<false>);
#[cfg(goro_asm_available)]
backend_tests!(asm_fp, crate::arch::x86_64::RawContext<true>);
backend_tests!(corosensei, crate::arch::corosensei::SwitchContext);

/// The asm backend's `_fp` variant keeps each context's FP control state (corosensei does
/// not save it, nor does the default variant: see asm/x86_64.S).
#[cfg(goro_asm_available)]
#[test]
fn asm_fp_variant_preserves_fp_control_state() {
    type SwitchContext = crate::arch::x86_64::RawContext<true>;
    use crate::stack::{allocate, round_stack_size};

    const DEFAULT: (u32, u16) = (0x1F80, 0x037F);
    struct Sh {
        ctx: Option<SwitchContext>,
        seen: Vec<(u32, u16)>,
    }
    // SAFETY (entry): `arg` is the Sh running it.
    unsafe fn entry(arg: *mut ()) {
        // SAFETY: see above.
        let s = unsafe { &mut *arg.cast::<Sh>() };
        // A fresh coroutine starts with its creator's state, whatever its resumer runs with.
        s.seen.push(fp_control());
        // Round toward zero, flush-to-zero; x87 53-bit precision.
        set_fp_control(0x7F80 | 0x8000, 0x027F);
        for _ in 0..3 {
            // SAFETY: on the coroutine while it runs.
            unsafe { s.ctx.as_mut().unwrap().suspend() };
            s.seen.push(fp_control());
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
    s.ctx = Some(unsafe { SwitchContext::new(&st, entry, arg) });
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

/// The default asm variant leaves the FP control state alone: a coroutine inherits its
/// resumer's, and one that restores what it changed before switching affects nobody.
#[cfg(goro_asm_available)]
#[test]
fn asm_default_variant_inherits_fp_control_state() {
    type SwitchContext = crate::arch::x86_64::RawContext<false>;
    use crate::stack::{allocate, round_stack_size};

    struct Sh {
        ctx: Option<SwitchContext>,
        seen: Vec<(u32, u16)>,
    }
    // SAFETY (entry): `arg` is the Sh running it.
    unsafe fn entry(arg: *mut ()) {
        // SAFETY: see above.
        let s = unsafe { &mut *arg.cast::<Sh>() };
        s.seen.push(fp_control());
        let before = fp_control();
        set_fp_control(0x7F80, 0x027F);
        s.seen.push(fp_control());
        set_fp_control(before.0, before.1);
        // SAFETY: on the coroutine while it runs.
        unsafe { s.ctx.as_mut().unwrap().suspend() };
        s.seen.push(fp_control());
    }
    let saved = fp_control();
    let st = allocate(round_stack_size(64 * 1024).unwrap()).unwrap();
    let mut s = Box::new(Sh {
        ctx: None,
        seen: vec![],
    });
    let arg = std::ptr::addr_of_mut!(*s).cast::<()>();
    // SAFETY: `st` outlives `s`; entry does not unwind unless the test fails.
    s.ctx = Some(unsafe { SwitchContext::new(&st, entry, arg) });
    set_fp_control(0x5F80, 0x037F);
    // SAFETY: boxed, this thread only.
    assert!(!unsafe { s.ctx.as_mut().unwrap().resume() });
    assert_eq!(fp_control(), (0x5F80, 0x037F));
    // SAFETY: as above.
    assert!(unsafe { s.ctx.as_mut().unwrap().resume() });
    assert_eq!(fp_control(), (0x5F80, 0x037F));
    set_fp_control(saved.0, saved.1);
    assert_eq!(
        s.seen,
        [(0x5F80, 0x037F), (0x7F80, 0x027F), (0x5F80, 0x037F)]
    );
}

/// The default asm variant's trampoline restores the thread's FP control state when a
/// coroutine ends, whatever the coroutine left behind.
#[cfg(goro_asm_available)]
#[test]
fn asm_default_variant_restores_fp_control_state_at_the_end() {
    type SwitchContext = crate::arch::x86_64::RawContext<false>;
    use crate::stack::{allocate, round_stack_size};

    // SAFETY (entry): no argument used.
    unsafe fn entry(_: *mut ()) {
        set_fp_control(0x7F80 | 0x8000, 0x027F);
    }
    let saved = fp_control();
    let st = allocate(round_stack_size(32 * 1024).unwrap()).unwrap();
    // SAFETY: `st` outlives the context; entry does not unwind.
    let mut c = unsafe { SwitchContext::new(&st, entry, std::ptr::null_mut()) };
    // SAFETY: fresh context, this thread.
    assert!(unsafe { c.resume() });
    assert_eq!(fp_control(), saved);
}

/// The scheduler keeps contexts and stacks in shared control blocks.
#[test]
fn context_and_stack_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<crate::arch::SwitchContext>();
    check::<crate::arch::corosensei::SwitchContext>();
    check::<crate::stack::Stack>();
}
