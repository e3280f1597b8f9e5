/* switch_ucontext.c -- the portable fallback of the context switch, for
 * platforms without task/switch_<arch>.S (or configure
 * --with-task-switch=ucontext).  swapcontext() saves and restores the signal
 * mask: two system calls a switch, about 100x the assembly routines. */
#include "task.h"

#ifdef ALOOP_TASK_UCONTEXT

/* makecontext passes int arguments only: split the pointers. */
static void start(unsigned fhi, unsigned flo, unsigned ahi, unsigned alo)
{
    void (*entry)(void *) = (void (*)(void *))(((uintptr_t)fhi << 16 << 16) | flo);
    void *arg = (void *)(((uintptr_t)ahi << 16 << 16) | alo);
    entry(arg);
    __builtin_trap();       /* a task's last act is a switch away */
}

void aloop__fiber_make(struct aloop__fctx *f, void *lo, void *top, void *uc,
                       void (*entry)(void *), void *arg)
{
    ucontext_t *u = uc;
    f->uc = u;
    getcontext(u);
    u->uc_stack.ss_sp = lo;
    u->uc_stack.ss_size = (size_t)((char *)top - (char *)lo);
    u->uc_link = NULL;
    uintptr_t fe = (uintptr_t)entry, a = (uintptr_t)arg;
    makecontext(u, (void (*)(void))start, 4, (unsigned)(fe >> 16 >> 16), (unsigned)fe,
                (unsigned)(a >> 16 >> 16), (unsigned)a);
}

#else
typedef int aloop__switch_ucontext_unused;   /* ISO C: no empty unit */
#endif
