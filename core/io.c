/* io.c -- the fd table, change coalescing, and dispatch of ready fds.
 *
 * Per fd the core keeps what the user watches (want) and what the backend was
 * last told (kernel).  A new fd is pushed to the backend at once, so the
 * caller gets its error (-EBADF, -EPERM, ...).  So is the removal of an fd's
 * last watcher: once it is gone the number may be closed and reused for a
 * new file (a server closes one connection and accepts the next), and the
 * backend must let go of the old file while the number still names it --
 * told later, it would find the new file or nothing under the number, while
 * the old one, kept alive by a dup or a forked child, stayed registered and
 * fired for the new one.  Remove, then close, is the rule.  (The backend may
 * still keep the registration lazily -- the epoll backend does, and tells
 * the files apart -- but it has heard of the removal in time.)  Every other
 * change (an fd that keeps a watcher) waits on the change list, and only the
 * net change reaches the backend before it waits: a remove + add within one
 * iteration costs no system call (libev's rule).  An fd closed while still
 * watched stops firing, and a new file with its number needs remove + add. */
#include <stdlib.h>
#include <string.h>

#include "loop.h"


static int fd_table_grow(struct aloop *loop, int fd)
{
    int cap = loop->nfds_cap ? loop->nfds_cap : 64;
    while (cap <= fd) {
        if (cap > (1 << 29))
            return -EBADF;
        cap *= 2;
    }
    struct aloop__fd *t = realloc(loop->fds, (size_t)cap * sizeof *t);
    if (!t)
        return -ENOMEM;
    for (int i = loop->nfds_cap; i < cap; i++)
        t[i] = (struct aloop__fd){ 0 };
    loop->fds = t;
    loop->nfds_cap = cap;
    return 0;
}

static int note_change(struct aloop *loop, int fd)
{
    struct aloop__fd *f = &loop->fds[fd];
    if (f->changed)
        return 0;
    if (loop->nchanges == loop->changes_cap) {
        int cap = loop->changes_cap ? loop->changes_cap * 2 : 64;
        int *c = realloc(loop->changes, (size_t)cap * sizeof *c);
        if (!c)
            return -ENOMEM;
        loop->changes = c;
        loop->changes_cap = cap;
    }
    loop->changes[loop->nchanges++] = fd;
    f->changed = 1;
    return 0;
}

/* Push the net change of every touched fd to the backend. */
void aloop__io_flush(struct aloop *loop)
{
    for (int i = 0; i < loop->nchanges; i++) {
        int fd = loop->changes[i];
        struct aloop__fd *f = &loop->fds[fd];
        f->changed = 0;
        if (f->want == f->kernel)
            continue;
        int r = loop->be->modify(loop, fd, f->kernel, f->want);
        /* on failure the backend holds nothing for it: the next change
         * starts again from zero */
        f->kernel = (r == 0 || f->want == 0) ? f->want : 0;
    }
    loop->nchanges = 0;
}

static int add_watcher(aloop_t *loop, int fd, unsigned ev, aloop_io_cb cb, void *arg)
{
    if (unlikely(!loop || !cb))
        return -EINVAL;
    if (unlikely(fd < 0 || fd == loop->wakefd_r))
        return -EBADF;
    if (fd >= loop->nfds_cap) {
        int r = fd_table_grow(loop, fd);
        if (r < 0)
            return r;
    }
    struct aloop__fd *f = &loop->fds[fd];
    if (f->want & ev) {                     /* replace */
        struct aloop__call *c = ev == ALOOP_READABLE ? f->rc : f->wc;
        c->iocb = cb;
        c->arg = arg;
        return 0;
    }
    if (f->want == 0 && f->kernel != 0) {
        /* its removal is pending: the number may name a new file by now */
        loop->be->modify(loop, fd, f->kernel, 0);
        f->kernel = 0;
    }
    /* reserve everything that can fail before changing any state */
    if (f->kernel != 0 && !f->changed) {
        int r = note_change(loop, fd);
        if (r < 0)
            return r;
    }
    uint32_t idx;
    struct aloop__call *c = aloop__slot_take(loop, &idx);
    if (!c)
        return -ENOMEM;
    unsigned nwant = f->want | ev;
    if (f->kernel == 0) {
        int r = loop->be->modify(loop, fd, 0, nwant);
        if (r < 0) {
            aloop__slot_release(loop, c);
            return r;
        }
        f = &loop->fds[fd];
        f->kernel = (uint8_t)nwant;
    }
    c->iocb = cb;
    c->arg = arg;
    c->kind_ctx = ev == ALOOP_READABLE ? K_READ : K_WRITE;  /* no context; one store */
    c->interval = (uint64_t)fd;
    c->prio = f->prio;
    if (f->want == 0 && loop->nwatchers++ == 0)
        aloop__watched_changed(loop);
    f->want = (uint8_t)nwant;
    if (ev == ALOOP_READABLE)
        f->rc = c;
    else
        f->wc = c;
    aloop__notify(loop);
    return 0;
}

static int remove_watcher(aloop_t *loop, int fd, unsigned ev)
{
    if (unlikely(!loop))
        return -EINVAL;
    if (unlikely(fd < 0))
        return -EBADF;
    if (fd >= loop->nfds_cap || !(loop->fds[fd].want & ev))
        return -ENOENT;
    struct aloop__fd *f = &loop->fds[fd];
    unsigned nwant = f->want & ~ev;
    if (nwant == 0) {
        /* the last watcher: tell the backend while the number still names
         * this file -- the caller may close it next */
        if (f->kernel != 0) {
            loop->be->modify(loop, fd, f->kernel, 0);
            f->kernel = 0;
        }
    } else if (note_change(loop, fd) < 0) {
        /* no room to defer: tell the backend now */
        int r = loop->be->modify(loop, fd, f->kernel, nwant);
        f->kernel = (r == 0) ? (uint8_t)nwant : 0;
    }
    struct aloop__call **slot = ev == ALOOP_READABLE ? &f->rc : &f->wc;
    struct aloop__call *c = *slot;
    if (c->state == S_QUEUED)
        aloop__dequeue(loop, c);
    aloop__slot_release(loop, c);
    *slot = NULL;
    f->want &= (uint8_t)~ev;
    if (f->want == 0) {
        if (--loop->nwatchers == 0)
            aloop__watched_changed(loop);
        f->prio = ALOOP_PRIO_DEFAULT;   /* the next file with this number starts afresh */
    }
    aloop__notify(loop);
    return 0;
}

int aloop_add_reader(aloop_t *loop, int fd, aloop_io_cb cb, void *arg)
{
    return add_watcher(loop, fd, ALOOP_READABLE, cb, arg);
}

int aloop_add_writer(aloop_t *loop, int fd, aloop_io_cb cb, void *arg)
{
    return add_watcher(loop, fd, ALOOP_WRITABLE, cb, arg);
}

int aloop_remove_reader(aloop_t *loop, int fd)
{
    return remove_watcher(loop, fd, ALOOP_READABLE);
}

int aloop_remove_writer(aloop_t *loop, int fd)
{
    return remove_watcher(loop, fd, ALOOP_WRITABLE);
}

static int reprioritize(struct aloop *loop, struct aloop__call *c, int prio)
{
    if (!c || c->prio == prio)
        return 0;
    if (c->state == S_QUEUED)
        return aloop__requeue(loop, c->idx1 - 1, prio);
    c->prio = (int8_t)prio;
    return 0;
}

int aloop_set_io_priority(aloop_t *loop, int fd, int prio)
{
    if (unlikely(!loop || !aloop__prio_ok(prio)))
        return -EINVAL;
    if (unlikely(fd < 0))
        return -EBADF;
    if (fd >= loop->nfds_cap || loop->fds[fd].want == 0)
        return -ENOENT;
    struct aloop__fd *f = &loop->fds[fd];
    f->prio = (int8_t)prio;
    int r = reprioritize(loop, f->rc, prio);
    int w = reprioritize(loop, f->wc, prio);
    return r < 0 ? r : w;
}

/* For the modules (backend.h); built-in backends use the inline version. */
void aloop__io_ready(aloop_t *loop, int fd, unsigned events)
{
    aloop__io_ready_inline(loop, fd, events);
}

/* Drop every watcher; tell the backend, so an adopted host loop keeps no
 * handle of ours -- except in a forked child, where the backend's kernel
 * state (an epoll instance, ...) is shared with the parent's loop. */
void aloop__io_fini(struct aloop *loop)
{
    for (int fd = 0; fd < loop->nfds_cap; fd++) {
        struct aloop__fd *f = &loop->fds[fd];
        if (f->kernel && !loop->forked)
            loop->be->modify(loop, fd, f->kernel, 0);
    }
    free(loop->fds);
    free(loop->changes);
    loop->fds = NULL;
    loop->changes = NULL;
    loop->nfds_cap = loop->nchanges = loop->changes_cap = 0;
    loop->nwatchers = 0;
    aloop__watched_changed(loop);
}
