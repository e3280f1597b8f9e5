/* signal.c -- signals delivered as ordinary callbacks in the loop thread.
 *
 * Backends without native signal watchers share one sigaction handler per
 * signal.  It only sets the loop's pending bit and wakes it (both
 * async-signal-safe); the loop turns pending bits into queued callbacks, so
 * signals arriving while it is busy coalesce but are never lost.  A loop
 * leaving the table waits for running handlers to finish before its memory
 * may go. */
#include <sched.h>
#include <string.h>

#include "loop.h"

#define NOSLOT UINT32_MAX
#define MAX_LOOPS 8             /* loops per signal in one process */

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static struct aloop *_Atomic sig_loops[ALOOP__NSIG][MAX_LOOPS];
static struct sigaction sig_old[ALOOP__NSIG];
static int sig_users[ALOOP__NSIG];
static atomic_int sig_in_handler;

static void on_signal(int signum)
{
    int saved = errno;
    atomic_fetch_add(&sig_in_handler, 1);
    for (int i = 0; i < MAX_LOOPS; i++) {
        struct aloop *l = atomic_load(&sig_loops[signum][i]);
        if (l) {
            atomic_fetch_or(&l->sig_pending, UINT64_C(1) << (signum - 1));
            aloop__wake(l);
        }
    }
    atomic_fetch_sub(&sig_in_handler, 1);
    errno = saved;
}

static int table_add(struct aloop *loop, int signum)
{
    int r = -ENOSPC;
    pthread_mutex_lock(&sig_lock);
    for (int i = 0; i < MAX_LOOPS; i++) {
        if (atomic_load(&sig_loops[signum][i]))
            continue;
        if (sig_users[signum] == 0) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sigfillset(&sa.sa_mask);
            sa.sa_flags = SA_RESTART;
            if (sigaction(signum, &sa, &sig_old[signum]) < 0) {
                r = -errno;
                break;
            }
        }
        sig_users[signum]++;
        atomic_store(&sig_loops[signum][i], loop);
        r = 0;
        break;
    }
    pthread_mutex_unlock(&sig_lock);
    return r;
}

static void table_remove(struct aloop *loop, int signum)
{
    pthread_mutex_lock(&sig_lock);
    for (int i = 0; i < MAX_LOOPS; i++) {
        if (atomic_load(&sig_loops[signum][i]) != loop)
            continue;
        atomic_store(&sig_loops[signum][i], NULL);
        if (--sig_users[signum] == 0)
            sigaction(signum, &sig_old[signum], NULL);
        break;
    }
    pthread_mutex_unlock(&sig_lock);
    /* a handler on another thread may still hold the pointer */
    while (atomic_load(&sig_in_handler))
        sched_yield();
}

static int valid_signal(int signum)
{
    return signum > 0 && signum < ALOOP__NSIG && signum < NSIG &&
           signum != SIGKILL && signum != SIGSTOP;
}

int aloop_add_signal_handler(aloop_t *loop, int signum, aloop_cb cb, void *arg)
{
    if (!loop || !cb || !valid_signal(signum))
        return -EINVAL;
    if (loop->sig[signum].slot != NOSLOT) {
        struct aloop__call *c = aloop__slot(loop, loop->sig[signum].slot);
        c->cb = cb;
        c->arg = arg;
        return 0;
    }
    uint32_t idx = aloop__slot_alloc(loop);
    if (idx == NOSLOT)
        return -ENOMEM;
    struct aloop__call *c = aloop__slot(loop, idx);
    c->cb = cb;
    c->arg = arg;
    c->kind_ctx = K_SIGNAL;     /* no context; one store (loop.h) */
    c->prio = ALOOP_PRIO_DEFAULT;
    c->interval = (uint64_t)signum;
    int r = (loop->be->features & ALOOP_BF_SIGNAL) ? loop->be->signal(loop, signum, 1)
                                                   : table_add(loop, signum);
    if (r < 0) {
        aloop__slot_free(loop, idx);
        return r;
    }
    loop->sig[signum].slot = idx;
    loop->nsignals++;
    aloop__watched_changed(loop);
    aloop__notify(loop);
    return 0;
}

int aloop_remove_signal_handler(aloop_t *loop, int signum)
{
    if (!loop || !valid_signal(signum))
        return -EINVAL;
    uint32_t idx = loop->sig[signum].slot;
    if (idx == NOSLOT)
        return -ENOENT;
    if (loop->be->features & ALOOP_BF_SIGNAL) {
        if (!loop->forked)      /* a forked child's ->fini drops it */
            loop->be->signal(loop, signum, 0);
    } else
        table_remove(loop, signum);
    struct aloop__call *c = aloop__slot(loop, idx);
    if (c->state == S_QUEUED)
        aloop__dequeue(loop, c);
    aloop__slot_free(loop, idx);
    loop->sig[signum].slot = NOSLOT;
    atomic_fetch_and(&loop->sig_pending, ~(UINT64_C(1) << (signum - 1)));
    loop->nsignals--;
    aloop__watched_changed(loop);
    aloop__notify(loop);
    return 0;
}

/* Native signal watchers report here, in the loop thread, during ->wait;
 * the callback is queued after this poll's I/O, like any signal. */
void aloop__signal_ready(aloop_t *loop, int signum)
{
    if (!valid_signal(signum))
        return;
    atomic_fetch_or(&loop->sig_pending, UINT64_C(1) << (signum - 1));
    atomic_fetch_or(&loop->flags, ALOOP__WAKE);
}

void aloop__signals_collect(struct aloop *loop)
{
    uint64_t pend = atomic_exchange(&loop->sig_pending, 0);
    while (pend) {
        int signum = __builtin_ctzll(pend) + 1;
        pend &= pend - 1;
        uint32_t idx = loop->sig[signum].slot;
        if (idx == NOSLOT || aloop__slot(loop, idx)->state == S_QUEUED)
            continue;
        if (aloop__enqueue(loop, idx) < 0) {    /* keep it for next time */
            atomic_fetch_or(&loop->sig_pending, UINT64_C(1) << (signum - 1));
            atomic_fetch_or(&loop->flags, ALOOP__WAKE);
        }
    }
}

void aloop__signals_fini(struct aloop *loop)
{
    for (int s = 1; s < ALOOP__NSIG; s++)
        if (loop->sig[s].slot != NOSLOT)
            aloop_remove_signal_handler(loop, s);
}
