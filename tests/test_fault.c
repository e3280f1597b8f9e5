/* test_fault.c -- fault and abuse tests (issue 5), run once per backend.
 *
 * Each test is registered for every backend under test (ALOOP_TEST_BACKENDS,
 * or aloop_backends()) in three TCases per backend, told apart by Check tags
 * so that CI can pick subsets:
 *   "<be>"          tag "fault"            quick tests (also run under valgrind)
 *   "<be>-threads"  tag "threads"          thread and signal races (also under TSan)
 *   "<be>-heavy"    tag "heavy"            100,000 timers, 10,000 fds, 1,000,000
 *                                          thread-safe calls (plain and ASan only)
 *   CK_INCLUDE_TAGS=threads / CK_EXCLUDE_TAGS=heavy select them.
 * Tests that change process-wide state (RLIMIT_NOFILE, fork) do it in a child
 * of their own, so they also hold with CK_FORK=no.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aloop.h"
#include "suite.h"

/* ---- Backends under test ------------------------------------------------ */

static int is_native(const char *be)
{
    return !strcmp(be, "select") || !strcmp(be, "poll") || !strcmp(be, "epoll");
}

/* ---- Helpers ------------------------------------------------------------ */


static pthread_t g_main_thread;

static void sleep_us(unsigned us)
{
    struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static aloop_t *new_loop(const char *be)
{
    aloop_t *l = NULL;
    int rc = aloop_new(&l, be);
    ck_assert_msg(rc == 0, "aloop_new(%s) = %d (%s)", be ? be : "NULL", rc, aloop_strerror(rc));
    ck_assert_ptr_nonnull(l);
    return l;
}
#define NEW_LOOP() new_loop(BE)

static void close_loop(aloop_t *l)
{
    int rc = aloop_close(l);
    ck_assert_msg(rc == 0, "aloop_close = %d (%s)", rc, aloop_strerror(rc));
}

static void mk_pipe(int p[2])
{
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void mk_socketpair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static void put(int fd)
{
    ck_assert_int_eq(write(fd, "x", 1), 1);
}

static void close2(int p[2])
{
    close(p[0]);
    close(p[1]);
}

static int want_nofile(rlim_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur >= need)
        return 1;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
        return 0;
    rl.rlim_cur = need;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

static void cb_count(aloop_t *loop, void *arg)
{
    (void)loop;
    (*(int *)arg)++;
}

static void cb_flag_stop(aloop_t *loop, void *arg)
{
    *(int *)arg = 1;
    aloop_stop(loop);
}

static void cb_nop(aloop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
}

/* Reads what is there, counts, and optionally removes itself. */
struct io_rec { int count, bytes, remove, fd; unsigned events; };

static void io_cb(aloop_t *loop, int fd, unsigned events, void *arg)
{
    struct io_rec *r = arg;
    char buf[256];
    ssize_t n;
    r->count++;
    r->fd = fd;
    r->events = events;
    if (events & ALOOP_READABLE)
        while ((n = read(fd, buf, sizeof buf)) > 0)
            r->bytes += (int)n;
    if (r->remove)
        (events & ALOOP_READABLE) ? aloop_remove_reader(loop, fd) : aloop_remove_writer(loop, fd);
}

/* ---- Running a piece of a test in a child process ------------------------
 * For what must not leak into the test process (a lowered RLIMIT_NOFILE, an
 * environment, fork itself).  The child returns 0 or fails with a message. */

struct child_ctx { char msg[2048]; };

static int child_fail(struct child_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int child_fail(struct child_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    return 1;
}

#define CHILD_CHECK(c, cond, ...) do { if (!(cond)) return child_fail((c), __VA_ARGS__); } while (0)

typedef int (*child_fn)(struct child_ctx *c, const char *be);

static void run_in_child(child_fn fn, const char *be, const char *what)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct child_ctx c;
        memset(&c, 0, sizeof c);
        close(p[0]);
        int r = fn(&c, be);
        if (r)
            (void)!write(p[1], c.msg, strlen(c.msg));
        _exit(r ? 1 : 0);
    }
    close(p[1]);
    char msg[2048];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof msg - 1 && (n = read(p[0], msg + len, sizeof msg - 1 - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        len += (size_t)n;
    }
    msg[len] = 0;
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s on %s: %s", what, be,
                  WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : msg);
}

/* ---- Fixture ------------------------------------------------------------ */

static void setup(void)
{
    g_main_thread = pthread_self();
    unsetenv("ALOOP_BACKEND");
}

static void teardown(void)
{
    unsetenv("ALOOP_BACKEND");
}

/* ======================================================================== */
/* File-descriptor exhaustion                                               */
/* ======================================================================== */

/* How many more fds this process may open now. */
static int free_fds(void)
{
    int fds[4096], n = 0;
    while (n < 4096 && (fds[n] = dup(0)) >= 0)
        n++;
    for (int k = 0; k < n; k++)
        close(fds[k]);
    return n;
}

/* Open fds until EMFILE; returns how many were taken (closed by the caller). */
static int fill_fds(int *fds, int cap)
{
    int n = 0;
    while (n < cap && (fds[n] = dup(0)) >= 0)
        n++;
    return n;
}

/* aloop_new with no fd left gives a clean negative errno, leaks no fd on any
 * failure path, and works as soon as enough fds are free again. */
static int emfile_new_child(struct child_ctx *c, const char *be)
{
    aloop_t *l = NULL;
    int r = aloop_new(&l, be);          /* loads a module before the squeeze */
    CHILD_CHECK(c, r == 0, "first aloop_new = %d", r);
    aloop_close(l);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 256;
    CHILD_CHECK(c, setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s", strerror(errno));

    int fds[256];
    int n = fill_fds(fds, 256);
    CHILD_CHECK(c, n > 0 && n < 256 && errno == EMFILE, "could not exhaust fds (%d)", n);
    l = NULL;
    r = aloop_new(&l, be);
    CHILD_CHECK(c, r < 0 && r > -4096, "aloop_new with no fd left = %d", r);
    CHILD_CHECK(c, l == NULL, "aloop_new failed but set the loop");
    if (is_native(be))
        CHILD_CHECK(c, r == -EMFILE, "aloop_new with no fd left = %d (%s), not -EMFILE",
                    r, aloop_strerror(r));
    CHILD_CHECK(c, aloop_get_event_loop() == NULL, "aloop_get_event_loop without fds");

    /* Give fds back one at a time: every failure is clean and leaks nothing
     * (the backend's init fails at each of its fd allocations in turn). */
    int ok = 0;
    while (n > 0 && !ok) {
        close(fds[--n]);
        int before = free_fds();
        l = NULL;
        r = aloop_new(&l, be);
        if (r < 0) {
            CHILD_CHECK(c, r > -4096 && l == NULL, "aloop_new = %d with %d fds free", r, before);
            CHILD_CHECK(c, free_fds() == before, "aloop_new failing with %d fds free leaked %d fds",
                        before, before - free_fds());
            continue;
        }
        ok = 1;
        int cnt = 0;
        CHILD_CHECK(c, aloop_call_soon(l, cb_count, &cnt) > 0, "call_soon on the squeezed loop");
        CHILD_CHECK(c, aloop_call_soon_threadsafe(l, cb_count, &cnt) == 0, "threadsafe");
        r = aloop_run(l, ALOOP_RUN_DEFAULT);
        CHILD_CHECK(c, r == 0 && cnt == 2, "run = %d, %d callbacks", r, cnt);
        CHILD_CHECK(c, aloop_close(l) == 0, "close");
        CHILD_CHECK(c, free_fds() == before, "a closed loop left %d fds open", before - free_fds());
    }
    CHILD_CHECK(c, ok, "aloop_new never succeeded");
    while (n > 0)
        close(fds[--n]);
    return 0;
}

START_TEST(test_emfile_new)
{
    run_in_child(emfile_new_child, BE, "EMFILE on aloop_new");
}
END_TEST

static void sig_count(aloop_t *loop, void *arg)
{
    (void)loop;
    (*(int *)arg)++;
}

/* A loop that exists keeps working when the process runs out of fds; what
 * needs a new fd fails cleanly. */
static int emfile_running_child(struct child_ctx *c, const char *be)
{
    aloop_t *l = NULL, *l2 = NULL;
    int r = aloop_new(&l, be);
    CHILD_CHECK(c, r == 0, "aloop_new = %d", r);
    int p[2];
    CHILD_CHECK(c, pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0, "pipe");
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 256;
    CHILD_CHECK(c, setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit");
    int fds[256];
    int n = fill_fds(fds, 256);
    CHILD_CHECK(c, n > 0 && n < 256, "could not exhaust fds");

    r = aloop_new(&l2, be);
    CHILD_CHECK(c, r < 0 && l2 == NULL, "second aloop_new without fds = %d", r);
    struct io_rec rd = { .remove = 1 };
    r = aloop_add_reader(l, p[0], io_cb, &rd);
    CHILD_CHECK(c, r == 0, "add_reader without free fds = %d", r);
    int sigs = 0, calls = 0;
    r = aloop_add_signal_handler(l, SIGUSR1, sig_count, &sigs);
    CHILD_CHECK(c, r == 0 || (r < 0 && r > -4096), "add_signal_handler = %d", r);
    int have_sig = r == 0;
    CHILD_CHECK(c, aloop_call_soon_threadsafe(l, cb_count, &calls) == 0, "threadsafe");
    CHILD_CHECK(c, aloop_call_later(l, 1 * ALOOP_MS, cb_count, &calls) > 0, "call_later");
    CHILD_CHECK(c, write(p[1], "x", 1) == 1, "write");
    if (have_sig)
        raise(SIGUSR1);
    for (int k = 0; k < 200 && (calls < 2 || rd.count < 1 || (have_sig && sigs < 1)); k++) {
        r = aloop_run(l, ALOOP_RUN_ONCE);
        CHILD_CHECK(c, r >= 0, "run without free fds = %d (%s)", r, aloop_strerror(r));
    }
    CHILD_CHECK(c, calls == 2 && rd.count == 1, "calls %d, reader %d", calls, rd.count);
    CHILD_CHECK(c, !have_sig || sigs >= 1, "signal callback did not run");
    if (have_sig)
        CHILD_CHECK(c, aloop_remove_signal_handler(l, SIGUSR1) == 0, "remove signal");
    CHILD_CHECK(c, aloop_close(l) == 0, "close");
    while (n > 0)
        close(fds[--n]);
    close(p[0]);
    close(p[1]);
    return 0;
}

START_TEST(test_emfile_running_loop)
{
    run_in_child(emfile_running_child, BE, "EMFILE with a running loop");
}
END_TEST

/* ======================================================================== */
/* Closed fds and reused numbers                                            */
/* ======================================================================== */

/* The rule is "remove, then close".  A server that follows it still closes
 * one connection and accepts the next, which gets the same number, within
 * one iteration: the new fd must be watched. */
START_TEST(test_fd_reuse_after_remove)
{
    aloop_t *l = NEW_LOOP();
    int a[2], b[2];
    struct io_rec r1 = { 0 }, r2 = { 0 };
    mk_socketpair(a);
    ck_assert_int_eq(aloop_add_reader(l, a[0], io_cb, &r1), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    int num = a[0];
    ck_assert_int_eq(aloop_remove_reader(l, a[0]), 0);
    close2(a);
    mk_socketpair(b);
    ck_assert_msg(b[0] == num, "precondition: the number is reused (%d, %d)", b[0], num);
    ck_assert_int_eq(aloop_add_reader(l, b[0], io_cb, &r2), 0);
    put(b[1]);
    int fired = 0;
    ck_assert_int_gt(aloop_call_later(l, 2 * ALOOP_SEC, cb_flag_stop, &fired), 0);
    for (int k = 0; k < 10 && r2.count == 0 && !fired; k++)
        ck_assert_int_ge(aloop_run(l, ALOOP_RUN_ONCE), 0);
    ck_assert_msg(r2.count == 1, "the reader of the new fd %d fired %d times", b[0], r2.count);
    ck_assert_int_eq(r2.bytes, 1);
    ck_assert_int_eq(r1.count, 0);
    ck_assert_int_eq(aloop_remove_reader(l, b[0]), 0);
    close_loop(l);
    close2(b);
}
END_TEST

/* The same from inside a callback: a reader that sees EOF removes itself and
 * closes; a listener-like callback in the same iteration gets the number. */
static struct {
    int old_fd, new_fd[2], reused, got, add_rc;
    struct io_rec newrec;
} RU;

static void ru_eof_reader(aloop_t *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    (void)arg;
    char buf[64];
    if (read(fd, buf, sizeof buf) > 0)
        return;
    aloop_remove_reader(loop, fd);
    close(fd);
    /* "accept": a new connection with the freed number */
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, RU.new_fd);
    RU.reused = RU.new_fd[0] == RU.old_fd || RU.new_fd[1] == RU.old_fd;
    int watched = RU.new_fd[0] == RU.old_fd ? RU.new_fd[0] : RU.new_fd[1];
    int peer = watched == RU.new_fd[0] ? RU.new_fd[1] : RU.new_fd[0];
    RU.add_rc = aloop_add_reader(loop, watched, io_cb, &RU.newrec);
    (void)!write(peer, "hello", 5);
}

START_TEST(test_fd_reuse_in_callback)
{
    aloop_t *l = NEW_LOOP();
    int a[2];
    memset(&RU, 0, sizeof RU);
    RU.newrec.remove = 1;
    mk_socketpair(a);
    RU.old_fd = a[0];
    ck_assert_int_eq(aloop_add_reader(l, a[0], ru_eof_reader, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    close(a[1]);        /* EOF on a[0] */
    int fired = 0;
    aloop_id_t safety = aloop_call_later(l, 3 * ALOOP_SEC, cb_flag_stop, &fired);
    ck_assert_int_gt(safety, 0);
    for (int k = 0; k < 20 && RU.newrec.count == 0 && !fired; k++)
        ck_assert_int_ge(aloop_run(l, ALOOP_RUN_ONCE), 0);
    ck_assert_msg(RU.reused, "precondition: the number was reused");
    ck_assert_int_eq(RU.add_rc, 0);
    ck_assert_msg(RU.newrec.count == 1, "the new connection's reader fired %d times (timeout %d)",
                  RU.newrec.count, fired);
    ck_assert_int_eq(RU.newrec.bytes, 5);
    ck_assert_int_eq(aloop_cancel(l, safety), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    close_loop(l);
    close2(RU.new_fd);
}
END_TEST

/* Adding a watcher to a closed fd is -EBADF, also while the removal of its
 * previous watcher is still pending. */
START_TEST(test_add_closed_fd_pending_removal)
{
    aloop_t *l = NEW_LOOP();
    int a[2];
    struct io_rec r = { 0 };
    mk_socketpair(a);
    ck_assert_int_eq(aloop_add_reader(l, a[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_add_writer(l, a[1], io_cb, &r), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(aloop_remove_reader(l, a[0]), 0);
    ck_assert_int_eq(aloop_remove_writer(l, a[1]), 0);
    close2(a);
    ck_assert_int_eq(aloop_add_reader(l, a[0], io_cb, &r), -EBADF);
    ck_assert_int_eq(aloop_add_writer(l, a[1], io_cb, &r), -EBADF);
    ck_assert_int_eq(aloop_remove_reader(l, a[0]), -ENOENT);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    close_loop(l);
}
END_TEST

/* An fd closed while watched: no crash and no spin; once its watcher is
 * removed, the number (reused by a new socket) can be watched again. */
START_TEST(test_fd_closed_while_watched_then_reused)
{
    aloop_t *l = NEW_LOOP();
    int a[2], b[2];
    struct io_rec r1 = { 0 }, w1 = { 0 }, r2 = { 0 };
    mk_socketpair(a);
    put(a[1]);
    ck_assert_int_eq(aloop_add_reader(l, a[0], io_cb, &r1), 0);
    ck_assert_int_eq(aloop_add_writer(l, a[0], io_cb, &w1), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(r1.count, 1);
    ck_assert_int_eq(w1.count, 1);
    int num = a[0];
    close2(a);
    for (int k = 0; k < 5; k++) {
        int rc = aloop_run(l, ALOOP_RUN_NOWAIT);
        ck_assert_msg(rc >= 0, "run after close = %d", rc);
    }
    ck_assert_int_eq(r1.count, 1);
    ck_assert_int_eq(w1.count, 1);
    ck_assert_int_eq(aloop_remove_reader(l, num), 0);
    ck_assert_int_eq(aloop_remove_writer(l, num), 0);
    mk_socketpair(b);
    ck_assert_int_eq(b[0], num);
    ck_assert_int_eq(aloop_add_reader(l, b[0], io_cb, &r2), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(r2.count, 0);          /* nothing to read yet */
    put(b[1]);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(r2.count, 1);
    ck_assert_int_eq(r2.bytes, 1);
    ck_assert_int_eq(r1.count + w1.count, 2);
    ck_assert_int_eq(aloop_remove_reader(l, b[0]), 0);
    close_loop(l);
    close2(b);
}
END_TEST

/* stderr into a temporary file while a test runs, so that a library
 * (libevent logs failed epoll_ctl calls) printing anything is seen. */
static int stderr_capture(int *saved)
{
    char path[] = "/tmp/aloop-stderr-XXXXXX";
    int f = mkstemp(path);
    ck_assert_int_ge(f, 0);
    unlink(path);
    fflush(stderr);
    *saved = dup(2);
    ck_assert_int_ge(*saved, 0);
    ck_assert_int_eq(dup2(f, 2), 2);
    return f;
}

static off_t stderr_release(int f, int saved)
{
    fflush(stderr);
    ck_assert_int_eq(dup2(saved, 2), 2);
    close(saved);
    off_t n = lseek(f, 0, SEEK_END);
    close(f);
    return n;
}

/* A watched fd closed before the loop ever polled it -- the rule is broken,
 * the loop must survive: no abort (libuv's uv_run aborts on an epoll_ctl
 * that fails), nothing printed (libevent warns), and removal still works.
 * Variants: a reader; a reader and a writer (the writer's change waits on
 * the change list); a writer polled once, then a reader added; the number
 * reused at once by a regular file, which epoll refuses (EPERM). */
START_TEST(test_fd_closed_before_first_poll)
{
    for (int mode = 0; mode < 5; mode++) {
        int saved, cap = stderr_capture(&saved);
        aloop_t *l = NEW_LOOP();
        int a[2], reuse = -1;
        struct io_rec r = { 0 }, w = { 0 };
        mk_socketpair(a);
        ck_assert_int_eq(aloop_add_reader(l, a[0], io_cb, &r), 0);
        if (mode == 1 || mode == 4)
            ck_assert_int_eq(aloop_add_writer(l, a[0], io_cb, &w), 0);
        if (mode == 2) {
            ck_assert_int_eq(aloop_remove_reader(l, a[0]), 0);
            ck_assert_int_eq(aloop_add_writer(l, a[0], io_cb, &w), 0);
            ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
            ck_assert_int_eq(aloop_add_reader(l, a[0], io_cb, &r), 0);
        }
        int num = a[0];
        close2(a);
        if (mode >= 3) {
            reuse = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
            ck_assert_int_eq(reuse, num);
        }
        int wbefore = w.count;
        for (int k = 0; k < 3; k++) {
            int rc = aloop_run(l, ALOOP_RUN_NOWAIT);
            ck_assert_msg(rc >= 0, "mode %d: run after close = %d", mode, rc);
        }
        if (mode < 3) {     /* a closed fd stops firing */
            ck_assert_int_eq(r.count, 0);
            ck_assert_int_eq(w.count, wbefore);
        }
        ck_assert_int_eq(aloop_remove_reader(l, num), 0);
        if (mode != 0 && mode != 3)
            ck_assert_int_eq(aloop_remove_writer(l, num), 0);
        ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
        close_loop(l);
        if (reuse >= 0)
            close(reuse);
        off_t printed = stderr_release(cap, saved);
        ck_assert_msg(printed == 0, "mode %d: %lld bytes printed to stderr", mode, (long long)printed);
    }
}
END_TEST

/* Run ONCE until a timer of `ms` fires; the number of iterations it took
 * (a few if the loop blocked, thousands if something kept it spinning). */
static int iterations_for(aloop_t *l, unsigned ms)
{
    int fired = 0, n = 0;
    aloop_id_t t = aloop_call_later(l, ms * ALOOP_MS, cb_flag_stop, &fired);
    ck_assert_int_gt(t, 0);
    while (!fired && n < 100000) {
        ck_assert_int_ge(aloop_run(l, ALOOP_RUN_ONCE), 0);
        n++;
    }
    return n;
}

/* Remove, then close -- but the old file lives on (a dup here; a forked
 * child does the same), and its number goes to a new file at once: the old
 * file's readiness must neither reach the new file's reader nor keep the
 * loop spinning. */
START_TEST(test_fd_reuse_old_file_alive)
{
    aloop_t *l = NEW_LOOP();
    int a[2], b[2];
    struct io_rec r1 = { 0 }, r2 = { 0 };
    for (int pass = 0; pass < 2; pass++) {
        memset(&r2, 0, sizeof r2);
        mk_socketpair(a);
        ck_assert_int_eq(aloop_add_reader(l, a[0], io_cb, &r1), 0);
        ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
        int num = a[0];
        ck_assert_int_eq(aloop_remove_reader(l, a[0]), 0);
        if (pass == 1)          /* the removal reaches the backend first */
            ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
        int keep = dup(a[0]);
        ck_assert_int_ge(keep, 0);
        close(a[0]);
        mk_socketpair(b);
        ck_assert_msg(b[0] == num, "precondition: the number is reused (%d, %d)", b[0], num);
        ck_assert_int_eq(aloop_add_reader(l, b[0], io_cb, &r2), 0);
        put(a[1]);              /* the old file is readable */
        int n = iterations_for(l, 100);
        ck_assert_msg(r2.count == 0, "pass %d: the new fd's reader fired %d times for the old file",
                      pass, r2.count);
        ck_assert_msg(n < 50, "pass %d: %d iterations in 100 ms: spinning", pass, n);
        put(b[1]);
        iterations_for(l, 20);
        ck_assert_int_eq(r2.count, 1);
        ck_assert_int_eq(r2.bytes, 1);
        ck_assert_int_eq(aloop_remove_reader(l, b[0]), 0);
        close(keep);
        close(a[1]);
        close2(b);
    }
    ck_assert_int_eq(r1.count, 0);
    close_loop(l);
}
END_TEST

/* A watcher removed while its fd is ready stays silent and costs no spin;
 * added again (as a reader, or as a writer instead) it fires as new. */
START_TEST(test_fd_removed_while_ready)
{
    aloop_t *l = NEW_LOOP();
    int a[2];
    struct io_rec r = { 0 }, w = { .remove = 1 };
    mk_socketpair(a);
    ck_assert_int_eq(aloop_add_reader(l, a[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(aloop_remove_reader(l, a[0]), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    put(a[1]);
    int n = iterations_for(l, 100);
    ck_assert_int_eq(r.count, 0);
    ck_assert_msg(n < 50, "%d iterations in 100 ms: spinning", n);
    ck_assert_int_eq(aloop_add_reader(l, a[0], io_cb, &r), 0);
    iterations_for(l, 20);
    ck_assert_int_eq(r.count, 1);
    ck_assert_int_eq(r.bytes, 1);
    ck_assert_int_eq(aloop_remove_reader(l, a[0]), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(aloop_add_writer(l, a[0], io_cb, &w), 0);
    iterations_for(l, 20);
    ck_assert_int_eq(w.count, 1);               /* and removed itself */
    put(a[1]);
    iterations_for(l, 20);
    ck_assert_int_eq(r.count, 1);
    close_loop(l);
    close2(a);
}
END_TEST

/* A file comes back under a number another file held meanwhile (dup2), to
 * be watched for what the other file was watched for: it is watched for
 * that, not for what it was watched for itself before. */
START_TEST(test_fd_renumbered_file)
{
    /* libev keeps registrations lazily too, and assumes one it finds (ADD
     * says EEXIST) asks for the mask it last set under the number: here the
     * other file's, so it never changes the old one (libev 4.33) */
    if (!strcmp(BE, "libev"))
        return;
    aloop_t *l = NEW_LOOP();
    int a[2], b[2];
    struct io_rec r = { 0 }, wb = { 0 }, wa = { .remove = 1 };
    mk_socketpair(a);
    int n = a[0];
    ck_assert_int_eq(aloop_add_reader(l, n, io_cb, &r), 0);         /* a[0]: readable? */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(aloop_remove_reader(l, n), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    int keep = dup(n);
    ck_assert_int_ge(keep, 0);
    close(n);
    mk_socketpair(b);
    ck_assert_msg(b[0] == n, "precondition: the number is reused (%d, %d)", b[0], n);
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    while (write(n, buf, sizeof buf) > 0) {}                        /* b[0]: not writable */
    ck_assert_int_eq(aloop_add_writer(l, n, io_cb, &wb), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(aloop_remove_writer(l, n), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(wb.count, 0);
    close(n);                                   /* b[0]: gone */
    ck_assert_int_eq(dup2(keep, n), n);         /* a[0] is back under n */
    ck_assert_int_eq(aloop_add_writer(l, n, io_cb, &wa), 0);        /* a[0]: writable */
    iterations_for(l, 50);
    ck_assert_msg(wa.count == 1, "the writer of the renumbered file fired %d times", wa.count);
    ck_assert_int_eq(r.count, 0);
    close_loop(l);
    close(keep);
    close(n);
    close(a[1]);
    close(b[1]);
}
END_TEST

/* A new socket that gets the number of a closed one starts at the default
 * priority, not at the one set for the old fd. */
static int g_order[16], g_norder;
static void cb_order(aloop_t *loop, void *arg)
{
    (void)loop;
    if (g_norder < 16)
        g_order[g_norder++] = (int)(intptr_t)arg;
}
static void io_order(aloop_t *loop, int fd, unsigned events, void *arg)
{
    char buf[16];
    (void)events;
    while (read(fd, buf, sizeof buf) > 0) {}
    aloop_remove_reader(loop, fd);
    cb_order(loop, arg);
}

START_TEST(test_fd_reuse_default_priority)
{
    aloop_t *l = NEW_LOOP();
    int a[2], b[2];
    struct io_rec r = { 0 };
    mk_socketpair(a);
    ck_assert_int_eq(aloop_add_reader(l, a[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_set_io_priority(l, a[0], ALOOP_PRIO_MAX), 0);
    ck_assert_int_eq(aloop_remove_reader(l, a[0]), 0);
    ck_assert_int_eq(aloop_set_io_priority(l, a[0], ALOOP_PRIO_MAX), -ENOENT);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    int num = a[0];
    close2(a);
    mk_socketpair(b);
    ck_assert_int_eq(b[0], num);
    g_norder = 0;
    put(b[1]);
    ck_assert_int_eq(aloop_add_reader(l, b[0], io_order, TAG(2)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 1, cb_order, TAG(1)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, -1, cb_order, TAG(3)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(g_norder, 3);
    ck_assert_msg(g_order[0] == 1 && g_order[1] == 2 && g_order[2] == 3,
                  "order %d %d %d: the new fd's reader did not run at the default priority",
                  g_order[0], g_order[1], g_order[2]);
    close_loop(l);
    close2(b);
}
END_TEST

/* ======================================================================== */
/* Callbacks abusing the loop                                               */
/* ======================================================================== */

#define NRM 8
static struct {
    int p[NRM][2];
    int fired, closed[NRM];
} RM;

/* Whichever reader runs first removes every reader, closes every fd. */
static void rm_all_reader(aloop_t *loop, int fd, unsigned events, void *arg)
{
    (void)fd;
    (void)events;
    (void)arg;
    RM.fired++;
    for (int k = 0; k < NRM; k++) {
        if (RM.closed[k])
            continue;
        if (aloop_remove_reader(loop, RM.p[k][0]) != 0)
            RM.fired += 1000;
        close2(RM.p[k]);
        RM.closed[k] = 1;
    }
}

START_TEST(test_cb_closes_all_watchers)
{
    aloop_t *l = NEW_LOOP();
    memset(&RM, 0, sizeof RM);
    for (int k = 0; k < NRM; k++) {
        mk_pipe(RM.p[k]);
        put(RM.p[k][1]);
        ck_assert_int_eq(aloop_add_reader(l, RM.p[k][0], rm_all_reader, NULL), 0);
    }
    uint64_t t0 = mono_ns();
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_uint_lt(mono_ns() - t0, 2 * ALOOP_SEC);
    ck_assert_msg(RM.fired == 1, "%d reader calls (>= 1000: a removal failed)", RM.fired);
    close_loop(l);
}
END_TEST

#define NCX 1000
static struct {
    aloop_id_t ids[5 * NCX];
    int nids, ran, cancel_fail, self_rc, p[2];
} CX;

static void cx_victim(aloop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    CX.ran++;
}
static void cx_io_victim(aloop_t *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    (void)arg;
    CX.ran++;
}

static void cx_killer(aloop_t *loop, void *arg)
{
    aloop_id_t self = *(aloop_id_t *)arg;
    for (int k = 0; k < CX.nids; k++) {
        int r = aloop_cancel(loop, CX.ids[k]);
        if (CX.ids[k] == self)
            CX.self_rc = r;
        else if (r != 0)
            CX.cancel_fail++;
    }
    if (aloop_remove_reader(loop, CX.p[0]) != 0)
        CX.cancel_fail++;
    if (aloop_remove_writer(loop, CX.p[1]) != 0)
        CX.cancel_fail++;
    if (aloop_remove_signal_handler(loop, SIGUSR1) != 0)
        CX.cancel_fail++;
}

/* The first callback cancels every call and timer (due, queued in this very
 * iteration, far, periodic) and removes every watcher: nothing else runs and
 * the loop is empty at once. */
START_TEST(test_cb_cancels_everything)
{
    aloop_t *l = NEW_LOOP();
    static aloop_id_t self;
    memset(&CX, 0, sizeof CX);
    mk_pipe(CX.p);
    put(CX.p[1]);
    self = aloop_call_soon_prio(l, ALOOP_PRIO_MAX, cx_killer, &self);
    ck_assert_int_gt(self, 0);
    CX.ids[CX.nids++] = self;
    for (int k = 0; k < NCX; k++) {
        CX.ids[CX.nids++] = aloop_call_soon_prio(l, k % 5 - 2, cx_victim, NULL);
        CX.ids[CX.nids++] = aloop_call_at(l, 1 + (uint64_t)k, cx_victim, NULL);
        CX.ids[CX.nids++] = aloop_call_later(l, (uint64_t)(k + 10) * ALOOP_SEC, cx_victim, NULL);
        CX.ids[CX.nids++] = aloop_call_every(l, (uint64_t)(k + 1) * ALOOP_MS, cx_victim, NULL);
    }
    for (int k = 0; k < CX.nids; k++)
        ck_assert_int_gt(CX.ids[k], 0);
    ck_assert_int_eq(aloop_add_reader(l, CX.p[0], cx_io_victim, NULL), 0);
    ck_assert_int_eq(aloop_add_writer(l, CX.p[1], cx_io_victim, NULL), 0);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, cx_victim, NULL), 0);
    raise(SIGUSR1);
    ck_assert_int_eq(aloop_call_soon_threadsafe(l, cx_victim, NULL), 0);   /* not cancellable */
    uint64_t t0 = mono_ns();
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_uint_lt(mono_ns() - t0, 2 * ALOOP_SEC);
    ck_assert_int_eq(CX.cancel_fail, 0);
    ck_assert_int_eq(CX.self_rc, -ENOENT);      /* it is running: already gone */
    ck_assert_msg(CX.ran == 1, "%d cancelled callbacks ran (1 thread-safe call expected)", CX.ran);
    for (int k = 0; k < CX.nids; k++)
        ck_assert_int_eq(aloop_cancel(l, CX.ids[k]), -ENOENT);
    close_loop(l);
    close2(CX.p);
}
END_TEST

#define NADD 10000
static struct {
    int *seen;          /* per tag: times run */
    int *order;
    int norder, adder_runs, in_adder_iteration;
} AD;

static void ad_cb(aloop_t *loop, void *arg)
{
    (void)loop;
    int tag = (int)(intptr_t)arg;
    AD.seen[tag]++;
    AD.order[AD.norder++] = tag;
}

static void ad_adder(aloop_t *loop, void *arg)
{
    (void)arg;
    AD.adder_runs++;
    for (int k = 0; k < NADD; k++) {
        aloop_call_soon_prio(loop, k % 5 - 2, ad_cb, TAG(k));
        aloop_call_at(loop, 1 + (uint64_t)(k % 7), ad_cb, TAG(NADD + k));
        aloop_call_soon_threadsafe(loop, ad_cb, TAG(2 * NADD + k));
    }
}

/* A callback adds 10,000 calls at each priority mix, 10,000 due timers and
 * 10,000 thread-safe calls: none runs in its iteration; in the next one all
 * run once, in exactly the documented order. */
START_TEST(test_cb_adds_10000)
{
    aloop_t *l = NEW_LOOP();
    memset(&AD, 0, sizeof AD);
    AD.seen = calloc(3 * NADD, sizeof *AD.seen);
    AD.order = calloc(3 * NADD, sizeof *AD.order);
    ck_assert_int_gt(aloop_call_soon(l, ad_adder, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(AD.adder_runs, 1);
    ck_assert_int_eq(AD.norder, 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(AD.norder, 3 * NADD);
    for (int k = 0; k < 3 * NADD; k++)
        ck_assert_msg(AD.seen[k] == 1, "tag %d ran %d times", k, AD.seen[k]);
    /* expected: call_soon at prio 2, 1, then 0 (FIFO), then step 3's
     * thread-safe calls, then the timers (deadline, then FIFO), then -1, -2 */
    int pos = 0;
    for (int prio = 2; prio >= -2; prio--) {
        for (int k = 0; k < NADD; k++)
            if (k % 5 - 2 == prio) {
                ck_assert_msg(AD.order[pos] == k, "position %d: %d, expected call_soon %d",
                              pos, AD.order[pos], k);
                pos++;
            }
        if (prio != 0)
            continue;
        for (int k = 0; k < NADD; k++, pos++)
            ck_assert_msg(AD.order[pos] == 2 * NADD + k, "position %d: %d, expected thread-safe %d",
                          pos, AD.order[pos], 2 * NADD + k);
        for (int d = 0; d < 7; d++)
            for (int k = d; k < NADD; k += 7, pos++)
                ck_assert_msg(AD.order[pos] == NADD + k, "position %d: %d, expected timer %d",
                              pos, AD.order[pos], NADD + k);
    }
    ck_assert_int_eq(pos, 3 * NADD);
    close_loop(l);
    free(AD.seen);
    free(AD.order);
}
END_TEST

/* ======================================================================== */
/* fork()                                                                   */
/* ======================================================================== */

static struct {
    aloop_t *parent;
    int p[2];
} FK;

/* The child: close the inherited loop, then build and run a new one. */
static int fork_child(struct child_ctx *c, const char *be)
{
    int r = aloop_close(FK.parent);
    CHILD_CHECK(c, r == 0, "aloop_close(inherited) = %d", r);
    aloop_t *l = NULL;
    r = aloop_new(&l, be);
    CHILD_CHECK(c, r == 0, "aloop_new in the child = %d", r);
    int q[2];
    CHILD_CHECK(c, pipe2(q, O_NONBLOCK | O_CLOEXEC) == 0, "pipe");
    struct io_rec rd = { .remove = 1 };
    int calls = 0, sigs = 0;
    CHILD_CHECK(c, aloop_add_reader(l, q[0], io_cb, &rd) == 0, "add_reader");
    CHILD_CHECK(c, aloop_add_signal_handler(l, SIGUSR1, sig_count, &sigs) == 0, "signal");
    CHILD_CHECK(c, aloop_call_later(l, 1 * ALOOP_MS, cb_count, &calls) > 0, "timer");
    CHILD_CHECK(c, aloop_call_soon_threadsafe(l, cb_count, &calls) == 0, "threadsafe");
    CHILD_CHECK(c, write(q[1], "x", 1) == 1, "write");
    raise(SIGUSR1);
    for (int k = 0; k < 100 && (calls < 2 || rd.count < 1 || sigs < 1); k++)
        CHILD_CHECK(c, aloop_run(l, ALOOP_RUN_ONCE) >= 0, "run");
    CHILD_CHECK(c, calls == 2 && rd.count == 1 && sigs >= 1, "child loop: calls %d reader %d signals %d",
                calls, rd.count, sigs);
    CHILD_CHECK(c, aloop_remove_signal_handler(l, SIGUSR1) == 0, "remove signal");
    CHILD_CHECK(c, aloop_close(l) == 0, "close");
    return 0;
}

/* The child closes the loop it inherited and makes its own; the parent's
 * loop is not disturbed: its reader, writer, signal handler, timers and
 * wake-up all still work. */
START_TEST(test_fork_child_closes_loop)
{
    aloop_t *l = NEW_LOOP();
    int w[2], sigs = 0, calls = 0, timeout = 0;
    struct io_rec rd = { .remove = 1 }, wr = { .remove = 1 };
    FK.parent = l;
    mk_pipe(FK.p);
    mk_pipe(w);
    ck_assert_int_eq(aloop_add_reader(l, FK.p[0], io_cb, &rd), 0);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, sig_count, &sigs), 0);
    aloop_id_t t = aloop_call_later(l, 50 * ALOOP_MS, cb_count, &calls);
    ck_assert_int_gt(t, 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);   /* everything reached the backend */

    run_in_child(fork_child, BE, "fork: the child closes and re-creates");

    ck_assert_int_eq(aloop_add_writer(l, w[1], io_cb, &wr), 0);
    put(FK.p[1]);
    raise(SIGUSR1);
    ck_assert_int_gt(aloop_call_later(l, 5 * ALOOP_SEC, cb_flag_stop, &timeout), 0);
    ck_assert_int_eq(aloop_call_soon_threadsafe(l, cb_count, &calls), 0);
    for (int k = 0; k < 200 && !timeout && (rd.count < 1 || wr.count < 1 || sigs < 1 || calls < 2); k++)
        ck_assert_int_ge(aloop_run(l, ALOOP_RUN_ONCE), 0);
    ck_assert_msg(rd.count == 1, "parent's reader fired %d times after the child closed its loop", rd.count);
    ck_assert_int_eq(wr.count, 1);
    ck_assert_msg(sigs >= 1, "parent's signal handler did not run");
    ck_assert_int_eq(calls, 2);
    ck_assert_int_eq(timeout, 0);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), 0);
    close_loop(l);
    close2(FK.p);
    close2(w);
}
END_TEST

/* The parent blocks in its loop while a child closes the inherited copy; a
 * later write still wakes the parent. */
static struct { int wfd; atomic_int go; } FB;

static void *fb_writer(void *arg)
{
    (void)arg;
    while (!atomic_load(&FB.go))
        sleep_us(1000);
    (void)!write(FB.wfd, "y", 1);
    return NULL;
}

static int fork_child_close_only(struct child_ctx *c, const char *be)
{
    (void)be;
    int r = aloop_close(FK.parent);
    CHILD_CHECK(c, r == 0, "aloop_close(inherited) = %d", r);
    return 0;
}

START_TEST(test_fork_parent_blocked)
{
    aloop_t *l = NEW_LOOP();
    int timeout = 0;
    struct io_rec rd = { .remove = 1 };
    pthread_t th;
    FK.parent = l;
    mk_pipe(FK.p);
    FB.wfd = FK.p[1];
    atomic_store(&FB.go, 0);
    ck_assert_int_eq(aloop_add_reader(l, FK.p[0], io_cb, &rd), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(pthread_create(&th, NULL, fb_writer, NULL), 0);
    for (int k = 0; k < 3; k++)
        run_in_child(fork_child_close_only, BE, "fork: the child closes");
    atomic_store(&FB.go, 1);
    aloop_id_t t = aloop_call_later(l, 5 * ALOOP_SEC, cb_flag_stop, &timeout);
    ck_assert_int_gt(t, 0);
    ck_assert_int_ge(aloop_run(l, ALOOP_RUN_ONCE), 0);
    pthread_join(th, NULL);
    ck_assert_msg(rd.count == 1 && !timeout, "parent's reader: %d calls, timeout %d", rd.count, timeout);
    ck_assert_int_eq(aloop_cancel(l, t), 0);
    close_loop(l);
    close2(FK.p);
}
END_TEST

/* ======================================================================== */
/* ALOOP_BACKEND and ALOOP_MODULE_PATH abuse; set-uid programs              */
/* ======================================================================== */

START_TEST(test_backend_env_garbage)
{
    static const char *const garbage[] = {
        "nope", " epoll", "epoll ", "EPOLL", "epoll\n", "epoll\t", "../epoll", "./poll",
        "/lib/x86_64-linux-gnu/libc.so.6", "libaloop-ev.so", "libaloop-uv", "%s%s%s%n",
        "libev:libuv", "poll,epoll", "\xff\xfe", "ep", "epol", "epolll", "select\x01",
    };
    const char *const *list = aloop_backends();
    aloop_t *l;
    for (size_t k = 0; k < sizeof garbage / sizeof garbage[0]; k++) {
        ck_assert_int_eq(setenv("ALOOP_BACKEND", garbage[k], 1), 0);
        l = NULL;
        int r = aloop_new(&l, NULL);
        ck_assert_msg(r == -ENOENT, "ALOOP_BACKEND=\"%s\": %d", garbage[k], r);
        ck_assert_ptr_null(l);
        ck_assert_int_eq(aloop_new(&l, garbage[k]), -ENOENT);
        ck_assert_ptr_null(l);
    }
    /* very long: 1 MiB of letters, and the backend's name repeated */
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', n);
    big[n] = 0;
    ck_assert_int_eq(setenv("ALOOP_BACKEND", big, 1), 0);
    ck_assert_int_eq(aloop_new(&l, NULL), -ENOENT);
    ck_assert_int_eq(aloop_new(&l, big), -ENOENT);
    size_t bl = strlen(BE);
    for (size_t off = 0; off + bl <= n; off += bl)
        memcpy(big + off, BE, bl);
    big[n - n % bl] = 0;
    ck_assert_int_eq(setenv("ALOOP_BACKEND", big, 1), 0);
    ck_assert_int_eq(aloop_new(&l, NULL), -ENOENT);
    free(big);
    /* empty: the best backend */
    ck_assert_int_eq(setenv("ALOOP_BACKEND", "", 1), 0);
    l = new_loop(NULL);
    ck_assert_str_eq(aloop_backend(l), list[0]);
    close_loop(l);
    l = NULL;       /* an empty name is a name, and no backend's */
    ck_assert_int_eq(aloop_new(&l, ""), -ENOENT);
    ck_assert_ptr_null(l);
    /* and the backend itself, by the variable */
    ck_assert_int_eq(setenv("ALOOP_BACKEND", BE, 1), 0);
    l = new_loop(NULL);
    ck_assert_str_eq(aloop_backend(l), BE);
    close_loop(l);
    unsetenv("ALOOP_BACKEND");
}
END_TEST

static const char *module_file(const char *be)
{
    if (!strcmp(be, "libev"))
        return "libaloop-ev.so";
    if (!strcmp(be, "libevent"))
        return "libaloop-event.so";
    if (!strcmp(be, "libuv"))
        return "libaloop-uv.so";
    return NULL;
}

static int module_path_child(struct child_ctx *c, const char *be)
{
    static const char *const paths[] = {
        "", ":", "::::::", "/nonexistent", "/nonexistent:/also/not", "%s%n", "relative/dir",
        "/dev/null", "/etc/passwd:",
    };
    size_t n = 70000;
    static char *big;       /* static: reachable in the forked children */
    big = malloc(n + 1);
    CHILD_CHECK(c, big != NULL, "malloc");
    for (size_t i = 0; i < n; i++)
        big[i] = (i % 300 == 299) ? ':' : 'd';
    big[n] = 0;
    /* one child per value: the registry loads a module at most once */
    for (size_t i = 0; i <= sizeof paths / sizeof paths[0]; i++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            setenv("ALOOP_MODULE_PATH", i < sizeof paths / sizeof paths[0] ? paths[i] : big, 1);
            aloop_t *l = NULL;
            int r = aloop_new(&l, be);
            if (is_native(be) ? r != 0 : (r != 0 && r != -ENOTSUP))
                _exit(2);
            if (r == 0 && aloop_close(l) != 0)
                _exit(3);
            const char *const *list = aloop_backends();
            if (!list || !list[0])
                _exit(4);
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
        CHILD_CHECK(c, WIFEXITED(st) && WEXITSTATUS(st) == 0,
                    "ALOOP_MODULE_PATH=\"%.40s\": status %d%s", i < sizeof paths / sizeof paths[0] ? paths[i] : big,
                    WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? " (killed by a signal)" : "");
    }
    free(big);

    /* a directory with a bogus module of this backend's name */
    const char *file = module_file(be);
    if (file) {
        char dir[] = "/tmp/aloop-fault-XXXXXX", fpath[PATH_MAX];
        CHILD_CHECK(c, mkdtemp(dir) != NULL, "mkdtemp");
        snprintf(fpath, sizeof fpath, "%s/%s", dir, file);
        FILE *f = fopen(fpath, "w");
        CHILD_CHECK(c, f != NULL, "fopen");
        fputs("not an ELF file\n", f);
        fclose(f);
        setenv("ALOOP_MODULE_PATH", dir, 1);
        aloop_t *l = NULL;
        int r = aloop_new(&l, be);
        int st = aloop_backend_status(be);
        unlink(fpath);
        rmdir(dir);
        /* refused; unless the search went on and found a real module in
         * the install's libdir */
        CHILD_CHECK(c, (r == -ENOTSUP && l == NULL && st == -ELIBBAD) || (r == 0 && st == 0),
                    "a bogus module: aloop_new = %d, status %d", r, st);
        if (r == 0)
            CHILD_CHECK(c, aloop_close(l) == 0, "close");
        r = aloop_new(&l, "poll");
        CHILD_CHECK(c, r == 0, "native backend beside a bogus module: %d", r);
        aloop_close(l);
    }
    return 0;
}

START_TEST(test_module_path_garbage)
{
    run_in_child(module_path_child, BE, "ALOOP_MODULE_PATH abuse");
}
END_TEST

/* Set-uid programs ignore ALOOP_BACKEND (and ALOOP_MODULE_PATH).  Needs
 * root to make a set-uid copy of tests/fault_setuid owned by nobody. */
START_TEST(test_setuid_ignores_env)
{
    const char *helper = getenv("ALOOP_FAULT_HELPER");
    const char *const *list = aloop_backends();
    if (!helper || access(helper, X_OK) != 0) {
        fprintf(stderr, "test_setuid_ignores_env: no helper (ALOOP_FAULT_HELPER), not checked\n");
        return;
    }
    struct passwd *pw = getpwnam("nobody");
    struct statvfs sv;
    char copy[PATH_MAX], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", helper);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    if (geteuid() != 0 || !pw || statvfs(dir, &sv) != 0 || (sv.f_flag & ST_NOSUID)) {
        fprintf(stderr, "test_setuid_ignores_env: not root or nosuid, not checked\n");
        return;
    }
    snprintf(copy, sizeof copy, "%s/fault_setuid-%d-%s", dir, (int)getpid(), BE);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", helper, copy);
    ck_assert_int_eq(system(cmd), 0);
    /* the reference: the same program, not set-uid, honours the variable */
    const char *want_env = BE, *want_suid = list[0];
    const char *value = BE;
    if (!strcmp(BE, list[0])) {
        value = "garbage-backend";        /* honoured: -ENOENT; ignored: the best */
        want_env = "error -2";
    }
    for (int suid = 0; suid < 2; suid++) {
        if (suid) {
            ck_assert_int_eq(chown(copy, pw->pw_uid, pw->pw_gid), 0);
            ck_assert_int_eq(chmod(copy, 04755), 0);
        }
        snprintf(cmd, sizeof cmd, "ALOOP_BACKEND='%s' '%s'", value, copy);
        FILE *f = popen(cmd, "r");
        ck_assert_ptr_nonnull(f);
        char out[256] = "";
        if (!fgets(out, sizeof out, f))
            out[0] = 0;
        int st = pclose(f);
        out[strcspn(out, "\n")] = 0;
        const char *want = suid ? want_suid : want_env;
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && !strcmp(out, want),
                      "%s helper with ALOOP_BACKEND=%s: \"%s\" (status %d), expected \"%s\"",
                      suid ? "set-uid" : "plain", value, out, st, want);
    }
    unlink(copy);
}
END_TEST

/* ======================================================================== */
/* EINTR storms                                                             */
/* ======================================================================== */

#define ST_TIMERS 300
static struct {
    aloop_t *loop;
    pthread_t target;
    atomic_int done, ts_off;
    atomic_int sent_ts, sent_sig;
    int wfd;
    uint64_t deadline[ST_TIMERS];
    int fired[ST_TIMERS], early, timers_left;
    int ts_ran, sig_ran, bytes;
    struct io_rec rd;
} ST;

static void st_noop_handler(int sig)
{
    (void)sig;
}

static void st_ts(aloop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    ST.ts_ran++;
}

static void st_timer(aloop_t *loop, void *arg)
{
    intptr_t k = (intptr_t)arg;
    ST.fired[k]++;
    if (mono_ns() < ST.deadline[k] || aloop_now(loop) < ST.deadline[k])
        ST.early++;
    (void)!write(ST.wfd, "t", 1);
    ST.timers_left--;
}

static void st_reader(aloop_t *loop, int fd, unsigned events, void *arg)
{
    (void)arg;
    (void)events;
    char buf[64];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        ST.bytes += (int)n;
    if (ST.bytes >= ST_TIMERS)
        aloop_remove_reader(loop, fd);
}

static void *st_storm(void *arg)
{
    (void)arg;
    for (unsigned k = 0; !atomic_load(&ST.done); k++) {
        pthread_kill(ST.target, SIGUSR2);       /* interrupts whatever blocks */
        if (k % 16 == 0) {
            pthread_kill(ST.target, SIGUSR1);   /* an aloop signal handler */
            atomic_fetch_add(&ST.sent_sig, 1);
        }
        if (k % 8 == 0 && !atomic_load(&ST.ts_off) && aloop_call_soon_threadsafe(ST.loop, st_ts, NULL) == 0)
            atomic_fetch_add(&ST.sent_ts, 1);
        sleep_us(50);
    }
    return NULL;
}

/* A thread keeps interrupting the loop's thread with signals (no
 * SA_RESTART) while it waits for timers, I/O, signals and thread-safe
 * calls: nothing fails, nothing fires early, nothing is lost. */
START_TEST(test_eintr_storm)
{
    aloop_t *l = NEW_LOOP();
    int p[2], timeout = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = st_noop_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;                            /* no SA_RESTART */
    ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    /* what SIGUSR1 falls back to once aloop's handler is removed */
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    memset(&ST, 0, sizeof ST);
    ST.loop = l;
    ST.target = pthread_self();
    mk_pipe(p);
    ST.wfd = p[1];
    ST.timers_left = ST_TIMERS;
    ck_assert_int_eq(aloop_add_reader(l, p[0], st_reader, NULL), 0);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, cb_count, &ST.sig_ran), 0);
    aloop_update_time(l);
    for (int k = 0; k < ST_TIMERS; k++) {
        uint64_t d = (uint64_t)((k * 7919) % 200) * ALOOP_MS / 2;    /* 0 .. 100 ms */
        ST.deadline[k] = aloop_now(l) + d;
        ck_assert_int_gt(aloop_call_later(l, d, st_timer, TAG(k)), 0);
    }
    aloop_id_t safety = aloop_call_later(l, 20 * ALOOP_SEC, cb_flag_stop, &timeout);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, st_storm, NULL), 0);
    /* wait for everything, in ONCE steps (each may be interrupted) */
    int rc = 0;
    for (int k = 0; k < 1000000 && !timeout && (ST.timers_left > 0 || ST.bytes < ST_TIMERS); k++) {
        rc = aloop_run(l, ALOOP_RUN_ONCE);
        if (rc < 0)
            break;
    }
    ck_assert_msg(rc >= 0, "aloop_run during the storm = %d (%s)", rc, aloop_strerror(rc));
    /* and a stretch of blocking with nothing else due: not cut short */
    atomic_store(&ST.ts_off, 1);
    aloop_update_time(l);
    uint64_t t0 = aloop_now(l);
    ck_assert_int_gt(aloop_call_later(l, 100 * ALOOP_MS, cb_nop, NULL), 0);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), 0);
    ck_assert_int_eq(aloop_cancel(l, safety), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_uint_ge(mono_ns() - t0, 100 * ALOOP_MS);
    atomic_store(&ST.done, 1);
    pthread_join(th, NULL);
    ck_assert_int_ge(aloop_run(l, ALOOP_RUN_NOWAIT), 0);   /* the last thread-safe calls */
    ck_assert_int_eq(timeout, 0);
    for (int k = 0; k < ST_TIMERS; k++)
        ck_assert_msg(ST.fired[k] == 1, "timer %d fired %d times", k, ST.fired[k]);
    ck_assert_int_eq(ST.early, 0);
    ck_assert_int_eq(ST.bytes, ST_TIMERS);
    ck_assert_int_eq(ST.ts_ran, atomic_load(&ST.sent_ts));
    ck_assert_msg(ST.sig_ran >= 1 || atomic_load(&ST.sent_sig) == 0, "no signal callback ran");
    close_loop(l);
    close2(p);
    signal(SIGUSR2, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
}
END_TEST

/* ======================================================================== */
/* Thread-safe calls and stop                                               */
/* ======================================================================== */

#define TM_THREADS 4
#define TM_PER 250000
static struct {
    aloop_t *loop;
    unsigned char *seen;        /* per call: times run */
    int total, wrong_thread, bad, dup;
    atomic_int errors;
} TM;

static void tm_cb(aloop_t *loop, void *arg)
{
    uintptr_t k = (uintptr_t)arg;
    if (!pthread_equal(pthread_self(), g_main_thread))
        TM.wrong_thread++;
    if (k >= (uintptr_t)TM_THREADS * TM_PER) {
        TM.bad++;
        return;
    }
    if (TM.seen[k]++)
        TM.dup++;
    if (++TM.total == TM_THREADS * TM_PER)
        aloop_stop(loop);
}

static void *tm_thread(void *arg)
{
    uintptr_t t = (uintptr_t)arg;
    for (uintptr_t k = 0; k < TM_PER; k++)
        if (aloop_call_soon_threadsafe(TM.loop, tm_cb, (void *)(t * TM_PER + k)) != 0)
            atomic_fetch_add(&TM.errors, 1);
    return NULL;
}

/* 1,000,000 thread-safe calls from 4 threads: each runs exactly once, in
 * the loop's thread. */
START_TEST(test_threadsafe_million)
{
    aloop_t *l = NEW_LOOP();
    pthread_t th[TM_THREADS];
    int timeout = 0;
    memset(&TM, 0, sizeof TM);
    TM.seen = calloc((size_t)TM_THREADS * TM_PER, 1);
    TM.loop = l;
    ck_assert_int_gt(aloop_call_later(l, 60 * ALOOP_SEC, cb_flag_stop, &timeout), 0);
    for (uintptr_t t = 0; t < TM_THREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, tm_thread, (void *)t), 0);
    int rc = aloop_run(l, ALOOP_RUN_FOREVER);
    for (int t = 0; t < TM_THREADS; t++)
        pthread_join(th[t], NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(atomic_load(&TM.errors), 0);
    ck_assert_msg(!timeout, "only %d of %d calls ran in 60 s", TM.total, TM_THREADS * TM_PER);
    ck_assert_int_eq(TM.total, TM_THREADS * TM_PER);
    ck_assert_int_eq(TM.dup, 0);
    ck_assert_int_eq(TM.bad, 0);
    ck_assert_int_eq(TM.wrong_thread, 0);
    for (int k = 0; k < TM_THREADS * TM_PER; k++)
        ck_assert_msg(TM.seen[k] == 1, "call %d ran %d times", k, TM.seen[k]);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);     /* the 60 s timer is left */
    close_loop(l);
    free(TM.seen);
}
END_TEST

/* The same race, smaller, with the loop alternating ONCE and NOWAIT runs and
 * other work, so that producers meet every state of the loop. */
#define TR_THREADS 4
#define TR_PER 5000
static struct {
    aloop_t *loop;
    atomic_int sent;
    int ran;
} TR;

static void tr_cb(aloop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    TR.ran++;
}

static void *tr_thread(void *arg)
{
    (void)arg;
    for (int k = 0; k < TR_PER; k++) {
        if (aloop_call_soon_threadsafe(TR.loop, tr_cb, NULL) == 0)
            atomic_fetch_add(&TR.sent, 1);
        if (k % 64 == 0)
            aloop_stop(TR.loop);
        if (k % 512 == 0)
            sleep_us(100);
    }
    return NULL;
}

static void tr_backstop(aloop_t *loop, void *arg)
{
    (void)arg;
    aloop_stop(loop);
}

START_TEST(test_threadsafe_and_stop_race)
{
    aloop_t *l = NEW_LOOP();
    pthread_t th[TR_THREADS];
    int p[2], n = 0;
    struct io_rec rd = { 0 };
    memset(&TR, 0, sizeof TR);
    TR.loop = l;
    mk_pipe(p);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &rd), 0);
    for (intptr_t t = 0; t < TR_THREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, tr_thread, (void *)t), 0);
    uint64_t t0 = mono_ns();
    while (TR.ran < TR_THREADS * TR_PER && mono_ns() - t0 < 30 * ALOOP_SEC) {
        aloop_call_soon(l, cb_count, &n);
        int rc = aloop_run(l, (n & 1) ? ALOOP_RUN_ONCE : ALOOP_RUN_NOWAIT);
        ck_assert_int_ge(rc, 0);
        if (n % 100 == 0)
            put(p[1]);
        if (n % 50 == 0) {
            /* until some thread stops it -- or, if they have all sent their
             * last stop already, the backstop timer */
            aloop_id_t backstop = aloop_call_later(l, 20 * ALOOP_MS, tr_backstop, NULL);
            ck_assert_int_gt(backstop, 0);
            aloop_run(l, ALOOP_RUN_FOREVER);
            aloop_cancel(l, backstop);
        }
    }
    for (int t = 0; t < TR_THREADS; t++)
        pthread_join(th[t], NULL);
    ck_assert_int_ge(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(TR.ran, atomic_load(&TR.sent));
    ck_assert_int_eq(TR.ran, TR_THREADS * TR_PER);
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), 0);
    close_loop(l);
    close2(p);
}
END_TEST

/* ======================================================================== */
/* Many timers, many fds                                                    */
/* ======================================================================== */

#define NT 100000
static struct {
    uint64_t when[NT];
    int fired[NT], cancelled[NT];
    int last, order_bad, early, n;
} TT;

static void tt_cb(aloop_t *loop, void *arg)
{
    int k = (int)(intptr_t)arg;
    TT.fired[k]++;
    TT.n++;
    if (aloop_now(loop) < TT.when[k])
        TT.early++;
    if (TT.last >= 0 && (TT.when[k] < TT.when[TT.last] ||
                         (TT.when[k] == TT.when[TT.last] && k < TT.last)))
        TT.order_bad++;
    TT.last = k;
}

/* 100,000 timers at once, a fifth cancelled: the rest fire once each, in
 * deadline order then scheduling order, never early. */
START_TEST(test_100000_timers)
{
    aloop_t *l = NEW_LOOP();
    static aloop_id_t ids[NT];
    memset(&TT, 0, sizeof TT);
    TT.last = -1;
    aloop_update_time(l);
    uint64_t base = aloop_now(l);
    for (int k = 0; k < NT; k++) {
        TT.when[k] = base + (uint64_t)((k * 7919u) % 100) * ALOOP_MS / 2;   /* 0 .. 50 ms */
        ids[k] = aloop_call_at(l, TT.when[k], tt_cb, TAG(k));
        ck_assert_int_gt(ids[k], 0);
    }
    for (int k = 0; k < NT; k += 5) {
        ck_assert_int_eq(aloop_cancel(l, ids[k]), 0);
        TT.cancelled[k] = 1;
    }
    uint64_t t0 = mono_ns();
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_uint_lt(mono_ns() - t0, 20 * ALOOP_SEC);
    for (int k = 0; k < NT; k++)
        ck_assert_msg(TT.fired[k] == !TT.cancelled[k], "timer %d fired %d times", k, TT.fired[k]);
    ck_assert_int_eq(TT.n, NT - NT / 5);
    ck_assert_int_eq(TT.order_bad, 0);
    ck_assert_int_eq(TT.early, 0);
    for (int k = 0; k < NT; k++)
        ck_assert_int_eq(aloop_cancel(l, ids[k]), -ENOENT);
    close_loop(l);
}
END_TEST

#define NFDP 5000               /* pairs: 10,000 fds */
static struct {
    int sv[NFDP][2];
    int count[NFDP][2];
    int fired, bad;
} FD;

static void fd_cb(aloop_t *loop, int fd, unsigned events, void *arg)
{
    intptr_t v = (intptr_t)arg;
    int k = (int)(v >> 1), e = (int)(v & 1);
    char c;
    FD.count[k][e]++;
    FD.fired++;
    if (fd != FD.sv[k][e])
        FD.bad++;
    if (events == ALOOP_READABLE) {
        if (read(fd, &c, 1) != 1)
            FD.bad++;
        if (aloop_remove_reader(loop, fd) != 0)
            FD.bad++;
    } else if (events == ALOOP_WRITABLE) {
        if (aloop_remove_writer(loop, fd) != 0)
            FD.bad++;
    } else {
        FD.bad++;
    }
}

/* 10,000 fds watched at once, all ready at once; on select, every fd from
 * FD_SETSIZE up is refused with -EINVAL and the rest work. */
START_TEST(test_10000_fds)
{
    ck_assert_msg(want_nofile(2 * NFDP + 200), "RLIMIT_NOFILE cannot be raised to %d", 2 * NFDP + 200);
    aloop_t *l = NEW_LOOP();
    int sel = !strcmp(BE, "select");
    memset(&FD, 0, sizeof FD);
    for (int k = 0; k < NFDP; k++)
        mk_socketpair(FD.sv[k]);
    for (unsigned ev = ALOOP_READABLE; ev <= ALOOP_WRITABLE; ev++) {
        int expect = 0;
        memset(FD.count, 0, sizeof FD.count);
        FD.fired = 0;
        for (int k = 0; k < NFDP; k++)
            for (int e = 0; e < 2; e++) {
                int fd = FD.sv[k][e];
                int r = ev == ALOOP_READABLE ? aloop_add_reader(l, fd, fd_cb, TAG(2 * k + e))
                                             : aloop_add_writer(l, fd, fd_cb, TAG(2 * k + e));
                if (sel && fd >= FD_SETSIZE) {
                    ck_assert_msg(r == -EINVAL, "select: fd %d gave %d, expected -EINVAL", fd, r);
                    continue;
                }
                ck_assert_msg(r == 0, "fd %d: %d (%s)", fd, r, aloop_strerror(r));
                expect++;
            }
        ck_assert_int_gt(expect, sel ? 900 : 2 * NFDP - 1);
        if (ev == ALOOP_READABLE)
            for (int k = 0; k < NFDP; k++) {
                put(FD.sv[k][0]);
                put(FD.sv[k][1]);
            }
        uint64_t t0 = mono_ns();
        ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
        ck_assert_uint_lt(mono_ns() - t0, 20 * ALOOP_SEC);
        ck_assert_int_eq(FD.bad, 0);
        ck_assert_int_eq(FD.fired, expect);
        for (int k = 0; k < NFDP; k++)
            for (int e = 0; e < 2; e++)
                ck_assert_msg(FD.count[k][e] == (sel && FD.sv[k][e] >= FD_SETSIZE ? 0 : 1),
                              "fd %d fired %d times", FD.sv[k][e], FD.count[k][e]);
    }
    close_loop(l);
    for (int k = 0; k < NFDP; k++)
        close2(FD.sv[k]);
}
END_TEST

/* ======================================================================== */

struct group { const char *suffix, *tags; const TTest *const *tests; size_t n; };

int main(void)
{
    backends_init();
    if (g_nbackends == 0) {
        fprintf(stderr, "test_fault: no backends to test\n");
        return EXIT_FAILURE;
    }
    const TTest *const fault_tests[] = {
        test_emfile_new,
        test_emfile_running_loop,
        test_fd_reuse_after_remove,
        test_fd_reuse_in_callback,
        test_add_closed_fd_pending_removal,
        test_fd_closed_while_watched_then_reused,
        test_fd_closed_before_first_poll,
        test_fd_reuse_old_file_alive,
        test_fd_removed_while_ready,
        test_fd_renumbered_file,
        test_fd_reuse_default_priority,
        test_cb_closes_all_watchers,
        test_cb_cancels_everything,
        test_cb_adds_10000,
        test_fork_child_closes_loop,
        test_fork_parent_blocked,
        test_backend_env_garbage,
        test_module_path_garbage,
        test_setuid_ignores_env,
    };
    const TTest *const thread_tests[] = {
        test_eintr_storm,
        test_threadsafe_and_stop_race,
    };
    const TTest *const heavy_tests[] = {
        test_threadsafe_million,
        test_100000_timers,
        test_10000_fds,
    };
    const struct group groups[] = {
        { "", "fault", fault_tests, sizeof fault_tests / sizeof fault_tests[0] },
        { "-threads", "threads", thread_tests, sizeof thread_tests / sizeof thread_tests[0] },
        { "-heavy", "heavy threads", heavy_tests, sizeof heavy_tests / sizeof heavy_tests[0] },
    };
    Suite *s = suite_create("aloop-fault");
    static char names[MAX_BACKENDS][3][64];     /* kept for the run */
    for (int i = 0; i < g_nbackends; i++)
        for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
            char *name = names[i][g];
            snprintf(name, sizeof names[i][g], "%s%s", g_backends[i], groups[g].suffix);
            TCase *tc = tcase_create(name);
            tcase_set_tags(tc, groups[g].tags);
            tcase_set_timeout(tc, 60);
            tcase_add_checked_fixture(tc, setup, teardown);
            for (size_t k = 0; k < groups[g].n; k++)
                tcase_add_loop_test(tc, groups[g].tests[k], i, i + 1);
            suite_add_tcase(s, tc);
        }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
