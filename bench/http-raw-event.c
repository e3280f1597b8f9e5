/* http-raw-event -- the HTTP hello server of examples/http-hello.c written
 * directly on libevent (persistent events on non-blocking sockets, no
 * bufferevents), for bench/http-bench.sh.   ./bench/http-raw-event [PORT [HOST]] */
#include <event2/event.h>

#include "http-raw.h"

struct conn {
    struct event *r, *w;
    int fd;
    struct http_conn h;
};

static void conn_close(struct conn *c)
{
    event_free(c->r);
    event_free(c->w);
    close(c->fd);
    free(c->h.out);
    free(c);
}

static void conn_send(struct conn *c)
{
    int r = http_flush(c->fd, &c->h);
    if (r < 0 || (r == 1 && c->h.closing)) {
        conn_close(c);
    } else if (r == 0) {
        event_del(c->r);
        event_add(c->w, NULL);
    } else if (!event_pending(c->r, EV_READ, NULL)) {
        event_del(c->w);
        event_add(c->r, NULL);
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)what;
    if (!http_on_readable(fd, &c->h))
        conn_close(c);
    else if (c->h.outlen)
        conn_send(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_send(arg);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct event_base *base = arg;
    (void)what;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        http_nodelay(fd);
        struct conn *c = calloc(1, sizeof *c);
        c->fd = fd;
        c->r = event_new(base, fd, EV_READ | EV_PERSIST, on_read, c);
        c->w = event_new(base, fd, EV_WRITE | EV_PERSIST, on_write, c);
        event_add(c->r, NULL);
    }
}

int main(int argc, char **argv)
{
    const char *port = argc > 1 ? argv[1] : "8080", *host = argc > 2 ? argv[2] : "127.0.0.1";
    struct event_base *base = event_base_new();
    int fd = http_listen(host, port);
    struct event *lev = event_new(base, fd, EV_READ | EV_PERSIST, on_accept, base);
    event_add(lev, NULL);
    printf("http-raw-event: libevent (%s), listening on http://%s:%d/\n",
           event_base_get_method(base), host, http_port(fd));
    fflush(stdout);
    event_base_dispatch(base);
    return 0;
}
