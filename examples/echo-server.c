/* echo-server -- asyncio's first program, in C: each client's lines are
 * written back to it until it hangs up.
 *
 *     ./examples/echo-server [PORT [HOST]]      (8888, 127.0.0.1)
 *     ALOOP_BACKEND=libuv ./examples/echo-server 9000
 *
 * Try it with examples/echo-client or `nc 127.0.0.1 8888`.  Ctrl-C stops. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <aloop.h>
#include <aloop-stream.h>
#include <aloop-task.h>

static void echo(aloop_stream_t *client, void *arg)
{
    char line[4096];
    ssize_t n;
    (void)arg;
    while ((n = aloop_stream_readline(client, line, sizeof line)) > 0 || n == -ENOBUFS) {
        if (n == -ENOBUFS)      /* a line longer than the buffer: echo it piecewise */
            n = aloop_stream_read(client, line, sizeof line);
        if (n <= 0 || aloop_stream_write(client, line, (size_t)n) < 0 || aloop_stream_drain(client) < 0)
            break;
    }
}   /* returning closes the stream */

static void on_sigint(aloop_t *loop, void *arg)
{
    (void)arg;
    aloop_stop(loop);
}

int main(int argc, char **argv)
{
    if (argc > 1 && argv[1][0] == '-') {
        fprintf(stderr, "usage: echo-server [PORT [HOST]]   (default 8888 127.0.0.1; ALOOP_BACKEND picks the backend)\n");
        return 2;
    }
    const char *port = argc > 1 ? argv[1] : "8888";
    const char *host = argc > 2 ? argv[2] : "127.0.0.1";
    aloop_t *loop;
    aloop_server_t *srv;
    int r = aloop_new(&loop, NULL);
    if (r < 0) {
        fprintf(stderr, "echo-server: aloop_new: %s\n", aloop_strerror(r));
        return 1;
    }
    if ((r = aloop_start_server(loop, &srv, host, port, echo, NULL)) < 0) {
        fprintf(stderr, "echo-server: %s:%s: %s\n", host, port, aloop_strerror(r));
        aloop_close(loop);
        return 1;
    }
    aloop_add_signal_handler(loop, SIGINT, on_sigint, NULL);
    aloop_add_signal_handler(loop, SIGTERM, on_sigint, NULL);
    printf("echo-server: backend %s, listening on %s port %d\n", aloop_backend(loop), host,
           aloop_server_port(srv));
    fflush(stdout);
    r = aloop_run(loop, ALOOP_RUN_FOREVER);
    aloop_server_close(srv);
    aloop_close(loop);
    return r < 0 ? 1 : 0;
}
