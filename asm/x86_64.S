// goro context switch for x86_64, System V ABI, ELF. Intel syntax: this file is
// assembled by Rust's `global_asm!` (src/arch/x86_64.rs), whose default x86
// syntax is Intel.
//
// WHAT A SWITCH SAVES
//
// Only what the ABI calls callee-saved survives a call: rbx, rbp, r12-r15, rsp,
// the control bits of MXCSR and the x87 control word. The Rust side enters these
// routines from inline asm that declares every other register clobbered, and
// r12-r15 too: the compiler then saves r12-r15 itself, and only where they hold
// something live (often nowhere on a hot path). What the compiler cannot save
// is saved here: rbx and rbp (LLVM reserves them), rsp (the switch itself), and,
// in the "fp" variants, MXCSR's control bits and the x87 control word.
//
// WHY TWO VARIANTS (FP control state)
//
// Reading MXCSR (stmxcsr) costs ~5 ns on this generation of AMD cores - more
// than a whole corosensei round trip - so a switch cannot afford it twice per
// round trip. It is not needed for correct programs: Rust requires the FP
// environment to be unchanged whenever Rust code runs (inline asm and foreign
// code must restore it before returning to Rust), every switch happens inside
// Rust code (`Context::resume`/`suspend`), and a started coroutine never leaves
// its thread. So at every switch both sides already run with their thread's FP
// control state, which the default variant (no suffix) leaves untouched. A
// fresh coroutine inherits it from its first resumer (as a thread inherits it
// from its creator), and its trampoline puts it back when the coroutine ends,
// so whatever a coroutine does to it never outlives the coroutine: two reads
// per coroutine, none per switch.
//
// The "_fp" variants save and restore both control words on every switch
// (loading them only when they differ from the current ones, since
// ldmxcsr/fldcw are the slow part on other cores), for code that holds a
// non-default mode across a switch. Building with `GORO_PRESERVE_FP=1` in the
// environment selects them; it is a compile-time choice because a run-time
// flag tested on every switch measurably slowed the round trip.
//
// RETURN PREDICTION
//
// `Context::resume` calls goro_resume*, which continues the coroutine with
// `pop; jmp`, not `ret`: the resumer's `call` stays the newest entry of the
// CPU's return-stack predictor. `Context::suspend` pushes its continuation and
// *jumps* to goro_suspend*, whose `ret` then returns to the resumer's call site
// and consumes exactly that entry. A round trip costs no return misprediction.
//
// SAVED FRAME (what a switch leaves on the stack it leaves; a suspended context
// is just the address of such a frame, its "sp"):
//
//        default variant                    fp variant
//   +------------------------+       +------------------------+
//   | continuation address   | sp+16 | continuation address   | sp+24
//   | rbp                    | sp+8  | rbp                    | sp+16
//   | rbx                    | sp+0  | rbx                    | sp+8
//   +------------------------+       | ?? | x87 CW | MXCSR    | sp+0  (bytes 0-3 MXCSR,
//                                    +------------------------+        4-5 x87 CW)
//
// The continuation is the return address of the resumer's `call goro_resume*`,
// or the label after the `jmp` in `Context::suspend`, or, in a fresh stack,
// goro_trampoline*.
//
// FRESH STACK (built by `Context::new` in src/arch/x86_64.rs), top = one past
// the highest usable byte, 16-aligned:
//
//   default variant, sp = top - 56      fp variant, sp = top - 64
//   top - 8   0                         top - 8   0
//   top - 16  arg                       top - 16  arg
//   top - 24  entry fn                  top - 24  entry fn
//   top - 32  entry shim                top - 32  entry shim
//   top - 40  goro_trampoline           top - 40  goro_trampoline_fp
//   top - 48  rbp = 0                   top - 48  rbp = 0
//   top - 56  rbx = 0                   top - 56  rbx = 0
//                                       top - 64  MXCSR | x87 CW (the creator's)
//
// The first resume pops the frame and jumps to the trampoline with
// rsp = top - 32 and rdi = &context.parent_sp (goro_resume*'s argument). The
// trampoline calls the shim with rsp 16-aligned (top - 32, or top - 48 in the
// default variant, which keeps its starting FP control state in 16 bytes of
// scratch), so the shim starts with rsp = 8 mod 16 as the ABI requires.

    .text

// Push rbp and rbx (and, with fp=1, the FP control state) on the current stack,
// describing each push to the unwinder. With fp=1, leaves the MXCSR control
// bits in ecx and the x87 control word in r8d for GORO_POP_FRAME's comparison.
.macro GORO_PUSH_FRAME fp
    push rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbp, 0
    push rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbx, 0
.if \fp
    sub rsp, 8
    .cfi_adjust_cfa_offset 8
    stmxcsr [rsp]
    fnstcw [rsp + 4]
    mov ecx, [rsp]
    and ecx, 0xFFC0
    movzx r8d, word ptr [rsp + 4]
.endif
.endm

// Pop the frame at rsp, leaving rsp at its continuation address. With fp=1,
// load its FP control state first, but only if it differs from ecx/r8d (MXCSR
// status flags, bits 0-5, are caller-saved and ignored); `slow` names a local
// label for that path, emitted by GORO_LOAD_FP after the routine's last jump.
.macro GORO_POP_FRAME fp, slow
.if \fp
    mov edx, [rsp]
    and edx, 0xFFC0
    cmp edx, ecx
    jne \slow
    cmp r8w, word ptr [rsp + 4]
    jne \slow
    .cfi_remember_state
\slow\()_back:
    add rsp, 8
    .cfi_adjust_cfa_offset -8
.endif
    pop rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore rbx
    pop rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore rbp
.endm

.macro GORO_LOAD_FP slow
\slow:
    .cfi_restore_state
    ldmxcsr [rsp]
    fldcw [rsp + 4]
    jmp \slow\()_back
.endm

// Read the current FP control state into ecx/r8d (as GORO_PUSH_FRAME does),
// using 8 bytes below rsp as scratch (the trampoline's own stack).
.macro GORO_READ_FP
    stmxcsr [rsp - 8]
    mov ecx, [rsp - 8]
    and ecx, 0xFFC0
    fnstcw [rsp - 8]
    movzx r8d, word ptr [rsp - 8]
.endm

// One family of routines: goro_resume\sfx, goro_suspend\sfx, goro_trampoline\sfx.
.macro GORO_FAMILY sfx, fp

// uintptr_t goro_resume(uintptr_t *parent_sp /* rdi */, uintptr_t sp /* rsi */)
//
// Reached by `call` from `Context::resume`'s inline asm, on the resumer's
// stack. Saves the resumer's frame, stores its address in *parent_sp, and
// continues the coroutine whose frame is at `sp`. "Returns" (through
// goro_suspend or the trampoline) 0 in rax when the coroutine suspended, 1 when
// it finished.
    .p2align 4
    .globl goro_resume\sfx
    .hidden goro_resume\sfx
    .type goro_resume\sfx,@function
goro_resume\sfx:
    .cfi_startproc
    GORO_PUSH_FRAME \fp
    mov [rdi], rsp
    // From here on rsp is the coroutine's frame. It has the same shape as the
    // one just pushed, so the CFI keeps describing it.
    mov rsp, rsi
    GORO_POP_FRAME \fp, .Lgoro_resume\sfx\()_fp
    pop rcx
    .cfi_adjust_cfa_offset -8
    jmp rcx
.if \fp
    GORO_LOAD_FP .Lgoro_resume\sfx\()_fp
.endif
    .cfi_endproc
    .size goro_resume\sfx, . - goro_resume\sfx

// goro_suspend(uintptr_t *sp /* rdi */, uintptr_t parent_sp /* rsi */)
//
// Reached by `jmp` from `Context::suspend`'s inline asm, which pushed its
// continuation first (so the stack looks as after a call). Saves the
// coroutine's frame, stores its address in *sp, and returns 0 into the
// resumer's goro_resume call, whose frame is at `parent_sp`.
    .p2align 4
    .globl goro_suspend\sfx
    .hidden goro_suspend\sfx
    .type goro_suspend\sfx,@function
goro_suspend\sfx:
    .cfi_startproc
    GORO_PUSH_FRAME \fp
    mov [rdi], rsp
    mov rsp, rsi
    xor eax, eax
.Lgoro_to_parent\sfx:
    GORO_POP_FRAME \fp, .Lgoro_suspend\sfx\()_fp
    ret
.if \fp
    GORO_LOAD_FP .Lgoro_suspend\sfx\()_fp
.endif
    .cfi_endproc
    .size goro_suspend\sfx, . - goro_suspend\sfx

// The first code on a fresh stack (see FRESH STACK above). Calls
// shim(entry, arg); when that returns, the coroutine is finished: it stores 0 in
// context.sp (offset 8 from the context's address, which the first resume left
// in rdi; a started context never moves) and returns 1 into the goro_resume
// call of whoever resumed it last. This is the coroutine's outermost frame:
// rbp = 0 and an undefined return address make debuggers and unwinders stop.
    .p2align 4
    .globl goro_trampoline\sfx
    .hidden goro_trampoline\sfx
    .type goro_trampoline\sfx,@function
goro_trampoline\sfx:
    .cfi_startproc
    .cfi_undefined rip
    mov rbx, rdi
    mov rax, [rsp]
    mov rdi, [rsp + 8]
    mov rsi, [rsp + 16]
.if \fp
    call rax
    mov qword ptr [rbx + 8], 0
    GORO_READ_FP
.else
    // Keep the FP control state we started with (our first resumer's, which is
    // our thread's) and put it back at the end if the coroutine left a
    // different one behind: whatever a coroutine does to it never outlives the
    // coroutine. Two reads per coroutine, none per switch. rsp stays 16-aligned.
    sub rsp, 16
    stmxcsr [rsp]
    fnstcw [rsp + 4]
    call rax
    mov qword ptr [rbx + 8], 0
    stmxcsr [rsp + 8]
    mov ecx, [rsp + 8]
    xor ecx, [rsp]
    test ecx, 0xFFC0
    jz 3f
    ldmxcsr [rsp]
3:
    fnstcw [rsp + 8]
    movzx ecx, word ptr [rsp + 8]
    cmp cx, word ptr [rsp + 4]
    je 4f
    fldcw [rsp + 4]
4:
.endif
    mov eax, 1
    mov rsp, [rbx]
    jmp .Lgoro_to_parent\sfx
    .cfi_endproc
    .size goro_trampoline\sfx, . - goro_trampoline\sfx
.endm

    GORO_FAMILY , 0
    GORO_FAMILY _fp, 1
