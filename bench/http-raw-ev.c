/* http-raw-ev -- the HTTP hello server of examples/http-hello.c written
 * directly on libev (ev_io watchers on non-blocking sockets), for
 * bench/http-bench.sh.   ./bench/http-raw-ev [PORT [HOST]] */
#include <ev.h>

#include "http-raw.h"

struct conn {
    ev_io r, w;
    struct http_conn h;
};

static void conn_close(struct ev_loop *loop, struct conn *c)
{
    ev_io_stop(loop, &c->r);
    ev_io_stop(loop, &c->w);
    close(c->r.fd);
    free(c->h.out);
    free(c);
}

/* Send; while some is left, wait for writability and stop reading. */
static void conn_send(struct ev_loop *loop, struct conn *c)
{
    int r = http_flush(c->r.fd, &c->h);
    if (r < 0 || (r == 1 && c->h.closing)) {
        conn_close(loop, c);
    } else if (r == 0) {
        ev_io_stop(loop, &c->r);
        ev_io_start(loop, &c->w);
    } else if (!ev_is_active(&c->r)) {
        ev_io_stop(loop, &c->w);
        ev_io_start(loop, &c->r);
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)revents;
    if (!http_on_readable(w->fd, &c->h))
        conn_close(loop, c);
    else if (c->h.outlen)
        conn_send(loop, c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    conn_send(loop, w->data);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        http_nodelay(fd);
        struct conn *c = calloc(1, sizeof *c);
        ev_io_init(&c->r, on_read, fd, EV_READ);
        ev_io_init(&c->w, on_write, fd, EV_WRITE);
        c->r.data = c->w.data = c;
        ev_io_start(loop, &c->r);
    }
}

int main(int argc, char **argv)
{
    const char *port = argc > 1 ? argv[1] : "8080", *host = argc > 2 ? argv[2] : "127.0.0.1";
    struct ev_loop *loop = ev_default_loop(EVBACKEND_EPOLL);
    int fd = http_listen(host, port);
    ev_io lw;
    ev_io_init(&lw, on_accept, fd, EV_READ);
    ev_io_start(loop, &lw);
    printf("http-raw-ev: libev, listening on http://%s:%d/\n", host, http_port(fd));
    fflush(stdout);
    ev_run(loop, 0);
    return 0;
}
