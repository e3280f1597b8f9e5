/* libuv.c -- the libuv backend module (libaloop-uv.so), and adoption of a
 * host's uv_loop_t (aloop_new_from_uv).
 *
 * One uv_poll_t per fd number, initialised the first time the number is
 * watched and reused until the loop closes (uv_close is asynchronous, so a
 * handle cannot be dropped and re-made cheaply).  ->wait arms one uv_timer_t
 * and runs uv_run once.  The core's wake-up is a uv_async_t (uv_async_send
 * is async-signal-safe); signals are uv_signal_t, which work on any loop and
 * share the process's handler with the host's own uv_signal_t.
 *
 * libuv quirks handled here:
 *  - uv_poll_start always removes the fd from epoll and re-adds it at the
 *    next uv_run, and libuv abort()s when that epoll_ctl fails: an fd that
 *    was closed (EBADF), or reused by a regular file (EPERM), would kill the
 *    process.  So before every start of a handle that uv_poll_init did not
 *    just check, fd_probe() asks epoll the same question first.
 *    That covers the start itself, not a close that follows it: an fd
 *    started and then closed (or its number reused by a regular file)
 *    before uv_run would abort too, so check_fresh() asks about every
 *    handle started since the last uv_run just before the next one.
 *  - uv_poll_init makes the fd non-blocking; uv_poll does not need that, and
 *    the caller's fd keeps its mode (as on every other backend).
 *  - on EPOLLERR libuv stops the handle and reports UV_EBADF once; aloop is
 *    level-triggered, so the handle is started again (after a probe) before
 *    the next poll.
 *  - stopping the last uv_signal_t of a signal sets SIG_DFL; the disposition
 *    from before aloop took the signal is put back, as the core does.
 *  - a failing uv_loop_init leaks its epoll fd; a forked child closing an
 *    inherited loop must uv_loop_fork it first, or closing the handles
 *    would remove the parent's fds from the shared epoll instance.
 *
 * Adopted host loop: a uv_prepare_t (before the host polls) flushes fd
 * changes and arms a uv_idle_t (work queued: do not block) or the
 * uv_timer_t (earliest deadline) from aloop__prepare(); a uv_check_t (after
 * the poll) runs aloop__dispatch().  Prepare, check and async are unref'd;
 * idle and timer are active only while aloop has something pending, and
 * poll and signal handles only while watching; so uv_run returns exactly
 * when the host's own work is done and aloop has nothing left. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif

#include <uv.h>

#include "../core/backend.h"
#include "aloop-uv.h"

#define NSIG_MAX 65             /* signals 1..64, as the core */

struct ufd {
    uv_poll_t h;                /* h.data: the struct ub */
    int fd;
    int ev;                     /* UV_READABLE | UV_WRITABLE wanted */
    int queued;                 /* on the re-arm list */
    int fresh;                  /* on the to-check list */
    struct ufd *next;           /* the re-arm list */
    struct ufd *fnext;          /* the to-check list */
};

struct ub {
    aloop_t *loop;
    uv_loop_t *uv;
    int adopted;
    int in_wait;                /* inside ->wait: the hooks stand aside */
    int in_host;                /* adopted: between the host's prepare and check */
    int closing;
    unsigned nclosing;          /* close callbacks still to come */
    uint64_t timer_due;         /* uv time the timer was last armed for */
    uv_timer_t timer;
    uv_async_t async;
    uv_idle_t idle;
    uv_prepare_t prepare;
    uv_check_t check;
    struct ufd **fds;           /* by fd number; entries never move */
    int nfds;
    struct ufd *rearm;          /* stopped by libuv on an error */
    struct ufd *fresh;          /* started since the last uv_run */
    uv_signal_t *sig[NSIG_MAX];
    uv_loop_t own;              /* the loop of a created (not adopted) aloop */
};

/* Process-wide: how many of this module's uv_signal_t run per signal, and
 * the disposition found before the first started. */
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static int sig_users[NSIG_MAX];
static struct sigaction sig_saved[NSIG_MAX];

static void nop_timer(uv_timer_t *h) { (void)h; }
static void nop_async(uv_async_t *h) { (void)h; }
static void nop_idle(uv_idle_t *h) { (void)h; }

static uint64_t ns_to_ms(int64_t ns)
{
    uint64_t u = (uint64_t)ns;
    return u / 1000000 + (u % 1000000 != 0);    /* round up: never wake early */
}

/* Is fd something libuv may hand to epoll?  1: yes (and it is now in the
 * epoll set, which the uv_poll_start that follows clears); 0: the set
 * already holds it; -errno: no (-EBADF closed, -EPERM regular file, ...). */
static int fd_probe(struct ub *b, int fd)
{
#ifdef __linux__
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = EPOLLIN;
    e.data.fd = -1;             /* libuv skips such events */
    if (epoll_ctl(uv_backend_fd(b->uv), EPOLL_CTL_ADD, fd, &e) == 0)
        return 1;
    return errno == EEXIST ? 0 : -errno;
#else
    (void)b;
    return fcntl(fd, F_GETFD) < 0 ? -errno : 1;
#endif
}

/* ---- I/O ------------------------------------------------------------------ */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct ub *b = h->data;
    struct ufd *f = (struct ufd *)h;
    unsigned ev = 0;
    if (status < 0) {
        /* EPOLLERR: libuv stopped the handle; an error is both events */
        ev = ALOOP_READABLE | ALOOP_WRITABLE;
        if (!f->queued) {
            f->queued = 1;
            f->next = b->rearm;
            b->rearm = f;
        }
    } else {
        if (events & UV_READABLE)
            ev |= ALOOP_READABLE;
        if (events & UV_WRITABLE)
            ev |= ALOOP_WRITABLE;
    }
    if (ev)
        aloop__io_ready(b->loop, f->fd, ev);
}

/* Start again what libuv stopped on an error, unless the fd is gone. */
static void rearm_flush(struct ub *b)
{
    while (b->rearm) {
        struct ufd *f = b->rearm;
        b->rearm = f->next;
        f->queued = 0;
        if (f->ev && !uv_is_active((uv_handle_t *)&f->h) && fd_probe(b, f->fd) >= 0)
            uv_poll_start(&f->h, f->ev, on_poll);
    }
}

/* Just before uv_run: stop what was started on an fd that epoll would
 * refuse by now, closed (POLLNVAL) or reused by a file that is always
 * ready (a regular file: POLLIN and POLLOUT at once, which only then is
 * asked of epoll itself).  One poll() per batch of fds, not a system call
 * per fd.  Such an fd stops firing, as on every backend. */
#define CHECK_BATCH 256

static void check_fresh(struct ub *b)
{
    struct pollfd p[CHECK_BATCH];
    struct ufd *f[CHECK_BATCH];
    while (b->fresh) {
        int k = 0;
        while (b->fresh && k < CHECK_BATCH) {
            struct ufd *u = b->fresh;
            b->fresh = u->fnext;
            u->fresh = 0;
            if (!u->ev || !uv_is_active((uv_handle_t *)&u->h))
                continue;
            p[k].fd = u->fd;
            p[k].events = POLLIN | POLLOUT;
            p[k].revents = 0;
            f[k++] = u;
        }
        int r = k ? poll(p, (nfds_t)k, 0) : 0;
        for (int j = 0; j < k && r != 0; j++) {
            /* poll() failed (ENOMEM, more fds than RLIMIT_NOFILE), or the
             * fd looks like a regular file: ask epoll itself */
            int ask = r < 0 || (p[j].revents & (POLLIN | POLLOUT)) == (POLLIN | POLLOUT);
            if ((r > 0 && (p[j].revents & POLLNVAL)) || (ask && fd_probe(b, p[j].fd) < 0))
                uv_poll_stop(&f[j]->h);     /* f->ev stays: the user still watches */
        }
    }
}

static int fds_grow(struct ub *b, int fd)
{
    int n = b->nfds ? b->nfds : 64;
    while (n <= fd) {
        if (n > (1 << 29))
            return -EBADF;
        n *= 2;
    }
    struct ufd **t = realloc(b->fds, (size_t)n * sizeof *t);
    if (!t)
        return -ENOMEM;
    memset(t + b->nfds, 0, (size_t)(n - b->nfds) * sizeof *t);
    b->fds = t;
    b->nfds = n;
    return 0;
}

/* The first watch of an fd number: a handle for it, kept for reuse. */
static int ufd_new(struct ub *b, int fd, struct ufd **out)
{
    if (fd >= b->nfds) {
        int r = fds_grow(b, fd);
        if (r < 0)
            return r;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    struct ufd *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    int r = uv_poll_init(b->uv, &f->h, fd);
    if (r < 0) {
        free(f);
        return r;
    }
    if (!(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl);
    f->h.data = b;
    f->fd = fd;
    b->fds[fd] = f;
    *out = f;
    return 0;
}

static int ub_modify(aloop_t *loop, int fd, unsigned oev, unsigned nev)
{
    struct ub *b = aloop__backend_data(loop);
    struct ufd *f = fd < b->nfds ? b->fds[fd] : NULL;
    if (nev == 0) {
        if (f) {
            f->ev = 0;
            uv_poll_stop(&f->h);    /* its epoll_ctl(DEL) may fail: ignored */
        }
        return 0;
    }
    int uev = ((nev & ALOOP_READABLE) ? UV_READABLE : 0) |
              ((nev & ALOOP_WRITABLE) ? UV_WRITABLE : 0);
    if (!f) {
        int r = ufd_new(b, fd, &f);
        if (r < 0)
            return r;
    } else {
        int r = fd_probe(b, fd);
        /* on a new watch, a registration we do not hold is someone else's
         * (the host's): uv_poll_init would say EEXIST too */
        if (r == 0 && oev == 0 && !uv_is_active((uv_handle_t *)&f->h))
            r = -EEXIST;
        if (r < 0) {
            f->ev = 0;
            uv_poll_stop(&f->h);
            return r;
        }
    }
    f->ev = uev;
    uv_poll_start(&f->h, uev, on_poll);
    if (!f->fresh) {
        f->fresh = 1;
        f->fnext = b->fresh;
        b->fresh = f;
    }
    return 0;
}

/* ---- signals -------------------------------------------------------------- */

static void on_signal(uv_signal_t *h, int signum)
{
    struct ub *b = h->data;
    aloop__signal_ready(b->loop, signum);
}

/* libuv sets SIG_DFL when the last uv_signal_t of a signal (ours or the
 * host's) stops; then the old disposition comes back.  Between the two a
 * signal would take the default action -- for most, killing the process --
 * so the signal is blocked in this thread meanwhile: one sent to it (or
 * raised) is delivered on unblocking, to the disposition put back.  (One
 * sent to the process may still be taken by another thread that does not
 * block it; libuv has no way to hand a signal back without that window.) */
static void sig_stop(uv_signal_t *s)
{
    int signum = s->signum;
    if (!uv_is_active((uv_handle_t *)s))
        return;
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, signum);
    int masked = pthread_sigmask(SIG_BLOCK, &one, &old) == 0;
    pthread_mutex_lock(&sig_lock);
    uv_signal_stop(s);
    if (--sig_users[signum] == 0) {
        struct sigaction cur;
        if (sigaction(signum, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
            cur.sa_handler == SIG_DFL)
            sigaction(signum, &sig_saved[signum], NULL);
    }
    pthread_mutex_unlock(&sig_lock);
    if (masked)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void close_handle(struct ub *b, uv_handle_t *h);

static int ub_signal(aloop_t *loop, int signum, int on)
{
    struct ub *b = aloop__backend_data(loop);
    if (signum <= 0 || signum >= NSIG_MAX)
        return -EINVAL;
    uv_signal_t *s = b->sig[signum];
    if (!on) {
        /* a fresh handle next time: libuv would deliver a signal caught
         * before the removal to a restarted handle (found by the fuzzer,
         * tests/fuzz/regress/signal-before-readd) */
        if (s) {
            sig_stop(s);
            close_handle(b, (uv_handle_t *)s);
            b->sig[signum] = NULL;
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -ENOMEM;
        int r = uv_signal_init(b->uv, s);
        if (r < 0) {
            free(s);
            return r;
        }
        s->data = b;
        b->sig[signum] = s;
    }
    if (uv_is_active((uv_handle_t *)s))
        return 0;
    pthread_mutex_lock(&sig_lock);
    if (sig_users[signum] == 0 && sigaction(signum, NULL, &sig_saved[signum]) < 0) {
        int r = -errno;
        pthread_mutex_unlock(&sig_lock);
        return r;
    }
    int r = uv_signal_start(s, on_signal, signum);
    if (r == 0)
        sig_users[signum]++;
    pthread_mutex_unlock(&sig_lock);
    return r;
}

/* ---- waking and waiting --------------------------------------------------- */

static void ub_wakeup(aloop_t *loop)
{
    struct ub *b = aloop__backend_data(loop);
    uv_async_send(&b->async);
}

static void timer_arm(struct ub *b, int64_t ns)
{
    uv_update_time(b->uv);
    uint64_t ms = ns_to_ms(ns), due = uv_now(b->uv) + ms;
    if (uv_is_active((uv_handle_t *)&b->timer) && due == b->timer_due)
        return;
    b->timer_due = due;
    /* repeating: if the deadline's millisecond passes before uv_run polls,
     * libuv runs the timer before the poll and would then block with no
     * timer left (epoll_wait(-1)); a repeat keeps one armed */
    uv_timer_start(&b->timer, nop_timer, ms, ms);
}

static int ub_wait(aloop_t *loop, int64_t timeout_ns)
{
    struct ub *b = aloop__backend_data(loop);
    if (b->in_host)
        return -EBUSY;          /* called from inside the host's uv_run */
    b->in_wait = 1;
    rearm_flush(b);
    check_fresh(b);
    if (b->adopted)
        uv_idle_stop(&b->idle);
    /* uv_run does not even poll a loop with no referenced handle: hold one
     * while waiting, so that -1 blocks until the wake-up or an event */
    uv_ref((uv_handle_t *)&b->async);
    if (timeout_ns > 0)
        timer_arm(b, timeout_ns);
    else
        uv_timer_stop(&b->timer);
    uv_run(b->uv, timeout_ns == 0 ? UV_RUN_NOWAIT : UV_RUN_ONCE);
    uv_timer_stop(&b->timer);
    uv_unref((uv_handle_t *)&b->async);
    /* aloop_run does not tell an adopted backend when it returns: keep the
     * host going one iteration, whose prepare hook re-arms properly */
    if (b->adopted)
        uv_idle_start(&b->idle, nop_idle);
    b->in_wait = 0;
    return 0;
}

/* ---- adoption ------------------------------------------------------------- */

/* Make the host see aloop's pending work: no blocking while callbacks are
 * queued, a timer for the earliest deadline, nothing when aloop is idle. */
static void arm(struct ub *b)
{
    if (b->closing || b->in_wait)
        return;
    rearm_flush(b);
    check_fresh(b);
    int64_t t = aloop__prepare(b->loop);
    if (!aloop__alive(b->loop))
        t = -1;
    if (t == 0) {
        uv_timer_stop(&b->timer);
        uv_idle_start(&b->idle, nop_idle);
        return;
    }
    uv_idle_stop(&b->idle);
    if (t > 0)
        timer_arm(b, t);
    else
        uv_timer_stop(&b->timer);
}

static void on_prepare(uv_prepare_t *h)
{
    struct ub *b = h->data;
    if (b->in_wait)
        return;
    b->in_host = 1;
    arm(b);
}

static void on_check(uv_check_t *h)
{
    struct ub *b = h->data;
    if (b->in_wait)
        return;
    b->in_host = 0;
    aloop__dispatch(b->loop);   /* it calls ->update, which re-arms */
}

static void ub_update(aloop_t *loop)
{
    arm(aloop__backend_data(loop));
}

/* ---- life ----------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    struct ub *b = h->data;
    if (h->type == UV_POLL || h->type == UV_SIGNAL)
        free(h);
    /* an adopted host runs the last close callback; a created loop's
     * memory goes in ub_fini after uv_loop_close */
    if (--b->nclosing == 0 && b->adopted && b->closing)
        free(b);
}

static void close_handle(struct ub *b, uv_handle_t *h)
{
    if (h->type == UV_UNKNOWN_HANDLE || uv_is_closing(h))
        return;                 /* never initialised */
    h->data = b;
    b->nclosing++;
    uv_close(h, on_closed);
}

/* Close every handle; the memory goes once the close callbacks ran. */
static void teardown(struct ub *b)
{
    b->closing = 1;
    for (int s = 0; s < NSIG_MAX; s++)
        if (b->sig[s])
            sig_stop(b->sig[s]);    /* a forked child's core did not */
    for (int fd = 0; fd < b->nfds; fd++)
        if (b->fds[fd])
            close_handle(b, (uv_handle_t *)&b->fds[fd]->h);
    free(b->fds);
    b->fds = NULL;
    b->nfds = 0;
    b->rearm = NULL;
    b->fresh = NULL;
    for (int s = 0; s < NSIG_MAX; s++)
        if (b->sig[s])
            close_handle(b, (uv_handle_t *)b->sig[s]);
    close_handle(b, (uv_handle_t *)&b->timer);
    close_handle(b, (uv_handle_t *)&b->async);
    close_handle(b, (uv_handle_t *)&b->idle);
    close_handle(b, (uv_handle_t *)&b->prepare);
    close_handle(b, (uv_handle_t *)&b->check);
    if (b->adopted) {
        if (b->nclosing == 0)
            free(b);
        return;             /* the host's next uv_run finishes the closing */
    }
    uv_run(b->uv, UV_RUN_DEFAULT);      /* only closing handles are left */
    if (uv_loop_close(b->uv) == 0)
        free(b);
    /* else libuv still holds something of it: leak rather than corrupt */
}

/* A failing uv_loop_init leaves its epoll fd open (libuv's Linux
 * uv__platform_loop_delete does not close it; uv_loop_close would).  Close
 * it if it is still that epoll fd, so no failure path leaks an fd. */
static void close_leaked_backend_fd(uv_loop_t *l)
{
#ifdef __linux__
    int fd = uv_backend_fd(l);
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = fd >= 0 ? readlink(path, link, sizeof link - 1) : -1;
    if (n > 0) {
        link[n] = '\0';
        if (strcmp(link, "anon_inode:[eventpoll]") == 0)
            close(fd);
    }
#else
    (void)l;
#endif
}

static int ub_init(aloop_t *loop, void *host)
{
    struct ub *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->loop = loop;
    if (host) {
        b->uv = host;
        b->adopted = 1;
    } else {
        int r = uv_loop_init(&b->own);
        if (r < 0) {
            close_leaked_backend_fd(&b->own);
            free(b);
            return r;
        }
        b->uv = &b->own;
    }
    int r = uv_async_init(b->uv, &b->async, nop_async);
    if (r < 0) {
        teardown(b);
        return r;
    }
    uv_unref((uv_handle_t *)&b->async);
    uv_timer_init(b->uv, &b->timer);
    if (b->adopted) {
        uv_idle_init(b->uv, &b->idle);
        uv_prepare_init(b->uv, &b->prepare);
        uv_check_init(b->uv, &b->check);
        b->prepare.data = b->check.data = b;
        uv_prepare_start(&b->prepare, on_prepare);
        uv_check_start(&b->check, on_check);
        uv_unref((uv_handle_t *)&b->prepare);
        uv_unref((uv_handle_t *)&b->check);
        aloop__set_adopted(loop);
    }
    aloop__set_backend_data(loop, b);
    return 0;
}

static void ub_fini(aloop_t *loop)
{
    struct ub *b = aloop__backend_data(loop);
    /* A forked child closing the loop it inherited: the epoll instance is
     * the parent's too, and closing handles would remove the parent's fds
     * from it.  uv_loop_fork gives the child its own first.  (An adopted
     * host loop is the host's to fork, as libuv requires before any use.) */
    if (!b->adopted && aloop__forked(loop) && uv_loop_fork(b->uv) < 0) {
        free(b->fds);       /* the handles' memory stays: libuv still links them */
        aloop__set_backend_data(loop, NULL);
        return;
    }
    teardown(b);
    aloop__set_backend_data(loop, NULL);
}

static void *ub_native(aloop_t *loop)
{
    struct ub *b = aloop__backend_data(loop);
    return b ? b->uv : NULL;
}

static int ub_probe(void)
{
    uv_loop_t l;
    int r = uv_loop_init(&l);
    if (r < 0)
        return r;
    uv_loop_close(&l);
    return 0;
}

static const struct aloop_backend uv_backend = {
    .abi = ALOOP__BACKEND_ABI,
    .name = "libuv",
    .features = ALOOP_BF_WAKEUP | ALOOP_BF_SIGNAL | ALOOP_BF_ADOPT,
    .probe = ub_probe,
    .init = ub_init,
    .fini = ub_fini,
    .modify = ub_modify,
    .wait = ub_wait,
    .wakeup = ub_wakeup,
    .signal = ub_signal,
    .update = ub_update,
    .native = ub_native,
};

ALOOP__EXPORT const struct aloop_backend *aloop_module_backend(void);
const struct aloop_backend *aloop_module_backend(void)
{
    return &uv_backend;
}

int aloop_new_from_uv(aloop_t **loop, uv_loop_t *uv)
{
    if (!loop || !uv)
        return -EINVAL;
    return aloop__new_with(loop, &uv_backend, uv);
}
