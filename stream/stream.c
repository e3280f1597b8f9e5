/* stream.c -- buffered TCP streams on tasks: reading, writing, connecting.
 *
 * Reads wait on a parked reader (task/park.h): it stays registered between
 * reads, so a request/response round costs no watcher system calls.  Writes send at once; what the
 * socket does not take goes to wbuf, which a plain writer callback
 * (on_writable) sends in the background.  A task that must wait for
 * writability (drain, close) takes the fd's writer slot over from that
 * callback for the time of its wait: aloop_wait_fd() would refuse a slot in
 * use, and adding the callback back while a task waits would steal its
 * wake-up (waiting_w guards that). */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aloop.h"
#include "aloop-stream.h"
#include "aloop-task.h"
#include "stream.h"
#include "../task/task.h"       /* aloop__tls: the running task, without a call */

/* ---- resolving, without ever blocking ----------------------------------------- */

static int gai_errno(int e)
{
    switch (e) {
    case EAI_NONAME: return -ENOTSUP;   /* not numeric: it would need DNS */
    case EAI_FAMILY: return -EAFNOSUPPORT;
    case EAI_MEMORY: return -ENOMEM;
    case EAI_SYSTEM: return errno ? -errno : -EINVAL;
    default: return -EINVAL;
    }
}

static int resolve_one(const char *host, const char *port, int flags, struct aloop__addr *out,
                       int n, int max)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | flags;
    int e = getaddrinfo(host, port, &hints, &res);
    if (e)
        return gai_errno(e);
    for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof out[n].ss)
            continue;
        memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
        out[n].len = ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(res);
    return n;
}

int aloop__stream_resolve(const char *host, const char *port, int passive,
                          struct aloop__addr *out, int max)
{
    if (!port || !*port || strlen(port) > 5)
        return -EINVAL;
    for (const char *p = port; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
    if (atoi(port) > 65535)
        return -EINVAL;
    if (!host || !*host) {
        if (!passive)
            return -EINVAL;
        return resolve_one(NULL, port, AI_PASSIVE, out, 0, max);
    }
    if (!strcasecmp(host, "localhost")) {
        int n = resolve_one("127.0.0.1", port, 0, out, 0, max);
        if (n < 0)
            return n;
        int n6 = resolve_one("::1", port, 0, out, n, max);
        return n6 < 0 ? n : n6;
    }
    int n = resolve_one(host, port, 0, out, 0, max);
    return n == 0 ? -EINVAL : n;
}

/* ---- life ---------------------------------------------------------------------- */

aloop_stream_t *aloop__stream_new(aloop_t *loop, int fd)
{
    aloop_stream_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->fd = fd;
    s->rpark.loop = loop;
    s->rpark.fd = fd;
    s->limit = ALOOP_STREAM_LIMIT;
    s->high_water = ALOOP_STREAM_HIGH_WATER;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return s;
}

void aloop__stream_free(aloop_stream_t *s)
{
    if (s->fd >= 0)
        aloop_fd_close(s->loop, s->fd);     /* also drops the background writer */
    aloop__buf_free(&s->rbuf);
    aloop__buf_free(&s->wbuf);
    free(s);
}

/* The checks every waiting call makes first. */
static inline int usable(const aloop_stream_t *s)
{
    if (unlikely(!s))
        return -EINVAL;
    if (unlikely(!aloop__tls.task))
        return -EPERM;
    if (unlikely(s->fd < 0))
        return -EBADF;
    return 0;
}

/* ---- reading --------------------------------------------------------------------- */

/* Receive more into rbuf, waiting for it: the bytes received, 0 at end of
 * file, -ENOBUFS when rbuf holds `limit` bytes, or an error. */
static ssize_t fill(aloop_stream_t *s)
{
    if (s->eof)
        return 0;
    long room = aloop__buf_reserve(&s->rbuf, 2048, s->limit);
    if (room < 0)
        return room;
    if (room == 0)
        return -ENOBUFS;
    for (;;) {
        if (s->drained) {       /* the last read was short: wait, then read */
            int r = aloop__park_wait(&s->rpark);
            if (r < 0)
                return r;
            s->drained = 0;
        }
        ssize_t n = recv(s->fd, s->rbuf.data + s->rbuf.end, (size_t)room, 0);
        if (n > 0) {
            s->rbuf.end += (size_t)n;
            s->drained = n < room;
            return n;
        }
        if (n == 0) {
            s->eof = 1;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int r = aloop__park_wait(&s->rpark);
        if (r < 0)
            return r;
    }
}

/* recv straight into the caller's buffer (rbuf is empty), waiting for data. */
static ssize_t recv_direct(aloop_stream_t *s, void *buf, size_t cap)
{
    for (;;) {
        if (s->drained) {
            int r = aloop__park_wait(&s->rpark);
            if (r < 0)
                return r;
            s->drained = 0;
        }
        ssize_t n = recv(s->fd, buf, cap, 0);
        if (n > 0) {
            s->drained = (size_t)n < cap;
            return n;
        }
        if (n == 0) {
            s->eof = 1;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int r = aloop__park_wait(&s->rpark);
        if (r < 0)
            return r;
    }
}

ssize_t aloop_stream_read(aloop_stream_t *s, void *buf, size_t cap)
{
    int r = usable(s);
    if (r)
        return r;
    if (!buf && cap)
        return -EINVAL;
    if (cap == 0)
        return 0;
    size_t have = aloop__buf_len(&s->rbuf);
    if (have) {
        size_t n = have < cap ? have : cap;
        memcpy(buf, s->rbuf.data + s->rbuf.start, n);
        aloop__buf_consume(&s->rbuf, n);
        return (ssize_t)n;
    }
    if (s->eof)
        return 0;
    return recv_direct(s, buf, cap);
}

/* Hand out rbuf's bytes from p (its start) through the '\n' at nl. */
static inline ssize_t take_line(aloop_stream_t *s, char *buf, const char *p, const char *nl)
{
    size_t n = (size_t)(nl - p) + 1;
    memcpy(buf, p, n);
    aloop__buf_consume(&s->rbuf, n);
    return (ssize_t)n;
}

/* The line not yet in rbuf: receive until it is, or the limit, EOF or an
 * error; `scanned` bytes of rbuf are known to hold no '\n'. */
static __attribute__((noinline)) ssize_t readline_wait(aloop_stream_t *s, char *buf, size_t max,
                                                       size_t scanned)
{
    for (;;) {
        size_t have = aloop__buf_len(&s->rbuf);
        if (have >= max)
            return -ENOBUFS;    /* left in the buffer: aloop_stream_read() gets it */
        char *p = s->rbuf.data ? s->rbuf.data + s->rbuf.start : NULL;
        if (s->eof) {
            if (have)
                memcpy(buf, p, have);
            aloop__buf_consume(&s->rbuf, have);
            return (ssize_t)have;
        }
        ssize_t f = fill(s);
        if (f < 0)
            return f;
        have = aloop__buf_len(&s->rbuf);
        size_t upto = have < max ? have : max;
        p = s->rbuf.data + s->rbuf.start;
        if (scanned < upto) {
            char *nl = memchr(p + scanned, '\n', upto - scanned);
            if (nl)
                return take_line(s, buf, p, nl);
            scanned = upto;
        }
    }
}

ssize_t aloop_stream_readline(aloop_stream_t *s, char *buf, size_t cap)
{
    int r = usable(s);
    if (r)
        return r;
    if (unlikely(!buf || !cap))
        return -EINVAL;
    size_t max = cap < s->limit ? cap : s->limit;
    size_t have = aloop__buf_len(&s->rbuf), upto = 0;
    if (have) {                 /* the common case: the line is buffered already */
        char *p = s->rbuf.data + s->rbuf.start;
        upto = have < max ? have : max;
        char *nl = memchr(p, '\n', upto);
        if (nl)
            return take_line(s, buf, p, nl);
    }
    return readline_wait(s, buf, max, upto);
}

ssize_t aloop_stream_readexactly(aloop_stream_t *s, void *buf, size_t n)
{
    int r = usable(s);
    if (r)
        return r;
    s->partial = 0;
    if (!buf && n)
        return -EINVAL;
    char *out = buf;
    size_t have = aloop__buf_len(&s->rbuf);
    size_t got = have < n ? have : n;
    if (got) {
        memcpy(out, s->rbuf.data + s->rbuf.start, got);
        aloop__buf_consume(&s->rbuf, got);
    }
    while (got < n && !s->eof) {
        ssize_t k = recv_direct(s, out + got, n - got);
        if (k < 0) {
            /* Cancelled or failed: give the bytes back (rbuf is empty
             * here), so that nothing read is lost. */
            if (got && aloop__buf_append(&s->rbuf, out, got) < 0)
                s->partial = got;
            return k;
        }
        got += (size_t)k;
    }
    if (got < n) {
        s->partial = got;
        return -ENODATA;
    }
    return (ssize_t)n;
}

size_t aloop_stream_partial(const aloop_stream_t *s)
{
    return s ? s->partial : 0;
}

int aloop_stream_set_limit(aloop_stream_t *s, size_t limit)
{
    if (!s || !limit || limit < aloop__buf_len(&s->rbuf))
        return -EINVAL;
    s->limit = limit;
    return 0;
}

/* ---- writing --------------------------------------------------------------------- */

/* Send as much of p as the socket takes now: the count, or the (sticky)
 * error that ends the connection. */
static ssize_t send_now(aloop_stream_t *s, const char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(s->fd, p + off, len - off, MSG_NOSIGNAL);
        if (n >= 0) {
            off += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        s->werr = -errno;
        aloop__buf_consume(&s->wbuf, aloop__buf_len(&s->wbuf));     /* lost */
        return s->werr;
    }
    return (ssize_t)off;
}

static int flush(aloop_stream_t *s)
{
    size_t len = aloop__buf_len(&s->wbuf);
    if (!len)
        return 0;
    ssize_t n = send_now(s, s->wbuf.data + s->wbuf.start, len);
    if (n < 0)
        return (int)n;
    aloop__buf_consume(&s->wbuf, (size_t)n);
    return 0;
}

static void on_writable(aloop_t *loop, int fd, unsigned events, void *arg)
{
    aloop_stream_t *s = arg;
    (void)events;
    flush(s);
    if (!aloop__buf_len(&s->wbuf) || s->werr) {
        aloop_remove_writer(loop, fd);
        s->flushing = 0;
    }
}

static void start_flushing(aloop_stream_t *s)
{
    if (s->flushing || s->waiting_w || s->werr || !aloop__buf_len(&s->wbuf))
        return;
    if (aloop_add_writer(s->loop, s->fd, on_writable, s) == 0)
        s->flushing = 1;
}

/* Wait (in a task) until the socket is writable, with the writer slot taken
 * from the background callback for the time of the wait. */
static int wait_writable(aloop_stream_t *s)
{
    if (s->flushing) {
        aloop_remove_writer(s->loop, s->fd);
        s->flushing = 0;
    }
    s->waiting_w = 1;
    int r = aloop_wait_fd(s->fd, ALOOP_WRITABLE, 0);
    s->waiting_w = 0;
    return r < 0 ? r : 0;
}

/* What the direct send of aloop_stream_write() left: `sent` is what its first
 * send() returned (-1 with errno set, or a count short of len). */
static __attribute__((noinline)) int write_rest(aloop_stream_t *s, const char *p, size_t len,
                                                ssize_t sent)
{
    int direct = !aloop__buf_len(&s->wbuf);
    if (sent > 0) {
        p += sent;
        len -= (size_t)sent;
    } else if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            direct = 0;                 /* the socket is full: queue it all */
        else if (errno != EINTR)
            return s->werr = -errno;    /* nothing was queued (wbuf is empty) */
    }
    if (direct) {                       /* nothing queued: go on sending directly */
        ssize_t n = send_now(s, p, len);
        if (n < 0)
            return (int)n;
        p += n;
        len -= (size_t)n;
        if (!len)
            return 0;
    }
    int r = aloop__buf_append(&s->wbuf, p, len);
    if (r < 0)
        return r;
    start_flushing(s);
    return 0;
}

int aloop_stream_write(aloop_stream_t *s, const void *buf, size_t len)
{
    int r = usable(s);
    if (r)
        return r;
    if (unlikely(!buf && len))
        return -EINVAL;
    if (unlikely(s->werr))
        return s->werr;
    if (!len)
        return 0;
    ssize_t n = 0;
    if (likely(!aloop__buf_len(&s->wbuf))) {    /* nothing queued: send directly */
        n = send(s->fd, buf, len, MSG_NOSIGNAL);
        if (likely(n == (ssize_t)len))
            return 0;
        /* short, or failed: write_rest() goes on after a short send or
         * EINTR, queues on EAGAIN and keeps any other error, as send_now() */
    }
    return write_rest(s, buf, len, n);
}

/* The part of aloop_stream_drain() that may wait. */
static __attribute__((noinline)) int drain_wait(aloop_stream_t *s)
{
    int r = 0;
    while (!s->werr && aloop__buf_len(&s->wbuf) > s->high_water) {
        if ((r = flush(s)) < 0)
            break;
        if (aloop__buf_len(&s->wbuf) <= s->high_water)
            break;
        if ((r = wait_writable(s)) < 0)
            break;
    }
    start_flushing(s);
    if (s->werr)
        return s->werr;
    return r < 0 ? r : 0;
}

int aloop_stream_drain(aloop_stream_t *s)
{
    int r = usable(s);
    if (r)
        return r;
    if (!aloop__buf_len(&s->wbuf))     /* all sent: nothing to wait for or flush */
        return s->werr;
    return drain_wait(s);
}

int aloop_stream_set_high_water(aloop_stream_t *s, size_t bytes)
{
    if (!s)
        return -EINVAL;
    s->high_water = bytes;
    return 0;
}

size_t aloop_stream_buffered(const aloop_stream_t *s)
{
    return s ? aloop__buf_len(&s->wbuf) : 0;
}

int aloop_stream_close(aloop_stream_t *s)
{
    int r = usable(s);
    if (r)
        return r;
    while (!s->werr && aloop__buf_len(&s->wbuf)) {
        if ((r = flush(s)) < 0 || !aloop__buf_len(&s->wbuf))
            break;
        if ((r = wait_writable(s)) < 0)
            break;
    }
    if (s->werr)
        r = s->werr;
    s->closed = 1;
    s->flushing = 0;
    aloop_fd_close(s->loop, s->fd);     /* also unparks the reader */
    s->fd = -1;
    s->rpark.fd = -1;
    if (s->server) {        /* freed by its task when on_client returns */
        aloop__buf_free(&s->rbuf);
        aloop__buf_free(&s->wbuf);
    } else {
        aloop__stream_free(s);
    }
    return r < 0 ? r : 0;
}

/* ---- connecting ------------------------------------------------------------------ */

static int connect_one(aloop_t *loop, const struct aloop__addr *a, int *out)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            int e = -errno;
            close(fd);
            return e;
        }
        int r = aloop_wait_fd(fd, ALOOP_WRITABLE, 0);
        if (r < 0) {
            aloop_fd_close(loop, fd);
            return r;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr) {
            aloop_fd_close(loop, fd);
            return -soerr;
        }
    }
    *out = fd;
    return 0;
}

int aloop_open_connection(aloop_stream_t **s, const char *host, const char *port)
{
    if (!s)
        return -EINVAL;
    *s = NULL;
    aloop_task_t *t = aloop_current_task();
    if (!t)
        return -EPERM;
    if (!host || !*host)
        return -EINVAL;
    struct aloop__addr addrs[8];
    int n = aloop__stream_resolve(host, port, 0, addrs, 8);
    if (n < 0)
        return n;
    aloop_t *loop = aloop_task_loop(t);
    int err = -ECONNREFUSED;
    for (int i = 0; i < n; i++) {
        int fd = -1;
        err = connect_one(loop, &addrs[i], &fd);
        if (err == -ECANCELED)
            return err;
        if (err < 0)
            continue;
        aloop_stream_t *st = aloop__stream_new(loop, fd);
        if (!st) {
            close(fd);
            return -ENOMEM;
        }
        *s = st;
        return 0;
    }
    return err;
}
