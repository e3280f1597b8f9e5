/* switch_aarch64.S -- the tasks' context switch on AArch64 (AAPCS64).
 *
 * aloop__fiber_switch(void **save, void *to): store x19-x30 and d8-d15 (the
 * callee-saved registers; x29 frame pointer, x30 link register) in a frame
 * on the current stack, store sp in *save, load `to`, restore that side's
 * registers and branch to its x30 with br, not ret: ret would consult the
 * return-address predictor and mispredict on every switch.  No signal mask,
 * no FPCR (tasks must not change FP modes across a switch).
 *
 * A new stack is laid out by aloop__fiber_make() (task/stack.c) to look
 * like this frame with x30 = aloop__fiber_start, x19 = entry, x20 = arg. */
#if defined(__aarch64__) && !defined(ALOOP_TASK_UCONTEXT)

    .text

/* store this side's registers in a frame, save sp, load the other side's,
 * restore its registers (x30: where it continues) */
.macro SWITCH_STACKS
    sub     sp, sp, #160
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mov     x2, sp
    str     x2, [x0]
    mov     sp, x1
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #160
.endm

    .globl  aloop__fiber_switch
    .hidden aloop__fiber_switch
    .type   aloop__fiber_switch, %function
    .p2align 4
aloop__fiber_switch:
    .cfi_startproc
    SWITCH_STACKS
    br      x30
    .cfi_endproc
    .size   aloop__fiber_switch, .-aloop__fiber_switch

/* The same ending in ret: for task-to-task switches (see switch_x86_64.S). */
    .globl  aloop__fiber_switch_ret
    .hidden aloop__fiber_switch_ret
    .type   aloop__fiber_switch_ret, %function
    .p2align 4
aloop__fiber_switch_ret:
    .cfi_startproc
    SWITCH_STACKS
    ret
    .cfi_endproc
    .size   aloop__fiber_switch_ret, .-aloop__fiber_switch_ret

/* First code of a new task: entry(arg); the entry never returns. */
    .globl  aloop__fiber_start
    .hidden aloop__fiber_start
    .type   aloop__fiber_start, %function
    .p2align 4
aloop__fiber_start:
    .cfi_startproc
    .cfi_undefined x30
    mov     x0, x20
    blr     x19
    brk     #0
    .cfi_endproc
    .size   aloop__fiber_start, .-aloop__fiber_start

#endif
    .section .note.GNU-stack,"",%progbits
