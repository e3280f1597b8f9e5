/* epoll.c -- the Linux epoll backend (level-triggered). */
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../core/backend.h"

#include <errno.h>

#define MIN_EVENTS 64
#define MAX_EVENTS 4096

struct ep {
    int fd;
    int nev;
    struct epoll_event *ev;
};

static int ep_init(aloop_t *loop, void *host)
{
    if (host)
        return -EINVAL;
    struct ep *ep = malloc(sizeof *ep);
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

static void ep_fini(aloop_t *loop)
{
    struct ep *ep = aloop__backend_data(loop);
    close(ep->fd);
    free(ep->ev);
    free(ep);
}

static int ep_modify(aloop_t *loop, int fd, unsigned oev, unsigned nev)
{
    struct ep *ep = aloop__backend_data(loop);
    struct epoll_event e = { 0 };
    e.data.fd = fd;
    e.events = ((nev & ALOOP_READABLE) ? EPOLLIN : 0) | ((nev & ALOOP_WRITABLE) ? EPOLLOUT : 0);
    if (nev == 0)
        return epoll_ctl(ep->fd, EPOLL_CTL_DEL, fd, &e) < 0 ? -errno : 0;
    int op = oev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(ep->fd, op, fd, &e) == 0)
        return 0;
    /* the kernel's view differs from ours: a closed and reused fd (MOD on
     * a number it forgot) or a dup'ed registration (ADD on one it knows) */
    if (errno == ENOENT && op == EPOLL_CTL_MOD)
        op = EPOLL_CTL_ADD;
    else if (errno == EEXIST && op == EPOLL_CTL_ADD)
        op = EPOLL_CTL_MOD;
    else
        return -errno;
    return epoll_ctl(ep->fd, op, fd, &e) < 0 ? -errno : 0;
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
    for (int i = 0; i < n; i++) {
        uint32_t e = ep->ev[i].events;
        unsigned ev = 0;
        if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
            ev |= ALOOP_READABLE;
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            ev |= ALOOP_WRITABLE;
        aloop__io_ready(loop, ep->ev[i].data.fd, ev);
    }
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
