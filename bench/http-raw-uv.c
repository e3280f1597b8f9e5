/* http-raw-uv -- the HTTP hello server of examples/http-hello.c written
 * directly on libuv (uv_tcp_t, uv_read_start, uv_try_write then uv_write
 * for the rest), for bench/http-bench.sh.   ./bench/http-raw-uv [PORT [HOST]] */
#include <uv.h>

#include "http-raw.h"

struct conn {
    uv_tcp_t tcp;
    uv_write_t wr;
    int writing;
    struct http_conn h;
};

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    free(c->h.out);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->h.in + c->h.inlen, (unsigned)(HTTP_IN_CAP - c->h.inlen));
}

static void conn_send(struct conn *c);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    c->writing = 0;
    c->h.outoff = c->h.outlen = 0;
    if (status < 0 || c->h.closing) {
        conn_close(c);
        return;
    }
    http_process(&c->h);        /* what came meanwhile */
    if (c->h.outlen)
        conn_send(c);
    else
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* uv_try_write first; what is left goes by uv_write, reading paused. */
static void conn_send(struct conn *c)
{
    uv_buf_t b = uv_buf_init(c->h.out, (unsigned)c->h.outlen);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if ((size_t)n == c->h.outlen) {
        c->h.outlen = 0;
        if (c->h.closing)
            conn_close(c);
        else
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        return;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    b = uv_buf_init(c->h.out + n, (unsigned)(c->h.outlen - (size_t)n));
    c->writing = 1;
    c->wr.data = c;
    uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    (void)buf;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->h.inlen += (size_t)n;
    http_process(&c->h);
    if (c->h.outlen)
        conn_send(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof *c);
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    const char *port = argc > 1 ? argv[1] : "8080", *host = argc > 2 ? argv[2] : "127.0.0.1";
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t srv;
    int fd = http_listen(host, port);
    uv_tcp_init(loop, &srv);
    if (uv_tcp_open(&srv, fd) < 0 || uv_listen((uv_stream_t *)&srv, SOMAXCONN, on_connection) < 0) {
        fprintf(stderr, "http-raw-uv: cannot listen\n");
        return 1;
    }
    printf("http-raw-uv: libuv, listening on http://%s:%d/\n", host, http_port(fd));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
