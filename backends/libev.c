/* libev.c -- the libev backend module (libaloop-ev.so), and adoption of a
 * host's struct ev_loop (aloop_new_from_ev).
 *
 * One ev_io per fd number, allocated the first time the number is watched
 * and reused: a change is ev_io_stop + ev_io_set + ev_io_start, which libev
 * coalesces itself until its next fd_reify.  ->wait arms one ev_timer and
 * runs ev_run once.  The core's wake-up is an ev_async (ev_async_send is
 * async-signal-safe, so the core's sigaction handlers may call it).
 *
 * Signals stay with the core (no ALOOP_BF_SIGNAL): libev lets one loop only
 * watch a given signal (a second loop trips an assert, i.e. abort()), and
 * ev_signal_stop resets the disposition to SIG_DFL instead of restoring the
 * previous handler -- neither is safe for a library sharing the process.
 *
 * libev aborts on epoll_ctl(EBADF) (an assert Debian keeps).  libev calls
 * epoll_ctl late, in ev_run's fd_reify, so an fd closed after ev_io_start
 * but before that would kill the process: every fd started since the last
 * ev_run is checked just before the next one, and a closed one is stopped
 * (it stops firing until ->modify is called for it again).  Stopping needs
 * no check: libev never tells the kernel about a removal (it lets the
 * kernel forget closed fds).
 *
 * Adopted host loop: an ev_prepare (before the host polls) asks the core
 * for its timeout and arms an ev_idle (work queued: do not block) or the
 * ev_timer (earliest deadline); an ev_check (after the poll) runs
 * aloop__dispatch.  The prepare and check watchers are unref'd for good;
 * the ev_async holds one reference on the host exactly while
 * aloop__alive(), so ev_run returns once the host's own work is done and
 * aloop has nothing left, and never while aloop has. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <ev.h>

#include "../core/backend.h"
#include "aloop-ev.h"

/* backends libev may use: io_uring (broken on some kernels in 4.33) and
 * linuxaio (experimental, libev's own word) are never chosen */
static unsigned usable_backends(void)
{
    unsigned m = ev_recommended_backends();
#ifdef EVBACKEND_IOURING
    m &= ~(unsigned)EVBACKEND_IOURING;
#endif
#ifdef EVBACKEND_LINUXAIO
    m &= ~(unsigned)EVBACKEND_LINUXAIO;
#endif
    return m;
}

struct fdw {
    ev_io io;                   /* io.data: the aloop_t */
    int fresh;                  /* on the to-check list */
};

struct evb {
    struct ev_loop *ev;
    aloop_t *loop;
    int adopted;
    int in_wait;                /* aloop_run is driving an adopted host */
    int dispatching;            /* adopted: inside aloop__dispatch */
    int reffed;                 /* adopted: the ev_async holds a reference */
    ev_async async;
    ev_timer timer;
    ev_idle idle;
    ev_prepare prep;
    ev_check check;
    struct fdw **fds;           /* by fd number; never moved once allocated */
    int nfds;
    int *fresh;                 /* fds started since the last check */
    int nfresh, cap_fresh;
};

static void nop_cb(struct ev_loop *ev, void *w, int revents)
{
    (void)ev;
    (void)w;
    (void)revents;
}

static void async_cb(struct ev_loop *ev, ev_async *w, int revents) { nop_cb(ev, w, revents); }
static void timer_cb(struct ev_loop *ev, ev_timer *w, int revents) { nop_cb(ev, w, revents); }
static void idle_cb(struct ev_loop *ev, ev_idle *w, int revents) { nop_cb(ev, w, revents); }

static void io_cb(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev;
    /* libev's fd_kill: it stopped the watcher already; report nothing */
    if (revents & EV_ERROR)
        return;
    unsigned e = ((revents & EV_READ) ? ALOOP_READABLE : 0) |
                 ((revents & EV_WRITE) ? ALOOP_WRITABLE : 0);
    if (e)
        aloop__io_ready(w->data, w->fd, e);
}

/* Before ev_run's fd_reify: stop what was started on an fd closed since.
 * One poll() asks about a whole batch (POLLNVAL: closed), instead of a
 * system call per fd; with no events asked, it waits for nothing. */
#define CHECK_BATCH 256

static void check_fresh(struct evb *b)
{
    struct pollfd p[CHECK_BATCH];
    int i = 0;
    while (i < b->nfresh) {
        int k = 0;
        for (; i < b->nfresh && k < CHECK_BATCH; i++) {
            struct fdw *w = b->fds[b->fresh[i]];
            w->fresh = 0;
            if (ev_is_active(&w->io)) {
                p[k].fd = w->io.fd;
                p[k].events = 0;
                p[k].revents = 0;
                k++;
            }
        }
        if (k == 0)
            continue;
        int r = poll(p, (nfds_t)k, 0);
        for (int j = 0; j < k && r != 0; j++) {
            /* poll() failed (ENOMEM, EINVAL for more fds than
             * RLIMIT_NOFILE...): ask one by one */
            int closed = r < 0 ? fcntl(p[j].fd, F_GETFD) < 0 && errno == EBADF
                               : (p[j].revents & POLLNVAL) != 0;
            if (closed)
                ev_io_stop(b->ev, &b->fds[p[j].fd]->io);
        }
    }
    b->nfresh = 0;
}

/* Keep the host alive exactly while aloop has work. */
static void hold_host(struct evb *b, int alive)
{
    if (alive && !b->reffed) {
        ev_ref(b->ev);
        b->reffed = 1;
    } else if (!alive && b->reffed) {
        ev_unref(b->ev);
        b->reffed = 0;
    }
}

/* Adopted: make the host wake for aloop's work, t as aloop__prepare says. */
static void arm(struct evb *b, int64_t t)
{
    int alive = aloop__alive(b->loop);
    /* aloop__prepare also says 0 when nothing is left at all */
    if (t == 0 && alive) {
        if (!ev_is_active(&b->idle))
            ev_idle_start(b->ev, &b->idle);
    } else if (ev_is_active(&b->idle)) {
        ev_idle_stop(b->ev, &b->idle);
    }
    if (ev_is_active(&b->timer))
        ev_timer_stop(b->ev, &b->timer);
    if (t > 0) {
        ev_timer_set(&b->timer, (ev_tstamp)t * 1e-9, 0.);
        ev_timer_start(b->ev, &b->timer);
    }
    hold_host(b, alive);
}

static void prep_cb(struct ev_loop *ev, ev_prepare *w, int revents)
{
    (void)revents;
    struct evb *b = w->data;
    if (b->in_wait || b->dispatching) {
        /* ev_run nested in a callback: aloop cannot dispatch until that
         * returns, so it must not keep the nested run from blocking */
        if (ev_is_active(&b->idle))
            ev_idle_stop(ev, &b->idle);
        check_fresh(b);
        return;
    }
    int64_t t = aloop__prepare(b->loop);
    check_fresh(b);
    /* the timer counts from ev_now(), stale by the callbacks since the last
     * poll: ev_run reads the clock right after this anyway */
    if (t > 0)
        ev_now_update(ev);
    arm(b, t);
}

static void check_cb(struct ev_loop *ev, ev_check *w, int revents)
{
    (void)ev;
    (void)revents;
    struct evb *b = w->data;
    if (b->in_wait || b->dispatching)
        return;
    b->dispatching = 1;
    aloop__dispatch(b->loop);          /* calls ->update when done */
    b->dispatching = 0;
}

static void evb_update(aloop_t *loop)
{
    struct evb *b = aloop__backend_data(loop);
    if (!b->in_wait)
        arm(b, aloop__prepare(loop));
}

static int evb_probe(void)
{
    if (ev_version_major() != EV_VERSION_MAJOR || !(ev_supported_backends() & usable_backends()))
        return -ENOSYS;
    return 0;
}

/* libev aborts (ev_syserr) when it cannot create its epoll fd or its
 * async pipe: make sure two descriptors are free before asking it. */
static int fds_available(void)
{
    int a = eventfd(0, EFD_CLOEXEC), b = a >= 0 ? eventfd(0, EFD_CLOEXEC) : -1;
    int err = b < 0 ? errno : 0;
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
    return -err;
}

static int evb_init(aloop_t *loop, void *host)
{
    struct evb *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->loop = loop;
    if (host) {
        b->ev = host;
        b->adopted = 1;
    } else {
        int r = fds_available();
        if (r < 0) {
            free(b);
            return r;
        }
        b->ev = ev_loop_new(EVFLAG_NOENV | EVFLAG_NOINOTIFY | usable_backends());
        if (!b->ev) {
            free(b);
            return -ENOSYS;
        }
    }
    ev_async_init(&b->async, async_cb);
    ev_set_priority(&b->async, EV_MAXPRI);
    ev_async_start(b->ev, &b->async);
    ev_timer_init(&b->timer, timer_cb, 0., 0.);
    ev_set_priority(&b->timer, EV_MAXPRI);
    if (b->adopted) {
        ev_unref(b->ev);        /* hold_host() takes it back while alive */
        ev_idle_init(&b->idle, idle_cb);
        ev_prepare_init(&b->prep, prep_cb);
        b->prep.data = b;
        /* last among the host's prepare watchers, closest to fd_reify */
        ev_set_priority(&b->prep, EV_MINPRI);
        ev_prepare_start(b->ev, &b->prep);
        ev_unref(b->ev);
        ev_check_init(&b->check, check_cb);
        b->check.data = b;
        /* libev runs higher priorities first: our ev_io callbacks (MAXPRI)
         * report their fds before the check dispatches them */
        ev_set_priority(&b->check, EV_MINPRI);
        ev_check_start(b->ev, &b->check);
        ev_unref(b->ev);
        aloop__set_adopted(loop);
    }
    aloop__set_backend_data(loop, b);
    return 0;
}

static void evb_fini(aloop_t *loop)
{
    struct evb *b = aloop__backend_data(loop);
    for (int fd = 0; fd < b->nfds; fd++) {
        if (!b->fds[fd])
            continue;
        if (ev_is_active(&b->fds[fd]->io))
            ev_io_stop(b->ev, &b->fds[fd]->io);
        free(b->fds[fd]);
    }
    free(b->fds);
    free(b->fresh);
    ev_timer_stop(b->ev, &b->timer);
    if (b->adopted) {
        /* give back the references init took away, then stop: the host's
         * count of active watchers ends where it was before adoption */
        ev_idle_stop(b->ev, &b->idle);
        ev_ref(b->ev);
        ev_check_stop(b->ev, &b->check);
        ev_ref(b->ev);
        ev_prepare_stop(b->ev, &b->prep);
        if (!b->reffed)
            ev_ref(b->ev);
        ev_async_stop(b->ev, &b->async);
    } else {
        ev_async_stop(b->ev, &b->async);
        ev_loop_destroy(b->ev);
    }
    free(b);
}

static struct fdw *fd_watcher(struct evb *b, aloop_t *loop, int fd)
{
    if (fd >= b->nfds) {
        int n = b->nfds ? b->nfds : 64;
        while (n <= fd)
            n *= 2;
        struct fdw **t = realloc(b->fds, (size_t)n * sizeof *t);
        if (!t)
            return NULL;
        for (int i = b->nfds; i < n; i++)
            t[i] = NULL;
        b->fds = t;
        b->nfds = n;
    }
    if (!b->fds[fd]) {
        struct fdw *w = calloc(1, sizeof *w);
        if (!w)
            return NULL;
        ev_init(&w->io, io_cb);
        w->io.data = loop;
        ev_set_priority(&w->io, EV_MAXPRI);
        b->fds[fd] = w;
    }
    return b->fds[fd];
}

static int evb_modify(aloop_t *loop, int fd, unsigned oev, unsigned nev)
{
    struct evb *b = aloop__backend_data(loop);
    if (nev == 0) {
        if (fd < b->nfds && b->fds[fd] && ev_is_active(&b->fds[fd]->io))
            ev_io_stop(b->ev, &b->fds[fd]->io);
        return 0;
    }
    if (oev == 0) {
        if (fcntl(fd, F_GETFD) < 0)
            return -errno;
    }
    if (fd > (1 << 29))
        return -EBADF;
    struct fdw *w = fd_watcher(b, loop, fd);
    if (!w)
        return -ENOMEM;
    /* on failure nothing may stay watched: the core starts again from 0 */
    if (ev_is_active(&w->io))
        ev_io_stop(b->ev, &w->io);
    if (!w->fresh) {
        if (b->nfresh == b->cap_fresh) {
            int cap = b->cap_fresh ? 2 * b->cap_fresh : 64;
            int *t = realloc(b->fresh, (size_t)cap * sizeof *t);
            if (!t)
                return -ENOMEM;
            b->fresh = t;
            b->cap_fresh = cap;
        }
        b->fresh[b->nfresh++] = fd;
        w->fresh = 1;
    }
    ev_io_set(&w->io, fd, ((nev & ALOOP_READABLE) ? EV_READ : 0) | ((nev & ALOOP_WRITABLE) ? EV_WRITE : 0));
    ev_io_start(b->ev, &w->io);
    return 0;
}

static int evb_wait(aloop_t *loop, int64_t timeout_ns)
{
    struct evb *b = aloop__backend_data(loop);
    int ref_taken = 0;
    if (b->adopted) {
        /* aloop_run on an adopted loop drives the host (its watchers run
         * too), but never inside the host's own ev_run */
        if (ev_depth(b->ev) > 0)
            return -EBUSY;
        b->in_wait = 1;
        if (ev_is_active(&b->idle))
            ev_idle_stop(b->ev, &b->idle);
        if (ev_is_active(&b->timer))
            ev_timer_stop(b->ev, &b->timer);
        /* ev_run does not block on a loop with no referenced watcher */
        if (!b->reffed) {
            ev_ref(b->ev);
            ref_taken = 1;
        }
    }
    check_fresh(b);
    if (timeout_ns > 0) {
        ev_now_update(b->ev);
        ev_timer_set(&b->timer, (ev_tstamp)timeout_ns * 1e-9, 0.);
        ev_timer_start(b->ev, &b->timer);
    }
    ev_run(b->ev, timeout_ns == 0 ? EVRUN_NOWAIT : EVRUN_ONCE);
    if (timeout_ns > 0)
        ev_timer_stop(b->ev, &b->timer);
    if (ref_taken)
        ev_unref(b->ev);
    b->in_wait = 0;
    return 0;
}

/* Any thread, or a signal handler (the core's sigaction handlers). */
static void evb_wakeup(aloop_t *loop)
{
    struct evb *b = aloop__backend_data(loop);
    ev_async_send(b->ev, &b->async);
}

static void *evb_native(aloop_t *loop)
{
    return ((struct evb *)aloop__backend_data(loop))->ev;
}

static const struct aloop_backend be = {
    .abi = ALOOP__BACKEND_ABI,
    .name = "libev",
    .features = ALOOP_BF_WAKEUP | ALOOP_BF_ADOPT,
    .probe = evb_probe,
    .init = evb_init,
    .fini = evb_fini,
    .modify = evb_modify,
    .wait = evb_wait,
    .wakeup = evb_wakeup,
    .update = evb_update,
    .native = evb_native,
};

ALOOP__EXPORT const struct aloop_backend *aloop_module_backend(void);
const struct aloop_backend *aloop_module_backend(void)
{
    return &be;
}

int aloop_new_from_ev(aloop_t **loop, struct ev_loop *ev)
{
    if (!loop || !ev)
        return -EINVAL;
    return aloop__new_with(loop, &be, ev);
}
