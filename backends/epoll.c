/* epoll.c -- the Linux epoll backend (level-triggered).
 *
 * Removal is lazy, as in libev: when an fd loses its last watcher nothing is
 * said to the kernel.  Most such fds are closed next, and the kernel drops a
 * closed file from the interest list by itself; the others are usually
 * watched again soon, and then EPOLL_CTL_ADD finds them still registered
 * (EEXIST, the cheapest epoll_ctl there is) instead of a DEL now and a full
 * ADD later.  A registration kept this way that fires is deleted then.
 *
 * What laziness must not break: a number closed and reused for a new file,
 * while the old file lives on elsewhere (a dup, a forked child), leaves a
 * registration of the old file under that number.  Every registration
 * carries a per-number generation in the upper half of epoll_data, bumped
 * whenever a new file may be registered (ADD succeeded), so the old file's
 * events are recognised and never reported for the new one.  A registration
 * that can no longer be named (its number is closed or names another file)
 * can only be dropped by building a new epoll instance: rebuild() re-adds
 * every watched fd there and closes the old one -- rare, as libev does. */
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../core/backend.h"
#include "../core/loop.h"        /* aloop__io_ready_inline: built into libaloop */

#include <errno.h>

#define MIN_EVENTS 64
#define MAX_EVENTS 4096

/* What this backend knows of one fd number. */
struct epslot {
    uint32_t gen;       /* generation of our latest registration under it */
    uint8_t want;       /* what the core wants (ALOOP_*) */
    uint8_t emask;      /* what the latest registration asks for; 0: none */
    uint8_t unsure;     /* an older registration may survive under it */
};

struct ep {
    int fd;
    int nev;
    struct epoll_event *ev;
    struct epslot *t;
    int cap;
    int stale;          /* an unnameable registration fired: rebuild */
};

static int ep_init(aloop_t *loop, void *host)
{
    if (host)
        return -EINVAL;
    struct ep *ep = calloc(1, sizeof *ep);
    if (!ep)
        return -ENOMEM;
    ep->nev = MIN_EVENTS;
    ep->ev = malloc(MIN_EVENTS * sizeof *ep->ev);
    ep->fd = epoll_create1(EPOLL_CLOEXEC);
    if (ep->fd < 0 || !ep->ev) {
        int r = ep->fd < 0 ? -errno : -ENOMEM;
        if (ep->fd >= 0)
            close(ep->fd);
        free(ep->ev);
        free(ep);
        return r;
    }
    aloop__set_backend_data(loop, ep);
    return 0;
}

/* Only closes: a forked child's epoll fd names the parent's instance too,
 * and closing our descriptor of it changes nothing there. */
static void ep_fini(aloop_t *loop)
{
    struct ep *ep = aloop__backend_data(loop);
    close(ep->fd);
    free(ep->ev);
    free(ep->t);
    free(ep);
}

static int grow(struct ep *ep, int fd)
{
    int cap = ep->cap ? ep->cap : 64;
    while (cap <= fd) {
        if (cap > (1 << 29))
            return -EBADF;
        cap *= 2;
    }
    struct epslot *t = realloc(ep->t, (size_t)cap * sizeof *t);
    if (!t)
        return -ENOMEM;
    memset(t + ep->cap, 0, (size_t)(cap - ep->cap) * sizeof *t);
    ep->t = t;
    ep->cap = cap;
    return 0;
}

static int ctl(int epfd, int op, int fd, unsigned ev, uint32_t gen)
{
    struct epoll_event e;
    e.events = ((ev & ALOOP_READABLE) ? EPOLLIN : 0) | ((ev & ALOOP_WRITABLE) ? EPOLLOUT : 0);
    e.data.u64 = (uint64_t)gen << 32 | (uint32_t)fd;
    return epoll_ctl(epfd, op, fd, &e) < 0 ? -errno : 0;
}

/* Register fd anew for s->want (the number may name a new file). */
static int add(struct ep *ep, int fd, struct epslot *s)
{
    int r = ctl(ep->fd, EPOLL_CTL_ADD, fd, s->want, s->gen + 1);
    if (r == 0) {
        /* a registration of the file the number named before, if any, is
         * gone with it -- or lives on with its file elsewhere */
        if (s->emask)
            s->unsure = 1;
        s->gen++;
        s->emask = s->want;
        return 0;
    }
    if (r != -EEXIST)
        return r;
    /* this file is registered under this number already: the one we kept
     * lazily, asking for emask -- unless an older one may survive, whose
     * mask and generation are unknown */
    if (s->emask == s->want && !s->unsure)
        return 0;
    r = ctl(ep->fd, EPOLL_CTL_MOD, fd, s->want, s->gen);
    if (r == 0)
        s->emask = s->want;
    return r;
}

static int ep_modify(aloop_t *loop, int fd, unsigned oev, unsigned nev)
{
    struct ep *ep = aloop__backend_data(loop);
    if (fd >= ep->cap) {
        if (nev == 0)
            return 0;
        int r = grow(ep, fd);
        if (r < 0)
            return r;
    }
    struct epslot *s = &ep->t[fd];
    s->want = (uint8_t)nev;
    if (nev == 0)
        return 0;                   /* lazily: see above */
    int r;
    if (oev == 0 || s->emask == 0) {
        r = add(ep, fd, s);
    } else if (s->emask == nev) {
        return 0;
    } else {
        r = ctl(ep->fd, EPOLL_CTL_MOD, fd, nev, s->gen);
        if (r == 0)
            s->emask = (uint8_t)nev;
        else if (r == -ENOENT)      /* closed and reused while watched */
            r = add(ep, fd, s);
    }
    /* on failure the core forgets the fd: so do we (what stays registered
     * is deleted when it fires) */
    if (r < 0)
        s->want = 0;
    return r;
}

/* Drop every registration, lost or not: a new instance gets the watched
 * fds only.  An fd closed while watched fails to come back, and stays silent
 * until the core says something new about it (as the kernel had it). */
static void rebuild(struct ep *ep)
{
    int nfd = epoll_create1(EPOLL_CLOEXEC);
    if (nfd < 0)
        return;                     /* EMFILE...: try again next time */
    for (int fd = 0; fd < ep->cap; fd++) {
        struct epslot *s = &ep->t[fd];
        s->unsure = 0;
        s->emask = 0;
        if (s->want && ctl(nfd, EPOLL_CTL_ADD, fd, s->want, ++s->gen) == 0)
            s->emask = s->want;
    }
    close(ep->fd);
    ep->fd = nfd;
    ep->stale = 0;
}

/* An event the core does not want: a registration kept lazily fired, or
 * one of an older file under the number. */
static void unwanted(struct ep *ep, int fd, struct epslot *s)
{
    if (s->emask && ctl(ep->fd, EPOLL_CTL_DEL, fd, 0, 0) == 0) {
        s->emask = 0;
        return;
    }
    ep->stale = 1;
}

static int ep_wait(aloop_t *loop, int64_t timeout_ns)
{
    struct ep *ep = aloop__backend_data(loop);
    int ms;
    if (timeout_ns < 0)
        ms = -1;
    else if (timeout_ns >= (int64_t)INT32_MAX * 1000000)
        ms = INT32_MAX;
    else    /* round up: waking early only costs another iteration */
        ms = (int)((timeout_ns + 999999) / 1000000);
    int n = epoll_wait(ep->fd, ep->ev, ep->nev, ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    struct epslot *t = ep->t;
    for (int i = 0; i < n; i++) {
        uint64_t d = ep->ev[i].data.u64;
        int fd = (int)(uint32_t)d;
        struct epslot *s = &t[fd];      /* registered, so within the table */
        if (__builtin_expect(s->gen != (uint32_t)(d >> 32), 0)) {
            ep->stale = 1;              /* an older file's registration */
            continue;
        }
        uint32_t e = ep->ev[i].events;
        unsigned ev = 0;
        if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
            ev |= ALOOP_READABLE;
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            ev |= ALOOP_WRITABLE;
        if (__builtin_expect(s->want == 0, 0)) {
            unwanted(ep, fd, s);
            continue;
        }
        aloop__io_ready_inline(loop, fd, ev);
    }
    if (__builtin_expect(ep->stale, 0))
        rebuild(ep);
    /* a full buffer means more may be ready: grow for the next wait */
    if (n == ep->nev && ep->nev < MAX_EVENTS) {
        struct epoll_event *bigger = realloc(ep->ev, 2 * (size_t)ep->nev * sizeof *bigger);
        if (bigger) {
            ep->ev = bigger;
            ep->nev *= 2;
        }
    }
    return 0;
}

const struct aloop_backend aloop_backend_epoll = {
    .abi = ALOOP__BACKEND_ABI,
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .modify = ep_modify,
    .wait = ep_wait,
};
