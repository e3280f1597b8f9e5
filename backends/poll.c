/* poll.c -- the portable poll(2) backend.
 *
 * The watched fds live in one dense pollfd array, handed to poll() as is; an
 * fd -> index map makes every change O(1) (removal swaps the last entry in).
 * An fd closed while watched makes poll() report POLLNVAL on every call; it
 * is parked as ~fd (poll ignores negative fds), so it stops firing, as on
 * epoll, yet keeps its entry for the core's later removal or re-arming. */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>

#include "../core/backend.h"
#include "../core/loop.h"        /* aloop__io_ready_inline: built into libaloop */

#include <errno.h>

#define MIN_FDS 64

struct pl {
    struct pollfd *pfd;
    int n, cap;
    int *idx;               /* fd -> index in pfd, -1 if not watched */
    int nidx;
};

/* The fd of an entry, parked or not. */
static inline int entry_fd(const struct pollfd *p)
{
    return p->fd < 0 ? ~p->fd : p->fd;
}

static int pl_init(aloop_t *loop, void *host)
{
    if (host)
        return -EINVAL;
    struct pl *pl = calloc(1, sizeof *pl);
    if (!pl)
        return -ENOMEM;
    aloop__set_backend_data(loop, pl);
    return 0;
}

static void pl_fini(aloop_t *loop)
{
    struct pl *pl = aloop__backend_data(loop);
    free(pl->pfd);
    free(pl->idx);
    free(pl);
}

/* Make room for fd in the map and for one more entry; nothing changes on
 * failure. */
static int reserve(struct pl *pl, int fd)
{
    if (fd >= pl->nidx) {
        int n = pl->nidx ? pl->nidx : MIN_FDS;
        while (n <= fd) {
            if (n > INT_MAX / 2)
                return -EBADF;
            n *= 2;
        }
        int *idx = realloc(pl->idx, (size_t)n * sizeof *idx);
        if (!idx)
            return -ENOMEM;
        for (int i = pl->nidx; i < n; i++)
            idx[i] = -1;
        pl->idx = idx;
        pl->nidx = n;
    }
    if (pl->n == pl->cap) {
        int cap = pl->cap ? pl->cap * 2 : MIN_FDS;
        struct pollfd *p = realloc(pl->pfd, (size_t)cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        pl->pfd = p;
        pl->cap = cap;
    }
    return 0;
}

static int pl_modify(aloop_t *loop, int fd, unsigned oev, unsigned nev)
{
    struct pl *pl = aloop__backend_data(loop);
    if (fd < 0)
        return -EBADF;
    /* poll() takes any number and reports a closed one only as POLLNVAL
     * later: check now, so the caller of add_reader gets -EBADF as on epoll */
    if (oev == 0 && fcntl(fd, F_GETFD) < 0 && errno == EBADF)
        return -EBADF;
    int i = fd < pl->nidx ? pl->idx[fd] : -1;
    if (nev == 0) {
        if (i < 0)
            return 0;
        struct pollfd *last = &pl->pfd[--pl->n];
        if (i != pl->n) {
            pl->pfd[i] = *last;
            pl->idx[entry_fd(last)] = i;
        }
        pl->idx[fd] = -1;
        return 0;
    }
    if (i < 0) {
        int r = reserve(pl, fd);
        if (r < 0)
            return r;
        i = pl->n++;
        pl->idx[fd] = i;
    }
    struct pollfd *p = &pl->pfd[i];
    p->fd = fd;             /* also re-arms a parked entry */
    p->events = (short)(((nev & ALOOP_READABLE) ? POLLIN : 0) |
                        ((nev & ALOOP_WRITABLE) ? POLLOUT : 0));
    p->revents = 0;
    return 0;
}

static int pl_wait(aloop_t *loop, int64_t timeout_ns)
{
    struct pl *pl = aloop__backend_data(loop);
    int ms;
    if (timeout_ns < 0)
        ms = -1;
    else if (timeout_ns >= (int64_t)INT_MAX * 1000000)
        ms = INT_MAX;
    else    /* round up: waking early only costs another iteration */
        ms = (int)((timeout_ns + 999999) / 1000000);
    /* aloop__io_ready() only queues, never modifies: the array stays put */
    int nfds = pl->n;
    int n = poll(pl->pfd, (nfds_t)nfds, ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < nfds && n > 0; i++) {
        struct pollfd *p = &pl->pfd[i];
        short re = p->revents;
        if (!re)
            continue;
        n--;
        if (re & POLLNVAL) {
            p->fd = ~p->fd;
            continue;
        }
        unsigned ev = 0;
        if (re & (POLLIN | POLLHUP | POLLERR))
            ev |= ALOOP_READABLE;
        if (re & (POLLOUT | POLLHUP | POLLERR))
            ev |= ALOOP_WRITABLE;
        aloop__io_ready_inline(loop, p->fd, ev);
    }
    return 0;
}

const struct aloop_backend aloop_backend_poll = {
    .abi = ALOOP__BACKEND_ABI,
    .name = "poll",
    .init = pl_init,
    .fini = pl_fini,
    .modify = pl_modify,
    .wait = pl_wait,
};
