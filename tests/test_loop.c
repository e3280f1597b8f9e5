/* test_loop.c -- behavioural tests of the loop core (API.md), run once per
 * backend.
 *
 * Every test is written once and registered for each backend under test
 * (ALOOP_TEST_BACKENDS=epoll,poll or, by default, aloop_backends()); the
 * TCase is named after the backend, so a failure names it.  Check's fork mode
 * isolates tests, which the signal tests rely on.  Timing checks are "never
 * early" only; upper bounds, where any, are seconds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
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

/* ---- Small helpers ------------------------------------------------------ */


static pthread_t g_main_thread;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static aloop_t *new_loop(const char *be)
{
    aloop_t *l = NULL;
    int rc = aloop_new(&l, be);
    ck_assert_msg(rc == 0, "aloop_new(%s) = %d (%s)", be, rc, aloop_strerror(rc));
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

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* Make sure `need` fds can be open; 0 if the limit cannot be raised. */
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

/* ---- The callback log --------------------------------------------------- */

#define LOG_MAX 4096
static int g_log[LOG_MAX];
static int g_nlog;

static void log_add(int v)
{
    if (g_nlog < LOG_MAX)
        g_log[g_nlog++] = v;
}

static void log_clear(void)
{
    g_nlog = 0;
}

static int log_check(const int *want, int n, char *msg, size_t cap)
{
    int ok = n == g_nlog;
    for (int k = 0; ok && k < n; k++)
        ok = g_log[k] == want[k];
    if (!ok) {
        size_t off = (size_t)snprintf(msg, cap, "callback log [");
        for (int k = 0; k < g_nlog && off < cap; k++)
            off += (size_t)snprintf(msg + off, cap - off, k ? " %d" : "%d", g_log[k]);
        if (off < cap)
            off += (size_t)snprintf(msg + off, cap - off, "], expected [");
        for (int k = 0; k < n && off < cap; k++)
            off += (size_t)snprintf(msg + off, cap - off, k ? " %d" : "%d", want[k]);
        if (off < cap)
            snprintf(msg + off, cap - off, "]");
    }
    return ok;
}

#define LOG_EXPECT(...) do {                                                   \
        static const int want_[] = { __VA_ARGS__ };                            \
        char msg_[1024];                                                       \
        int ok_ = log_check(want_, (int)(sizeof want_ / sizeof want_[0]),      \
                            msg_, sizeof msg_);                                \
        ck_assert_msg(ok_, "%s", msg_);                                        \
    } while (0)

#define LOG_EXPECT_EMPTY() do {                                                \
        char msg_[1024];                                                       \
        int ok_ = log_check(NULL, 0, msg_, sizeof msg_);                       \
        ck_assert_msg(ok_, "%s", msg_);                                        \
    } while (0)

/* ---- Common callbacks --------------------------------------------------- */

static void cb_log(aloop_t *loop, void *arg)
{
    (void)loop;
    log_add((int)(intptr_t)arg);
}

static void cb_count(aloop_t *loop, void *arg)
{
    (void)loop;
    (*(int *)arg)++;
}

static void cb_stop(aloop_t *loop, void *arg)
{
    (void)arg;
    aloop_stop(loop);
}

/* Sets *arg and stops: a safety net that the test then asserts never fired. */
static void cb_flag_stop(aloop_t *loop, void *arg)
{
    *(int *)arg = 1;
    aloop_stop(loop);
}

/* An I/O watcher's record. */
struct io_rec {
    int tag;            /* logged when nonzero */
    int count;
    unsigned events;    /* of the last call */
    unsigned bad_events;/* calls whose events were not exactly `expect` */
    unsigned expect;    /* ALOOP_READABLE or ALOOP_WRITABLE; 0: don't check */
    int fd;             /* of the last call */
    int drain;          /* read everything available */
    int read_one;       /* read one byte */
    int remove;         /* remove this watcher on the first call */
    int rm_rc;
    int stop;           /* aloop_stop() on each call */
};

static void io_cb(aloop_t *loop, int fd, unsigned events, void *arg)
{
    struct io_rec *r = arg;
    char buf[256];
    r->count++;
    r->events = events;
    r->fd = fd;
    if (r->expect && events != r->expect)
        r->bad_events++;
    if (r->tag)
        log_add(r->tag);
    if (r->drain)
        while (read(fd, buf, sizeof buf) > 0) {}
    if (r->read_one)
        (void)!read(fd, buf, 1);
    if (r->remove && r->count == 1)
        r->rm_rc = r->expect == ALOOP_WRITABLE ? aloop_remove_writer(loop, fd)
                                               : aloop_remove_reader(loop, fd);
    if (r->stop)
        aloop_stop(loop);
}

/* A second I/O callback, to tell replacements apart: logs tag + 100. */
static void io_cb_alt(aloop_t *loop, int fd, unsigned events, void *arg)
{
    struct io_rec *r = arg;
    int tag = r->tag;
    log_add(tag + 100);
    r->tag = 0;
    io_cb(loop, fd, events, arg);
    r->tag = tag;
}

#define READER(...) { .expect = ALOOP_READABLE, __VA_ARGS__ }
#define WRITER(...) { .expect = ALOOP_WRITABLE, __VA_ARGS__ }

/* Calls cb_log(tag) through aloop_call_soon_threadsafe() from another thread. */
struct ts_once { aloop_t *loop; int tag; int rc; };

static void *ts_once_thread(void *arg)
{
    struct ts_once *t = arg;
    t->rc = aloop_call_soon_threadsafe(t->loop, cb_log, TAG(t->tag));
    return NULL;
}

static void threadsafe_from_thread(aloop_t *loop, int tag)
{
    pthread_t th;
    struct ts_once t = { loop, tag, 1 };
    ck_assert_int_eq(pthread_create(&th, NULL, ts_once_thread, &t), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(t.rc, 0);
}

static volatile sig_atomic_t g_my_handler_count;

static void my_handler(int sig)
{
    (void)sig;
    g_my_handler_count++;
}

static void install_my_handler(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = my_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(sig, &sa, NULL), 0);
    g_my_handler_count = 0;
}

/* ---- Fixture ------------------------------------------------------------ */

static void setup(void)
{
    g_main_thread = pthread_self();
    log_clear();
    unsetenv("ALOOP_BACKEND");
}

static void teardown(void)
{
    unsetenv("ALOOP_BACKEND");
}

/* ======================================================================== */
/* Ordering and priorities                                                  */
/* ======================================================================== */

START_TEST(test_call_soon_fifo)
{
    aloop_t *l = NEW_LOOP();
    for (int k = 1; k <= 20; k++)
        ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(k)), 0);
    LOG_EXPECT_EMPTY();    /* nothing runs outside aloop_run */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20);
    close_loop(l);
}
END_TEST

START_TEST(test_call_soon_prio_order)
{
    static const struct { int prio, tag; } q[] = {
        { 0, 1 }, { 2, 2 }, { -2, 3 }, { 1, 4 }, { 0, 5 },
        { 2, 6 }, { -1, 7 }, { -2, 8 }, { 1, 9 }, { -1, 10 },
    };
    aloop_t *l = NEW_LOOP();
    for (size_t k = 0; k < sizeof q / sizeof q[0]; k++) {
        aloop_id_t id = q[k].tag == 1 ? aloop_call_soon(l, cb_log, TAG(q[k].tag))
                                      : aloop_call_soon_prio(l, q[k].prio, cb_log, TAG(q[k].tag));
        ck_assert_int_gt(id, 0);
    }
    /* Everything runs in this one iteration, highest priority first. */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(2, 6, 4, 9, 1, 5, 7, 10, 3, 8);
    close_loop(l);
}
END_TEST

/* I/O and thread-safe calls run at ALOOP_PRIO_DEFAULT, after the calls that
 * were queued before the iteration, I/O before thread-safe calls (step 3). */
START_TEST(test_io_threadsafe_default_prio)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    struct io_rec r = READER(.tag = 30, .drain = 1, .remove = 1);
    mk_pipe(p);
    put(p[1]);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 1, cb_log, TAG(10)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(20)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, -1, cb_log, TAG(70)), 0);
    threadsafe_from_thread(l, 50);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(10, 20, 30, 50, 70);
    ck_assert_int_eq(r.count, 1);
    ck_assert_int_eq(r.rm_rc, 0);
    close_loop(l);
    close2(p);
}
END_TEST

/* Step 3 order: ready I/O, signals, thread-safe calls, expired timers. */
START_TEST(test_step3_order)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    struct io_rec r = READER(.tag = 30, .drain = 1, .remove = 1);
    mk_pipe(p);
    put(p[1]);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, cb_log, TAG(40)), 0);
    ck_assert_int_gt(aloop_call_later(l, 1 * ALOOP_MS, cb_log, TAG(60)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 1, cb_log, TAG(10)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(20)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, -1, cb_log, TAG(70)), 0);
    threadsafe_from_thread(l, 50);
    sleep_ms(5);
    raise(SIGUSR1);
    /* The signal handler is still installed: work remains. */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(10, 20, 30, 40, 50, 60, 70);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    close_loop(l);
    close2(p);
}
END_TEST

/* ======================================================================== */
/* The next-iteration rule                                                  */
/* ======================================================================== */

static int g_requeue_count, g_requeue_limit;
static aloop_id_t g_requeue_id;

static void cb_requeue(aloop_t *loop, void *arg)
{
    g_requeue_count++;
    if (g_requeue_limit == 0 || g_requeue_count < g_requeue_limit)
        g_requeue_id = aloop_call_soon(loop, cb_requeue, arg);
}

static void cb_chain(aloop_t *loop, void *arg)
{
    (void)arg;
    log_add(1);
    /* Queued while callbacks run: both wait for the next iteration, even the
     * one of higher priority than what is still queued in this one. */
    aloop_call_soon_prio(loop, ALOOP_PRIO_MAX, cb_log, TAG(2));
    aloop_call_soon(loop, cb_log, TAG(3));
}

static void cb_timer0(aloop_t *loop, void *arg)
{
    (void)arg;
    log_add(5);
    aloop_call_later(loop, 0, cb_log, TAG(6));
    aloop_call_at(loop, aloop_now(loop), cb_log, TAG(7));
}

START_TEST(test_next_iteration)
{
    aloop_t *l = NEW_LOOP();
    g_requeue_count = 0;
    g_requeue_limit = 5;
    ck_assert_int_gt(aloop_call_soon(l, cb_requeue, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(g_requeue_count, 1);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(g_requeue_count, 2);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_ONCE), 1);
    ck_assert_int_eq(g_requeue_count, 3);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_ONCE), 1);
    ck_assert_int_eq(g_requeue_count, 4);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(g_requeue_count, 5);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(g_requeue_count, 5);

    ck_assert_int_gt(aloop_call_soon(l, cb_chain, NULL), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, ALOOP_PRIO_MIN, cb_log, TAG(4)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(1, 4);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(1, 4, 2, 3);

    /* A timer due at once, set from a callback, is next iteration's too. */
    log_clear();
    ck_assert_int_gt(aloop_call_soon(l, cb_timer0, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(5);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(5, 6, 7);
    close_loop(l);
}
END_TEST

/* A self-requeueing callback does not starve a ready reader: within one run,
 * the poll is skipped at most 63 iterations in a row. */
static struct {
    int wfd, rfd, iter, write_at, added_at, read_at, done, rc;
} NS;

static void ns_spinner(aloop_t *loop, void *arg)
{
    NS.iter++;
    if (NS.iter == 5) {
        (void)!write(NS.wfd, "x", 1);
        NS.write_at = NS.iter;
    }
    if (NS.done || NS.iter >= 100000) {
        aloop_stop(loop);
        return;
    }
    aloop_call_soon(loop, ns_spinner, arg);
}

static void ns_reader(aloop_t *loop, int fd, unsigned events, void *arg)
{
    char c;
    (void)events;
    (void)arg;
    if (!NS.done)
        NS.read_at = NS.iter;
    NS.done = 1;
    (void)!read(fd, &c, 1);
    aloop_remove_reader(loop, fd);
}

START_TEST(test_requeue_does_not_starve_io)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    mk_pipe(p);
    memset(&NS, 0, sizeof NS);
    NS.wfd = p[1];
    ck_assert_int_eq(aloop_add_reader(l, p[0], ns_reader, NULL), 0);
    ck_assert_int_gt(aloop_call_soon(l, ns_spinner, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_msg(NS.done, "reader never fired in %d iterations", NS.iter);
    ck_assert_int_eq(NS.write_at, 5);
    ck_assert_int_gt(NS.read_at, NS.write_at);
    ck_assert_msg(NS.read_at - NS.write_at <= 64,
                  "reader fired %d iterations after the write (max 64)",
                  NS.read_at - NS.write_at);
    close_loop(l);
    close2(p);
}
END_TEST

/* A reader added by a chain that has run for a while with nothing watched
 * (every poll skipped, as nothing could be found) is polled within 64
 * iterations of the add: the polls skipped before it count, and the chain
 * does not go on in place past the limit.  (NS and ns_reader above.) */
static void lw_link(aloop_t *loop, void *arg)
{
    NS.iter++;
    if (NS.iter == 1000) {
        NS.rc = aloop_add_reader(loop, NS.rfd, ns_reader, NULL);
        NS.added_at = NS.iter;
    }
    if (NS.done || NS.iter >= 100000 || NS.rc < 0) {
        aloop_stop(loop);
        return;
    }
    if (aloop_call_soon(loop, lw_link, arg) <= 0) {
        NS.rc = -1;
        aloop_stop(loop);
    }
}

START_TEST(test_watcher_added_mid_chain_is_polled)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    mk_pipe(p);
    memset(&NS, 0, sizeof NS);
    NS.rfd = p[0];
    put(p[1]);      /* readable before the reader exists */
    ck_assert_int_gt(aloop_call_soon(l, lw_link, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(NS.rc, 0);
    ck_assert_int_eq(NS.added_at, 1000);
    ck_assert_msg(NS.read_at > NS.added_at && NS.read_at - NS.added_at <= 64,
                  "reader added at iteration %d fired at %d (within 64 expected)",
                  NS.added_at, NS.read_at);
    close_loop(l);
    close2(p);
}
END_TEST

/* A self-requeueing chain in a DEFAULT run (iterations begun in place)
 * with timers pending: a far one, and one due in 2 ms.  The near one fires
 * while the chain runs, in the first iteration whose cached time reaches
 * its deadline: of the links that see aloop_now() >= the deadline, only the
 * one queued before that iteration runs before the timer. */
static struct {
    uint64_t deadline, last_now, fired_now;
    long links, late, after;
    int fired, backwards, err;
} CT;

static void ct_timer(aloop_t *loop, void *arg)
{
    (void)arg;
    CT.fired++;
    CT.fired_now = aloop_now(loop);
}

static void ct_link(aloop_t *loop, void *arg)
{
    uint64_t now = aloop_now(loop);
    CT.backwards |= now < CT.last_now;
    CT.last_now = now;
    CT.links++;
    if (!CT.fired && now >= CT.deadline)
        CT.late++;
    if ((CT.fired && ++CT.after > 3) || CT.links >= 5000000) {
        aloop_stop(loop);
        return;
    }
    /* no ck_assert per link: in a forked test each one is a write to the
     * parent, which would make the chain crawl */
    if (aloop_call_soon(loop, ct_link, arg) <= 0) {
        CT.err = 1;
        aloop_stop(loop);
    }
}

START_TEST(test_chain_with_timers_pending)
{
    aloop_t *l = NEW_LOOP();
    memset(&CT, 0, sizeof CT);
    aloop_id_t far = aloop_call_later(l, 3600 * ALOOP_SEC, ct_timer, NULL);
    ck_assert_int_gt(far, 0);
    ck_assert_int_gt(aloop_call_later(l, 2 * ALOOP_MS, ct_timer, NULL), 0);
    CT.deadline = aloop_now(l) + 2 * ALOOP_MS;
    ck_assert_int_gt(aloop_call_soon(l, ct_link, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(CT.err, 0);
    ck_assert_msg(CT.fired == 1, "the 2 ms timer fired %d times in %ld links", CT.fired, CT.links);
    ck_assert_uint_ge(CT.fired_now, CT.deadline);
    ck_assert_msg(CT.late <= 1, "%ld links saw the deadline pass before the timer ran", CT.late);
    ck_assert_int_eq(CT.backwards, 0);
    ck_assert_int_eq(CT.after, 4);
    ck_assert_int_eq(aloop_cancel(l, far), 0);
    close_loop(l);
}
END_TEST

/* The first iteration of every run polls, even with callbacks queued. */
START_TEST(test_first_iteration_polls)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    struct io_rec r = READER(.read_one = 1);
    mk_pipe(p);
    g_requeue_count = 0;
    g_requeue_limit = 0;    /* forever */
    ck_assert_int_gt(aloop_call_soon(l, cb_requeue, NULL), 0);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);
    for (int k = 0; k < 10; k++) {
        put(p[1]);
        ck_assert_int_eq(aloop_run(l, (k & 1) ? ALOOP_RUN_ONCE : ALOOP_RUN_NOWAIT), 1);
        ck_assert_msg(r.count == k + 1, "run %d: reader fired %d times, expected %d",
                      k, r.count, k + 1);
        ck_assert_int_eq(g_requeue_count, k + 1);
    }
    ck_assert_int_eq(r.bad_events, 0);
    ck_assert_int_eq(aloop_cancel(l, g_requeue_id), 0);
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    close_loop(l);
    close2(p);
}
END_TEST

/* ======================================================================== */
/* Cancel and ids                                                           */
/* ======================================================================== */

struct canceller { int tag; aloop_id_t victim; int rc; int called; };

static void cb_cancel(aloop_t *loop, void *arg)
{
    struct canceller *c = arg;
    c->called++;
    if (c->tag)
        log_add(c->tag);
    c->rc = aloop_cancel(loop, c->victim);
}

START_TEST(test_cancel_basic)
{
    aloop_t *l = NEW_LOOP();
    aloop_id_t id = aloop_call_soon(l, cb_log, TAG(1));
    ck_assert_int_gt(id, 0);
    ck_assert_int_eq(aloop_cancel(l, id), 0);
    ck_assert_int_eq(aloop_cancel(l, id), -ENOENT);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT_EMPTY();

    /* Stale: already ran. */
    id = aloop_call_soon(l, cb_log, TAG(2));
    ck_assert_int_gt(id, 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(2);
    ck_assert_int_eq(aloop_cancel(l, id), -ENOENT);
    /* Never existed. */
    ck_assert_int_eq(aloop_cancel(l, id + 1000000), -ENOENT);
    ck_assert_int_lt(aloop_cancel(l, 0), 0);
    ck_assert_int_lt(aloop_cancel(l, -1), 0);
    close_loop(l);
}
END_TEST

START_TEST(test_cancel_from_earlier_callback)
{
    aloop_t *l = NEW_LOOP();
    struct canceller a = { .tag = 1 }, h = { .tag = 11 }, t1 = { .tag = 21 };

    /* Same priority: A runs first and cancels B, queued after it. */
    ck_assert_int_gt(aloop_call_soon(l, cb_cancel, &a), 0);
    a.victim = aloop_call_soon(l, cb_log, TAG(2));
    ck_assert_int_gt(a.victim, 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(3)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(1, 3);
    ck_assert_int_eq(a.rc, 0);

    /* Higher priority H cancels L, queued before it. */
    log_clear();
    h.victim = aloop_call_soon_prio(l, -1, cb_log, TAG(12));
    ck_assert_int_gt(h.victim, 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 2, cb_cancel, &h), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(11);
    ck_assert_int_eq(h.rc, 0);

    /* Two timers expire in one iteration; the first cancels the second. */
    log_clear();
    ck_assert_int_gt(aloop_call_later(l, 1 * ALOOP_MS, cb_cancel, &t1), 0);
    t1.victim = aloop_call_later(l, 1 * ALOOP_MS, cb_log, TAG(22));
    ck_assert_int_gt(t1.victim, 0);
    sleep_ms(3);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(21);
    ck_assert_int_eq(t1.rc, 0);
    close_loop(l);
}
END_TEST

START_TEST(test_cancel_timer)
{
    aloop_t *l = NEW_LOOP();
    aloop_id_t id = aloop_call_later(l, 10 * ALOOP_SEC, cb_log, TAG(1));
    ck_assert_int_gt(id, 0);
    ck_assert_int_eq(aloop_cancel(l, id), 0);
    ck_assert_int_eq(aloop_cancel(l, id), -ENOENT);
    /* A cancelled timer keeps nothing alive. */
    uint64_t t0 = mono_ns();
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_uint_lt(mono_ns() - t0, 2 * ALOOP_SEC);
    LOG_EXPECT_EMPTY();

    aloop_id_t a = aloop_call_later(l, 5 * ALOOP_MS, cb_log, TAG(2));
    aloop_id_t b = aloop_call_later(l, 10 * ALOOP_MS, cb_log, TAG(3));
    ck_assert_int_gt(a, 0);
    ck_assert_int_gt(b, 0);
    ck_assert_int_eq(aloop_cancel(l, a), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(3);
    ck_assert_int_eq(aloop_cancel(l, b), -ENOENT);

    aloop_id_t e = aloop_call_every(l, 1 * ALOOP_MS, cb_log, TAG(4));
    ck_assert_int_gt(e, 0);
    ck_assert_int_eq(aloop_cancel(l, e), 0);
    sleep_ms(3);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(3);
    close_loop(l);
}
END_TEST

START_TEST(test_cancel_self)
{
    aloop_t *l = NEW_LOOP();
    struct canceller c = { 0 }, t = { 0 };
    c.victim = aloop_call_soon(l, cb_cancel, &c);
    ck_assert_int_gt(c.victim, 0);
    t.victim = aloop_call_later(l, 1 * ALOOP_MS, cb_cancel, &t);
    ck_assert_int_gt(t.victim, 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.called, 1);
    ck_assert_int_eq(c.rc, -ENOENT);   /* a running one-shot is no longer pending */
    ck_assert_int_eq(t.called, 1);
    ck_assert_int_eq(t.rc, -ENOENT);
    close_loop(l);
}
END_TEST

START_TEST(test_ids_positive_distinct)
{
    enum { ROUNDS = 3, PER = 50 };
    aloop_id_t ids[ROUNDS * PER];
    int n = 0;
    aloop_t *l = NEW_LOOP();
    for (int round = 0; round < ROUNDS; round++) {
        int first = n;
        for (int k = 0; k < PER; k++) {
            aloop_id_t id;
            switch (k % 5) {
            case 0: id = aloop_call_soon(l, cb_log, TAG(1)); break;
            case 1: id = aloop_call_soon_prio(l, k % 3 - 1, cb_log, TAG(1)); break;
            case 2: id = aloop_call_later(l, 10 * ALOOP_SEC, cb_log, TAG(1)); break;
            case 3: id = aloop_call_at(l, aloop_now(l) + 10 * ALOOP_SEC, cb_log, TAG(1)); break;
            default: id = aloop_call_every(l, 1 * ALOOP_SEC, cb_log, TAG(1)); break;
            }
            ck_assert_msg(id > 0, "id %lld is not positive", (long long)id);
            for (int j = 0; j < n; j++)
                ck_assert_msg(ids[j] != id, "id %lld reused", (long long)id);
            ids[n++] = id;
        }
        /* Free the slots: later ids must still differ (generation count). */
        if (round == 1) {
            for (int j = first; j < n; j++)
                ck_assert_int_eq(aloop_cancel(l, ids[j]), 0);
        } else {
            for (int j = first; j < n; j++)
                if (j % 5 >= 2)
                    ck_assert_int_eq(aloop_cancel(l, ids[j]), 0);
            ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
        }
    }
    for (int j = 0; j < n; j++)
        ck_assert_int_eq(aloop_cancel(l, ids[j]), -ENOENT);
    LOG_EXPECT(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
               1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    close_loop(l);
}
END_TEST

START_TEST(test_set_priority)
{
    aloop_t *l = NEW_LOOP();
    aloop_id_t a = aloop_call_soon(l, cb_log, TAG(1));
    aloop_id_t b = aloop_call_soon(l, cb_log, TAG(2));
    aloop_id_t c = aloop_call_soon(l, cb_log, TAG(3));
    aloop_id_t d = aloop_call_soon_prio(l, 2, cb_log, TAG(4));
    ck_assert_int_gt(a, 0);
    ck_assert_int_gt(b, 0);
    ck_assert_int_gt(c, 0);
    ck_assert_int_gt(d, 0);
    ck_assert_int_eq(aloop_set_priority(l, c, 1), 0);
    ck_assert_int_eq(aloop_set_priority(l, a, -2), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(4, 3, 2, 1);
    ck_assert_int_eq(aloop_set_priority(l, a, 1), -ENOENT);   /* ran */
    aloop_id_t e = aloop_call_soon(l, cb_log, TAG(5));
    ck_assert_int_gt(e, 0);
    ck_assert_int_eq(aloop_cancel(l, e), 0);
    ck_assert_int_eq(aloop_set_priority(l, e, 1), -ENOENT);   /* cancelled */

    /* A timer runs at the priority it was given. */
    log_clear();
    aloop_id_t t1 = aloop_call_later(l, 1 * ALOOP_MS, cb_log, TAG(11));
    aloop_id_t t2 = aloop_call_later(l, 1 * ALOOP_MS, cb_log, TAG(12));
    ck_assert_int_gt(t1, 0);
    ck_assert_int_gt(t2, 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(13)), 0);
    ck_assert_int_eq(aloop_set_priority(l, t2, 1), 0);
    sleep_ms(3);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(12, 13, 11);
    ck_assert_int_eq(aloop_set_priority(l, t2, 0), -ENOENT);
    close_loop(l);
}
END_TEST

/* A call queued before the iteration and moved to a level that has not run
 * yet in it still runs in this iteration (step 4 runs everything queued
 * before it began), at its new place. */
struct mover { aloop_id_t victim; int prio, rc; };

static void cb_mover(aloop_t *loop, void *arg)
{
    struct mover *m = arg;
    log_add(1);
    m->rc = aloop_set_priority(loop, m->victim, m->prio);
}

START_TEST(test_set_priority_during_iteration)
{
    aloop_t *l = NEW_LOOP();
    struct mover down = { .prio = -1, .rc = 1 }, up = { .prio = 1, .rc = 1 };

    ck_assert_int_gt(aloop_call_soon_prio(l, 2, cb_mover, &down), 0);
    down.victim = aloop_call_soon(l, cb_log, TAG(3));
    ck_assert_int_gt(down.victim, 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, -2, cb_log, TAG(4)), 0);
    int rc = aloop_run(l, ALOOP_RUN_NOWAIT);
    LOG_EXPECT(1, 3, 4);
    ck_assert_int_eq(down.rc, 0);
    ck_assert_int_eq(rc, 0);

    log_clear();
    ck_assert_int_gt(aloop_call_soon_prio(l, 2, cb_mover, &up), 0);
    up.victim = aloop_call_soon_prio(l, -2, cb_log, TAG(3));
    ck_assert_int_gt(up.victim, 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(4)), 0);
    rc = aloop_run(l, ALOOP_RUN_NOWAIT);
    LOG_EXPECT(1, 3, 4);
    ck_assert_int_eq(up.rc, 0);
    ck_assert_int_eq(rc, 0);
    close_loop(l);
}
END_TEST

/* The same in a DEFAULT run, whose one-level iterations may begin in
 * place: iteration 1 runs A (1), which queues B (2), C (3) and A2 (4);
 * iteration 2 runs B, which moves C -- queued before this iteration -- to a
 * higher level (already done in it: C runs after this level's own entries,
 * still in iteration 2), and queues D (6) and moves it up at once (queued in
 * this iteration: it runs in the next, at its new level); A2 queues G (5) at
 * the highest level and E (7).  Iteration 3: G, D, E. */
static struct { aloop_id_t c, d; int rc; } IP;

static void ip_b(aloop_t *loop, void *arg)
{
    (void)arg;
    log_add(2);
    IP.d = aloop_call_soon(loop, cb_log, TAG(6));
    if (aloop_set_priority(loop, IP.c, 1) != 0 || IP.d <= 0 || aloop_set_priority(loop, IP.d, 1) != 0)
        IP.rc = -1;
}

static void ip_a2(aloop_t *loop, void *arg)
{
    (void)arg;
    log_add(4);
    if (aloop_call_soon_prio(loop, 2, cb_log, TAG(5)) <= 0 || aloop_call_soon(loop, cb_log, TAG(7)) <= 0)
        IP.rc = -1;
}

static void ip_a(aloop_t *loop, void *arg)
{
    (void)arg;
    log_add(1);
    if (aloop_call_soon(loop, ip_b, NULL) <= 0 ||
        (IP.c = aloop_call_soon(loop, cb_log, TAG(3))) <= 0 ||
        aloop_call_soon(loop, ip_a2, NULL) <= 0)
        IP.rc = -1;
}

START_TEST(test_set_priority_in_place_iterations)
{
    aloop_t *l = NEW_LOOP();
    memset(&IP, 0, sizeof IP);
    log_clear();
    ck_assert_int_gt(aloop_call_soon(l, ip_a, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(IP.rc, 0);
    LOG_EXPECT(1, 2, 4, 3, 5, 6, 7);
    ck_assert_int_eq(aloop_set_priority(l, IP.c, 0), -ENOENT);     /* ran */
    close_loop(l);
}
END_TEST

/* Calls moved during a drain (which joins them to it at their new level),
 * moved twice, and moved then cancelled: the moved ones run once each, in
 * their new places, the cancelled one never; their slots, reused at once,
 * queue and cancel like any others. */
static struct { aloop_id_t x, y, w; int rc; } MV;

static void mv_cb(aloop_t *loop, void *arg)
{
    (void)arg;
    log_add(1);
    if (aloop_set_priority(loop, MV.x, 1) != 0 || aloop_set_priority(loop, MV.y, 1) != 0 ||
        aloop_cancel(loop, MV.y) != 0 || aloop_set_priority(loop, MV.w, 1) != 0 ||
        aloop_set_priority(loop, MV.w, -1) != 0 || aloop_cancel(loop, MV.y) != -ENOENT)
        MV.rc = -1;
}

START_TEST(test_set_priority_moved_then_cancelled)
{
    aloop_t *l = NEW_LOOP();
    memset(&MV, 0, sizeof MV);
    log_clear();
    ck_assert_int_gt(aloop_call_soon_prio(l, 2, mv_cb, NULL), 0);
    ck_assert_int_gt(MV.x = aloop_call_soon(l, cb_log, TAG(3)), 0);
    ck_assert_int_gt(MV.y = aloop_call_soon(l, cb_log, TAG(9)), 0);
    ck_assert_int_gt(MV.w = aloop_call_soon(l, cb_log, TAG(5)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(4)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, -1, cb_log, TAG(6)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(MV.rc, 0);
    LOG_EXPECT(1, 3, 4, 6, 5);

    log_clear();
    aloop_id_t id[8];
    for (int k = 0; k < 8; k++)
        ck_assert_int_gt(id[k] = aloop_call_soon(l, cb_log, TAG(20 + k)), 0);
    for (int k = 1; k < 8; k += 2)
        ck_assert_int_eq(aloop_cancel(l, id[k]), 0);
    ck_assert_int_eq(aloop_set_priority(l, id[6], 1), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(26, 20, 22, 24);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(26, 20, 22, 24);
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* Timers                                                                   */
/* ======================================================================== */

START_TEST(test_timer_deadline_order)
{
    aloop_t *l = NEW_LOOP();
    ck_assert_int_gt(aloop_call_later(l, 30 * ALOOP_MS, cb_log, TAG(3)), 0);
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_MS, cb_log, TAG(1)), 0);
    ck_assert_int_gt(aloop_call_at(l, aloop_now(l) + 40 * ALOOP_MS, cb_log, TAG(4)), 0);
    ck_assert_int_gt(aloop_call_later(l, 20 * ALOOP_MS, cb_log, TAG(2)), 0);
    ck_assert_int_gt(aloop_call_later(l, 0, cb_log, TAG(0)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(0, 1, 2, 3, 4);
    close_loop(l);
}
END_TEST

START_TEST(test_timer_equal_deadlines_fifo)
{
    aloop_t *l = NEW_LOOP();
    aloop_update_time(l);
    uint64_t at = aloop_now(l) + 5 * ALOOP_MS;
    /* The deadline is taken from the cached clock, so all these are equal. */
    for (int k = 1; k <= 8; k++) {
        aloop_id_t id = (k & 1) ? aloop_call_later(l, 5 * ALOOP_MS, cb_log, TAG(k))
                                : aloop_call_at(l, at, cb_log, TAG(k));
        ck_assert_int_gt(id, 0);
    }
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(1, 2, 3, 4, 5, 6, 7, 8);
    close_loop(l);
}
END_TEST

/* Relative deadlines come from the cached clock: scheduled after a delay
 * inside a callback, call_later(d) and call_at(now + d) are equal, so FIFO. */
static void cb_sched_after_sleep(aloop_t *loop, void *arg)
{
    (void)arg;
    sleep_ms(5);
    aloop_call_later(loop, 2 * ALOOP_MS, cb_log, TAG(1));
    aloop_call_at(loop, aloop_now(loop) + 2 * ALOOP_MS, cb_log, TAG(2));
    aloop_call_later(loop, 2 * ALOOP_MS, cb_log, TAG(3));
}

START_TEST(test_relative_deadline_cached_clock)
{
    aloop_t *l = NEW_LOOP();
    ck_assert_int_gt(aloop_call_soon(l, cb_sched_after_sleep, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(1, 2, 3);
    close_loop(l);
}
END_TEST

struct timer_rec {
    uint64_t deadline, fired_live, fired_now;
    int count;
    struct timer_rec *chain;   /* scheduled from this callback, 10 ms later */
};

static void cb_timer_rec(aloop_t *loop, void *arg)
{
    struct timer_rec *t = arg;
    t->fired_live = mono_ns();
    t->fired_now = aloop_now(loop);
    t->count++;
    if (t->chain) {
        t->chain->deadline = aloop_now(loop) + 10 * ALOOP_MS;
        aloop_call_later(loop, 10 * ALOOP_MS, cb_timer_rec, t->chain);
    }
}

START_TEST(test_timer_never_early)
{
    static const unsigned delays_ms[] = { 1, 3, 7, 15, 30, 50 };
    enum { N = sizeof delays_ms / sizeof delays_ms[0] };
    struct timer_rec t[N + 1];
    aloop_t *l = NEW_LOOP();
    memset(t, 0, sizeof t);
    t[0].chain = &t[N];
    aloop_update_time(l);
    uint64_t base = aloop_now(l);
    ck_assert_uint_le(base, mono_ns());
    for (int k = 0; k < N; k++) {
        t[k].deadline = base + delays_ms[k] * ALOOP_MS;
        ck_assert_int_gt(aloop_call_later(l, delays_ms[k] * ALOOP_MS, cb_timer_rec, &t[k]), 0);
    }
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    for (int k = 0; k <= N; k++) {
        ck_assert_int_eq(t[k].count, 1);
        ck_assert_msg(t[k].fired_live >= t[k].deadline,
                      "timer %d fired %lld ns early (live clock)", k,
                      (long long)(t[k].deadline - t[k].fired_live));
        ck_assert_msg(t[k].fired_now >= t[k].deadline,
                      "timer %d: aloop_now() %lld ns before its deadline", k,
                      (long long)(t[k].deadline - t[k].fired_now));
    }
    close_loop(l);
}
END_TEST

START_TEST(test_call_at)
{
    aloop_t *l = NEW_LOOP();
    struct timer_rec t = { 0 }, past = { 0 };
    aloop_update_time(l);
    t.deadline = aloop_now(l) + 20 * ALOOP_MS;
    ck_assert_int_gt(aloop_call_at(l, t.deadline, cb_timer_rec, &t), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(t.count, 1);
    ck_assert_uint_ge(t.fired_live, t.deadline);
    ck_assert_uint_ge(t.fired_now, t.deadline);

    /* A deadline in the past is due in the next iteration. */
    ck_assert_int_gt(aloop_call_at(l, aloop_now(l) - 1 * ALOOP_MS, cb_timer_rec, &past), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(past.count, 1);
    close_loop(l);
}
END_TEST

struct every_ctx {
    aloop_id_t id;
    int count, cancel_at, cancel_rc;
    uint64_t nows[16];
};

static void cb_every(aloop_t *loop, void *arg)
{
    struct every_ctx *c = arg;
    if (c->count < 16)
        c->nows[c->count] = aloop_now(loop);
    c->count++;
    if (c->count == c->cancel_at)
        c->cancel_rc = aloop_cancel(loop, c->id);
}

START_TEST(test_call_every)
{
    aloop_t *l = NEW_LOOP();
    struct every_ctx c = { .cancel_at = 4, .cancel_rc = 1 };
    const uint64_t iv = 5 * ALOOP_MS;
    aloop_update_time(l);
    uint64_t base = aloop_now(l);
    c.id = aloop_call_every(l, iv, cb_every, &c);
    ck_assert_int_gt(c.id, 0);
    /* Keeps the loop running well past further would-be ticks. */
    ck_assert_int_gt(aloop_call_later(l, 60 * ALOOP_MS, cb_log, TAG(99)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(99);
    ck_assert_int_eq(c.count, 4);
    ck_assert_int_eq(c.cancel_rc, 0);
    for (int k = 0; k < 4; k++)
        ck_assert_msg(c.nows[k] >= base + (uint64_t)(k + 1) * iv,
                      "tick %d early by %lld ns", k,
                      (long long)(base + (uint64_t)(k + 1) * iv - c.nows[k]));
    ck_assert_int_eq(aloop_cancel(l, c.id), -ENOENT);
    close_loop(l);
}
END_TEST

static void cb_every_stall(aloop_t *loop, void *arg)
{
    struct every_ctx *c = arg;
    cb_every(loop, arg);
    if (c->count == 1)
        sleep_ms(30);      /* misses several ticks */
}

/* A late tick does not cause a burst of catch-up ticks. */
START_TEST(test_call_every_no_burst)
{
    aloop_t *l = NEW_LOOP();
    struct every_ctx c = { .cancel_at = 4, .cancel_rc = 1 };
    const uint64_t iv = 5 * ALOOP_MS;
    c.id = aloop_call_every(l, iv, cb_every_stall, &c);
    ck_assert_int_gt(c.id, 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.count, 4);
    ck_assert_int_eq(c.cancel_rc, 0);
    /* Tick 2 comes late; every deadline after it has passed too, so tick 3
     * is one interval after tick 2, not at once. */
    ck_assert_msg(c.nows[2] >= c.nows[1] + iv,
                  "tick 3 only %lld ns after the late tick 2: a burst",
                  (long long)(c.nows[2] - c.nows[1]));
    close_loop(l);
}
END_TEST

START_TEST(test_call_every_zero_interval)
{
    aloop_t *l = NEW_LOOP();
    ck_assert_int_eq(aloop_call_every(l, 0, cb_log, TAG(1)), -EINVAL);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);   /* nothing was scheduled */
    LOG_EXPECT_EMPTY();
    close_loop(l);
}
END_TEST

static uint64_t g_nows[64];
static int g_nnows;

static void cb_record_now(aloop_t *loop, void *arg)
{
    (void)arg;
    if (g_nnows < 64)
        g_nows[g_nnows++] = aloop_now(loop);
    sleep_ms(1);
}

START_TEST(test_now_cached_per_iteration)
{
    aloop_t *l = NEW_LOOP();
    g_nnows = 0;
    for (int k = 0; k < 5; k++)
        ck_assert_int_gt(aloop_call_soon(l, cb_record_now, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(g_nnows, 5);
    for (int k = 1; k < 5; k++)
        ck_assert_msg(g_nows[k] == g_nows[0], "aloop_now() changed within an iteration");
    ck_assert_uint_le(g_nows[0], mono_ns());

    /* The next iteration starts >= 5 ms later and refreshes the clock. */
    ck_assert_int_gt(aloop_call_soon(l, cb_record_now, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(g_nnows, 6);
    ck_assert_uint_ge(g_nows[5], g_nows[0] + 5 * ALOOP_MS);

    /* Never decreasing over many iterations. */
    for (int k = 0; k < 20; k++) {
        ck_assert_int_gt(aloop_call_soon(l, cb_record_now, NULL), 0);
        ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    }
    for (int k = 1; k < g_nnows; k++)
        ck_assert_uint_ge(g_nows[k], g_nows[k - 1]);

    uint64_t v1 = aloop_now(l);
    sleep_ms(2);
    aloop_update_time(l);
    uint64_t v2 = aloop_now(l);
    ck_assert_uint_ge(v2, v1 + 2 * ALOOP_MS);
    ck_assert_uint_le(v2, mono_ns());
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* I/O watchers                                                             */
/* ======================================================================== */

START_TEST(test_reader_pipe)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    struct io_rec r = READER(.read_one = 1);
    mk_pipe(p);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.count, 0);      /* empty pipe */
    put(p[1]);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.count, 1);
    ck_assert_int_eq(r.fd, p[0]);
    ck_assert_uint_eq(r.events, ALOOP_READABLE);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.count, 1);      /* drained */
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    close_loop(l);
    close2(p);
}
END_TEST

START_TEST(test_writer_pipe)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    struct io_rec w = WRITER(.remove = 1);
    mk_pipe(p);
    ck_assert_int_eq(aloop_add_writer(l, p[1], io_cb, &w), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);   /* it removes itself */
    ck_assert_int_eq(w.count, 1);
    ck_assert_int_eq(w.rm_rc, 0);
    ck_assert_int_eq(w.fd, p[1]);
    ck_assert_uint_eq(w.events, ALOOP_WRITABLE);
    close_loop(l);
    close2(p);
}
END_TEST

START_TEST(test_reader_writer_independent)
{
    aloop_t *l = NEW_LOOP();
    int sv[2];
    struct io_rec r = READER(.tag = 1, .read_one = 1), w = WRITER(.tag = 2);
    mk_socketpair(sv);
    ck_assert_int_eq(aloop_add_reader(l, sv[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_add_writer(l, sv[0], io_cb, &w), 0);
    put(sv[1]);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(1, 2);          /* reader before writer on one fd */
    ck_assert_int_eq(r.bad_events, 0);
    ck_assert_int_eq(w.bad_events, 0);

    /* Removing the writer keeps the reader. */
    ck_assert_int_eq(aloop_remove_writer(l, sv[0]), 0);
    ck_assert_int_eq(aloop_remove_writer(l, sv[0]), -ENOENT);
    put(sv[1]);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(1, 2, 1);

    /* And the other way round: a writer only, with unread data pending. */
    ck_assert_int_eq(aloop_add_writer(l, sv[0], io_cb, &w), 0);
    ck_assert_int_eq(aloop_remove_reader(l, sv[0]), 0);
    ck_assert_int_eq(aloop_remove_reader(l, sv[0]), -ENOENT);
    put(sv[1]);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(1, 2, 1, 2);
    ck_assert_int_eq(r.bad_events, 0);
    ck_assert_int_eq(w.bad_events, 0);
    ck_assert_int_eq(aloop_remove_writer(l, sv[0]), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    close_loop(l);
    close2(sv);
}
END_TEST

START_TEST(test_reader_replace)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    struct io_rec r1 = READER(.tag = 1, .drain = 1), r2 = READER(.tag = 2, .drain = 1);
    struct io_rec w1 = WRITER(.tag = 3), w2 = WRITER(.tag = 4);
    mk_pipe(p);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r1), 0);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb_alt, &r2), 0);
    put(p[1]);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(102);            /* the new callback with the new argument */
    ck_assert_int_eq(r1.count, 0);
    /* And back again. */
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r1), 0);
    put(p[1]);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(102, 1);
    ck_assert_int_eq(r2.count, 1);

    /* The same for a writer; the reader is untouched by it. */
    log_clear();
    ck_assert_int_eq(aloop_add_writer(l, p[1], io_cb, &w1), 0);
    ck_assert_int_eq(aloop_add_writer(l, p[1], io_cb_alt, &w2), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(104);
    ck_assert_int_eq(w1.count, 0);
    ck_assert_int_eq(w2.bad_events, 0);

    /* One watcher each, not two: one removal each empties the loop. */
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), 0);
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), -ENOENT);
    ck_assert_int_eq(aloop_remove_writer(l, p[1]), 0);
    ck_assert_int_eq(aloop_remove_writer(l, p[1]), -ENOENT);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    close_loop(l);
    close2(p);
}
END_TEST

START_TEST(test_remove_in_callback)
{
    aloop_t *l = NEW_LOOP();
    int a[2], b[2];
    /* Neither reads: level-triggered, so the one left watching keeps firing. */
    struct io_rec once = READER(.remove = 1), level = READER();
    mk_pipe(a);
    mk_pipe(b);
    put(a[1]);
    put(b[1]);
    ck_assert_int_eq(aloop_add_reader(l, a[0], io_cb, &once), 0);
    ck_assert_int_eq(aloop_add_reader(l, b[0], io_cb, &level), 0);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(once.count, 1);
    ck_assert_int_eq(once.rm_rc, 0);
    ck_assert_int_eq(level.count, 3);
    ck_assert_int_eq(aloop_remove_reader(l, a[0]), -ENOENT);
    ck_assert_int_eq(aloop_remove_reader(l, b[0]), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    close_loop(l);
    close2(a);
    close2(b);
}
END_TEST

/* A watcher removed by an earlier callback of the same iteration is not
 * called, though its fd (or signal) was ready. */
struct remover { int rfd, wfd, sig; int rc[3]; };

static void cb_remover(aloop_t *loop, void *arg)
{
    struct remover *m = arg;
    log_add(1);
    m->rc[0] = aloop_remove_reader(loop, m->rfd);
    m->rc[1] = aloop_remove_writer(loop, m->wfd);
    m->rc[2] = aloop_remove_signal_handler(loop, m->sig);
}

START_TEST(test_remove_from_earlier_callback)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    struct io_rec r = READER(.tag = 2), w = WRITER(.tag = 3);
    struct remover m = { .sig = SIGUSR1, .rc = { 1, 1, 1 } };
    install_my_handler(SIGUSR1);   /* what comes back after removal */
    mk_pipe(p);
    m.rfd = p[0];
    m.wfd = p[1];
    put(p[1]);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_add_writer(l, p[1], io_cb, &w), 0);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, cb_log, TAG(4)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_remover, &m), 0);
    raise(SIGUSR1);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(1);
    ck_assert_int_eq(m.rc[0], 0);
    ck_assert_int_eq(m.rc[1], 0);
    ck_assert_int_eq(m.rc[2], 0);
    close_loop(l);
    close2(p);
}
END_TEST

/* Hang-up and error conditions reach the watcher that is there, with its own
 * event: EOF to a reader, a closed reading end to a writer. */
START_TEST(test_hangup_reported)
{
    aloop_t *l = NEW_LOOP();
    int sv[2], p[2];
    struct io_rec r = READER(.remove = 1), w = WRITER(.remove = 1);
    mk_socketpair(sv);
    mk_pipe(p);
    ck_assert_int_eq(aloop_add_reader(l, sv[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_add_writer(l, p[1], io_cb, &w), 0);
    /* fill the pipe, so only the error can make the writer ready */
    while (write(p[1], "xxxxxxxxxxxxxxxx", 16) > 0) {}
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.count + w.count, 0);
    close(sv[1]);
    close(p[0]);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.count, 1);
    ck_assert_uint_eq(r.events, ALOOP_READABLE);
    ck_assert_int_eq(w.count, 1);
    ck_assert_uint_eq(w.events, ALOOP_WRITABLE);
    close_loop(l);
    close(sv[0]);
    close(p[1]);
}
END_TEST

START_TEST(test_remove_without_watcher)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    struct io_rec w = WRITER();
    mk_pipe(p);
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), -ENOENT);
    ck_assert_int_eq(aloop_remove_writer(l, p[0]), -ENOENT);
    ck_assert_int_eq(aloop_set_io_priority(l, p[0], 1), -ENOENT);
    /* A writer does not make remove_reader succeed, nor is it disturbed. */
    ck_assert_int_eq(aloop_add_writer(l, p[1], io_cb, &w), 0);
    ck_assert_int_eq(aloop_remove_reader(l, p[1]), -ENOENT);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(w.count, 1);
    ck_assert_int_eq(aloop_remove_writer(l, p[1]), 0);
    ck_assert_int_eq(aloop_remove_writer(l, p[1]), -ENOENT);
    close_loop(l);
    close2(p);
}
END_TEST

START_TEST(test_io_priority)
{
    aloop_t *l = NEW_LOOP();
    int p[2], q[2];
    struct io_rec r = READER(.tag = 5), w = WRITER(.tag = 6);   /* r never reads */
    mk_pipe(p);
    mk_pipe(q);
    put(p[1]);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);

    ck_assert_int_eq(aloop_set_io_priority(l, p[0], 2), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 1, cb_log, TAG(1)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(2)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, -1, cb_log, TAG(3)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(5, 1, 2, 3);

    log_clear();
    ck_assert_int_eq(aloop_set_io_priority(l, p[0], -2), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 1, cb_log, TAG(1)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(2)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, -1, cb_log, TAG(3)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(1, 2, 3, 5);

    /* A writer's priority, on another fd. */
    log_clear();
    ck_assert_int_eq(aloop_add_writer(l, q[1], io_cb, &w), 0);
    ck_assert_int_eq(aloop_set_io_priority(l, q[1], 1), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(2)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(6, 2, 5);
    ck_assert_int_eq(r.bad_events, 0);
    ck_assert_int_eq(w.bad_events, 0);

    ck_assert_int_eq(aloop_set_io_priority(l, p[0], 3), -EINVAL);
    ck_assert_int_eq(aloop_set_io_priority(l, p[0], -3), -EINVAL);
    ck_assert_int_eq(aloop_set_io_priority(l, q[0], 0), -ENOENT);
    close_loop(l);
    close2(p);
    close2(q);
}
END_TEST

/* 1200 socketpairs, far past FD_SETSIZE: every reader fires exactly once. */
#define NPAIRS 1200
static struct {
    int sv[NPAIRS][2];
    int count[NPAIRS];
    int fired, bad_events, bad_fd, bad_rm;
} MF;

static void mf_cb(aloop_t *loop, int fd, unsigned events, void *arg)
{
    intptr_t k = (intptr_t)arg;
    char c;
    MF.count[k]++;
    MF.fired++;
    if (events != ALOOP_READABLE)
        MF.bad_events++;
    if (fd != MF.sv[k][0])
        MF.bad_fd++;
    (void)!read(fd, &c, 1);
    if (aloop_remove_reader(loop, fd) != 0)
        MF.bad_rm++;
}

START_TEST(test_many_fds)
{
    if (!strcmp(BE, "select"))
        return;   /* select cannot watch fds >= FD_SETSIZE */
    ck_assert_msg(want_nofile(2 * NPAIRS + 100), "RLIMIT_NOFILE too low for %d fds", 2 * NPAIRS);
    memset(&MF, 0, sizeof MF);
    aloop_t *l = NEW_LOOP();
    for (int k = 0; k < NPAIRS; k++) {
        mk_socketpair(MF.sv[k]);
        int rc = aloop_add_reader(l, MF.sv[k][0], mf_cb, TAG(k));
        ck_assert_msg(rc == 0, "add_reader(fd %d) = %d", MF.sv[k][0], rc);
    }
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(MF.fired, 0);

    for (int k = 0; k < NPAIRS; k += 2)
        put(MF.sv[k][1]);
    for (int n = 0; n < 100 && MF.fired < NPAIRS / 2; n++)
        ck_assert_int_eq(aloop_run(l, ALOOP_RUN_ONCE), 1);
    ck_assert_int_eq(MF.fired, NPAIRS / 2);
    for (int k = 0; k < NPAIRS; k++)
        ck_assert_msg(MF.count[k] == !(k & 1), "pair %d (fd %d): reader fired %d times",
                      k, MF.sv[k][0], MF.count[k]);

    for (int k = 1; k < NPAIRS; k += 2)
        put(MF.sv[k][1]);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    for (int k = 0; k < NPAIRS; k++)
        ck_assert_msg(MF.count[k] == 1, "pair %d (fd %d): reader fired %d times",
                      k, MF.sv[k][0], MF.count[k]);
    ck_assert_int_eq(MF.fired, NPAIRS);
    ck_assert_int_eq(MF.bad_events, 0);
    ck_assert_int_eq(MF.bad_fd, 0);
    ck_assert_int_eq(MF.bad_rm, 0);
    close_loop(l);
    for (int k = 0; k < NPAIRS; k++)
        close2(MF.sv[k]);
}
END_TEST

/* An fd closed while watched: no crash, no spin, no callbacks; removal still
 * succeeds. */
START_TEST(test_fd_closed_while_watched)
{
    aloop_t *l = NEW_LOOP();
    int a[2], b[2], fired = 0, n;
    struct io_rec r = READER(), w = WRITER();
    mk_socketpair(a);
    mk_socketpair(b);
    ck_assert_int_eq(aloop_add_reader(l, a[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_add_writer(l, b[0], io_cb, &w), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(r.count, 0);
    ck_assert_int_eq(w.count, 1);
    close(a[0]);
    close(b[0]);
    for (int k = 0; k < 3; k++) {
        int rc = aloop_run(l, ALOOP_RUN_NOWAIT);
        ck_assert_msg(rc >= 0, "aloop_run = %d (%s)", rc, aloop_strerror(rc));
    }
    /* A loop that spins on the closed fds would take many ONCE calls to get
     * to the timer. */
    ck_assert_int_gt(aloop_call_later(l, 30 * ALOOP_MS, cb_count, &fired), 0);
    for (n = 0; n < 10000 && !fired; n++) {
        int rc = aloop_run(l, ALOOP_RUN_ONCE);
        ck_assert_msg(rc >= 0, "aloop_run = %d (%s)", rc, aloop_strerror(rc));
    }
    ck_assert_int_eq(fired, 1);
    ck_assert_msg(n <= 10, "%d ONCE iterations to reach a 30 ms timer: spinning", n);
    ck_assert_int_eq(r.count, 0);
    ck_assert_int_eq(w.count, 1);
    ck_assert_int_eq(aloop_remove_reader(l, a[0]), 0);
    ck_assert_int_eq(aloop_remove_writer(l, b[0]), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    close_loop(l);
    close(a[1]);
    close(b[1]);
}
END_TEST

START_TEST(test_add_closed_fd)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    struct io_rec r = READER();
    mk_pipe(p);
    close2(p);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), -EBADF);
    ck_assert_int_eq(aloop_add_writer(l, p[1], io_cb, &r), -EBADF);
    /* Nothing was registered. */
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), -ENOENT);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    close_loop(l);
}
END_TEST

/* A regular file: epoll refuses it (-EPERM); select and poll report it ready. */
START_TEST(test_regular_file)
{
    if (!is_native(BE))
        return;
    char path[] = "/tmp/aloop-test-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    ck_assert_int_eq(write(fd, "abc", 3), 3);
    lseek(fd, 0, SEEK_SET);
    aloop_t *l = NEW_LOOP();
    struct io_rec r = READER(.remove = 1);
    if (!strcmp(BE, "epoll")) {
        ck_assert_int_eq(aloop_add_reader(l, fd, io_cb, &r), -EPERM);
        ck_assert_int_eq(aloop_add_writer(l, fd, io_cb, &r), -EPERM);
        ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
        ck_assert_int_eq(r.count, 0);
    } else {
        ck_assert_int_eq(aloop_add_reader(l, fd, io_cb, &r), 0);
        ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
        ck_assert_int_eq(r.count, 1);
        ck_assert_uint_eq(r.events, ALOOP_READABLE);
    }
    close_loop(l);
    close(fd);
}
END_TEST

/* fd 1500: past FD_SETSIZE; select refuses it, the others watch it. */
START_TEST(test_large_fd)
{
    enum { BIG = 1500 };
    int p[2];
    if (!want_nofile(BIG + 10) || fd_is_open(BIG) || fd_is_open(BIG + 1))
        return;   /* cannot set the test up here */
    mk_pipe(p);
    ck_assert_int_eq(dup2(p[0], BIG), BIG);
    ck_assert_int_eq(dup2(p[1], BIG + 1), BIG + 1);
    aloop_t *l = NEW_LOOP();
    struct io_rec r = READER(.remove = 1, .drain = 1), w = WRITER(.remove = 1);
    if (!strcmp(BE, "select")) {
        ck_assert_int_eq(aloop_add_reader(l, BIG, io_cb, &r), -EINVAL);
        ck_assert_int_eq(aloop_add_writer(l, BIG + 1, io_cb, &w), -EINVAL);
        ck_assert_int_lt(aloop_remove_reader(l, BIG), 0);
        ck_assert_int_lt(aloop_remove_writer(l, BIG + 1), 0);
        ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(1)), 0);
        ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
        LOG_EXPECT(1);
        ck_assert_int_eq(r.count + w.count, 0);
    } else {
        ck_assert_int_eq(aloop_add_reader(l, BIG, io_cb, &r), 0);
        ck_assert_int_eq(aloop_add_writer(l, BIG + 1, io_cb, &w), 0);
        put(p[1]);
        ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
        ck_assert_int_eq(r.count, 1);
        ck_assert_int_eq(r.fd, BIG);
        ck_assert_uint_eq(r.events, ALOOP_READABLE);
        ck_assert_int_eq(w.count, 1);
        ck_assert_int_eq(w.fd, BIG + 1);
        ck_assert_uint_eq(w.events, ALOOP_WRITABLE);
    }
    close_loop(l);
    close(BIG);
    close(BIG + 1);
    close2(p);
}
END_TEST

/* ======================================================================== */
/* Signals                                                                  */
/* ======================================================================== */

static struct {
    int count, same_thread;
    aloop_id_t follow_id;
    int stop;
    int rm_rc;
    int remove;
} SG;

static void sig_cb(aloop_t *loop, void *arg)
{
    (void)arg;
    SG.count++;
    SG.same_thread = pthread_equal(pthread_self(), g_main_thread);
    /* An ordinary callback: it may use the loop. */
    SG.follow_id = aloop_call_soon(loop, cb_log, TAG(7));
    if (SG.remove)
        SG.rm_rc = aloop_remove_signal_handler(loop, SIGUSR1);
    if (SG.stop)
        aloop_stop(loop);
}

START_TEST(test_signal_handler)
{
    aloop_t *l = NEW_LOOP();
    int rescued = 0;
    memset(&SG, 0, sizeof SG);
    SG.stop = 1;
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, sig_cb, NULL), 0);
    ck_assert_int_gt(aloop_call_later(l, 3 * ALOOP_SEC, cb_flag_stop, &rescued), 0);
    raise(SIGUSR1);
    ck_assert_int_eq(SG.count, 0);     /* never in signal context */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(rescued, 0);
    ck_assert_int_eq(SG.count, 1);
    ck_assert(SG.same_thread);
    ck_assert_int_gt(SG.follow_id, 0);
    LOG_EXPECT_EMPTY();                /* queued in the signal's callback: next iteration */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(7);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), 0);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), -ENOENT);
    close_loop(l);
}
END_TEST

START_TEST(test_signal_coalesced)
{
    aloop_t *l = NEW_LOOP();
    memset(&SG, 0, sizeof SG);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, sig_cb, NULL), 0);
    raise(SIGUSR1);
    raise(SIGUSR1);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_ge(SG.count, 1);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_ge(SG.count, 1);
    ck_assert_int_le(SG.count, 2);
    int before = SG.count;
    raise(SIGUSR1);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(SG.count, before + 1);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), 0);
    close_loop(l);
}
END_TEST

START_TEST(test_signal_remove_restores)
{
    aloop_t *l = NEW_LOOP();
    int n = 0;
    install_my_handler(SIGUSR2);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR2), -ENOENT);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR2, cb_count, &n), 0);
    raise(SIGUSR2);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(g_my_handler_count, 0);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR2), 0);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR2), -ENOENT);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    /* The previous disposition is back. */
    raise(SIGUSR2);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(g_my_handler_count, 1);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), -ENOENT);
    close_loop(l);
}
END_TEST

/* Adding and removing a handler while a thread keeps sending the signal:
 * each removal hands the signal straight back to the disposition from
 * before (here a handler of the program's own), never to the default
 * action for a moment (which, for SIGUSR2, would kill the process). */
static struct { pthread_t target; atomic_int done, sent; } SU;

static void *su_storm(void *arg)
{
    (void)arg;
    while (!atomic_load(&SU.done)) {
        pthread_kill(SU.target, SIGUSR2);
        atomic_fetch_add(&SU.sent, 1);
        /* not flat out: libuv's handler takes a lock through a pipe, and a
         * storm of signals would leave the loop's thread no time */
        nanosleep(&(struct timespec){ 0, 2000 }, NULL);
    }
    return NULL;
}

START_TEST(test_signal_remove_under_fire)
{
    aloop_t *l = NEW_LOOP();
    int n = 0;
    pthread_t th;
    install_my_handler(SIGUSR2);
    SU.target = pthread_self();
    atomic_store(&SU.done, 0);
    atomic_store(&SU.sent, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, su_storm, NULL), 0);
    for (int k = 0; k < 20000; k++) {
        ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR2, cb_count, &n), 0);
        ck_assert_int_ge(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
        ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR2), 0);
    }
    atomic_store(&SU.done, 1);
    pthread_join(th, NULL);
    ck_assert_int_gt(atomic_load(&SU.sent), 0);
    int before = g_my_handler_count;
    raise(SIGUSR2);
    ck_assert_int_eq(g_my_handler_count, before + 1);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    close_loop(l);
    signal(SIGUSR2, SIG_DFL);
}
END_TEST

START_TEST(test_signal_invalid)
{
    aloop_t *l = NEW_LOOP();
    int n = 0;
    ck_assert_int_eq(aloop_add_signal_handler(l, 0, cb_count, &n), -EINVAL);
    ck_assert_int_eq(aloop_add_signal_handler(l, -1, cb_count, &n), -EINVAL);
    ck_assert_int_eq(aloop_add_signal_handler(l, 1000, cb_count, &n), -EINVAL);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGKILL, cb_count, &n), -EINVAL);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGSTOP, cb_count, &n), -EINVAL);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, NULL, &n), -EINVAL);
    ck_assert_int_lt(aloop_remove_signal_handler(l, 0), 0);
    ck_assert_int_lt(aloop_remove_signal_handler(l, 1000), 0);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), -ENOENT);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);   /* nothing registered */
    close_loop(l);
}
END_TEST

/* Adding a handler again replaces it. */
START_TEST(test_signal_replace)
{
    aloop_t *l = NEW_LOOP();
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, cb_log, TAG(1)), 0);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, cb_log, TAG(2)), 0);
    raise(SIGUSR1);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(2);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), 0);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), -ENOENT);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    close_loop(l);
}
END_TEST

/* Two loops in one thread are independent. */
START_TEST(test_two_loops)
{
    aloop_t *a = NEW_LOOP(), *b = NEW_LOOP();
    int p[2];
    struct io_rec r = READER(.tag = 3, .drain = 1, .remove = 1);
    mk_pipe(p);
    ck_assert_int_gt(aloop_call_soon(a, cb_log, TAG(1)), 0);
    ck_assert_int_gt(aloop_call_soon(b, cb_log, TAG(2)), 0);
    ck_assert_int_gt(aloop_call_later(b, 1 * ALOOP_MS, cb_log, TAG(4)), 0);
    ck_assert_int_eq(aloop_add_reader(b, p[0], io_cb, &r), 0);
    put(p[1]);
    sleep_ms(3);
    ck_assert_int_eq(aloop_run(a, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(1);
    ck_assert_int_eq(aloop_run(b, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(1, 2, 3, 4);
    /* Ids belong to their loop. */
    aloop_id_t id = aloop_call_soon(a, cb_log, TAG(5));
    ck_assert_int_gt(id, 0);
    ck_assert_int_eq(aloop_cancel(b, id), -ENOENT);
    ck_assert_int_eq(aloop_run(a, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(1, 2, 3, 4, 5);
    close_loop(b);
    close_loop(a);
    close2(p);
}
END_TEST

/* Two loops handling one signal both see it; the previous disposition comes
 * back only when neither handles it any more. */
START_TEST(test_two_loops_signal)
{
    aloop_t *a = NEW_LOOP(), *b = NEW_LOOP();
    install_my_handler(SIGUSR2);
    ck_assert_int_eq(aloop_add_signal_handler(a, SIGUSR2, cb_log, TAG(1)), 0);
    int rc = aloop_add_signal_handler(b, SIGUSR2, cb_log, TAG(2));
    ck_assert_msg(rc == 0, "second loop's aloop_add_signal_handler = %d (%s)", rc, aloop_strerror(rc));
    raise(SIGUSR2);
    ck_assert_int_eq(aloop_run(a, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(aloop_run(b, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(1, 2);
    ck_assert_int_eq(aloop_remove_signal_handler(a, SIGUSR2), 0);
    raise(SIGUSR2);
    ck_assert_int_eq(g_my_handler_count, 0);
    ck_assert_int_eq(aloop_run(a, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(aloop_run(b, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(1, 2, 2);
    close_loop(b);      /* drops b's handler too */
    raise(SIGUSR2);
    ck_assert_int_eq(g_my_handler_count, 1);
    LOG_EXPECT(1, 2, 2);
    close_loop(a);
}
END_TEST

/* A signal sent from another thread wakes a loop that has nothing but the
 * handler (which alone keeps RUN_DEFAULT going). */
static struct {
    aloop_t *loop;
    atomic_int returned, rescued;
} SW;

static void *sw_thread(void *arg)
{
    (void)arg;
    sleep_ms(20);
    kill(getpid(), SIGUSR1);
    for (int k = 0; k < 400 && !atomic_load(&SW.returned); k++)
        sleep_ms(10);
    if (!atomic_load(&SW.returned)) {
        atomic_store(&SW.rescued, 1);
        aloop_stop(SW.loop);
    }
    return NULL;
}

START_TEST(test_signal_from_other_thread)
{
    aloop_t *l = NEW_LOOP();
    pthread_t th;
    memset(&SG, 0, sizeof SG);
    SG.remove = 1;
    SG.rm_rc = 1;
    SW.loop = l;
    atomic_store(&SW.returned, 0);
    atomic_store(&SW.rescued, 0);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, sig_cb, NULL), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, sw_thread, NULL), 0);
    int rc = aloop_run(l, ALOOP_RUN_DEFAULT);
    atomic_store(&SW.returned, 1);
    pthread_join(th, NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(atomic_load(&SW.rescued), 0);
    ck_assert_int_eq(SG.count, 1);
    ck_assert(SG.same_thread);
    ck_assert_int_eq(SG.rm_rc, 0);
    LOG_EXPECT(7);      /* DEFAULT ran the follow-up before finding nothing left */
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* Thread-safe calls and stop                                               */
/* ======================================================================== */

#define TS_THREADS 4
#define TS_CALLS 10000
#define TS_N (TS_THREADS * TS_CALLS)
static struct {
    aloop_t *loop;
    atomic_int errors;
    int counts[TS_N];
    int total, wrong_thread, bad_idx;
} TS;

static void ts_cb(aloop_t *loop, void *arg)
{
    intptr_t idx = (intptr_t)arg;
    if (!pthread_equal(pthread_self(), g_main_thread))
        TS.wrong_thread++;
    if (idx >= 0 && idx < TS_N)
        TS.counts[idx]++;
    else
        TS.bad_idx++;
    if (++TS.total == TS_N)
        aloop_stop(loop);
}

static void *ts_thread(void *arg)
{
    intptr_t t = (intptr_t)arg;
    for (int k = 0; k < TS_CALLS; k++)
        if (aloop_call_soon_threadsafe(TS.loop, ts_cb, TAG(t * TS_CALLS + k)) != 0)
            atomic_fetch_add(&TS.errors, 1);
    return NULL;
}

START_TEST(test_threadsafe_many)
{
    aloop_t *l = NEW_LOOP();
    pthread_t th[TS_THREADS];
    int timeout = 0;
    memset(TS.counts, 0, sizeof TS.counts);
    TS.total = TS.wrong_thread = TS.bad_idx = 0;
    atomic_store(&TS.errors, 0);
    TS.loop = l;
    ck_assert_int_gt(aloop_call_later(l, 15 * ALOOP_SEC, cb_flag_stop, &timeout), 0);
    for (intptr_t t = 0; t < TS_THREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, ts_thread, (void *)t), 0);
    int rc = aloop_run(l, ALOOP_RUN_FOREVER);
    for (int t = 0; t < TS_THREADS; t++)
        pthread_join(th[t], NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(atomic_load(&TS.errors), 0);
    ck_assert_msg(!timeout, "only %d of %d thread-safe calls ran in 15 s", TS.total, TS_N);
    ck_assert_int_eq(TS.total, TS_N);
    ck_assert_int_eq(TS.bad_idx, 0);
    ck_assert_int_eq(TS.wrong_thread, 0);
    for (int k = 0; k < TS_N; k++)
        ck_assert_msg(TS.counts[k] == 1, "call %d (thread %d, #%d) ran %d times",
                      k, k / TS_CALLS, k % TS_CALLS, TS.counts[k]);
    close_loop(l);
}
END_TEST

static struct {
    aloop_t *loop;
    int wfd, rc, called, wrong_thread;
    atomic_int returned, rescued;
} WK;

static void wk_cb(aloop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    WK.called++;
    if (!pthread_equal(pthread_self(), g_main_thread))
        WK.wrong_thread++;
}

static void *wk_thread(void *arg)
{
    (void)arg;
    sleep_ms(20);
    WK.rc = aloop_call_soon_threadsafe(WK.loop, wk_cb, NULL);
    for (int k = 0; k < 400 && !atomic_load(&WK.returned); k++)
        sleep_ms(10);
    if (!atomic_load(&WK.returned)) {   /* unblock the loop so the test can fail */
        atomic_store(&WK.rescued, 1);
        (void)!write(WK.wfd, "x", 1);
    }
    return NULL;
}

START_TEST(test_threadsafe_wakes_loop)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    pthread_t th;
    struct io_rec r = READER(.drain = 1);
    mk_pipe(p);
    WK.loop = l;
    WK.wfd = p[1];
    WK.rc = 1;
    WK.called = WK.wrong_thread = 0;
    atomic_store(&WK.returned, 0);
    atomic_store(&WK.rescued, 0);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);   /* idle */
    ck_assert_int_eq(pthread_create(&th, NULL, wk_thread, NULL), 0);
    int rc = aloop_run(l, ALOOP_RUN_ONCE);
    atomic_store(&WK.returned, 1);
    pthread_join(th, NULL);
    ck_assert_msg(!atomic_load(&WK.rescued), "call_soon_threadsafe did not wake the loop");
    ck_assert_int_eq(WK.rc, 0);
    ck_assert_int_eq(rc, 1);
    ck_assert_int_eq(WK.called, 1);
    ck_assert_int_eq(WK.wrong_thread, 0);
    ck_assert_int_eq(r.count, 0);
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), 0);
    close_loop(l);
    close2(p);
}
END_TEST

static struct {
    aloop_t *loop;
    atomic_int returned, rescued;
} SF;

static void *sf_thread(void *arg)
{
    (void)arg;
    sleep_ms(20);
    aloop_stop(SF.loop);
    for (int k = 0; k < 400 && !atomic_load(&SF.returned); k++)
        sleep_ms(10);
    if (!atomic_load(&SF.returned)) {
        atomic_store(&SF.rescued, 1);
        aloop_call_soon_threadsafe(SF.loop, cb_stop, NULL);
    }
    return NULL;
}

static void stop_from_thread_case(aloop_t *l, const char *what)
{
    pthread_t th;
    SF.loop = l;
    atomic_store(&SF.returned, 0);
    atomic_store(&SF.rescued, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, sf_thread, NULL), 0);
    int rc = aloop_run(l, ALOOP_RUN_FOREVER);
    atomic_store(&SF.returned, 1);
    pthread_join(th, NULL);
    ck_assert_msg(!atomic_load(&SF.rescued), "%s: aloop_stop from a thread did not stop RUN_FOREVER", what);
    ck_assert_msg(rc == 0, "%s: aloop_run = %d", what, rc);
}

START_TEST(test_stop_from_other_thread)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    struct io_rec r = READER();
    stop_from_thread_case(l, "empty loop");

    mk_pipe(p);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);
    aloop_id_t t = aloop_call_later(l, 10 * ALOOP_SEC, cb_log, TAG(1));
    ck_assert_int_gt(t, 0);
    stop_from_thread_case(l, "idle reader and far timer");
    ck_assert_int_eq(aloop_cancel(l, t), 0);
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), 0);

    g_requeue_count = 0;
    g_requeue_limit = 0;
    ck_assert_int_gt(aloop_call_soon(l, cb_requeue, NULL), 0);
    stop_from_thread_case(l, "busy loop");
    ck_assert_int_gt(g_requeue_count, 0);
    LOG_EXPECT_EMPTY();
    close_loop(l);
    close2(p);
}
END_TEST

static void cb_stopper(aloop_t *loop, void *arg)
{
    int base = (int)(intptr_t)arg;
    log_add(base + 1);
    aloop_stop(loop);
    aloop_call_soon(loop, cb_log, TAG(base + 4));
}

START_TEST(test_stop_from_callback)
{
    aloop_t *l = NEW_LOOP();
    ck_assert_int_gt(aloop_call_soon(l, cb_stopper, TAG(0)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(2)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(3)), 0);
    aloop_id_t far = aloop_call_later(l, 10 * ALOOP_SEC, cb_log, TAG(99));
    ck_assert_int_gt(far, 0);
    uint64_t t0 = mono_ns();
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_uint_lt(mono_ns() - t0, 2 * ALOOP_SEC);
    LOG_EXPECT(1, 2, 3);       /* the rest of the iteration ran, the next did not */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(1, 2, 3, 4);

    log_clear();
    ck_assert_int_gt(aloop_call_soon(l, cb_stopper, TAG(10)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(12)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_FOREVER), 0);
    LOG_EXPECT(11, 12);
    ck_assert_int_eq(aloop_cancel(l, far), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(11, 12, 14);

    /* NOWAIT stopped from a callback returns 0 although work remains. */
    log_clear();
    far = aloop_call_later(l, 10 * ALOOP_SEC, cb_log, TAG(99));
    ck_assert_int_gt(far, 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_stopper, TAG(20)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(21);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(21, 24);
    close_loop(l);
}
END_TEST

START_TEST(test_stop_before_run)
{
    aloop_t *l = NEW_LOOP();
    int p[2], rescued = 0;
    struct io_rec r = READER();
    g_requeue_count = 0;
    g_requeue_limit = 0;
    aloop_stop(l);
    ck_assert_int_gt(aloop_call_soon(l, cb_requeue, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(g_requeue_count, 1);
    /* The stop was used up. */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(g_requeue_count, 2);
    g_requeue_limit = 10;
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(g_requeue_count, 10);

    /* FOREVER with only an idle reader: one iteration that does not wait. */
    mk_pipe(p);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);
    aloop_id_t t = aloop_call_later(l, 3 * ALOOP_SEC, cb_flag_stop, &rescued);
    ck_assert_int_gt(t, 0);
    aloop_stop(l);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_FOREVER), 0);
    ck_assert_msg(!rescued, "a stopped loop's run waited for I/O");
    ck_assert_int_eq(aloop_cancel(l, t), 0);
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), 0);
    close_loop(l);
    close2(p);
}
END_TEST

/* ======================================================================== */
/* Run modes and return values                                              */
/* ======================================================================== */

START_TEST(test_run_return_values)
{
    aloop_t *l = NEW_LOOP();
    int p[2], n = 0;
    struct io_rec r = READER();
    uint64_t t0 = mono_ns();
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_uint_lt(mono_ns() - t0, 2 * ALOOP_SEC);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);

    aloop_id_t t = aloop_call_later(l, 10 * ALOOP_SEC, cb_count, &n);
    ck_assert_int_gt(t, 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(aloop_cancel(l, t), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);

    ck_assert_int_gt(aloop_call_soon(l, cb_count, &n), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(n, 1);

    mk_pipe(p);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);

    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, cb_count, &n), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    ck_assert_int_eq(n, 1);
    close_loop(l);
    close2(p);
}
END_TEST

/* Regression: aloop-libuv armed a one-shot uv_timer for a sub-millisecond
 * wait; when the millisecond ticked over before uv_run polled, libuv ran the
 * timer first and then blocked in epoll_wait(-1) with aloop's timer due. */
START_TEST(test_short_timers_never_hang)
{
    aloop_t *l = NEW_LOOP();
    int n = 0;
    for (int k = 0; k < 1500; k++) {
        ck_assert_int_gt(aloop_call_later(l, (uint64_t)(k % 7) * 50 * ALOOP_US, cb_count, &n), 0);
        ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    }
    ck_assert_int_eq(n, 1500);
    close_loop(l);
}
END_TEST

START_TEST(test_run_once_waits_for_timer)
{
    aloop_t *l = NEW_LOOP();
    struct timer_rec a = { 0 }, b = { 0 };
    aloop_update_time(l);
    a.deadline = aloop_now(l) + 20 * ALOOP_MS;
    ck_assert_int_gt(aloop_call_later(l, 20 * ALOOP_MS, cb_timer_rec, &a), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_ONCE), 0);
    ck_assert_int_eq(a.count, 1);
    ck_assert_uint_ge(mono_ns(), a.deadline);

    /* With a later timer left, ONCE says work remains. */
    aloop_update_time(l);
    b.deadline = aloop_now(l) + 20 * ALOOP_MS;
    ck_assert_int_gt(aloop_call_later(l, 20 * ALOOP_MS, cb_timer_rec, &b), 0);
    aloop_id_t far = aloop_call_later(l, 10 * ALOOP_SEC, cb_log, TAG(1));
    ck_assert_int_gt(far, 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_ONCE), 1);
    ck_assert_int_eq(b.count, 1);
    ck_assert_uint_ge(b.fired_live, b.deadline);
    ck_assert_int_eq(aloop_cancel(l, far), 0);
    LOG_EXPECT_EMPTY();
    close_loop(l);
}
END_TEST

static struct { int run_nowait, run_default, run_once, close; int called; } NR;

static void cb_nested(aloop_t *loop, void *arg)
{
    (void)arg;
    NR.called++;
    NR.run_nowait = aloop_run(loop, ALOOP_RUN_NOWAIT);
    NR.run_default = aloop_run(loop, ALOOP_RUN_DEFAULT);
    NR.run_once = aloop_run(loop, ALOOP_RUN_ONCE);
    NR.close = aloop_close(loop);
}

START_TEST(test_nested_run_and_close)
{
    aloop_t *l = NEW_LOOP();
    memset(&NR, 0, sizeof NR);
    ck_assert_int_gt(aloop_call_soon(l, cb_nested, NULL), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(1)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(NR.called, 1);
    ck_assert_int_eq(NR.run_nowait, -EBUSY);
    ck_assert_int_eq(NR.run_default, -EBUSY);
    ck_assert_int_eq(NR.run_once, -EBUSY);
    ck_assert_int_eq(NR.close, -EBUSY);
    LOG_EXPECT(1);   /* the nested runs ran nothing; the outer one went on */

    /* From a timer callback, too. */
    memset(&NR, 0, sizeof NR);
    ck_assert_int_gt(aloop_call_later(l, 1 * ALOOP_MS, cb_nested, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(NR.called, 1);
    ck_assert_int_eq(NR.run_nowait, -EBUSY);
    ck_assert_int_eq(NR.close, -EBUSY);

    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(2)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(1, 2);
    close_loop(l);
}
END_TEST

START_TEST(test_run_bad_args)
{
    aloop_t *l = NEW_LOOP();
    ck_assert_int_eq(aloop_run(NULL, ALOOP_RUN_DEFAULT), -EINVAL);
    ck_assert_int_eq(aloop_run(l, (aloop_run_mode)42), -EINVAL);
    ck_assert_int_eq(aloop_run(l, (aloop_run_mode)-1), -EINVAL);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* Close                                                                    */
/* ======================================================================== */

START_TEST(test_close_drops_pending)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    struct io_rec r = READER(.tag = 6), w = WRITER(.tag = 7);
    install_my_handler(SIGUSR1);
    mk_pipe(p);
    put(p[1]);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(1)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 2, cb_log, TAG(2)), 0);
    ck_assert_int_gt(aloop_call_later(l, 1 * ALOOP_MS, cb_log, TAG(3)), 0);
    ck_assert_int_gt(aloop_call_every(l, 1 * ALOOP_MS, cb_log, TAG(4)), 0);
    ck_assert_int_gt(aloop_call_at(l, aloop_now(l), cb_log, TAG(5)), 0);
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_SEC, cb_log, TAG(9)), 0);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_add_writer(l, p[1], io_cb, &w), 0);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, cb_log, TAG(8)), 0);
    threadsafe_from_thread(l, 10);
    raise(SIGUSR1);
    ck_assert_int_eq(g_my_handler_count, 0);
    sleep_ms(3);
    close_loop(l);
    LOG_EXPECT_EMPTY();
    ck_assert_int_eq(r.count + w.count, 0);
    /* The user's fds are the user's. */
    ck_assert(fd_is_open(p[0]));
    ck_assert(fd_is_open(p[1]));
    /* The signal's previous disposition is back. */
    int before = g_my_handler_count;
    raise(SIGUSR1);
    ck_assert_int_eq(g_my_handler_count, before + 1);
    LOG_EXPECT_EMPTY();
    close2(p);
}
END_TEST

START_TEST(test_close_null)
{
    ck_assert_int_eq(aloop_close(NULL), -EINVAL);
}
END_TEST

/* After fork() the child closes the loop it inherited (and may make its own);
 * that changes nothing the parent's loop relies on, even a shared epoll
 * instance. */
static int fork_child(aloop_t *inherited, const char *be)
{
    int n = 0;
    aloop_t *own = NULL;
    if (aloop_get_event_loop() != inherited)
        return 10;
    if (aloop_close(inherited) != 0)
        return 11;
    if (aloop_new(&own, be) != 0)
        return 12;
    if (aloop_call_soon(own, cb_count, &n) <= 0 || aloop_run(own, ALOOP_RUN_DEFAULT) != 0 || n != 1)
        return 13;
    if (aloop_close(own) != 0)
        return 14;
    return 0;
}

START_TEST(test_fork_child_closes_inherited)
{
    aloop_t *l = NEW_LOOP();
    int p[2], q[2], status = 0, fired = 0;
    struct io_rec r = READER(.drain = 1), w = WRITER(.remove = 1);
    mk_pipe(p);
    mk_pipe(q);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_add_writer(l, q[1], io_cb, &w), 0);
    ck_assert_int_gt(aloop_call_later(l, 5 * ALOOP_MS, cb_count, &fired), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);   /* everything is registered */
    ck_assert_int_eq(w.count, 1);
    ck_assert_int_eq(aloop_add_writer(l, q[1], io_cb, &w), 0);
    aloop_set_event_loop(l);

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fork_child(l, BE));
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child: status %#x (exit code 10+k: step k of fork_child failed)", status);

    put(p[1]);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_ONCE), 1);
    ck_assert_int_eq(r.count, 1);
    ck_assert_int_eq(w.count, 2);
    ck_assert_int_eq(aloop_remove_writer(l, q[1]), 0);
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), 0);
    /* The timer, too, still works; then nothing is left. */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(fired, 1);
    close_loop(l);
    close2(p);
    close2(q);
}
END_TEST

/* ======================================================================== */
/* The current loop                                                         */
/* ======================================================================== */

static struct {
    aloop_t *main_loop, *got;
    int same_twice, works, closed, after_close_ok;
} CL;

static int loop_works(aloop_t *l)
{
    int n = 0;
    if (!l || aloop_call_soon(l, cb_count, &n) <= 0)
        return 0;
    return aloop_run(l, ALOOP_RUN_DEFAULT) == 0 && n == 1;
}

static void *cl_thread(void *arg)
{
    (void)arg;
    aloop_t *l = aloop_get_event_loop();
    CL.got = l;
    CL.same_twice = l && aloop_get_event_loop() == l;
    CL.works = loop_works(l);
    CL.closed = l ? aloop_close(l) : -1;
    aloop_t *l2 = aloop_get_event_loop();
    CL.after_close_ok = loop_works(l2);
    if (l2)
        aloop_close(l2);
    return NULL;
}

START_TEST(test_current_loop)
{
    pthread_t th;
    ck_assert_int_eq(setenv("ALOOP_BACKEND", BE, 1), 0);
    memset(&CL, 0, sizeof CL);

    aloop_t *l1 = aloop_get_event_loop();
    ck_assert_ptr_nonnull(l1);
    ck_assert_str_eq(aloop_backend(l1), BE);
    ck_assert_ptr_eq(aloop_get_event_loop(), l1);
    ck_assert(loop_works(l1));

    /* Another thread gets its own loop. */
    CL.main_loop = l1;
    ck_assert_int_eq(pthread_create(&th, NULL, cl_thread, NULL), 0);
    pthread_join(th, NULL);
    ck_assert_ptr_nonnull(CL.got);
    ck_assert(CL.got != l1);
    ck_assert(CL.same_twice);
    ck_assert(CL.works);
    ck_assert_int_eq(CL.closed, 0);
    ck_assert(CL.after_close_ok);
    ck_assert_ptr_eq(aloop_get_event_loop(), l1);

    /* set, then get. */
    aloop_t *l3 = new_loop(BE);
    aloop_set_event_loop(l3);
    ck_assert_ptr_eq(aloop_get_event_loop(), l3);
    /* Closing a loop that is not current leaves the current one alone. */
    close_loop(l1);
    ck_assert_ptr_eq(aloop_get_event_loop(), l3);

    /* NULL clears: get creates a new one (l3 is alive, so it differs). */
    aloop_set_event_loop(NULL);
    aloop_t *l4 = aloop_get_event_loop();
    ck_assert_ptr_nonnull(l4);
    ck_assert(l4 != l3);
    ck_assert_ptr_eq(aloop_get_event_loop(), l4);
    ck_assert(loop_works(l4));

    /* Closing the current loop clears it. */
    close_loop(l4);
    aloop_t *l5 = aloop_get_event_loop();
    ck_assert_ptr_nonnull(l5);
    ck_assert(l5 != l3);
    ck_assert_ptr_eq(aloop_get_event_loop(), l5);
    ck_assert(loop_works(l5));
    ck_assert_str_eq(aloop_backend(l5), BE);
    close_loop(l5);
    close_loop(l3);
}
END_TEST

/* ======================================================================== */
/* Backend selection                                                        */
/* ======================================================================== */

static int in_list(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (!strcmp(*list, name))
            return 1;
    return 0;
}

START_TEST(test_backend_by_name)
{
    aloop_t *l = NEW_LOOP();
    ck_assert_str_eq(aloop_backend(l), BE);
    if (is_native(BE))
        ck_assert_ptr_null(aloop_native(l));
    close_loop(l);
}
END_TEST

START_TEST(test_backend_env)
{
    const char *const *list = aloop_backends();
    aloop_t *l = NULL;
    ck_assert_ptr_nonnull(list);
    ck_assert_ptr_nonnull(list[0]);

    ck_assert_int_eq(setenv("ALOOP_BACKEND", BE, 1), 0);
    l = new_loop(NULL);
    ck_assert_str_eq(aloop_backend(l), BE);
    close_loop(l);

    /* Read at each aloop_new, not once. */
    const char *other = NULL;
    for (const char *const *p = list; *p; p++)
        if (strcmp(*p, BE)) {
            other = *p;
            break;
        }
    if (other) {
        ck_assert_int_eq(setenv("ALOOP_BACKEND", other, 1), 0);
        l = new_loop(NULL);
        ck_assert_str_eq(aloop_backend(l), other);
        close_loop(l);
    }

    /* Empty or unset: the best one, first in the list. */
    ck_assert_int_eq(setenv("ALOOP_BACKEND", "", 1), 0);
    l = new_loop(NULL);
    ck_assert_str_eq(aloop_backend(l), list[0]);
    close_loop(l);
    unsetenv("ALOOP_BACKEND");
    l = new_loop(NULL);
    ck_assert_str_eq(aloop_backend(l), list[0]);
    close_loop(l);

    /* Unknown names. */
    l = NULL;
    ck_assert_int_eq(aloop_new(&l, "nope"), -ENOENT);
    ck_assert_int_eq(aloop_new(&l, ""), -ENOENT);   /* a name, not NULL */
    ck_assert_ptr_null(l);
    /* names the contract reserves ("more may come"): known, not loadable */
    ck_assert_int_eq(aloop_new(&l, "uring"), -ENOTSUP);
    ck_assert_int_eq(aloop_new(&l, "kqueue"), -ENOTSUP);
    ck_assert_int_eq(aloop_backend_status("kqueue"), -ENOSYS);
    ck_assert(!in_list(aloop_backends(), "uring"));
    ck_assert_ptr_null(l);
    ck_assert_int_eq(setenv("ALOOP_BACKEND", "nope", 1), 0);
    ck_assert_int_eq(aloop_new(&l, NULL), -ENOENT);
    /* The current loop cannot be created either. */
    aloop_set_event_loop(NULL);
    ck_assert_ptr_null(aloop_get_event_loop());
    /* An explicit name wins over the variable. */
    l = new_loop(BE);
    ck_assert_str_eq(aloop_backend(l), BE);
    close_loop(l);
    unsetenv("ALOOP_BACKEND");
}
END_TEST

START_TEST(test_backends_list)
{
    const char *const *list = aloop_backends();
    int n = 0;
    ck_assert_ptr_nonnull(list);
    for (const char *const *p = list; *p; p++, n++) {
        ck_assert_int_gt(strlen(*p), 0);
        for (const char *const *q = list; q < p; q++)
            ck_assert_msg(strcmp(*p, *q), "backend %s listed twice", *p);
    }
    ck_assert_int_gt(n, 0);
#ifdef __linux__
    ck_assert(in_list(list, "select"));
    ck_assert(in_list(list, "poll"));
    ck_assert(in_list(list, "epoll"));
#endif
    ck_assert_msg(in_list(list, BE), "backend %s is not listed by aloop_backends()", BE);
    ck_assert_str_eq(aloop_version(), ALOOP_VERSION_STRING);
}
END_TEST

/* ======================================================================== */
/* Bad input                                                                */
/* ======================================================================== */

static void io_nop(aloop_t *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    (void)arg;
}

START_TEST(test_bad_fd)
{
    aloop_t *l = NEW_LOOP();
    ck_assert_int_eq(aloop_add_reader(l, -1, io_nop, NULL), -EBADF);
    ck_assert_int_eq(aloop_add_writer(l, -1, io_nop, NULL), -EBADF);
    ck_assert_int_eq(aloop_remove_reader(l, -1), -EBADF);
    ck_assert_int_eq(aloop_remove_writer(l, -1), -EBADF);
    ck_assert_int_eq(aloop_add_reader(l, -7, io_nop, NULL), -EBADF);
    ck_assert_int_lt(aloop_set_io_priority(l, -1, 0), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    close_loop(l);
}
END_TEST

START_TEST(test_null_callbacks)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    mk_pipe(p);
    ck_assert_int_eq(aloop_call_soon(l, NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_call_soon_prio(l, 1, NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_call_later(l, ALOOP_MS, NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_call_at(l, aloop_now(l), NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_call_every(l, ALOOP_MS, NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_call_soon_threadsafe(l, NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_add_reader(l, p[0], NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_add_writer(l, p[1], NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, NULL, NULL), -EINVAL);
    /* None of them registered anything. */
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), -ENOENT);
    ck_assert_int_eq(aloop_remove_writer(l, p[1]), -ENOENT);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), -ENOENT);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);

    /* NULL loop. */
    ck_assert_int_eq(aloop_call_soon(NULL, cb_log, NULL), -EINVAL);
    ck_assert_int_eq(aloop_call_soon_prio(NULL, 0, cb_log, NULL), -EINVAL);
    ck_assert_int_eq(aloop_call_later(NULL, ALOOP_MS, cb_log, NULL), -EINVAL);
    ck_assert_int_eq(aloop_call_at(NULL, 0, cb_log, NULL), -EINVAL);
    ck_assert_int_eq(aloop_call_every(NULL, ALOOP_MS, cb_log, NULL), -EINVAL);
    ck_assert_int_eq(aloop_call_soon_threadsafe(NULL, cb_log, NULL), -EINVAL);
    ck_assert_int_lt(aloop_cancel(NULL, 1), 0);
    ck_assert_int_lt(aloop_set_priority(NULL, 1, 0), 0);
    ck_assert_int_lt(aloop_add_reader(NULL, p[0], io_nop, NULL), 0);
    ck_assert_int_lt(aloop_remove_reader(NULL, p[0]), 0);
    ck_assert_int_lt(aloop_add_signal_handler(NULL, SIGUSR1, cb_log, NULL), 0);
    ck_assert_int_lt(aloop_remove_signal_handler(NULL, SIGUSR1), 0);
    close_loop(l);
    close2(p);
}
END_TEST

START_TEST(test_bad_priority)
{
    aloop_t *l = NEW_LOOP();
    int p[2];
    struct io_rec r = READER();
    mk_pipe(p);
    ck_assert_int_eq(aloop_call_soon_prio(l, 3, cb_log, TAG(1)), -EINVAL);
    ck_assert_int_eq(aloop_call_soon_prio(l, -3, cb_log, TAG(1)), -EINVAL);
    aloop_id_t id = aloop_call_soon(l, cb_log, TAG(2));
    aloop_id_t lo = aloop_call_soon_prio(l, ALOOP_PRIO_MIN, cb_log, TAG(3));
    aloop_id_t hi = aloop_call_soon_prio(l, ALOOP_PRIO_MAX, cb_log, TAG(4));
    ck_assert_int_gt(id, 0);
    ck_assert_int_gt(lo, 0);
    ck_assert_int_gt(hi, 0);
    ck_assert_int_eq(aloop_set_priority(l, id, 3), -EINVAL);
    ck_assert_int_eq(aloop_set_priority(l, id, -3), -EINVAL);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_cb, &r), 0);
    ck_assert_int_eq(aloop_set_io_priority(l, p[0], 3), -EINVAL);
    ck_assert_int_eq(aloop_set_io_priority(l, p[0], -3), -EINVAL);
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), 0);
    /* The failed calls changed nothing. */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    LOG_EXPECT(4, 2, 3);
    close_loop(l);
    close2(p);
}
END_TEST

START_TEST(test_new_null_and_strerror)
{
    ck_assert_int_eq(aloop_new(NULL, BE), -EINVAL);
    ck_assert_int_eq(aloop_new(NULL, NULL), -EINVAL);
    const char *s = aloop_strerror(-ENOENT);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_gt(strlen(s), 0);
    ck_assert_ptr_nonnull(aloop_strerror(ENOENT));
    ck_assert_ptr_nonnull(aloop_strerror(-EBUSY));
    ck_assert_ptr_nonnull(aloop_strerror(-123456));
    ck_assert_ptr_nonnull(aloop_strerror(0));
    ck_assert_str_ne(aloop_strerror(-ENOENT), aloop_strerror(-EBUSY));
}
END_TEST

/* ======================================================================== */

static void add_all_tests(TCase *tc, int i)
{
    /* Every test, registered once for every backend. */
    const TTest *tests[] = {
        test_call_soon_fifo,
        test_call_soon_prio_order,
        test_io_threadsafe_default_prio,
        test_step3_order,
        test_next_iteration,
        test_requeue_does_not_starve_io,
        test_chain_with_timers_pending,
        test_watcher_added_mid_chain_is_polled,
        test_first_iteration_polls,
        test_cancel_basic,
        test_cancel_from_earlier_callback,
        test_cancel_timer,
        test_cancel_self,
        test_ids_positive_distinct,
        test_set_priority,
        test_set_priority_during_iteration,
        test_set_priority_in_place_iterations, test_set_priority_moved_then_cancelled,
        test_timer_deadline_order,
        test_timer_equal_deadlines_fifo,
        test_relative_deadline_cached_clock,
        test_timer_never_early,
        test_call_at,
        test_call_every,
        test_call_every_no_burst,
        test_call_every_zero_interval,
        test_now_cached_per_iteration,
        test_reader_pipe,
        test_writer_pipe,
        test_reader_writer_independent,
        test_reader_replace,
        test_remove_in_callback,
        test_remove_from_earlier_callback,
        test_remove_without_watcher,
        test_hangup_reported,
        test_io_priority,
        test_many_fds,
        test_fd_closed_while_watched,
        test_add_closed_fd,
        test_regular_file,
        test_large_fd,
        test_signal_handler,
        test_signal_coalesced,
        test_signal_remove_restores,
        test_signal_remove_under_fire,
        test_signal_invalid,
        test_signal_replace,
        test_two_loops,
        test_two_loops_signal,
        test_signal_from_other_thread,
        test_threadsafe_many,
        test_threadsafe_wakes_loop,
        test_stop_from_other_thread,
        test_stop_from_callback,
        test_stop_before_run,
        test_run_return_values,
        test_run_once_waits_for_timer,
        test_short_timers_never_hang,
        test_nested_run_and_close,
        test_run_bad_args,
        test_close_drops_pending,
        test_close_null,
        test_fork_child_closes_inherited,
        test_current_loop,
        test_backend_by_name,
        test_backend_env,
        test_backends_list,
        test_bad_fd,
        test_null_callbacks,
        test_bad_priority,
        test_new_null_and_strerror,
    };
    for (size_t k = 0; k < sizeof tests / sizeof tests[0]; k++)
        tcase_add_loop_test(tc, tests[k], i, i + 1);
}

int main(void)
{
    backends_init();
    if (g_nbackends == 0) {
        fprintf(stderr, "test_loop: no backends to test\n");
        return EXIT_FAILURE;
    }
    Suite *s = suite_create("aloop");
    for (int i = 0; i < g_nbackends; i++) {
        TCase *tc = tcase_create(g_backends[i]);
        tcase_set_timeout(tc, 30);
        tcase_add_checked_fixture(tc, setup, teardown);
        add_all_tests(tc, i);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
