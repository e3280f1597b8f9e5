/* switch_x86_64.S -- the x86-64 (System V) pieces of the tasks' switch.
 *
 * The tasks switch inline (aloop__fiber_jump() in task/task.h: stack
 * pointer, resume address and rbp; every other register declared clobbered
 * for the compiler).  A new task's first resume lands in aloop__fiber_entry,
 * which jumps to entry(arg) from the words aloop__fiber_make()
 * (task/stack.c) left at its stack pointer.
 *
 * aloop__fiber_switch(void **save, void *to) is the complete switch as one
 * routine: push the callee-saved registers, store the stack pointer in
 * *save, load `to`, pop that side's registers and continue at its saved
 * return address with an indirect jmp, not ret (a ret would pop the
 * return-stack predictor of the other side's call and mispredict on every
 * switch, about 3x slower).  aloop-bench's "bare" switch measures it (with
 * aloop__fiber_start, whose frame holds the entry in r12 and its argument in
 * r13), as the cost of a switch that saves everything itself.  Nothing else
 * is saved: no signal mask (no system call), no MXCSR / x87 control word. */
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

/* The bare switch's first code of a new side: r12(r13).  The entry never
 * returns; the stack is 16-byte aligned here. */
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

/* First code of a new task: jump to entry(arg), the words above the stack
 * pointer, whose top word (a return address of 0) makes it look called.  A
 * jmp, not a call: the entry never returns (a task's last act is a switch
 * away), and a call would leave the return-address predictor one entry off
 * for every ret of whichever side runs next (one-by-one spawn + join:
 * three mispredicted returns each). */
    .globl  aloop__fiber_entry
    .hidden aloop__fiber_entry
    .type   aloop__fiber_entry, @function
    .p2align 4
aloop__fiber_entry:
    .cfi_startproc
    .cfi_undefined rip
    movq    16(%rsp), %rdi
    jmpq    *8(%rsp)
    .cfi_endproc
    .size   aloop__fiber_entry, .-aloop__fiber_entry

#endif
    .section .note.GNU-stack,"",@progbits
