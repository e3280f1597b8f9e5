/* server.c -- listening sockets that accept on the loop and run each client
 * in a task of its own.
 *
 * Accepting is a plain reader callback, not a task: it costs no stack while
 * idle, and aloop_server_close() needs nothing but removing it.  When
 * accept() fails for want of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) the
 * level-triggered reader would fire again at once and spin: instead the
 * readers are removed and a timer puts them back BACKOFF_NS later, while
 * the clients already accepted go on being served.  The pending
 * connections wait in the kernel's backlog and are accepted once fds are
 * free again (nothing is dropped, unlike the reserve-fd trick). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aloop.h"
#include "aloop-stream.h"
#include "aloop-task.h"
#include "stream.h"

#define MAX_LISTEN 8
#define ACCEPTS_PER_CALL 64     /* then let the loop run other work */
#define BACKOFF_NS (100 * ALOOP_MS)

struct aloop_server {
    aloop_t *loop;
    int fds[MAX_LISTEN];
    int nfds;
    int port;
    aloop_client_fn on_client;
    void *arg;
    aloop_id_t backoff;         /* the timer that resumes accepting, or 0 */
};

static void on_accept(aloop_t *loop, int fd, unsigned events, void *arg);

static void *client_main(void *arg)
{
    aloop_stream_t *s = arg;
    s->on_client(s, s->arg);
    if (!s->closed)
        aloop_stream_close(s);
    aloop__stream_free(s);
    return NULL;
}

static void resume_accepting(aloop_t *loop, void *arg)
{
    aloop_server_t *srv = arg;
    srv->backoff = 0;
    for (int i = 0; i < srv->nfds; i++)
        aloop_add_reader(loop, srv->fds[i], on_accept, srv);
}

static void pause_accepting(aloop_server_t *srv)
{
    aloop_id_t id = aloop_call_later(srv->loop, BACKOFF_NS, resume_accepting, srv);
    if (id < 0)
        return;         /* no memory for the timer: keep accepting */
    srv->backoff = id;
    for (int i = 0; i < srv->nfds; i++)
        aloop_remove_reader(srv->loop, srv->fds[i]);
}

static void on_accept(aloop_t *loop, int fd, unsigned events, void *arg)
{
    aloop_server_t *srv = arg;
    (void)events;
    for (int i = 0; i < ACCEPTS_PER_CALL; i++) {
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            switch (errno) {
            case EINTR:
            case ECONNABORTED:      /* that client is gone; the next one */
            case EPROTO:
            case EPERM:
                continue;
            case EAGAIN:
#if EWOULDBLOCK != EAGAIN
            case EWOULDBLOCK:
#endif
                return;
            default:                /* EMFILE, ENFILE, ENOBUFS, ENOMEM, ... */
                pause_accepting(srv);
                return;
            }
        }
        aloop_stream_t *s = aloop__stream_new(loop, c);
        if (!s) {
            close(c);
            pause_accepting(srv);
            return;
        }
        s->server = 1;
        s->on_client = srv->on_client;
        s->arg = srv->arg;
        if (aloop_spawn(loop, NULL, client_main, s) < 0) {
            aloop__stream_free(s);
            pause_accepting(srv);
            return;
        }
    }
}

static int sockaddr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

static void set_port(struct aloop__addr *a, int port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
    else if (a->ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
}

static int listen_one(const struct aloop__addr *a, int *out, int *port)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a->ss.ss_family == AF_INET6)    /* so that :: and 0.0.0.0 both bind */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, SOMAXCONN) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *port = sockaddr_port(&ss);
    *out = fd;
    return 0;
}

int aloop_start_server(aloop_t *loop, aloop_server_t **srvp, const char *host, const char *port,
                       aloop_client_fn on_client, void *arg)
{
    if (!loop || !srvp || !on_client)
        return -EINVAL;
    *srvp = NULL;
    struct aloop__addr addrs[MAX_LISTEN];
    int n = aloop__stream_resolve(host, port, 1, addrs, MAX_LISTEN);
    if (n < 0)
        return n;
    aloop_server_t *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -ENOMEM;
    srv->loop = loop;
    srv->on_client = on_client;
    srv->arg = arg;
    int err = 0;
    for (int i = 0; i < n; i++) {
        int fd = -1, p = 0;
        if (srv->port)          /* port "0": every address on the port picked first */
            set_port(&addrs[i], srv->port);
        int r = listen_one(&addrs[i], &fd, &p);
        if (r == 0 && (r = aloop_add_reader(loop, fd, on_accept, srv)) < 0)
            close(fd);
        if (r < 0) {
            err = r;
            /* a host of several addresses (every interface, localhost)
             * listens on those this machine has */
            if (n > 1 && (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL))
                continue;
            break;
        }
        srv->fds[srv->nfds++] = fd;
        if (!srv->port)
            srv->port = p;
    }
    if (err < 0 && (srv->nfds == 0 || (err != -EAFNOSUPPORT && err != -EADDRNOTAVAIL))) {
        for (int i = 0; i < srv->nfds; i++)
            aloop_fd_close(loop, srv->fds[i]);
        free(srv);
        return err;
    }
    *srvp = srv;
    return 0;
}

int aloop_server_port(const aloop_server_t *srv)
{
    return srv ? srv->port : -EINVAL;
}

int aloop_server_close(aloop_server_t *srv)
{
    if (!srv)
        return -EINVAL;
    if (srv->backoff > 0)
        aloop_cancel(srv->loop, srv->backoff);
    for (int i = 0; i < srv->nfds; i++)
        aloop_fd_close(srv->loop, srv->fds[i]);
    free(srv);
    return 0;
}
