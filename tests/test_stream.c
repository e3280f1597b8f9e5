/* test_stream.c -- behavioural tests of streams (API.md "Streams",
 * include/aloop-stream.h), run once per backend.
 *
 * Every test is registered for each backend under test
 * (ALOOP_TEST_BACKENDS=epoll,poll or, by default, aloop_backends()); the
 * TCase is named after the backend, so a failure names it.  Servers listen
 * on loopback, port "0".  There are no timing assertions; the EMFILE test
 * bounds the CPU time of a 300 ms back-off window generously (a spinning
 * accept would use all of it).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aloop.h"
#include "suite.h"
#include "aloop-stream.h"
#include "aloop-task.h"

/* ---- Backends under test ------------------------------------------------ */

/* ---- Helpers ------------------------------------------------------------ */

static aloop_t *new_loop(const char *be)
{
    aloop_t *l = NULL;
    int rc = aloop_new(&l, be);
    ck_assert_msg(rc == 0, "aloop_new(%s) = %d (%s)", be, rc, aloop_strerror(rc));
    return l;
}

static void close_loop(aloop_t *l)
{
    int rc = aloop_close(l);
    ck_assert_msg(rc == 0, "aloop_close = %d (%s)", rc, aloop_strerror(rc));
}

static aloop_task_t *spawn(aloop_t *l, aloop_task_fn fn, void *arg)
{
    aloop_task_t *t = NULL;
    int rc = aloop_spawn(l, &t, fn, arg);
    ck_assert_msg(rc == 0, "aloop_spawn = %d (%s)", rc, aloop_strerror(rc));
    return t;
}

/* Run fn(arg) as a task to its end (the loop runs meanwhile); its result. */
static int run_task(aloop_t *l, aloop_task_fn fn, void *arg)
{
    aloop_task_t *t = spawn(l, fn, arg);
    int rc = aloop_task_join(t, NULL);
    aloop_task_release(t);
    return rc;
}

#define TRY(expr)                                                                   \
    do {                                                                            \
        long _r = (long)(expr);                                                     \
        if (_r < 0) {                                                               \
            fprintf(stderr, "%s:%d: %s = %ld (%s)\n", __FILE__, __LINE__, #expr, _r, \
                    aloop_strerror((int)_r));                                       \
            return aloop_task_error((int)_r);                                       \
        }                                                                           \
    } while (0)

#define EXPECT(cond)                                                                \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);     \
            return aloop_task_error(-EPROTO);                                       \
        }                                                                           \
    } while (0)

static char g_port[16];

static aloop_server_t *start(aloop_t *l, const char *host, aloop_client_fn fn, void *arg)
{
    aloop_server_t *srv = NULL;
    int rc = aloop_start_server(l, &srv, host, "0", fn, arg);
    ck_assert_msg(rc == 0, "aloop_start_server = %d (%s)", rc, aloop_strerror(rc));
    ck_assert_int_gt(aloop_server_port(srv), 0);
    snprintf(g_port, sizeof g_port, "%d", aloop_server_port(srv));
    return srv;
}

/* The echo server: lines back until EOF. */
static int g_served;
static void echo(aloop_stream_t *c, void *arg)
{
    char line[1024];
    ssize_t n;
    (void)arg;
    while ((n = aloop_stream_readline(c, line, sizeof line)) > 0)
        if (aloop_stream_write(c, line, (size_t)n) < 0 || aloop_stream_drain(c) < 0)
            break;
    g_served++;
}

static void setup(void)
{
    unsetenv("ALOOP_BACKEND");
    g_served = 0;
}

static void teardown(void)
{
}

/* ======================================================================== */
/* Echo round trips                                                         */
/* ======================================================================== */

static void *echo_client(void *arg)
{
    int id = (int)(intptr_t)arg;
    aloop_stream_t *s;
    TRY(aloop_open_connection(&s, "127.0.0.1", g_port));
    for (int i = 0; i < 3; i++) {
        char line[64], back[64];
        int len = snprintf(line, sizeof line, "client %d line %d\n", id, i);
        TRY(aloop_stream_write(s, line, (size_t)len));
        TRY(aloop_stream_drain(s));
        ssize_t n = aloop_stream_readline(s, back, sizeof back);
        TRY(n);
        EXPECT(n == len && !memcmp(back, line, (size_t)len));
    }
    TRY(aloop_stream_close(s));
    return NULL;
}

static void echo_many(const char *be, int n)
{
    aloop_t *l = new_loop(be);
    if (!strcmp(be, "select") && n > 300)
        n = 300;        /* FD_SETSIZE: both ends of each connection are ours */
    aloop_server_t *srv = start(l, "127.0.0.1", echo, NULL);
    aloop_task_t **t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++)
        t[i] = spawn(l, echo_client, (void *)(intptr_t)i);
    int rc = aloop_gather(t, (size_t)n, NULL);
    ck_assert_msg(rc == 0, "%s: gather = %d (%s)", be, rc, aloop_strerror(rc));
    for (int i = 0; i < n; i++)
        aloop_task_release(t[i]);
    free(t);
    ck_assert_int_eq(aloop_server_close(srv), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);   /* the server tasks end */
    ck_assert_int_eq(g_served, n);
    close_loop(l);
}

START_TEST(test_echo_100)
{
    echo_many(BE, 100);
}
END_TEST

START_TEST(test_echo_1000)
{
    echo_many(BE, 1000);
}
END_TEST

/* Lines that arrive a byte at a time, several per write, and split. */
static void *split_client(void *arg)
{
    (void)arg;
    static const char text[] = "hello\nworld, a longer line\n\nx\nlast one\n";
    aloop_stream_t *s;
    TRY(aloop_open_connection(&s, "127.0.0.1", g_port));
    for (size_t i = 0; i < sizeof text - 1; i++) {
        TRY(aloop_stream_write(s, text + i, 1));
        TRY(aloop_stream_drain(s));
        TRY(aloop_yield());
    }
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p) + 1;
        char back[64];
        ssize_t n = aloop_stream_readline(s, back, sizeof back);
        TRY(n);
        EXPECT((size_t)n == len && !memcmp(back, p, len));
        p += len;
    }
    /* many lines in one write come back one by one */
    TRY(aloop_stream_write(s, "a\nbb\nccc\n", 9));
    char b[8];
    EXPECT(aloop_stream_readline(s, b, sizeof b) == 2 && !memcmp(b, "a\n", 2));
    EXPECT(aloop_stream_readline(s, b, sizeof b) == 3 && !memcmp(b, "bb\n", 3));
    EXPECT(aloop_stream_readline(s, b, sizeof b) == 4 && !memcmp(b, "ccc\n", 4));
    TRY(aloop_stream_close(s));
    return NULL;
}

START_TEST(test_lines_split)
{
    aloop_t *l = new_loop(BE);
    aloop_server_t *srv = start(l, "127.0.0.1", echo, NULL);
    int rc = run_task(l, split_client, NULL);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    aloop_server_close(srv);
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* Limits and end of file                                                   */
/* ======================================================================== */

/* The server sends what arg points to, then closes. */
static void sender(aloop_stream_t *c, void *arg)
{
    const char *text = arg;
    aloop_stream_write(c, text, strlen(text));
}

static char g_long[256];

static void *long_line_client(void *arg)
{
    (void)arg;
    aloop_stream_t *s;
    char buf[256];
    TRY(aloop_open_connection(&s, "127.0.0.1", g_port));
    TRY(aloop_stream_set_limit(s, 64));
    /* 100 bytes then '\n': longer than the limit */
    EXPECT(aloop_stream_readline(s, buf, sizeof buf) == -ENOBUFS);
    EXPECT(aloop_stream_readline(s, buf, sizeof buf) == -ENOBUFS);     /* still there */
    ssize_t n = aloop_stream_read(s, buf, sizeof buf);
    EXPECT(n == 64 && !memcmp(buf, g_long, 64));
    n = aloop_stream_readline(s, buf, sizeof buf);
    EXPECT(n == 37 && !memcmp(buf, g_long + 64, 37));
    /* longer than cap: -ENOBUFS too, and the line stays */
    EXPECT(aloop_stream_readline(s, buf, 4) == -ENOBUFS);
    n = aloop_stream_readline(s, buf, sizeof buf);
    EXPECT(n == 6 && !memcmp(buf, "okay!\n", 6));
    EXPECT(aloop_stream_readline(s, buf, sizeof buf) == 0);
    TRY(aloop_stream_close(s));
    return NULL;
}

START_TEST(test_line_too_long)
{
    aloop_t *l = new_loop(BE);
    memset(g_long, 'x', 100);
    for (int i = 0; i < 100; i++)
        g_long[i] = (char)('a' + i % 26);
    strcpy(g_long + 100, "\nokay!\n");
    aloop_server_t *srv = start(l, "127.0.0.1", sender, g_long);
    int rc = run_task(l, long_line_client, NULL);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    aloop_server_close(srv);
    close_loop(l);
}
END_TEST

static void *eof_client(void *arg)
{
    (void)arg;
    aloop_stream_t *s;
    char buf[64];
    TRY(aloop_open_connection(&s, "127.0.0.1", g_port));
    EXPECT(aloop_stream_readline(s, buf, sizeof buf) == 4 && !memcmp(buf, "abc\n", 4));
    EXPECT(aloop_stream_readline(s, buf, sizeof buf) == 3 && !memcmp(buf, "def", 3));
    EXPECT(aloop_stream_readline(s, buf, sizeof buf) == 0);
    EXPECT(aloop_stream_read(s, buf, sizeof buf) == 0);
    TRY(aloop_stream_close(s));
    return NULL;
}

START_TEST(test_eof_mid_line)
{
    aloop_t *l = new_loop(BE);
    aloop_server_t *srv = start(l, "127.0.0.1", sender, "abc\ndef");
    int rc = run_task(l, eof_client, NULL);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    aloop_server_close(srv);
    close_loop(l);
}
END_TEST

static void *exactly_client(void *arg)
{
    (void)arg;
    aloop_stream_t *s;
    char buf[64];
    TRY(aloop_open_connection(&s, "127.0.0.1", g_port));
    EXPECT(aloop_stream_readexactly(s, buf, 4) == 4 && !memcmp(buf, "0123", 4));
    EXPECT(aloop_stream_partial(s) == 0);
    memset(buf, 0, sizeof buf);
    EXPECT(aloop_stream_readexactly(s, buf, 10) == -ENODATA);
    EXPECT(aloop_stream_partial(s) == 6 && !memcmp(buf, "456789", 6));
    EXPECT(aloop_stream_readexactly(s, buf, 1) == -ENODATA);
    EXPECT(aloop_stream_partial(s) == 0);
    EXPECT(aloop_stream_readexactly(s, buf, 0) == 0);
    TRY(aloop_stream_close(s));
    return NULL;
}

START_TEST(test_readexactly_eof)
{
    aloop_t *l = new_loop(BE);
    aloop_server_t *srv = start(l, "127.0.0.1", sender, "0123456789");
    int rc = run_task(l, exactly_client, NULL);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    aloop_server_close(srv);
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* Backpressure                                                             */
/* ======================================================================== */

#define BULK (16u << 20)       /* more than the loopback socket buffers hold */
#define CHUNK (16u << 10)
#define HWM (32u << 10)

static struct {
    size_t max_after_write, max_after_drain;
    int waited, err;
} g_bp;

static void bulk_writer(aloop_stream_t *c, void *arg)
{
    static unsigned char chunk[CHUNK];
    (void)arg;
    aloop_stream_set_high_water(c, HWM);
    for (size_t off = 0; off < BULK; off += CHUNK) {
        for (size_t i = 0; i < CHUNK; i++)
            chunk[i] = (unsigned char)((off + i) % 251);
        int r = aloop_stream_write(c, chunk, CHUNK);
        size_t b = aloop_stream_buffered(c);
        if (b > g_bp.max_after_write)
            g_bp.max_after_write = b;
        if (b > HWM)
            g_bp.waited = 1;
        if (r == 0)
            r = aloop_stream_drain(c);
        if (r < 0) {
            g_bp.err = r;
            return;
        }
        b = aloop_stream_buffered(c);
        if (b > g_bp.max_after_drain)
            g_bp.max_after_drain = b;
    }
}

static void *slow_reader(void *arg)
{
    (void)arg;
    aloop_stream_t *s;
    static unsigned char buf[4096];
    size_t total = 0;
    TRY(aloop_open_connection(&s, "127.0.0.1", g_port));
    TRY(aloop_sleep(20 * ALOOP_MS));
    for (;;) {
        ssize_t n = aloop_stream_read(s, buf, sizeof buf);
        TRY(n);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            EXPECT(buf[i] == (unsigned char)((total + (size_t)i) % 251));
        total += (size_t)n;
        TRY(aloop_yield());
    }
    EXPECT(total == BULK);
    TRY(aloop_stream_close(s));
    return NULL;
}

START_TEST(test_slow_reader_drain)
{
    aloop_t *l = new_loop(BE);
    memset(&g_bp, 0, sizeof g_bp);
    aloop_server_t *srv = start(l, "127.0.0.1", bulk_writer, NULL);
    int rc = run_task(l, slow_reader, NULL);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    ck_assert_int_eq(g_bp.err, 0);
    ck_assert_int_eq(g_bp.waited, 1);
    ck_assert_uint_le(g_bp.max_after_drain, HWM);
    ck_assert_uint_le(g_bp.max_after_write, HWM + CHUNK);
    aloop_server_close(srv);
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* Errors                                                                   */
/* ======================================================================== */

static int g_reset_err, g_reset_done, g_got_line;

static void reset_victim(aloop_stream_t *c, void *arg)
{
    static char junk[4096];
    char line[64];
    (void)arg;
    if (aloop_stream_readline(c, line, sizeof line) == 3)
        g_got_line = 1;
    for (int i = 0; i < 5000; i++) {      /* until the reset shows */
        int r = aloop_stream_write(c, junk, sizeof junk);
        if (r == 0)
            r = aloop_stream_drain(c);
        if (r < 0) {
            g_reset_err = r;
            break;
        }
        aloop_sleep(ALOOP_MS);
    }
    g_reset_done = 1;
}

START_TEST(test_peer_reset)
{
    aloop_t *l = new_loop(BE);
    g_reset_err = g_reset_done = g_got_line = 0;
    aloop_server_t *srv = start(l, "127.0.0.1", reset_victim, NULL);
    /* a raw client that sends a line, then resets (SO_LINGER 0) while the
     * server writes to it; SIGPIPE keeps its default action: it would kill
     * the test */
    signal(SIGPIPE, SIG_DFL);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(g_port)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(write(fd, "hi\n", 3), 3);
    while (!g_got_line && !g_reset_done)
        ck_assert_int_ge(aloop_run(l, ALOOP_RUN_ONCE), 0);
    ck_assert_int_eq(g_got_line, 1);
    struct linger lg = {1, 0};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(fd);
    while (!g_reset_done)
        ck_assert_int_ge(aloop_run(l, ALOOP_RUN_ONCE), 0);
    ck_assert_msg(g_reset_err == -ECONNRESET || g_reset_err == -EPIPE, "%s: write after reset = %d",
                  BE, g_reset_err);
    aloop_server_close(srv);
    close_loop(l);
}
END_TEST

/* A server closed while its clients run: they go on; new ones are refused. */
static aloop_server_t *g_srv;

static void *close_server_client(void *arg)
{
    (void)arg;
    aloop_stream_t *s, *s2;
    char b[16];
    TRY(aloop_open_connection(&s, "127.0.0.1", g_port));
    TRY(aloop_stream_write(s, "one\n", 4));
    EXPECT(aloop_stream_readline(s, b, sizeof b) == 4);
    TRY(aloop_server_close(g_srv));
    g_srv = NULL;
    TRY(aloop_stream_write(s, "two\n", 4));
    EXPECT(aloop_stream_readline(s, b, sizeof b) == 4 && !memcmp(b, "two\n", 4));
    EXPECT(aloop_open_connection(&s2, "127.0.0.1", g_port) == -ECONNREFUSED);
    EXPECT(s2 == NULL);
    TRY(aloop_stream_write(s, "three\n", 6));
    EXPECT(aloop_stream_readline(s, b, sizeof b) == 6);
    TRY(aloop_stream_close(s));
    return NULL;
}

START_TEST(test_server_closed_while_clients_run)
{
    aloop_t *l = new_loop(BE);
    g_srv = start(l, "127.0.0.1", echo, NULL);
    int rc = run_task(l, close_server_client, NULL);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    ck_assert_ptr_null(g_srv);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(g_served, 1);
    close_loop(l);
}
END_TEST

static const char *g_connect_host;

static void *host_client(void *arg)
{
    (void)arg;
    aloop_stream_t *s;
    char b[16];
    TRY(aloop_open_connection(&s, g_connect_host, g_port));
    TRY(aloop_stream_write(s, "v6?\n", 4));
    EXPECT(aloop_stream_readline(s, b, sizeof b) == 4 && !memcmp(b, "v6?\n", 4));
    TRY(aloop_stream_close(s));
    return NULL;
}

START_TEST(test_ipv6_and_localhost)
{
    aloop_t *l = new_loop(BE);
    aloop_server_t *srv = NULL;
    int rc = aloop_start_server(l, &srv, "::1", "0", echo, NULL);
    if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
        fprintf(stderr, "%s: no IPv6 loopback here (%s): skipped\n", BE, aloop_strerror(rc));
    } else {
        ck_assert_msg(rc == 0, "start_server(::1) = %d (%s)", rc, aloop_strerror(rc));
        snprintf(g_port, sizeof g_port, "%d", aloop_server_port(srv));
        g_connect_host = "::1";
        rc = run_task(l, host_client, NULL);
        ck_assert_msg(rc == 0, "%s: ::1 %d (%s)", BE, rc, aloop_strerror(rc));
        g_connect_host = "localhost";   /* 127.0.0.1 refuses, then ::1 */
        rc = run_task(l, host_client, NULL);
        ck_assert_msg(rc == 0, "%s: localhost %d (%s)", BE, rc, aloop_strerror(rc));
        aloop_server_close(srv);
    }
    int have_v6 = rc == 0;
    srv = start(l, "localhost", echo, NULL);
    g_connect_host = "localhost";
    rc = run_task(l, host_client, NULL);
    ck_assert_msg(rc == 0, "%s: localhost %d (%s)", BE, rc, aloop_strerror(rc));
    aloop_server_close(srv);
    /* every interface: 0.0.0.0 and ::, on one port */
    srv = start(l, NULL, echo, NULL);
    g_connect_host = "127.0.0.1";
    rc = run_task(l, host_client, NULL);
    ck_assert_msg(rc == 0, "%s: any, 127.0.0.1 %d (%s)", BE, rc, aloop_strerror(rc));
    if (have_v6) {
        g_connect_host = "::1";
        rc = run_task(l, host_client, NULL);
        ck_assert_msg(rc == 0, "%s: any, ::1 %d (%s)", BE, rc, aloop_strerror(rc));
    }
    aloop_server_close(srv);
    close_loop(l);
}
END_TEST

static aloop_stream_t *g_stream;

static void *bad_args_task(void *arg)
{
    (void)arg;
    aloop_stream_t *s = (aloop_stream_t *)1;
    EXPECT(aloop_open_connection(&s, "no.such.host.invalid", "80") == -ENOTSUP);
    EXPECT(s == NULL);
    EXPECT(aloop_open_connection(&s, "127.0.0.1", "http") == -EINVAL);
    EXPECT(aloop_open_connection(&s, "127.0.0.1", "65536") == -EINVAL);
    EXPECT(aloop_open_connection(&s, "127.0.0.1", "") == -EINVAL);
    EXPECT(aloop_open_connection(&s, "127.0.0.1", NULL) == -EINVAL);
    EXPECT(aloop_open_connection(&s, NULL, "80") == -EINVAL);
    EXPECT(aloop_open_connection(NULL, "127.0.0.1", "80") == -EINVAL);
    EXPECT(aloop_stream_read(NULL, NULL, 0) == -EINVAL);
    TRY(aloop_open_connection(&g_stream, "127.0.0.1", g_port));
    return NULL;
}

static void *close_task(void *arg)
{
    (void)arg;
    TRY(aloop_stream_close(g_stream));
    return NULL;
}

START_TEST(test_bad_args_and_outside_task)
{
    aloop_t *l = new_loop(BE);
    aloop_server_t *srv = NULL;
    aloop_stream_t *s = NULL;
    char b[8];
    ck_assert_int_eq(aloop_start_server(l, &srv, "no.such.host.invalid", "0", echo, NULL), -ENOTSUP);
    ck_assert_int_eq(aloop_start_server(l, &srv, "127.0.0.1", "99999", echo, NULL), -EINVAL);
    ck_assert_int_eq(aloop_start_server(l, &srv, "127.0.0.1", "-1", echo, NULL), -EINVAL);
    ck_assert_int_eq(aloop_start_server(l, &srv, "127.0.0.1", "0", NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_start_server(NULL, &srv, "127.0.0.1", "0", echo, NULL), -EINVAL);
    ck_assert_ptr_null(srv);
    ck_assert_int_eq(aloop_server_port(NULL), -EINVAL);
    ck_assert_int_eq(aloop_server_close(NULL), -EINVAL);
    ck_assert_int_eq(aloop_open_connection(&s, "127.0.0.1", "1"), -EPERM);
    srv = start(l, "127.0.0.1", echo, NULL);
    /* the port in use */
    aloop_server_t *srv2 = NULL;
    ck_assert_int_eq(aloop_start_server(l, &srv2, "127.0.0.1", g_port, echo, NULL), -EADDRINUSE);
    int rc = run_task(l, bad_args_task, NULL);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    ck_assert_ptr_nonnull(g_stream);
    ck_assert_int_eq(aloop_stream_read(g_stream, b, sizeof b), -EPERM);
    ck_assert_int_eq(aloop_stream_readline(g_stream, b, sizeof b), -EPERM);
    ck_assert_int_eq(aloop_stream_readexactly(g_stream, b, sizeof b), -EPERM);
    ck_assert_int_eq(aloop_stream_write(g_stream, b, sizeof b), -EPERM);
    ck_assert_int_eq(aloop_stream_drain(g_stream), -EPERM);
    ck_assert_int_eq(aloop_stream_close(g_stream), -EPERM);
    rc = run_task(l, close_task, NULL);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    aloop_server_close(srv);
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* Closing, cancelling, sharing                                             */
/* ======================================================================== */

static size_t g_counted;

static void counter(aloop_stream_t *c, void *arg)
{
    static char buf[65536];
    ssize_t n;
    (void)arg;
    while ((n = aloop_stream_read(c, buf, sizeof buf)) > 0)
        g_counted += (size_t)n;
    g_served++;
}

static void *write_then_close(void *arg)
{
    (void)arg;
    aloop_stream_t *s;
    static char chunk[65536];
    TRY(aloop_open_connection(&s, "127.0.0.1", g_port));
    for (int i = 0; i < 128; i++)               /* 8 MiB, never drained */
        TRY(aloop_stream_write(s, chunk, sizeof chunk));
    EXPECT(aloop_stream_buffered(s) > 0);
    TRY(aloop_stream_close(s));                 /* sends it all first */
    return NULL;
}

START_TEST(test_close_flushes)
{
    aloop_t *l = new_loop(BE);
    g_counted = 0;
    aloop_server_t *srv = start(l, "127.0.0.1", counter, NULL);
    int rc = run_task(l, write_then_close, NULL);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    while (!g_served)
        ck_assert_int_ge(aloop_run(l, ALOOP_RUN_ONCE), 0);
    ck_assert_uint_eq(g_counted, 128u * 65536u);
    aloop_server_close(srv);
    close_loop(l);
}
END_TEST

static int g_flag;

static void *cancelled_reader(void *arg)
{
    (void)arg;
    aloop_stream_t *s;
    char b[16];
    TRY(aloop_open_connection(&s, "127.0.0.1", g_port));
    g_flag = 1;
    EXPECT(aloop_stream_readline(s, b, sizeof b) == -ECANCELED);
    TRY(aloop_stream_write(s, "after\n", 6));          /* still usable */
    EXPECT(aloop_stream_readline(s, b, sizeof b) == 6 && !memcmp(b, "after\n", 6));
    TRY(aloop_stream_close(s));
    return NULL;
}

START_TEST(test_cancel_read)
{
    aloop_t *l = new_loop(BE);
    g_flag = 0;
    aloop_server_t *srv = start(l, "127.0.0.1", echo, NULL);
    aloop_task_t *t = spawn(l, cancelled_reader, NULL);
    while (!g_flag)
        ck_assert_int_ge(aloop_run(l, ALOOP_RUN_ONCE), 0);
    aloop_run(l, ALOOP_RUN_NOWAIT);
    ck_assert_int_eq(aloop_task_cancel(t), 0);
    int rc = aloop_task_join(t, NULL);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    aloop_task_release(t);
    aloop_server_close(srv);
    close_loop(l);
}
END_TEST

/* Data that arrives while the reading task does something else (here: sleeps)
 * is read afterwards; so is the end of file after it.  Reads wait on a reader
 * kept registered between reads: this is its "nobody waits" path. */
static void two_lines_slowly(aloop_stream_t *c, void *arg)
{
    (void)arg;
    if (aloop_stream_write(c, "one\n", 4) < 0 || aloop_sleep(ALOOP_SEC / 100) < 0 ||
        aloop_stream_write(c, "two\n", 4) < 0 || aloop_sleep(ALOOP_SEC / 100) < 0)
        return;
    aloop_stream_close(c);
}

static void *busy_reader(void *arg)
{
    (void)arg;
    aloop_stream_t *s;
    char b[16];
    TRY(aloop_open_connection(&s, "127.0.0.1", g_port));
    EXPECT(aloop_stream_readline(s, b, sizeof b) == 4 && !memcmp(b, "one\n", 4));
    TRY(aloop_sleep(ALOOP_SEC * 6 / 100));       /* "two" and EOF arrive meanwhile */
    EXPECT(aloop_stream_readline(s, b, sizeof b) == 4 && !memcmp(b, "two\n", 4));
    EXPECT(aloop_stream_readline(s, b, sizeof b) == 0);
    TRY(aloop_stream_close(s));
    return NULL;
}

START_TEST(test_data_while_not_reading)
{
    aloop_t *l = new_loop(BE);
    aloop_server_t *srv = start(l, "127.0.0.1", two_lines_slowly, NULL);
    int rc = run_task(l, busy_reader, NULL);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    aloop_server_close(srv);
    close_loop(l);
}
END_TEST

/* One task reads a stream while another writes it. */
static aloop_stream_t *g_shared;
#define NLINES 2000

static void *shared_writer(void *arg)
{
    (void)arg;
    char line[64];
    for (int i = 0; i < NLINES; i++) {
        int len = snprintf(line, sizeof line, "%d %0*d\n", i, i % 40, 0);
        TRY(aloop_stream_write(g_shared, line, (size_t)len));
        if (i % 7 == 0)
            TRY(aloop_stream_drain(g_shared));
    }
    return NULL;
}

static void *shared_reader(void *arg)
{
    (void)arg;
    char line[64], want[64];
    for (int i = 0; i < NLINES; i++) {
        int len = snprintf(want, sizeof want, "%d %0*d\n", i, i % 40, 0);
        ssize_t n = aloop_stream_readline(g_shared, line, sizeof line);
        TRY(n);
        EXPECT(n == len && !memcmp(line, want, (size_t)len));
    }
    return NULL;
}

static void *shared_main(void *arg)
{
    aloop_t *l = arg;
    aloop_task_t *t[2];
    TRY(aloop_open_connection(&g_shared, "127.0.0.1", g_port));
    TRY(aloop_stream_set_high_water(g_shared, 256));
    TRY(aloop_spawn(l, &t[0], shared_reader, NULL));
    TRY(aloop_spawn(l, &t[1], shared_writer, NULL));
    int rc = aloop_gather(t, 2, NULL);
    aloop_task_release(t[0]);
    aloop_task_release(t[1]);
    TRY(rc);
    TRY(aloop_stream_close(g_shared));
    return NULL;
}

START_TEST(test_reader_and_writer_tasks)
{
    aloop_t *l = new_loop(BE);
    aloop_server_t *srv = start(l, "127.0.0.1", echo, NULL);
    int rc = run_task(l, shared_main, l);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    aloop_server_close(srv);
    close_loop(l);
}
END_TEST

/* aloop_close() with clients mid-conversation: their tasks are cancelled,
 * their streams closed and freed (ASan / LSan check the rest). */
static void *idle_client(void *arg)
{
    (void)arg;
    aloop_stream_t *s;
    char b[16];
    TRY(aloop_open_connection(&s, "127.0.0.1", g_port));
    TRY(aloop_stream_write(s, "hi\n", 3));
    EXPECT(aloop_stream_readline(s, b, sizeof b) == 3);
    g_flag++;
    int r = aloop_sleep(3600 * ALOOP_SEC);
    aloop_stream_close(s);
    EXPECT(r == -ECANCELED);
    return NULL;
}

START_TEST(test_loop_closed_with_clients)
{
    aloop_t *l = new_loop(BE);
    g_flag = 0;
    aloop_server_t *srv = start(l, "127.0.0.1", echo, NULL);
    for (int i = 0; i < 10; i++)
        aloop_spawn(l, NULL, idle_client, NULL);
    while (g_flag < 10)
        ck_assert_int_ge(aloop_run(l, ALOOP_RUN_ONCE), 0);
    aloop_server_close(srv);
    close_loop(l);
    ck_assert_int_eq(g_served, 10);
}
END_TEST

/* ======================================================================== */
/* accept() under EMFILE                                                    */
/* ======================================================================== */

#define NRAW 5

static int g_raw[NRAW];

static void *raw_echo_check(void *arg)
{
    (void)arg;
    for (int i = 0; i < NRAW; i++) {
        char b[8];
        int r = aloop_wait_fd(g_raw[i], ALOOP_READABLE, 5 * ALOOP_SEC);
        TRY(r);
        EXPECT(recv(g_raw[i], b, sizeof b, 0) == 5 && !memcmp(b, "ping\n", 5));
    }
    return NULL;
}

/* A client accepted before the limit, served while accept fails: a round
 * trip every 20 ms until the test says stop. */
static int g_window_over, g_round_trips;

static void *steady_client(void *arg)
{
    aloop_stream_t *s;
    char b[16];
    TRY(aloop_open_connection(&s, "127.0.0.1", g_port));
    for (int i = 0; !g_window_over; i++) {
        TRY(aloop_stream_write(s, "still\n", 6));
        EXPECT(aloop_stream_readline(s, b, sizeof b) == 6);
        g_round_trips++;
        if (i == 0)
            *(int *)arg = 1;        /* connected: the limit may go down */
        TRY(aloop_sleep(20 * ALOOP_MS));
    }
    TRY(aloop_stream_close(s));
    return NULL;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void stop_cb(aloop_t *l, void *arg)
{
    (void)arg;
    aloop_stop(l);
}

START_TEST(test_accept_emfile)
{
    aloop_t *l = new_loop(BE);
    aloop_server_t *srv = start(l, "127.0.0.1", echo, NULL);
    int connected = 0;
    g_window_over = g_round_trips = 0;
    aloop_task_t *steady = spawn(l, steady_client, &connected);
    while (!connected)
        ck_assert_int_ge(aloop_run(l, ALOOP_RUN_ONCE), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(g_port)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < NRAW; i++) {
        g_raw[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(g_raw[i], 0);
    }
    /* no fd left for accept() */
    struct rlimit old, low;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = dup(0);
    close(lowest);
    low = old;
    low.rlim_cur = (rlim_t)lowest;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    for (int i = 0; i < NRAW; i++) {       /* the handshake completes in the backlog */
        ck_assert_int_eq(connect(g_raw[i], (struct sockaddr *)&sa, sizeof sa), 0);
        ck_assert_int_eq(write(g_raw[i], "ping\n", 5), 5);
    }
    int trips0 = g_round_trips;
    double c0 = cpu_seconds();
    aloop_call_later(l, 300 * ALOOP_MS, stop_cb, NULL);
    ck_assert_int_ge(aloop_run(l, ALOOP_RUN_FOREVER), 0);
    double used = cpu_seconds() - c0;
    ck_assert_msg(used < 0.15, "%s: accept spun: %.3f s of CPU in 0.3 s", BE, used);
    ck_assert_int_eq(g_served, 0);
    ck_assert_int_gt(g_round_trips, trips0);       /* the others are served meanwhile */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    g_window_over = 1;
    /* recovered: the waiting clients are served */
    int rc = run_task(l, raw_echo_check, NULL);
    ck_assert_msg(rc == 0, "%s: %d (%s)", BE, rc, aloop_strerror(rc));
    rc = aloop_task_join(steady, NULL);
    ck_assert_msg(rc == 0, "%s: steady %d (%s)", BE, rc, aloop_strerror(rc));
    aloop_task_release(steady);
    for (int i = 0; i < NRAW; i++)
        close(g_raw[i]);
    aloop_server_close(srv);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(g_served, NRAW + 1);
    close_loop(l);
}
END_TEST

/* ---- Registration ------------------------------------------------------- */

int main(void)
{
    backends_init();
    if (g_nbackends == 0) {
        fprintf(stderr, "test_stream: no backends to test\n");
        return EXIT_FAILURE;
    }
    struct rlimit rl;       /* 1,000 clients: 2,000 fds */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    Suite *s = suite_create("aloop-stream");
    for (int i = 0; i < g_nbackends; i++) {
        TCase *tc = tcase_create(g_backends[i]);
        tcase_set_timeout(tc, 60);
        tcase_add_checked_fixture(tc, setup, teardown);
        const TTest *tests[] = {
            test_echo_100,
            test_echo_1000,
            test_lines_split,
            test_line_too_long,
            test_eof_mid_line,
            test_readexactly_eof,
            test_slow_reader_drain,
            test_peer_reset,
            test_server_closed_while_clients_run,
            test_ipv6_and_localhost,
            test_bad_args_and_outside_task,
            test_close_flushes,
            test_cancel_read,
            test_data_while_not_reading,
            test_reader_and_writer_tasks,
            test_loop_closed_with_clients,
            test_accept_emfile,
        };
        for (size_t k = 0; k < sizeof tests / sizeof tests[0]; k++)
            tcase_add_loop_test(tc, tests[k], i, i + 1);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
