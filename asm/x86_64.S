// goro context switch for x86_64, System V ABI, ELF (Intel syntax: this file is
// assembled by Rust's `global_asm!`, whose default x86 syntax is Intel).
//
// Only what the ABI calls callee-saved survives a call, so that is all a switch
// saves: rbx, rbp, r12-r15, rsp, the control bits of MXCSR and the x87 control
// word. Everything else is dead at the call site of `goro_switch` (Rust calls it
// as an ordinary `extern "sysv64"` function), so it is neither saved nor restored.
//
// Saved frame: what `goro_switch` leaves on a stack that it switches away from,
// and what it expects on the stack it switches to. A suspended context is
// nothing but the address of such a frame (its "sp").
//
//        higher addresses
//   +------------------------+
//   | return address         |  sp + 56   back into the caller of goro_switch
//   | rbp                    |  sp + 48
//   | rbx                    |  sp + 40
//   | r12                    |  sp + 32
//   | r13                    |  sp + 24
//   | r14                    |  sp + 16
//   | r15                    |  sp + 8
//   | ?? | x87 CW | MXCSR    |  sp + 0    MXCSR in bytes 0-3, x87 CW in bytes 4-5
//   +------------------------+  <- saved sp: 16-byte aligned (the caller's rsp was
//        lower addresses          16-aligned at the call; 8 + 6*8 + 8 = 64 bytes)
//
// The first frame of a fresh stack is built by Rust (`init_frame` in
// src/arch/x86_64.rs) in the same shape, so that the first switch into it
// "returns" into `goro_trampoline` with r12 = entry shim, r13 = entry fn,
// r14 = arg, rbp = 0, and rdi still holding the resumer's `save` pointer (the
// address of the context's `parent_sp` field, see the trampoline):
//
//   top  (16-aligned, one past the highest usable byte)
//   +------------------------+
//   | 0                      |  top - 8     never read: the outermost frame's
//   | 0                      |  top - 16    "caller" area, inside the stack
//   | &goro_trampoline       |  top - 24    return address of the first switch
//   | rbp = 0                |  top - 32
//   | rbx = 0                |  top - 40
//   | r12 = entry shim       |  top - 48
//   | r13 = entry fn         |  top - 56
//   | r14 = arg              |  top - 64
//   | r15 = 0                |  top - 72
//   | 0 | 0x037F | 0x1F80    |  top - 80    the ABI's default FP control state
//   +------------------------+  <- initial sp = top - 80 (16-aligned)
//
// After the `ret`, rsp = top - 16: 16-byte aligned, so the trampoline's `call`
// enters the shim with rsp = 8 (mod 16), as the ABI requires at function entry.

// FP control state: MXCSR's control bits and the x87 control word are
// callee-saved, so each side of a switch must find its own values again when
// its call to goro_switch returns. Loading them (ldmxcsr, fldcw) is the slow
// part of a switch, and nearly every program runs every context with the same
// values, so the switch compares the target's saved control state with the
// current one and only loads it when they differ. MXCSR's status flags (bits
// 0-5) are caller-saved and are masked out of the comparison.

    .text

// void goro_switch(uintptr_t *save /* rdi */, uintptr_t load /* rsi */, uintptr_t val /* rdx */)
//     -> uintptr_t /* rax */
//
// Saves the current context as a frame on the current stack, stores its address
// in *save, switches to the frame at `load` and returns `val` there.
    .p2align 4
    .globl goro_switch
    .hidden goro_switch
    .type goro_switch,@function
goro_switch:
    .cfi_startproc
    push rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbp, 0
    push rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbx, 0
    push r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r12, 0
    push r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r13, 0
    push r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r14, 0
    push r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r15, 0
    sub rsp, 8
    .cfi_adjust_cfa_offset 8
    stmxcsr [rsp]
    fnstcw [rsp + 4]
    // Our control state, for the comparison below: ecx = MXCSR control bits,
    // r8d = x87 CW. (4- and 2-byte loads of what was just stored forward cleanly.)
    mov ecx, [rsp]
    and ecx, 0xFFC0
    movzx r8d, word ptr [rsp + 4]
    mov [rdi], rsp
    mov rax, rdx
    // From here on rsp is the target's frame; it has the same shape as ours,
    // so the CFI above keeps describing it.
    mov rsp, rsi
.Lgoro_restore:
    mov edx, [rsp]
    and edx, 0xFFC0
    cmp edx, ecx
    jne .Lgoro_load_fp
    cmp r8w, word ptr [rsp + 4]
    jne .Lgoro_load_fp
    .cfi_remember_state
.Lgoro_pop:
    add rsp, 8
    .cfi_adjust_cfa_offset -8
    pop r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore r15
    pop r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore r14
    pop r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore r13
    pop r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore r12
    pop rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore rbx
    pop rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore rbp
    ret
.Lgoro_load_fp:
    .cfi_restore_state
    ldmxcsr [rsp]
    fldcw [rsp + 4]
    jmp .Lgoro_pop
    .cfi_endproc
    .size goro_switch, . - goro_switch

// The first code that runs on a fresh stack. Reached by the `ret` of the first
// goro_switch into the frame that `init` built, with rdi = &context.parent_sp,
// r12 = shim, r13 = entry, r14 = arg. Calls shim(entry, arg); when that returns
// the coroutine is finished: mark the context finished (sp = 0) and switch back
// to whoever resumed it last, returning 1 there. This frame is the outermost
// one of the coroutine: rbp = 0 and an undefined return address tell debuggers
// and unwinders to stop here.
    .p2align 4
    .globl goro_trampoline
    .hidden goro_trampoline
    .type goro_trampoline,@function
goro_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    // The context does not move once started, so its address stays valid for
    // the whole life of the coroutine; keep it in a callee-saved register.
    mov rbx, rdi
    mov rdi, r13
    mov rsi, r14
    call r12
    // Finished: context.sp = 0, then resume the resumer's frame with rax = 1.
    // ecx/r8d = the FP control state we run with, for .Lgoro_restore's check.
    mov qword ptr [rbx + 8], 0
    sub rsp, 8
    stmxcsr [rsp]
    mov ecx, [rsp]
    and ecx, 0xFFC0
    fnstcw [rsp]
    movzx r8d, word ptr [rsp]
    mov eax, 1
    mov rsp, [rbx]
    jmp .Lgoro_restore
    .cfi_endproc
    .size goro_trampoline, . - goro_trampoline
