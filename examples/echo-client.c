/* echo-client -- connect to an echo server, send each message as a line,
 * print what comes back, and check that it is what was sent.
 *
 *     ./examples/echo-client [PORT [HOST [MESSAGE...]]]   (8888, 127.0.0.1)
 *
 * Exits 0 when every line came back unchanged. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <aloop.h>
#include <aloop-stream.h>
#include <aloop-task.h>

struct job {
    const char *host, *port;
    char **msgs;
    int nmsgs;
};

static void *client(void *arg)
{
    struct job *j = arg;
    aloop_stream_t *s;
    int r = aloop_open_connection(&s, j->host, j->port);
    if (r < 0) {
        fprintf(stderr, "echo-client: %s:%s: %s\n", j->host, j->port, aloop_strerror(r));
        return aloop_task_error(r);
    }
    for (int i = 0; i < j->nmsgs && r >= 0; i++) {
        char line[4096];
        size_t len = strlen(j->msgs[i]);
        if (len >= sizeof line - 1)
            len = sizeof line - 2;
        memcpy(line, j->msgs[i], len);
        line[len++] = '\n';
        if ((r = aloop_stream_write(s, line, len)) < 0 || (r = aloop_stream_drain(s)) < 0)
            break;
        char back[4096];
        ssize_t n = aloop_stream_readline(s, back, sizeof back);
        if (n < 0) {
            r = (int)n;
            break;
        }
        printf("%.*s", (int)n, back);
        if ((size_t)n != len || memcmp(back, line, len)) {
            fprintf(stderr, "echo-client: the echo differs\n");
            r = -EPROTO;
        }
    }
    if (r < 0 && r != -EPROTO)
        fprintf(stderr, "echo-client: %s\n", aloop_strerror(r));
    int c = aloop_stream_close(s);
    return aloop_task_error(r < 0 ? r : c < 0 ? c : 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && argv[1][0] == '-') {
        fprintf(stderr, "usage: echo-client [PORT [HOST [LINE...]]]   (default 8888 127.0.0.1)\n");
        return 2;
    }
    static char *dflt[] = {"hello", "from", "aloop"};
    struct job j = {argc > 2 ? argv[2] : "127.0.0.1", argc > 1 ? argv[1] : "8888", dflt, 3};
    if (argc > 3) {
        j.msgs = argv + 3;
        j.nmsgs = argc - 3;
    }
    aloop_t *loop;
    aloop_task_t *t;
    int r = aloop_new(&loop, NULL);
    if (r < 0) {
        fprintf(stderr, "echo-client: aloop_new: %s\n", aloop_strerror(r));
        return 1;
    }
    fprintf(stderr, "echo-client: backend %s, connecting to %s port %s\n", aloop_backend(loop),
            j.host, j.port);
    if ((r = aloop_spawn(loop, &t, client, &j)) == 0) {
        r = aloop_task_join(t, NULL);
        aloop_task_release(t);
    }
    aloop_close(loop);
    return r < 0 ? 1 : 0;
}
