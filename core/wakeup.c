/* wakeup.c -- waking a blocked loop, and the thread-safe inbox.
 *
 * ALOOP__WAKE deduplicates wake-ups: only the caller that flips it 0 -> 1
 * writes the eventfd.  The loop clears it before draining the eventfd and
 * then the inbox, so a call pushed before any waker's flip is always seen:
 * no call is lost, and a spurious wake-up costs one empty iteration. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop.h"

#define NOSLOT UINT32_MAX

int aloop__wake_init(struct aloop *loop)
{
    loop->wakefd_r = loop->wakefd_w = -1;
    if (loop->be->features & ALOOP_BF_WAKEUP)
        return 0;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    int r = loop->be->modify(loop, fd, 0, ALOOP_READABLE);
    if (r < 0) {
        close(fd);
        return r;
    }
    loop->wakefd_r = loop->wakefd_w = fd;
    return 0;
}

void aloop__wake_fini(struct aloop *loop)
{
    if (loop->wakefd_r >= 0) {
        if (!loop->forked)      /* see aloop__io_fini */
            loop->be->modify(loop, loop->wakefd_r, ALOOP_READABLE, 0);
        close(loop->wakefd_r);
    }
    loop->wakefd_r = loop->wakefd_w = -1;
}

/* Any thread, or a signal handler. */
void aloop__wake(struct aloop *loop)
{
    if (atomic_fetch_or(&loop->flags, ALOOP__WAKE) & ALOOP__WAKE)
        return;
    if (loop->wakefd_w < 0) {
        loop->be->wakeup(loop);
        return;
    }
    uint64_t one = 1;
    int saved = errno;
    /* EAGAIN means the counter is already non-zero: the loop will wake */
    while (write(loop->wakefd_w, &one, sizeof one) < 0 && errno == EINTR)
        ;
    errno = saved;
}

/* Take the producers' calls: the inbox is swapped out whole and queued as
 * one K_BATCH slot at the default priority, whose run calls them in order
 * from the array (aloop__inbox_run) -- where one slot per call would have
 * put them, with none of the per-call cost.  If the slot cannot be had
 * (ENOMEM), the next iteration tries again. */
static void inbox_drain(struct aloop *loop)
{
    if (loop->batch_pos < loop->batch_len)
        goto queue;             /* a batch taken before, not yet queued */
    if (!atomic_load(&loop->inbox_nonempty))
        return;
    pthread_mutex_lock(&loop->inbox_lock);
    struct aloop__inbox_item *t = loop->inbox_spare;
    uint32_t cap = loop->spare_cap;
    loop->inbox_spare = loop->inbox;
    loop->spare_cap = loop->inbox_cap;
    loop->batch_len = loop->inbox_len;
    loop->batch_pos = 0;
    loop->inbox = t;
    loop->inbox_cap = cap;
    loop->inbox_len = 0;
    atomic_store(&loop->inbox_nonempty, 0);
    pthread_mutex_unlock(&loop->inbox_lock);
    if (loop->batch_len == 0)
        return;
queue:;
    uint32_t idx = aloop__slot_alloc(loop);
    if (idx == NOSLOT)
        goto retry;
    struct aloop__call *c = aloop__slot(loop, idx);
    c->cb = NULL;
    c->arg = NULL;
    c->prio = ALOOP_PRIO_DEFAULT;
    c->kind_ctx = K_BATCH;      /* no context; one store (loop.h) */
    if (aloop__enqueue(loop, idx) < 0) {
        aloop__slot_free(loop, idx);
        goto retry;
    }
    return;
retry:
    atomic_fetch_or(&loop->flags, ALOOP__WAKE);
}

/* The K_BATCH slot's run: every call of the batch, in order.  The batch
 * stays put meanwhile: the inbox is swapped only when an iteration begins. */
void aloop__inbox_run(struct aloop *loop)
{
    while (loop->batch_pos < loop->batch_len) {
        struct aloop__inbox_item it = loop->inbox_spare[loop->batch_pos++];
        it.cb(loop, it.arg);
    }
}

void aloop__wake_collect(struct aloop *loop)
{
    if (!aloop__flag(loop, ALOOP__WAKE))
        return;
    atomic_fetch_and(&loop->flags, ~ALOOP__WAKE);
    if (loop->wakefd_r >= 0) {
        uint64_t v;
        ssize_t n = read(loop->wakefd_r, &v, sizeof v);
        (void)n;
    }
    if (atomic_load_explicit(&loop->sig_pending, memory_order_relaxed))
        aloop__signals_collect(loop);
    inbox_drain(loop);
}

int aloop_call_soon_threadsafe(aloop_t *loop, aloop_cb cb, void *arg)
{
    if (!loop || !cb)
        return -EINVAL;
    pthread_mutex_lock(&loop->inbox_lock);
    if (loop->inbox_len == loop->inbox_cap) {
        uint32_t cap = loop->inbox_cap ? loop->inbox_cap * 2 : 64;
        struct aloop__inbox_item *n = realloc(loop->inbox, (size_t)cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&loop->inbox_lock);
            return -ENOMEM;
        }
        loop->inbox = n;
        loop->inbox_cap = cap;
    }
    /* only the call that makes the inbox non-empty wakes the loop: the
     * loop empties it whole under the lock, so a later call either joins
     * a batch whose waker is on its way or finds it empty and wakes */
    int first = loop->inbox_len++ == 0;
    loop->inbox[loop->inbox_len - 1] = (struct aloop__inbox_item){ cb, arg };
    if (first)
        atomic_store_explicit(&loop->inbox_nonempty, 1, memory_order_release);
    pthread_mutex_unlock(&loop->inbox_lock);
    if (first)
        aloop__wake(loop);
    return 0;
}

void aloop__inbox_fini(struct aloop *loop)
{
    free(loop->inbox);
    free(loop->inbox_spare);
    loop->inbox = loop->inbox_spare = NULL;
    loop->inbox_len = loop->inbox_cap = loop->spare_cap = 0;
    loop->batch_len = loop->batch_pos = 0;
}
