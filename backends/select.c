/* select.c -- the select(2) backend, for fds below FD_SETSIZE only.
 *
 * select() fails the whole call with EBADF when one watched fd was closed.
 * Such fds are found and dropped from the sets, so they stop firing as on
 * epoll and the wait goes on for the others.  ->modify sets an fd's bits
 * from nev alone, so the core's later removal of a dropped fd is a no-op
 * and re-arming it adds it back: no record of dropped fds is needed. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/select.h>

#include "../core/backend.h"
#include "../core/loop.h"        /* aloop__io_ready_inline: built into libaloop */

#include <errno.h>

struct sl {
    fd_set rd, wr;          /* what is watched */
    fd_set rd_out, wr_out;  /* what select() reported */
    int maxfd;              /* highest fd in rd or wr, -1 if none */
};

static int sl_init(aloop_t *loop, void *host)
{
    if (host)
        return -EINVAL;
    struct sl *sl = malloc(sizeof *sl);
    if (!sl)
        return -ENOMEM;
    FD_ZERO(&sl->rd);
    FD_ZERO(&sl->wr);
    sl->maxfd = -1;
    aloop__set_backend_data(loop, sl);
    return 0;
}

static void sl_fini(aloop_t *loop)
{
    free(aloop__backend_data(loop));
}

static void lower_maxfd(struct sl *sl)
{
    while (sl->maxfd >= 0 && !FD_ISSET(sl->maxfd, &sl->rd) && !FD_ISSET(sl->maxfd, &sl->wr))
        sl->maxfd--;
}

static int sl_modify(aloop_t *loop, int fd, unsigned oev, unsigned nev)
{
    struct sl *sl = aloop__backend_data(loop);
    if (fd < 0)
        return -EBADF;
    if (fd >= FD_SETSIZE)   /* an fd_set cannot hold it */
        return -EINVAL;
    if (oev == 0 && fcntl(fd, F_GETFD) < 0 && errno == EBADF)
        return -EBADF;
    if (nev & ALOOP_READABLE)
        FD_SET(fd, &sl->rd);
    else
        FD_CLR(fd, &sl->rd);
    if (nev & ALOOP_WRITABLE)
        FD_SET(fd, &sl->wr);
    else
        FD_CLR(fd, &sl->wr);
    if (nev && fd > sl->maxfd)
        sl->maxfd = fd;
    else if (!nev && fd == sl->maxfd)
        lower_maxfd(sl);
    return 0;
}

/* After EBADF: stop watching the fds that are closed; how many were. */
static int drop_closed(struct sl *sl)
{
    int found = 0;
    for (int fd = 0; fd <= sl->maxfd; fd++) {
        if (!FD_ISSET(fd, &sl->rd) && !FD_ISSET(fd, &sl->wr))
            continue;
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        FD_CLR(fd, &sl->rd);
        FD_CLR(fd, &sl->wr);
        found++;
    }
    lower_maxfd(sl);
    return found;
}

static int sl_wait(aloop_t *loop, int64_t timeout_ns)
{
    struct sl *sl = aloop__backend_data(loop);
    int n;
    for (int tries = 0;; tries++) {
        struct timeval tv, *tvp = NULL;
        if (timeout_ns >= 0) {  /* round up: waking early costs an iteration */
            int64_t us = timeout_ns / 1000 + (timeout_ns % 1000 != 0);
            tv.tv_sec = (time_t)(us / 1000000);
            tv.tv_usec = (suseconds_t)(us % 1000000);
            tvp = &tv;
        }
        sl->rd_out = sl->rd;
        sl->wr_out = sl->wr;
        n = select(sl->maxfd + 1, &sl->rd_out, &sl->wr_out, NULL, tvp);
        if (n >= 0)
            break;
        int e = errno;
        if (e == EINTR)
            return 0;
        /* an EBADF we cannot explain would repeat on every wait */
        if (e != EBADF || !drop_closed(sl))
            return -e;
        if (tries)      /* closed again meanwhile: the next wait retries */
            return 0;
    }
    /* aloop__io_ready() only queues, never modifies: maxfd stays put */
    for (int fd = 0; fd <= sl->maxfd && n > 0; fd++) {
        unsigned ev = 0;
        if (FD_ISSET(fd, &sl->rd_out)) {
            ev |= ALOOP_READABLE;
            n--;
        }
        if (FD_ISSET(fd, &sl->wr_out)) {
            ev |= ALOOP_WRITABLE;
            n--;
        }
        if (ev)
            aloop__io_ready_inline(loop, fd, ev);
    }
    return 0;
}

const struct aloop_backend aloop_backend_select = {
    .abi = ALOOP__BACKEND_ABI,
    .name = "select",
    .init = sl_init,
    .fini = sl_fini,
    .modify = sl_modify,
    .wait = sl_wait,
};
