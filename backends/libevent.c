/* libevent.c -- the libevent backend module (libaloop-event), and adoption
 * of a host application's event_base (aloop_new_from_event_base).
 *
 * On libevent's own machinery: one struct event per fd (EV_READ|EV_WRITE|
 * EV_PERSIST, assigned into memory we own and reused) and an evtimer for
 * the wait timeout.  libevent's cross-thread notification needs
 * libevent_pthreads, which we do not link, so the core's wake-up eventfd is
 * watched here like any fd (no ALOOP_BF_WAKEUP).
 *
 * Created loop: ->wait arms the timer and runs event_base_loop() once
 * (EVLOOP_ONCE, plus EVLOOP_NONBLOCK for a zero timeout).
 *
 * Adopted loop: libevent 2.1 has no prepare/check hooks, so aloop is driven
 * from events in the host's base.  The timer is armed with what
 * aloop__prepare() says (zero when callbacks are queued: a zero timeout is
 * processed after the next poll, so a callback that re-queues itself never
 * starves the host's I/O).  Our I/O callbacks activate `dispatch`, which
 * libevent appends to the active queue behind the I/O of the same round, so
 * aloop__dispatch() sees all of it.  Nothing of ours is pending while
 * aloop__alive() is 0, so the host's event_base_dispatch() returns; the one
 * exception is the core's wake-up fd, which must stay watched for
 * thread-safe calls and signals, and is marked EVLIST_INTERNAL, the flag
 * libevent gives its own housekeeping events so that they do not keep the
 * loop running.
 *
 * Signals are left to the core (no ALOOP_BF_SIGNAL): libevent delivers a
 * signal to one event_base per process -- the one that added a signal or
 * entered event_base_loop last; the others' EV_SIGNAL events stay silent --
 * while aloop lets every loop that handles a signal see it (two loops in one
 * thread included).  The core's sigaction handler wakes each loop through
 * the wake-up eventfd, which works on any number of bases.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "../core/backend.h"
#include "aloop-event.h"

#define KEEPALIVE_NS (3600 * (int64_t)ALOOP_SEC)

struct fdw {
    struct event ev;
    unsigned mask;              /* what ev is added for; 0: not added */
    int internal;               /* the core's own fd: never keeps a host alive */
};

struct evb {
    aloop_t *loop;
    struct event_base *base;
    int adopted;
    int core_fds;               /* adopting: fds registered now are the core's */
    int refuses_files;          /* epoll: regular files give EPERM */
    int probe;                  /* epoll: an empty instance for check_fd */
    int in_wait;                /* the timer belongs to ->wait */
    int timed_out, reported;    /* what the current ->wait saw */
    struct event timer, dispatch;
    struct fdw **fds;           /* indexed by fd; each allocated once */
    int nfds;
    int nuser;                  /* fd events of the user's that are added */
};

static inline struct evb *data(aloop_t *loop)
{
    return aloop__backend_data(loop);
}

/* Rounded up: libevent's µs must not end the wait before aloop's ns. */
static void timer_arm(struct evb *b, int64_t ns)
{
    int64_t us = ns / 1000 + (ns % 1000 != 0);
    if (us > (int64_t)1 << 50)
        us = (int64_t)1 << 50;
    struct timeval tv = { .tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000) };
    evtimer_add(&b->timer, &tv);
}

static void wake_host(struct evb *b)
{
    /* aloop__dispatch() runs after the I/O libevent reported this round */
    if (b->adopted)
        event_active(&b->dispatch, EV_TIMEOUT, 1);
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct evb *b = arg;
    unsigned ev = ((what & EV_READ) ? ALOOP_READABLE : 0) | ((what & EV_WRITE) ? ALOOP_WRITABLE : 0);
    aloop__io_ready(b->loop, (int)fd, ev);
    b->reported = 1;
    wake_host(b);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct evb *b = arg;
    (void)fd;
    (void)what;
    if (b->in_wait) {
        b->timed_out = 1;
        return;
    }
    /* our I/O of this round ran before timers: this dispatch covers it */
    event_del(&b->dispatch);
    aloop__dispatch(b->loop);
}

static void dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct evb *b = arg;
    (void)fd;
    (void)what;
    aloop__dispatch(b->loop);   /* a no-op inside aloop_run (->wait) */
}

static int lev_probe(void)
{
    /* EVLOOP_NO_EXIT_ON_EMPTY and event_base_update_cache_time: 2.1 */
    return event_get_version_number() >= 0x02010000 ? 0 : -ENOTSUP;
}

/* libevent exits the process when it cannot get the fds of a new base
 * (event_sock_err on its signal socketpair): make sure they are there --
 * an epoll instance and a socketpair -- and fail cleanly if not. */
static int fds_available(int n)
{
    int fd[3], got = 0, r = 0;
    while (got < n) {
        fd[got] = eventfd(0, EFD_CLOEXEC);
        if (fd[got] < 0) {
            r = -errno;
            break;
        }
        got++;
    }
    while (got > 0)
        close(fd[--got]);
    return r;
}

static int lev_init(aloop_t *loop, void *host)
{
    struct evb *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->loop = loop;
    if (host) {
        b->base = host;
        b->adopted = 1;
        b->core_fds = 1;
    } else {
        int r = fds_available(3);
        if (r < 0) {
            free(b);
            return r;
        }
        struct event_config *cfg = event_config_new();
        if (!cfg) {
            free(b);
            return -ENOMEM;
        }
        /* one thread per loop: no locks (nor libevent_pthreads) needed */
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
        b->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
        if (!b->base) {
            free(b);
            return -ENOMEM;
        }
    }
    const char *method = event_base_get_method(b->base);
    b->refuses_files = method && !strcmp(method, "epoll");
    /* without it (EMFILE...) check_fd falls back to fstat() */
    b->probe = b->refuses_files ? epoll_create1(EPOLL_CLOEXEC) : -1;
    evtimer_assign(&b->timer, b->base, timer_cb, b);
    event_assign(&b->dispatch, b->base, -1, 0, dispatch_cb, b);
    aloop__set_backend_data(loop, b);
    if (host)
        aloop__set_adopted(loop);
    return 0;
}

static void lev_fini(aloop_t *loop)
{
    struct evb *b = data(loop);
    if (!b->adopted && aloop__forked(loop)) {
        /* A forked child closing the loop it inherited: the epoll instance
         * is the parent's too.  event_reinit() gives the child its own
         * (re-adding our events to it) without touching the shared one; an
         * event whose fd the child already closed (the core's wake-up fd)
         * is deleted first -- epoll_ctl on a closed fd number fails with
         * EBADF and changes nothing, while re-adding it would make libevent
         * log a warning. */
        for (int fd = 0; fd < b->nfds; fd++) {
            struct fdw *w = b->fds[fd];
            if (w && w->mask && fcntl(fd, F_GETFD) < 0) {
                event_del(&w->ev);
                w->mask = 0;
            }
        }
        event_reinit(b->base);
    }
    /* the core removed every watcher; make sure the host holds no pointer
     * into memory we free (also active, not yet run, events) */
    for (int fd = 0; fd < b->nfds; fd++) {
        struct fdw *w = b->fds[fd];
        if (!w)
            continue;
        if (event_initialized(&w->ev)) {
            event_del(&w->ev);
            event_debug_unassign(&w->ev);
        }
        free(w);
    }
    free(b->fds);
    if (b->probe >= 0)
        close(b->probe);
    event_del(&b->timer);
    event_del(&b->dispatch);
    event_debug_unassign(&b->timer);
    event_debug_unassign(&b->dispatch);
    if (!b->adopted)
        event_base_free(b->base);
    free(b);
}

static struct fdw *fd_slot(struct evb *b, int fd)
{
    if (fd >= b->nfds) {
        int n = b->nfds ? b->nfds : 64;
        while (n <= fd) {
            if (n > (1 << 29))
                return NULL;
            n *= 2;
        }
        struct fdw **t = realloc(b->fds, (size_t)n * sizeof *t);
        if (!t)
            return NULL;
        memset(t + b->nfds, 0, (size_t)(n - b->nfds) * sizeof *t);
        b->fds = t;
        b->nfds = n;
    }
    if (!b->fds[fd])
        b->fds[fd] = calloc(1, sizeof **b->fds);
    return b->fds[fd];
}

/* What libevent would refuse, asked without it: its epoll backend logs a
 * warning to stderr on a failed epoll_ctl, and aloop prints nothing.
 *
 * On epoll the question is asked of an empty epoll instance of our own:
 * EPOLL_CTL_DEL checks the fd as ADD does -- EBADF if closed, EPERM if it
 * cannot be polled (regular files, directories, /dev/null...) -- and then
 * finds nothing to delete (ENOENT), changing nothing.  One cheap system call
 * with the kernel's own answer, where fstat() costs more and can only guess
 * from the file type.  Elsewhere (poll, select) any open fd will do. */
static int check_fd(struct evb *b, int fd)
{
    if (b->probe >= 0) {
        struct epoll_event e = { 0 };
        if (epoll_ctl(b->probe, EPOLL_CTL_DEL, fd, &e) == 0 || errno == ENOENT)
            return 0;
        return -errno;
    }
    if (b->refuses_files) {         /* no probe: guess from the type */
        struct stat st;
        if (fstat(fd, &st) < 0)
            return -errno;
        return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ? -EPERM : 0;
    }
    return fcntl(fd, F_GETFD) < 0 ? -errno : 0;
}

static int lev_modify(aloop_t *loop, int fd, unsigned oev, unsigned nev)
{
    struct evb *b = data(loop);
    struct fdw *w;
    if (oev == 0) {
        int r = check_fd(b, fd);
        if (r < 0)
            return r;
        w = fd_slot(b, fd);
        if (!w)
            return -ENOMEM;
        w->internal = b->core_fds;
    } else {
        if (fd >= b->nfds || !b->fds[fd])
            return nev ? -EINVAL : 0;
        w = b->fds[fd];
    }
    /* the events of a pending event cannot change: delete, re-assign, add */
    if (w->mask) {
        event_del(&w->ev);
        w->mask = 0;
        b->nuser -= !w->internal;
    }
    if (nev == 0)
        return 0;
    /* a change to a watched fd that was closed meanwhile: libevent would
     * warn on stderr when the event_add below fails (a new fd was checked
     * above, before its slot was made) */
    if (oev != 0) {
        int r = check_fd(b, fd);
        if (r < 0)
            return r;
    }
    short what = EV_PERSIST | ((nev & ALOOP_READABLE) ? EV_READ : 0) |
                 ((nev & ALOOP_WRITABLE) ? EV_WRITE : 0);
    event_assign(&w->ev, b->base, fd, what, io_cb, b);
    if (w->internal)
        w->ev.ev_evcallback.evcb_flags |= EVLIST_INTERNAL;
    errno = 0;
    if (event_add(&w->ev, NULL) < 0)
        return errno ? -errno : -EIO;
    w->mask = nev;
    b->nuser += !w->internal;
    return 0;
}

static int lev_wait(aloop_t *loop, int64_t timeout_ns)
{
    struct evb *b = data(loop);
    /* ONCE: return after the first round that ran callbacks (NONBLOCK alone
     * would go on polling while fds stay ready); NO_EXIT_ON_EMPTY: an
     * adopted base may hold nothing but our internal wake-up event, and a
     * waiting loop must still block on it */
    int flags = EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY | (timeout_ns == 0 ? EVLOOP_NONBLOCK : 0);
    uint64_t deadline = 0;
    int r;
    if (b->adopted) {           /* aloop_run drives the host's base itself */
        event_del(&b->timer);
        event_del(&b->dispatch);
    }
    b->in_wait = 1;
    if (timeout_ns > 0) {
        deadline = aloop__clock() + (uint64_t)timeout_ns;
        timer_arm(b, timeout_ns);
    }
    for (;;) {
        b->timed_out = b->reported = 0;
        r = event_base_loop(b->base, flags);
        if (r < 0 || timeout_ns <= 0 || b->reported || !b->timed_out)
            break;
        /* libevent's clock (CLOCK_MONOTONIC_COARSE by default) may run up
         * to a tick ahead of aloop's: never end a timed wait early */
        uint64_t now = aloop__clock();
        if (now >= deadline)
            break;
        timer_arm(b, (int64_t)(deadline - now));
    }
    if (timeout_ns > 0)
        event_del(&b->timer);
    b->in_wait = 0;
    if (b->adopted)             /* the host's next round re-arms for aloop */
        event_active(&b->dispatch, EV_TIMEOUT, 1);
    if (r < 0)                  /* adopted: called inside the host's own run */
        return b->adopted ? -EBUSY : -EIO;
    return 0;
}

/* Adopted: re-arm the host for aloop's pending work (backend.h). */
static void lev_update(aloop_t *loop)
{
    struct evb *b = data(loop);
    if (b->in_wait)
        return;
    int64_t t = aloop__prepare(loop);
    if (!aloop__alive(loop)) {
        event_del(&b->timer);
        return;
    }
    /* alive with no timer and no fd of the user's pending (signal handlers
     * only, or a thread-safe call on its way): a far timer holds the host's
     * run open, as our internal wake-up event does not */
    if (t < 0 && b->nuser == 0)
        t = KEEPALIVE_NS;
    if (t < 0) {
        event_del(&b->timer);
        return;
    }
    if (t > 0)      /* inside the host's callbacks its cached time is stale */
        event_base_update_cache_time(b->base);
    timer_arm(b, t);
}

static void *lev_native(aloop_t *loop)
{
    return data(loop)->base;
}

static const struct aloop_backend backend = {
    .abi = ALOOP__BACKEND_ABI,
    .name = "libevent",
    .features = ALOOP_BF_ADOPT,
    .probe = lev_probe,
    .init = lev_init,
    .fini = lev_fini,
    .modify = lev_modify,
    .wait = lev_wait,
    .update = lev_update,
    .native = lev_native,
};

ALOOP__EXPORT const struct aloop_backend *aloop_module_backend(void);
const struct aloop_backend *aloop_module_backend(void)
{
    return &backend;
}

int aloop_new_from_event_base(aloop_t **loop, struct event_base *base)
{
    if (!loop || !base)
        return -EINVAL;
    int r = aloop__new_with(loop, &backend, base);
    if (r == 0)
        data(*loop)->core_fds = 0;  /* from now on, fds are the user's */
    return r;
}
