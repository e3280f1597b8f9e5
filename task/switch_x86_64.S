/* switch_x86_64.S -- the tasks' context switch on x86-64 (System V).
 *
 * aloop__fiber_switch(void **save, void *to): push the callee-saved
 * registers, store the stack pointer in *save, load `to`, pop that side's
 * registers and continue at its saved return address.  It ends in an
 * indirect jmp, not ret: a ret would pop the return-stack predictor of the
 * other side's call and mispredict on every switch (about 3x slower).
 * Nothing else is saved: no signal mask (no system call), no MXCSR / x87
 * control word (tasks must not change FP modes across a switch).
 *
 * aloop__fiber_switch_ret is the same ending in ret, for a switch between
 * two sides suspended at the same call site (task to task, task/task.c's
 * handoff()): there the predictor's top entry -- this call's own return
 * address -- is the other side's too, and so is the next one (the caller's
 * caller), so a ret predicts right where a jmp leaves every later ret
 * off by one.
 *
 * A new stack is laid out by aloop__fiber_make() (task/stack.c) to look
 * like a switch's own frame whose return address is aloop__fiber_start:
 * r12 holds the entry function, r13 its argument. */
#if defined(__x86_64__) && !defined(ALOOP_TASK_UCONTEXT)

    .text

/* push this side's registers, save sp, load the other side's, pop its
 * registers: what is left on the stack is its return address */
.macro SWITCH_STACKS
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
.endm

    .globl  aloop__fiber_switch
    .hidden aloop__fiber_switch
    .type   aloop__fiber_switch, @function
    .p2align 4
aloop__fiber_switch:
    .cfi_startproc
    SWITCH_STACKS
    popq    %rcx
    jmpq    *%rcx
    .cfi_endproc
    .size   aloop__fiber_switch, .-aloop__fiber_switch

    .globl  aloop__fiber_switch_ret
    .hidden aloop__fiber_switch_ret
    .type   aloop__fiber_switch_ret, @function
    .p2align 4
aloop__fiber_switch_ret:
    .cfi_startproc
    SWITCH_STACKS
    ret
    .cfi_endproc
    .size   aloop__fiber_switch_ret, .-aloop__fiber_switch_ret

/* First code of a new task: entry(arg).  The entry never returns (a task's
 * last act is a switch away); the stack is 16-byte aligned here. */
    .globl  aloop__fiber_start
    .hidden aloop__fiber_start
    .type   aloop__fiber_start, @function
    .p2align 4
aloop__fiber_start:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r13, %rdi
    callq   *%r12
    ud2
    .cfi_endproc
    .size   aloop__fiber_start, .-aloop__fiber_start

#endif
    .section .note.GNU-stack,"",@progbits
