/* task.h -- the tasks layer's internals: the context switch, stacks, the
 * per-thread state and the context-variable maps.  Not installed; names are
 * aloop__<area>_<verb>, hidden by visibility.
 *
 * The layer sits above the loop core and uses only what the core offers any
 * callback: call slots in its ready queue and timer heap (filled directly, so
 * a resume is one slot and no id lookup), readers and writers, and the one
 * context hook (struct aloop__ctx_ops). */
#ifndef ALOOP_TASK_TASK_H
#define ALOOP_TASK_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "../core/loop.h"
#include "aloop-task.h"

/* ---- the context switch --------------------------------------------------
 * x86-64 and aarch64 use task/switch_<arch>.S: callee-saved registers and the
 * stack pointer, nothing else (no signal mask, no FP control words: a task
 * must not change the rounding mode or exception masks and then switch).
 * Other platforms, or configure --with-task-switch=ucontext, use
 * task/switch_ucontext.c (glibc's swapcontext: two system calls a switch). */
#if !defined(ALOOP_TASK_UCONTEXT) && !defined(__x86_64__) && !defined(__aarch64__)
#define ALOOP_TASK_UCONTEXT 1
#endif

#ifdef ALOOP_TASK_UCONTEXT
#include <ucontext.h>
struct aloop__fctx { ucontext_t *uc; };
#elif defined(__x86_64__)
/* x86-64: a suspended side is its stack pointer, where it continues, and
 * its frame pointer; the switch is inline (aloop__fiber_jump below). */
struct aloop__fctx { void *sp, *pc, *bp; };
#else
struct aloop__fctx { void *sp; };
#endif
#ifndef ALOOP_TASK_UCONTEXT
/* Save the callee-saved registers on the current stack, store the stack
 * pointer in *save, load `to` and continue where it was saved (switch_*.S).
 * On x86-64 the tasks do not use it (the bench's bare switch does). */
ALOOP__HIDDEN void aloop__fiber_switch(void **save, void *to);
#ifndef __x86_64__
/* The same, ending in ret: for switches between two tasks (switch_*.S). */
ALOOP__HIDDEN void aloop__fiber_switch_ret(void **save, void *to);
#endif
#endif

/* Prepare `f` to run entry(arg) on the stack whose usable top is `top`
 * (16-byte aligned); `uc` is room for a ucontext_t when that switch is used. */
ALOOP__HIDDEN void aloop__fiber_make(struct aloop__fctx *f, void *lo, void *top, void *uc,
                                     void (*entry)(void *), void *arg);

#if defined(__x86_64__) && !defined(ALOOP_TASK_UCONTEXT)
#ifdef __AVX512F__
#define ALOOP__X86_CLOBBER_HI , "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", \
    "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", \
    "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"
#else
#define ALOOP__X86_CLOBBER_HI
#endif
/* Switch from this side (saved in *save) to `to`, inline: store the stack
 * pointer, the resume address and rbp, load the other side's, jump.  Every
 * other register is declared clobbered, so the compiler keeps across the
 * switch only what the surrounding function must keep anyway (its callers'
 * callee-saved registers are pushed once, by its prologue) instead of a
 * routine saving six registers on each switch.  No call and no ret: the
 * return-address predictor is left as it was, which is right when both
 * sides wait at the same place (two tasks yielding).  Nothing is written
 * below the stack pointer, so the compiler's red zone is safe.  No signal mask, no
 * MXCSR / x87 control word (tasks must not change FP modes across a
 * switch). */
static inline __attribute__((always_inline)) void aloop__fiber_jump(struct aloop__fctx *save,
                                                                   struct aloop__fctx *to)
{
    __asm__ volatile("leaq 1f(%%rip), %%rax\n\t"
                     "movq %%rsp, 0(%0)\n\t"
                     "movq %%rax, 8(%0)\n\t"
                     "movq %%rbp, 16(%0)\n\t"
                     "movq 16(%1), %%rbp\n\t"
                     "movq 0(%1), %%rsp\n\t"
                     "jmpq *8(%1)\n"
                     "1:"
                     : "+D"(save), "+S"(to)
                     :
                     : "rax", "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11", "r12", "r13",
                       "r14", "r15", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
                       "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
                       "xmm15", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)",
                       "st(7)" ALOOP__X86_CLOBBER_HI, "cc", "memory");
}
/* Task to task: the same switch. */
#define aloop__fiber_handoff aloop__fiber_jump
#else
static inline void aloop__fiber_jump(struct aloop__fctx *save, struct aloop__fctx *to)
{
#ifdef ALOOP_TASK_UCONTEXT
    swapcontext(save->uc, to->uc);
#else
    aloop__fiber_switch(&save->sp, to->sp);
#endif
}
#ifndef ALOOP_TASK_UCONTEXT
/* Task to task: both sides suspended at the same call site, so the switch
 * ending in ret predicts right. */
static inline void aloop__fiber_handoff(struct aloop__fctx *save, struct aloop__fctx *to)
{
    aloop__fiber_switch_ret(&save->sp, to->sp);
}
#endif
#endif

/* ---- sanitizers and valgrind ---------------------------------------------- */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALOOP__ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define ALOOP__TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(ALOOP__ASAN)
#define ALOOP__ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(ALOOP__TSAN)
#define ALOOP__TSAN 1
#endif

/* ---- stacks (stack.c) -----------------------------------------------------
 * A stack is a slot of a larger mapping: [pad page][canary zone | usable
 * ... | struct aloop__stack].  The pad page is PROT_NONE (a guard) while the
 * process's mapping budget allows, else plain untouched memory.  The zone
 * (the canary) must stay untouched: see stack.c. */
#define ALOOP__CANARY_ZONE 256

struct aloop__stack {
    struct aloop__stack *next;      /* the pool's free list */
    char *lo;                       /* lowest usable byte: the canary zone */
    char *top;                      /* 16-aligned; the frames start below */
    unsigned vg_id;                 /* valgrind's id of the stack */
    uint8_t guarded;
};

/* Room at a stack's top for its descriptor (and, for the ucontext switch,
 * the task's and its resumer's ucontexts), a multiple of 64. */
#define ALOOP__DESC_HEAD ((sizeof(struct aloop__stack) + 63) & ~(size_t)63)
#ifdef ALOOP_TASK_UCONTEXT
#define ALOOP__UC_SIZE ((sizeof(ucontext_t) + 63) & ~(size_t)63)
#define ALOOP__DESC_SIZE (ALOOP__DESC_HEAD + 2 * ALOOP__UC_SIZE)
static inline ucontext_t *aloop__stack_uc(struct aloop__stack *s, int i)
{
    return (ucontext_t *)(void *)((char *)s + ALOOP__DESC_HEAD + (size_t)i * ALOOP__UC_SIZE);
}
#else
#define ALOOP__DESC_SIZE ALOOP__DESC_HEAD
#endif

struct aloop__stack_chunk {
    struct aloop__stack_chunk *next;
    char *base;
    size_t len;
    uint32_t nguards;
};

struct aloop__stack_pool {
    struct aloop__stack *free;
    struct aloop__stack_chunk *chunks;
    char *carve;                    /* next slot to carve, from the high end down */
    char *carve_end;                /* the chunk's base */
    size_t slot;                    /* pad page + stack size */
    size_t size;                    /* usable size, page multiple */
    size_t nfree, ntotal;
};

/* size rounded up to the page size */
ALOOP__HIDDEN size_t aloop__stack_round(size_t size);
ALOOP__HIDDEN int aloop__stack_pool_init(struct aloop__stack_pool *p, size_t size);
ALOOP__HIDDEN void aloop__stack_pool_fini(struct aloop__stack_pool *p);
ALOOP__HIDDEN struct aloop__stack *aloop__stack_get(struct aloop__stack_pool *p);
ALOOP__HIDDEN void aloop__stack_put(struct aloop__stack_pool *p, struct aloop__stack *s);
/* Abort with a message naming the task if its stack overflowed. */
ALOOP__HIDDEN void aloop__stack_overflow(const struct aloop__stack *s, const void *sp)
    __attribute__((noreturn, cold));

/* The stack pointer, without making the caller set up a frame pointer. */
static inline __attribute__((always_inline)) const void *aloop__sp(void)
{
    const void *sp;
#if defined(__x86_64__)
    __asm__("movq %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
    __asm__("mov %0, sp" : "=r"(sp));
#else
    sp = __builtin_frame_address(0);
#endif
    return sp;
}

/* At every switch out of a task: the saved stack pointer must be above the
 * zone, and an unguarded stack's zone must still read zero (three words:
 * its top, middle and bottom). */
static inline void aloop__stack_check(const struct aloop__stack *s, const void *sp)
{
    if (unlikely((const char *)sp < s->lo + ALOOP__CANARY_ZONE))
        aloop__stack_overflow(s, sp);
    if (!s->guarded) {
        const volatile uint64_t *z = (const volatile uint64_t *)(const void *)s->lo;
        if (unlikely((z[0] | z[ALOOP__CANARY_ZONE / 16] | z[ALOOP__CANARY_ZONE / 8 - 1]) != 0))
            aloop__stack_overflow(s, sp);
    }
}

/* ---- context maps (ctxvar.c) ----------------------------------------------
 * An immutable hash-array-mapped trie from variable to value, shared by
 * reference: copying a context is taking a reference.  NULL is the empty
 * map.  Reference counts are plain: a map never leaves its thread. */
struct aloop__cmap;
ALOOP__HIDDEN void aloop__cmap_release(struct aloop__cmap *m);
static inline struct aloop__cmap *aloop__cmap_retain(struct aloop__cmap *m);

/* ---- per-thread state ----------------------------------------------------- */
struct aloop__tls {
    aloop_task_t *task;             /* the running task, or NULL */
    struct aloop__cmap *ctx;        /* the current context (a reference) */
};
extern __thread struct aloop__tls aloop__tls
    __attribute__((tls_model("initial-exec"))) ALOOP__HIDDEN;

struct aloop__cmap_hdr { uint32_t ref; uint32_t kind; };

static inline struct aloop__cmap *aloop__cmap_retain(struct aloop__cmap *m)
{
    if (m)
        ((struct aloop__cmap_hdr *)m)->ref++;
    return m;
}

#endif /* ALOOP_TASK_TASK_H */
