/* http-hello -- a minimal HTTP/1.1 server: "Hello, World!" to every GET,
 * with keep-alive, pipelined requests, "Connection: close" and HTTP/1.0.
 *
 *     ./examples/http-hello [PORT [HOST]]      (8080, 127.0.0.1)
 *     curl http://127.0.0.1:8080/   wrk -t1 -c50 -d3s http://127.0.0.1:8080/
 *
 * ALOOP_BACKEND picks the backend.  Ctrl-C stops. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <aloop.h>
#include <aloop-stream.h>
#include <aloop-task.h>

#define BODY "Hello, World!"

/* each response whole, so that it costs one send */
#define OK "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
static const char ok[] = OK "\r\n" BODY;
static const char ok_close[] = OK "Connection: close\r\n\r\n" BODY;
static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char not_allowed[] = "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
                                  "Content-Length: 0\r\n\r\n";

/* Skip a request body of n bytes. */
static int skip(aloop_stream_t *c, long n)
{
    char sink[4096];
    while (n > 0) {
        ssize_t k = aloop_stream_readexactly(c, sink, n < (long)sizeof sink ? (size_t)n : sizeof sink);
        if (k < 0)
            return (int)k;
        n -= k;
    }
    return 0;
}

static void serve(aloop_stream_t *c, void *arg)
{
    char line[8192];
    (void)arg;
    for (;;) {
        /* the request line (blank lines before it are allowed) */
        ssize_t n;
        do
            n = aloop_stream_readline(c, line, sizeof line);
        while (n > 0 && (line[0] == '\n' || (line[0] == '\r' && n >= 2 && line[1] == '\n')));
        if (n <= 0 || line[n - 1] != '\n') {
            if (n == -ENOBUFS)
                aloop_stream_write(c, bad, sizeof bad - 1);
            return;
        }
        int get = n > 4 && !memcmp(line, "GET ", 4);
        int head = n > 5 && !memcmp(line, "HEAD ", 5);
        int keep = !memmem(line, (size_t)n, "HTTP/1.0", 8);
        long length = 0;
        /* the headers, up to the empty line */
        for (;;) {
            n = aloop_stream_readline(c, line, sizeof line);
            if (n <= 0 || line[n - 1] != '\n') {
                if (n == -ENOBUFS)
                    aloop_stream_write(c, bad, sizeof bad - 1);
                return;
            }
            if (line[0] == '\n' || (line[0] == '\r' && line[1] == '\n'))
                break;
            line[n - 1] = '\0';
            if (!strncasecmp(line, "Connection:", 11)) {
                if (strcasestr(line + 11, "close"))
                    keep = 0;
                else if (strcasestr(line + 11, "keep-alive"))
                    keep = 1;
            } else if (!strncasecmp(line, "Content-Length:", 15)) {
                length = strtol(line + 15, NULL, 10);
            } else if (!strncasecmp(line, "Transfer-Encoding:", 18)) {
                aloop_stream_write(c, bad, sizeof bad - 1);     /* not for a hello server */
                return;
            }
        }
        if (length < 0) {
            aloop_stream_write(c, bad, sizeof bad - 1);
            return;
        }
        if (skip(c, length) < 0)
            return;
        int r;
        if (get || head) {
            const char *resp = keep ? ok : ok_close;
            size_t len = keep ? sizeof ok - 1 : sizeof ok_close - 1;
            r = aloop_stream_write(c, resp, get ? len : len - (sizeof BODY - 1));
        } else {
            r = aloop_stream_write(c, not_allowed, sizeof not_allowed - 1);
        }
        if (r < 0 || !keep || aloop_stream_drain(c) < 0)
            return;     /* returning flushes and closes */
    }
}

static void on_sigint(aloop_t *loop, void *arg)
{
    (void)arg;
    aloop_stop(loop);
}

int main(int argc, char **argv)
{
    if (argc > 1 && argv[1][0] == '-') {
        fprintf(stderr, "usage: http-hello [PORT [HOST]]   (default 8080 127.0.0.1; ALOOP_BACKEND picks the backend)\n");
        return 2;
    }
    const char *port = argc > 1 ? argv[1] : "8080";
    const char *host = argc > 2 ? argv[2] : "127.0.0.1";
    aloop_t *loop;
    aloop_server_t *srv;
    int r = aloop_new(&loop, NULL);
    if (r < 0) {
        fprintf(stderr, "http-hello: aloop_new: %s\n", aloop_strerror(r));
        return 1;
    }
    if ((r = aloop_start_server(loop, &srv, host, port, serve, NULL)) < 0) {
        fprintf(stderr, "http-hello: %s:%s: %s\n", host, port, aloop_strerror(r));
        aloop_close(loop);
        return 1;
    }
    aloop_add_signal_handler(loop, SIGINT, on_sigint, NULL);
    aloop_add_signal_handler(loop, SIGTERM, on_sigint, NULL);
    printf("http-hello: backend %s, listening on http://%s:%d/\n", aloop_backend(loop), host,
           aloop_server_port(srv));
    fflush(stdout);
    r = aloop_run(loop, ALOOP_RUN_FOREVER);
    aloop_server_close(srv);
    aloop_close(loop);
    return r < 0 ? 1 : 0;
}
