/* test_adopt_ev.c -- aloop inside a host application's libev loop.
 *
 * Every test creates the host loop with plain libev, adopts it with
 * aloop_new_from_ev(), and runs the host's own ev_run().  A host that is
 * never woken or never released shows up as a Check timeout (5 s); a host
 * released too early shows up as callbacks that did not run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aloop-ev.h"
#include "suite.h"

/* ---- helpers ------------------------------------------------------------ */

static struct ev_loop *new_host(void)
{
    unsigned backends = ev_recommended_backends();
#ifdef EVBACKEND_IOURING
    backends &= ~(unsigned)EVBACKEND_IOURING;
#endif
    struct ev_loop *ev = ev_loop_new(EVFLAG_NOENV | backends);
    ck_assert_ptr_nonnull(ev);
    return ev;
}

static aloop_t *adopt(struct ev_loop *ev)
{
    aloop_t *l = NULL;
    int rc = aloop_new_from_ev(&l, ev);
    ck_assert_msg(rc == 0, "aloop_new_from_ev = %d (%s)", rc, aloop_strerror(rc));
    ck_assert_ptr_nonnull(l);
    return l;
}

static void close_loop(aloop_t *l)
{
    int rc = aloop_close(l);
    ck_assert_msg(rc == 0, "aloop_close = %d (%s)", rc, aloop_strerror(rc));
}

/* Host run with a bound on its length, so that a host that returns too early
 * or too late is a failure with a message rather than only a timeout. */
static uint64_t run_host(struct ev_loop *ev)
{
    uint64_t t0 = mono_ns();
    ev_run(ev, 0);
    return mono_ns() - t0;
}

#define LOG_MAX 64
static int g_log[LOG_MAX];
static int g_nlog;

static void log_add(int v)
{
    ck_assert_int_lt(g_nlog, LOG_MAX);
    g_log[g_nlog++] = v;
}

static void log_expect(const int *want, int n)
{
    ck_assert_int_eq(g_nlog, n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(g_log[i] == want[i], "log[%d] = %d, want %d", i, g_log[i], want[i]);
}

static void setup(void)
{
    g_nlog = 0;
}

/* An aloop callback that logs its tag and checks it runs inside ev_run. */
static void cb_log(aloop_t *l, void *arg)
{
    struct ev_loop *ev = aloop_native(l);
    ck_assert_msg(ev_depth(ev) > 0, "aloop callback %d ran outside the host's ev_run",
                  (int)(intptr_t)arg);
    log_add((int)(intptr_t)arg);
}

/* Logs only: aloop_run on an adopted loop runs callbacks outside ev_run. */
static void cb_log_any(aloop_t *l, void *arg)
{
    (void)l;
    log_add((int)(intptr_t)arg);
}

/* A host timer that logs its tag (in w->data). */
static void host_timer_log(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)revents;
    log_add((int)(intptr_t)w->data);
}

static void host_timer(struct ev_loop *ev, ev_timer *w, double after, int tag,
                       void (*cb)(struct ev_loop *, ev_timer *, int))
{
    ev_timer_init(w, cb, after, 0.);
    w->data = (void *)(intptr_t)tag;
    ev_timer_start(ev, w);
}

/* ---- (1) host timers and aloop timers interleave in deadline order ------ */

/* 25 ms apart: timers due within one host iteration run host's first, so a
 * closer spacing would test the machine's load rather than the backend. */
START_TEST(test_timers_interleave)
{
    struct ev_loop *ev = new_host();
    aloop_t *l = adopt(ev);
    ev_timer t25, t75;
    ev_now_update(ev);
    host_timer(ev, &t25, 0.025, 25, host_timer_log);
    host_timer(ev, &t75, 0.075, 75, host_timer_log);
    ck_assert_int_gt(aloop_call_later(l, 100 * ALOOP_MS, cb_log, (void *)100), 0);
    ck_assert_int_gt(aloop_call_later(l, 50 * ALOOP_MS, cb_log, (void *)50), 0);
    uint64_t took = run_host(ev);
    static const int want[] = { 25, 50, 75, 100 };
    log_expect(want, 4);
    ck_assert_uint_ge(took, 95 * ALOOP_MS);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    close_loop(l);
    ev_loop_destroy(ev);
}
END_TEST

/* ---- (2) call_soon in priority order, and aloop I/O, inside ev_run ------ */

static int g_pipe[2];

static void reader_cb(aloop_t *l, int fd, unsigned events, void *arg)
{
    (void)arg;
    char buf[16];
    ck_assert_uint_eq(events, ALOOP_READABLE);
    ck_assert_int_gt(ev_depth(aloop_native(l)), 0);
    ck_assert_int_eq(read(fd, buf, sizeof buf), 1);
    log_add(100);
    ck_assert_int_eq(aloop_remove_reader(l, fd), 0);
    /* queued from an aloop callback: runs in a later iteration */
    ck_assert_int_gt(aloop_call_soon_prio(l, ALOOP_PRIO_MIN, cb_log, (void *)101), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, ALOOP_PRIO_MAX, cb_log, (void *)102), 0);
}

static void host_write(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)w;
    (void)revents;
    log_add(50);
    ck_assert_int_eq(write(g_pipe[1], "x", 1), 1);
}

START_TEST(test_call_soon_and_io)
{
    struct ev_loop *ev = new_host();
    aloop_t *l = adopt(ev);
    ck_assert_int_eq(pipe2(g_pipe, O_NONBLOCK | O_CLOEXEC), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, -2, cb_log, (void *)-2), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 0, cb_log, (void *)0), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 2, cb_log, (void *)2), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 1, cb_log, (void *)1), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 0, cb_log, (void *)3), 0);
    aloop_id_t gone = aloop_call_soon_prio(l, 2, cb_log, (void *)666);
    ck_assert_int_gt(gone, 0);
    ck_assert_int_eq(aloop_cancel(l, gone), 0);
    ck_assert_int_eq(aloop_add_reader(l, g_pipe[0], reader_cb, NULL), 0);
    ev_timer tw;
    host_timer(ev, &tw, 0.020, 0, host_write);
    uint64_t took = run_host(ev);
    static const int want[] = { 2, 1, 0, 3, -2, 50, 100, 102, 101 };
    log_expect(want, 9);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    close_loop(l);
    ev_loop_destroy(ev);
    close(g_pipe[0]);
    close(g_pipe[1]);
}
END_TEST

/* A call queued from host code (outside any aloop callback) runs promptly,
 * though the host would otherwise sleep on a long timer. */
static aloop_t *g_loop;

static void cb_break(aloop_t *l, void *arg)
{
    (void)arg;
    log_add(2);
    ev_break(aloop_native(l), EVBREAK_ALL);
}

static void host_queue(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)w;
    (void)revents;
    log_add(1);
    ck_assert_int_gt(aloop_call_soon(g_loop, cb_break, NULL), 0);
}

START_TEST(test_call_soon_from_host)
{
    struct ev_loop *ev = new_host();
    g_loop = adopt(ev);
    ev_timer t, longt;
    host_timer(ev, &t, 0.010, 0, host_queue);
    host_timer(ev, &longt, 30., 0, host_timer_log);
    uint64_t took = run_host(ev);
    static const int want[] = { 1, 2 };
    log_expect(want, 2);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    ev_timer_stop(ev, &longt);
    close_loop(g_loop);
    ev_loop_destroy(ev);
}
END_TEST

/* ---- (3) the host's run returns when both are idle, and not before ------ */

START_TEST(test_idle_aloop_keeps_nothing_alive)
{
    struct ev_loop *ev = new_host();
    aloop_t *l = adopt(ev);
    /* nothing anywhere: returns at once */
    ck_assert_uint_lt(run_host(ev), 500 * ALOOP_MS);
    /* a host timer only: returns right after it */
    ev_timer t;
    host_timer(ev, &t, 0.020, 7, host_timer_log);
    uint64_t took = run_host(ev);
    static const int want[] = { 7 };
    log_expect(want, 1);
    ck_assert_uint_lt(took, 500 * ALOOP_MS);
    /* aloop work that came and went leaves nothing behind either */
    ck_assert_int_gt(aloop_call_soon(l, cb_log, (void *)8), 0);
    aloop_id_t id = aloop_call_later(l, 10 * ALOOP_SEC, cb_log, (void *)9);
    ck_assert_int_gt(id, 0);
    ck_assert_int_eq(aloop_cancel(l, id), 0);
    ck_assert_uint_lt(run_host(ev), 500 * ALOOP_MS);
    static const int want2[] = { 7, 8 };
    log_expect(want2, 2);
    close_loop(l);
    ev_loop_destroy(ev);
}
END_TEST

START_TEST(test_pending_timer_keeps_host)
{
    struct ev_loop *ev = new_host();
    aloop_t *l = adopt(ev);
    ev_timer t;
    host_timer(ev, &t, 0.010, 10, host_timer_log);
    ck_assert_int_gt(aloop_call_later(l, 80 * ALOOP_MS, cb_log, (void *)80), 0);
    uint64_t took = run_host(ev);
    static const int want[] = { 10, 80 };
    log_expect(want, 2);
    ck_assert_uint_ge(took, 75 * ALOOP_MS);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    /* with no host watcher at all, too */
    ck_assert_int_gt(aloop_call_later(l, 30 * ALOOP_MS, cb_log, (void *)30), 0);
    took = run_host(ev);
    static const int want2[] = { 10, 80, 30 };
    log_expect(want2, 3);
    ck_assert_uint_ge(took, 25 * ALOOP_MS);
    close_loop(l);
    ev_loop_destroy(ev);
}
END_TEST

/* A signal handler is pending work too; its callback runs inside ev_run. */
static void cb_signal(aloop_t *l, void *arg)
{
    (void)arg;
    ck_assert_int_gt(ev_depth(aloop_native(l)), 0);
    log_add(SIGUSR1);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), 0);
}

static void *thread_raise(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 50 * 1000000L };
    nanosleep(&ts, NULL);
    return (void *)(intptr_t)kill(getpid(), SIGUSR1);
}

START_TEST(test_signal_inside_host)
{
    struct ev_loop *ev = new_host();
    aloop_t *l = adopt(ev);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, cb_signal, NULL), 0);
    /* the host has no watcher of its own: only aloop's pending signal
     * handler keeps ev_run going until the signal comes */
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thread_raise, NULL), 0);
    uint64_t took = run_host(ev);
    void *res;
    ck_assert_int_eq(pthread_join(th, &res), 0);
    ck_assert_int_eq((int)(intptr_t)res, 0);
    static const int want[] = { SIGUSR1 };
    log_expect(want, 1);
    ck_assert_uint_ge(took, 40 * ALOOP_MS);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    close_loop(l);
    ev_loop_destroy(ev);
}
END_TEST

/* ---- (4) aloop_close leaves the host working ---------------------------- */

static void writer_never(aloop_t *l, int fd, unsigned events, void *arg)
{
    (void)l;
    (void)fd;
    (void)events;
    (void)arg;
    ck_abort_msg("a removed writer ran");
}

static void host_close(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)w;
    (void)revents;
    log_add(1);
    close_loop(g_loop);
    g_loop = NULL;
}

START_TEST(test_close_inside_host)
{
    struct ev_loop *ev = new_host();
    g_loop = adopt(ev);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    /* everything that could keep the host alive or wake it */
    ck_assert_int_eq(aloop_add_reader(g_loop, p[0], reader_cb, NULL), 0);
    ck_assert_int_eq(aloop_add_writer(g_loop, p[1], writer_never, NULL), 0);
    ck_assert_int_eq(aloop_remove_writer(g_loop, p[1]), 0);
    ck_assert_int_gt(aloop_call_later(g_loop, 10 * ALOOP_SEC, cb_log, (void *)99), 0);
    ck_assert_int_eq(aloop_add_signal_handler(g_loop, SIGUSR2, cb_log, (void *)98), 0);
    ev_timer tc, t2;
    host_timer(ev, &tc, 0.010, 0, host_close);
    host_timer(ev, &t2, 0.030, 30, host_timer_log);
    uint64_t took = run_host(ev);
    static const int want[] = { 1, 30 };
    log_expect(want, 2);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    /* the host goes on: a new timer fires, an idle run returns at once */
    ev_timer t3;
    host_timer(ev, &t3, 0.010, 3, host_timer_log);
    ck_assert_uint_lt(run_host(ev), 500 * ALOOP_MS);
    static const int want2[] = { 1, 30, 3 };
    log_expect(want2, 3);
    ck_assert_uint_lt(run_host(ev), 100 * ALOOP_MS);
    ev_loop_destroy(ev);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(test_close_outside_host)
{
    struct ev_loop *ev = new_host();
    aloop_t *l = adopt(ev);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, (void *)1), 0);
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_SEC, cb_log, (void *)2), 0);
    close_loop(l);
    ev_timer t;
    host_timer(ev, &t, 0.010, 3, host_timer_log);
    ck_assert_uint_lt(run_host(ev), 500 * ALOOP_MS);
    static const int want[] = { 3 };
    log_expect(want, 1);
    /* a second adoption of the same host after the first was closed */
    l = adopt(ev);
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_MS, cb_log, (void *)4), 0);
    run_host(ev);
    static const int want2[] = { 3, 4 };
    log_expect(want2, 2);
    close_loop(l);
    ck_assert_uint_lt(run_host(ev), 100 * ALOOP_MS);
    ev_loop_destroy(ev);
}
END_TEST

/* ---- (5) a thread-safe call wakes a host blocked in its own poll -------- */

static ev_io g_idle_io;
static pthread_t g_main;

static void cb_threadsafe(aloop_t *l, void *arg)
{
    (void)arg;
    ck_assert(pthread_equal(pthread_self(), g_main));
    log_add(1);
    /* release the host's own keep-alive */
    ev_io_stop(aloop_native(l), &g_idle_io);
}

static void host_idle_io(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev;
    (void)w;
    (void)revents;
    ck_abort_msg("the idle pipe never becomes readable");
}

static void *thread_main(void *arg)
{
    struct timespec ts = { 0, 100 * 1000000L };
    nanosleep(&ts, NULL);
    int rc = aloop_call_soon_threadsafe(arg, cb_threadsafe, NULL);
    return (void *)(intptr_t)rc;
}

START_TEST(test_threadsafe_wakes_host)
{
    struct ev_loop *ev = new_host();
    aloop_t *l = adopt(ev);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    /* the host blocks on a pipe nobody writes: only aloop's wake-up can
     * end its poll (libev's own cap on a poll is about a minute) */
    ev_io_init(&g_idle_io, host_idle_io, p[0], EV_READ);
    ev_io_start(ev, &g_idle_io);
    g_main = pthread_self();
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thread_main, l), 0);
    uint64_t took = run_host(ev);
    void *res;
    ck_assert_int_eq(pthread_join(th, &res), 0);
    ck_assert_int_eq((int)(intptr_t)res, 0);
    static const int want[] = { 1 };
    log_expect(want, 1);
    ck_assert_uint_ge(took, 90 * ALOOP_MS);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    close_loop(l);
    ev_loop_destroy(ev);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* ---- (6) aloop_native, and aloop_run on an adopted loop ----------------- */

static void host_run_nested(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)w;
    (void)revents;
    /* inside the host's ev_run, aloop_run would run the host recursively */
    ck_assert_int_eq(aloop_run(g_loop, ALOOP_RUN_NOWAIT), -EBUSY);
    log_add(5);
}

static void cb_run_nested(aloop_t *l, void *arg)
{
    (void)arg;
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), -EBUSY);
    log_add(6);
}

START_TEST(test_native_and_run)
{
    struct ev_loop *ev = new_host();
    ck_assert_int_eq(aloop_new_from_ev(NULL, ev), -EINVAL);
    aloop_t *bad = NULL;
    ck_assert_int_eq(aloop_new_from_ev(&bad, NULL), -EINVAL);
    aloop_t *l = adopt(ev);
    g_loop = l;
    ck_assert_ptr_eq(aloop_native(l), ev);
    ck_assert_str_eq(aloop_backend(l), "libev");

    /* outside the host's run, aloop_run drives the host: aloop's and the
     * host's callbacks both run, and DEFAULT returns when aloop is done */
    ev_timer t;
    host_timer(ev, &t, 0.010, 10, host_timer_log);
    ck_assert_int_gt(aloop_call_later(l, 30 * ALOOP_MS, cb_log_any, (void *)30), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    static const int want[] = { 10, 30 };
    log_expect(want, 2);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);

    /* inside it: -EBUSY, from host and from aloop callbacks alike */
    host_timer(ev, &t, 0.010, 0, host_run_nested);
    ck_assert_int_gt(aloop_call_later(l, 20 * ALOOP_MS, cb_run_nested, NULL), 0);
    run_host(ev);
    static const int want2[] = { 10, 30, 5, 6 };
    log_expect(want2, 4);

    /* a created libev loop has its own struct ev_loop */
    aloop_t *own = NULL;
    if (aloop_new(&own, "libev") == 0) {
        ck_assert_ptr_nonnull(aloop_native(own));
        ck_assert_ptr_ne(aloop_native(own), ev);
        close_loop(own);
    }
    close_loop(l);
    ev_loop_destroy(ev);
}
END_TEST

/* Repeated work inside the host: a call_every and a self-requeueing call
 * run inside ev_run, the requeueing one never starving the timer. */
static int g_requeues;

static void cb_requeue(aloop_t *l, void *arg)
{
    (void)arg;
    g_requeues++;
    if (g_nlog < 3)
        ck_assert_int_gt(aloop_call_soon(l, cb_requeue, NULL), 0);
}

static void cb_every(aloop_t *l, void *arg)
{
    log_add(1);
    if (g_nlog == 3)
        ck_assert_int_eq(aloop_cancel(l, *(aloop_id_t *)arg), 0);
}

START_TEST(test_every_and_requeue)
{
    struct ev_loop *ev = new_host();
    aloop_t *l = adopt(ev);
    static aloop_id_t id;
    g_requeues = 0;
    id = aloop_call_every(l, 10 * ALOOP_MS, cb_every, &id);
    ck_assert_int_gt(id, 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_requeue, NULL), 0);
    uint64_t took = run_host(ev);
    ck_assert_int_eq(g_nlog, 3);
    ck_assert_int_gt(g_requeues, 3);
    ck_assert_uint_ge(took, 25 * ALOOP_MS);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    close_loop(l);
    ev_loop_destroy(ev);
}
END_TEST

/* An aloop callback that runs the host's loop recursively (a synchronous
 * wait): aloop cannot dispatch meanwhile, and must not make it spin. */
static int g_prepares;

static void host_count_prepare(struct ev_loop *ev, ev_prepare *w, int revents)
{
    (void)ev;
    (void)w;
    (void)revents;
    g_prepares++;
}

static void host_break_one(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    log_add(2);
    ev_break(ev, EVBREAK_ONE);
}

static void cb_nested_host_run(aloop_t *l, void *arg)
{
    (void)arg;
    struct ev_loop *ev = aloop_native(l);
    static ev_timer t;
    log_add(1);
    /* more aloop work is queued while the nested run waits */
    ck_assert_int_gt(aloop_call_soon(l, cb_log, (void *)3), 0);
    host_timer(ev, &t, 0.030, 0, host_break_one);
    g_prepares = 0;
    ev_run(ev, 0);
    ck_assert_msg(g_prepares < 20, "%d host iterations in a 30 ms nested run: spinning",
                  g_prepares);
}

START_TEST(test_nested_host_run)
{
    struct ev_loop *ev = new_host();
    aloop_t *l = adopt(ev);
    ev_prepare p;
    ev_prepare_init(&p, host_count_prepare);
    ev_prepare_start(ev, &p);
    ev_unref(ev);
    ck_assert_int_gt(aloop_call_soon(l, cb_nested_host_run, NULL), 0);
    ck_assert_uint_lt(run_host(ev), 2 * ALOOP_SEC);
    static const int want[] = { 1, 2, 3 };
    log_expect(want, 3);
    ev_ref(ev);
    ev_prepare_stop(ev, &p);
    close_loop(l);
    ev_loop_destroy(ev);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("adopt-ev");
    TCase *tc = tcase_create("libev");
    tcase_set_timeout(tc, 5);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_timers_interleave);
    tcase_add_test(tc, test_call_soon_and_io);
    tcase_add_test(tc, test_call_soon_from_host);
    tcase_add_test(tc, test_idle_aloop_keeps_nothing_alive);
    tcase_add_test(tc, test_pending_timer_keeps_host);
    tcase_add_test(tc, test_signal_inside_host);
    tcase_add_test(tc, test_close_inside_host);
    tcase_add_test(tc, test_close_outside_host);
    tcase_add_test(tc, test_threadsafe_wakes_host);
    tcase_add_test(tc, test_native_and_run);
    tcase_add_test(tc, test_every_and_requeue);
    tcase_add_test(tc, test_nested_host_run);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
