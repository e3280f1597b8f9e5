/* test_adopt_event.c -- aloop inside a host application's libevent base,
 * and the libev and libevent backends side by side in one process.
 *
 * Every adoption test creates the host base with plain libevent, adopts it
 * with aloop_new_from_event_base(), and runs the host's own
 * event_base_dispatch().  A host that is never woken or never released
 * shows up as a Check timeout (5 s); a host released too early shows up as
 * callbacks that did not run.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aloop-event.h"
#include "suite.h"


/* ---- helpers ------------------------------------------------------------ */

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* libevent's warnings are counted, not printed: a test says how many it
 * expects (none, except where aloop documents libevent's own). */
static int g_warnings;

static void log_cb(int severity, const char *msg)
{
    (void)msg;
    if (severity >= EVENT_LOG_WARN)
        g_warnings++;
}

static struct event_base *new_host(void)
{
    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    return base;
}

static aloop_t *adopt(struct event_base *base)
{
    aloop_t *l = NULL;
    int rc = aloop_new_from_event_base(&l, base);
    ck_assert_msg(rc == 0, "aloop_new_from_event_base = %d (%s)", rc, aloop_strerror(rc));
    ck_assert_ptr_nonnull(l);
    return l;
}

static void close_loop(aloop_t *l)
{
    int rc = aloop_close(l);
    ck_assert_msg(rc == 0, "aloop_close = %d (%s)", rc, aloop_strerror(rc));
}

static int g_in_host;           /* inside run_host's event_base_dispatch */
static int g_busy;

/* The host's own run; returns how long it took. */
static uint64_t run_host(struct event_base *base)
{
    uint64_t t0 = mono_ns();
    g_in_host = 1;
    int rc = event_base_dispatch(base);
    g_in_host = 0;
    ck_assert_msg(rc >= 0, "event_base_dispatch = %d", rc);
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
    for (int i = 0; i < n && i < g_nlog; i++)
        ck_assert_msg(g_log[i] == want[i], "log[%d] = %d, want %d", i, g_log[i], want[i]);
    ck_assert_int_eq(g_nlog, n);
}

static void setup(void)
{
    g_nlog = 0;
    g_warnings = 0;
    g_in_host = 0;
    g_busy = 0;
}

/* An aloop callback that logs its tag and checks it runs inside the host's
 * run. */
static void cb_log(aloop_t *l, void *arg)
{
    (void)l;
    ck_assert_msg(g_in_host, "aloop callback %d ran outside the host's run", (int)(intptr_t)arg);
    log_add((int)(intptr_t)arg);
}

static void cb_log_any(aloop_t *l, void *arg)
{
    (void)l;
    log_add((int)(intptr_t)arg);
}

/* A one-shot host timer (event_base_once: freed by libevent after it ran). */
static void host_timer(struct event_base *base, int ms, void (*cb)(evutil_socket_t, short, void *),
                       void *arg)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    ck_assert_int_eq(event_base_once(base, -1, EV_TIMEOUT, cb, arg, &tv), 0);
}

static void host_log(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    log_add((int)(intptr_t)arg);
}

static void cb_io_never(aloop_t *l, int fd, unsigned events, void *arg)
{
    (void)l;
    (void)arg;
    ck_abort_msg("aloop watcher on fd %d fired (events %u)", fd, events);
}

/* A reader on an fd that stays ready: aloop is busy every host round. */

static void cb_io_busy(aloop_t *l, int fd, unsigned events, void *arg)
{
    (void)l;
    (void)fd;
    (void)events;
    (void)arg;
    ck_assert(g_in_host);
    g_busy++;
}

/* ---- (1) host timers and aloop timers interleave in deadline order ------ */

START_TEST(test_timers_interleave)
{
    struct event_base *base = new_host();
    aloop_t *l = adopt(base);
    host_timer(base, 60, host_log, TAG(60));
    host_timer(base, 20, host_log, TAG(20));
    ck_assert_int_gt(aloop_call_later(l, 80 * ALOOP_MS, cb_log, TAG(80)), 0);
    ck_assert_int_gt(aloop_call_later(l, 40 * ALOOP_MS, cb_log, TAG(40)), 0);
    uint64_t took = run_host(base);
    static const int want[] = { 20, 40, 60, 80 };
    log_expect(want, 4);
    ck_assert_uint_ge(took, 79 * ALOOP_MS);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    close_loop(l);
    event_base_free(base);
    ck_assert_int_eq(g_warnings, 0);
}
END_TEST

/* ---- (2) call_soon in priority order, and aloop I/O, inside the host ---- */

static int g_pipe[2];

static void reader_cb(aloop_t *l, int fd, unsigned events, void *arg)
{
    (void)arg;
    char buf[16];
    ck_assert_uint_eq(events, ALOOP_READABLE);
    ck_assert(g_in_host);
    ck_assert_int_eq(read(fd, buf, sizeof buf), 1);
    log_add(100);
    ck_assert_int_eq(aloop_remove_reader(l, fd), 0);
    /* queued from an aloop callback: they run in a later iteration */
    ck_assert_int_gt(aloop_call_soon_prio(l, ALOOP_PRIO_MIN, cb_log, TAG(101)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, ALOOP_PRIO_MAX, cb_log, TAG(102)), 0);
}

static void host_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    log_add(50);
    ck_assert_int_eq(write(g_pipe[1], "x", 1), 1);
}

START_TEST(test_call_soon_and_io)
{
    struct event_base *base = new_host();
    aloop_t *l = adopt(base);
    ck_assert_int_eq(pipe2(g_pipe, O_NONBLOCK | O_CLOEXEC), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, -2, cb_log, TAG(-2)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 0, cb_log, TAG(0)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 2, cb_log, TAG(2)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 1, cb_log, TAG(1)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 0, cb_log, TAG(3)), 0);
    aloop_id_t gone = aloop_call_soon_prio(l, 2, cb_log, TAG(666));
    ck_assert_int_gt(gone, 0);
    ck_assert_int_eq(aloop_cancel(l, gone), 0);
    ck_assert_int_eq(aloop_add_reader(l, g_pipe[0], reader_cb, NULL), 0);
    host_timer(base, 20, host_write, NULL);
    uint64_t took = run_host(base);
    static const int want[] = { 2, 1, 0, 3, -2, 50, 100, 102, 101 };
    log_expect(want, 9);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    close_loop(l);
    event_base_free(base);
    close(g_pipe[0]);
    close(g_pipe[1]);
    ck_assert_int_eq(g_warnings, 0);
}
END_TEST

/* Ready I/O of one host round is queued before aloop dispatches: a reader
 * and a writer made ready together run in one aloop iteration, by priority
 * (the writer's fd has the higher one). */
static aloop_t *g_loop;

static void io_log(aloop_t *l, int fd, unsigned events, void *arg)
{
    char buf[16];
    (void)events;
    ck_assert(g_in_host);
    log_add((int)(intptr_t)arg);
    if ((intptr_t)arg == 1) {
        ck_assert_int_eq(read(fd, buf, sizeof buf), 1);
        ck_assert_int_eq(aloop_remove_reader(l, fd), 0);
    } else {
        ck_assert_int_eq(aloop_remove_writer(l, fd), 0);
    }
}

static int g_pipe2[2];

static void host_make_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    /* both fds ready in the same host round */
    ck_assert_int_eq(write(g_pipe[1], "x", 1), 1);
    ck_assert_int_eq(aloop_add_writer(g_loop, g_pipe2[1], io_log, TAG(2)), 0);
    ck_assert_int_eq(aloop_set_io_priority(g_loop, g_pipe2[1], ALOOP_PRIO_MAX), 0);
}

START_TEST(test_io_round_before_dispatch)
{
    struct event_base *base = new_host();
    aloop_t *l = g_loop = adopt(base);
    ck_assert_int_eq(pipe2(g_pipe, O_NONBLOCK | O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(g_pipe2, O_NONBLOCK | O_CLOEXEC), 0);
    ck_assert_int_eq(aloop_add_reader(l, g_pipe[0], io_log, TAG(1)), 0);
    host_timer(base, 10, host_make_ready, NULL);
    run_host(base);
    static const int want[] = { 2, 1 };
    log_expect(want, 2);
    close_loop(l);
    event_base_free(base);
    close(g_pipe[0]);
    close(g_pipe[1]);
    close(g_pipe2[0]);
    close(g_pipe2[1]);
    ck_assert_int_eq(g_warnings, 0);
}
END_TEST

/* A call queued from host code (outside any aloop callback) runs promptly,
 * before a later host timer. */
static void host_queue(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    log_add(10);
    ck_assert_int_gt(aloop_call_soon(arg, cb_log, TAG(11)), 0);
}

START_TEST(test_call_soon_from_host)
{
    struct event_base *base = new_host();
    aloop_t *l = adopt(base);
    host_timer(base, 10, host_queue, l);
    host_timer(base, 40, host_log, TAG(40));
    run_host(base);
    static const int want[] = { 10, 11, 40 };
    log_expect(want, 3);
    close_loop(l);
    event_base_free(base);
}
END_TEST

/* A callback that re-queues itself forever starves neither the host's
 * timers nor its I/O: aloop's "queued work" is a zero timeout, processed
 * after each poll. */
static aloop_id_t g_spin_id;
static int g_spins;

static void cb_spin(aloop_t *l, void *arg)
{
    (void)arg;
    g_spins++;
    g_spin_id = aloop_call_soon(l, cb_spin, NULL);
    ck_assert_int_gt(g_spin_id, 0);
}

static void host_read(evutil_socket_t fd, short what, void *arg)
{
    char buf[16];
    (void)what;
    ck_assert_int_eq(read((int)fd, buf, sizeof buf), 1);
    log_add(2);
    event_del(arg);
}

static void host_stop_spin(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    log_add(3);
    ck_assert_int_eq(aloop_cancel(arg, g_spin_id), 0);
}

START_TEST(test_requeue_does_not_starve_host)
{
    struct event_base *base = new_host();
    aloop_t *l = adopt(base);
    ck_assert_int_eq(pipe2(g_pipe, O_NONBLOCK | O_CLOEXEC), 0);
    struct event *rd = event_new(base, g_pipe[0], EV_READ | EV_PERSIST, host_read, event_self_cbarg());
    ck_assert_int_eq(event_add(rd, NULL), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_spin, NULL), 0);
    ck_assert_int_eq(write(g_pipe[1], "x", 1), 1);
    host_timer(base, 30, host_stop_spin, l);
    uint64_t took = run_host(base);
    static const int want[] = { 2, 3 };
    log_expect(want, 2);
    ck_assert_int_gt(g_spins, 1);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    event_free(rd);
    close_loop(l);
    event_base_free(base);
    close(g_pipe[0]);
    close(g_pipe[1]);
}
END_TEST

/* ---- (3) the host returns when both are idle, not before ---------------- */

START_TEST(test_idle_aloop_keeps_nothing_alive)
{
    struct event_base *base = new_host();
    aloop_t *l = adopt(base);
    int p[2];
    /* a fresh aloop loop (with its wake-up fd watched) holds nothing */
    ck_assert_uint_lt(run_host(base), 500 * ALOOP_MS);
    /* nor one whose work is done, whatever it was */
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(1)), 0);
    aloop_id_t t = aloop_call_later(l, 10 * ALOOP_SEC, cb_log, TAG(2));
    ck_assert_int_gt(t, 0);
    ck_assert_int_eq(aloop_add_reader(l, p[0], cb_io_never, NULL), 0);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, cb_log, TAG(4)), 0);
    ck_assert_int_eq(aloop_cancel(l, t), 0);
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), 0);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), 0);
    ck_assert_uint_lt(run_host(base), 500 * ALOOP_MS);
    static const int want[] = { 1 };
    log_expect(want, 1);
    ck_assert_uint_lt(run_host(base), 500 * ALOOP_MS);
    close_loop(l);
    event_base_free(base);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(test_pending_timer_keeps_host)
{
    struct event_base *base = new_host();
    aloop_t *l = adopt(base);
    ck_assert_int_gt(aloop_call_later(l, 60 * ALOOP_MS, cb_log, TAG(1)), 0);
    uint64_t took = run_host(base);
    static const int want[] = { 1 };
    log_expect(want, 1);
    ck_assert_uint_ge(took, 59 * ALOOP_MS);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    /* and again, with two timers */
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_MS, cb_log, TAG(2)), 0);
    ck_assert_int_gt(aloop_call_later(l, 30 * ALOOP_MS, cb_log, TAG(3)), 0);
    took = run_host(base);
    static const int want2[] = { 1, 2, 3 };
    log_expect(want2, 3);
    ck_assert_uint_ge(took, 29 * ALOOP_MS);
    close_loop(l);
    event_base_free(base);
}
END_TEST

/* A signal handler alone keeps the host running (aloop has pending work),
 * and its callback runs inside the host when the signal comes from
 * elsewhere. */
static void *thread_kill(void *arg)
{
    (void)arg;
    sleep_ms(40);
    kill(getpid(), SIGUSR1);
    return NULL;
}

static void cb_sig_done(aloop_t *l, void *arg)
{
    ck_assert(g_in_host);
    log_add((int)(intptr_t)arg);
    ck_assert_int_eq(aloop_remove_signal_handler(l, SIGUSR1), 0);
}

START_TEST(test_signal_keeps_host)
{
    struct event_base *base = new_host();
    aloop_t *l = adopt(base);
    pthread_t th;
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, cb_sig_done, TAG(7)), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, thread_kill, NULL), 0);
    uint64_t took = run_host(base);
    pthread_join(th, NULL);
    static const int want[] = { 7 };
    log_expect(want, 1);
    ck_assert_uint_ge(took, 35 * ALOOP_MS);
    close_loop(l);
    event_base_free(base);
}
END_TEST

/* ---- (4) aloop_close leaves the host working ---------------------------- */

static void host_close(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    log_add(10);
    close_loop(arg);
}

START_TEST(test_close_inside_host)
{
    struct event_base *base = new_host();
    aloop_t *l = adopt(base);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    /* pending work of every kind: close drops it */
    ck_assert_int_gt(aloop_call_later(l, 20 * ALOOP_MS, cb_log, TAG(1)), 0);
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_SEC, cb_log, TAG(2)), 0);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR2, cb_log, TAG(3)), 0);
    host_timer(base, 5, host_close, l);
    host_timer(base, 40, host_log, TAG(40));
    /* the reader on a ready fd keeps aloop busy until the close */
    ck_assert_int_eq(aloop_add_reader(l, p[0], cb_io_busy, NULL), 0);
    uint64_t took = run_host(base);
    static const int want[] = { 10, 40 };
    log_expect(want, 2);
    ck_assert_int_gt(g_busy, 0);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    /* the host goes on without aloop */
    host_timer(base, 5, host_log, TAG(5));
    ck_assert_uint_lt(run_host(base), 2 * ALOOP_SEC);
    static const int want2[] = { 10, 40, 5 };
    log_expect(want2, 3);
    event_base_free(base);
    close(p[0]);
    close(p[1]);
}
END_TEST

static void host_break(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    log_add(9);
    event_base_loopbreak(arg);
}

START_TEST(test_close_outside_host)
{
    struct event_base *base = new_host();
    aloop_t *l = adopt(base);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_SEC, cb_log, TAG(2)), 0);
    ck_assert_int_eq(aloop_add_reader(l, p[0], cb_io_never, NULL), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(1)), 0);
    /* the host leaves its run while aloop still has work pending */
    host_timer(base, 10, host_break, base);
    run_host(base);
    static const int want[] = { 1, 9 };
    log_expect(want, 2);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(666)), 0);
    close_loop(l);
    /* nothing of aloop's is left in the base: it runs the host's own
     * events and returns when they are done */
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    host_timer(base, 10, host_log, TAG(10));
    ck_assert_uint_lt(run_host(base), 2 * ALOOP_SEC);
    static const int want2[] = { 1, 9, 10 };
    log_expect(want2, 3);
    event_base_free(base);
    close(p[0]);
    close(p[1]);
    ck_assert_int_eq(g_warnings, 0);
}
END_TEST

/* ---- (5) a thread-safe call wakes the host blocked in its own poll ------ */

static pthread_t g_main;
static struct event_base *g_base;

static void cb_ts(aloop_t *l, void *arg)
{
    (void)l;
    ck_assert(g_in_host);
    ck_assert(pthread_equal(pthread_self(), g_main));
    log_add((int)(intptr_t)arg);
    event_base_loopbreak(g_base);
}

static void *thread_call(void *arg)
{
    sleep_ms(50);
    ck_assert_int_eq(aloop_call_soon_threadsafe(arg, cb_ts, TAG(5)), 0);
    return NULL;
}

static void host_never(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    ck_abort_msg("the host's idle pipe became readable");
}

START_TEST(test_threadsafe_wakes_host)
{
    struct event_base *base = g_base = new_host();
    aloop_t *l = adopt(base);
    int p[2];
    pthread_t th;
    g_main = pthread_self();
    /* the host keeps itself alive with a reader on an idle pipe: its poll
     * blocks until something wakes it */
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    struct event *idle = event_new(base, p[0], EV_READ | EV_PERSIST, host_never, NULL);
    ck_assert_int_eq(event_add(idle, NULL), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, thread_call, l), 0);
    uint64_t took = run_host(base);
    pthread_join(th, NULL);
    static const int want[] = { 5 };
    log_expect(want, 1);
    ck_assert_uint_ge(took, 45 * ALOOP_MS);
    ck_assert_uint_lt(took, 2 * ALOOP_SEC);
    event_free(idle);
    close_loop(l);
    event_base_free(base);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* ---- (6) aloop_native, and aloop_run on an adopted loop ----------------- */

static int g_nested_rc = 1, g_host_nested_rc = 1;

static void cb_nested(aloop_t *l, void *arg)
{
    (void)arg;
    g_nested_rc = aloop_run(l, ALOOP_RUN_NOWAIT);
}

static void host_nested(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    g_host_nested_rc = aloop_run(arg, ALOOP_RUN_NOWAIT);
}

START_TEST(test_native_and_run)
{
    struct event_base *base = new_host();
    aloop_t *l = adopt(base);
    ck_assert_ptr_eq(aloop_native(l), base);
    ck_assert_str_eq(aloop_backend(l), "libevent");

    /* Outside the host's run, aloop_run drives the host's base itself: the
     * host's events run too, and DEFAULT returns when aloop is done. */
    host_timer(base, 10, host_log, TAG(10));
    ck_assert_int_gt(aloop_call_later(l, 30 * ALOOP_MS, cb_log_any, TAG(30)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log_any, TAG(1)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    static const int want[] = { 1, 10, 30 };
    log_expect(want, 3);
    /* ONCE waits for the timer; NOWAIT runs what is queued */
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_MS, cb_log_any, TAG(2)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_ONCE), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log_any, TAG(3)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    static const int want2[] = { 1, 10, 30, 2, 3 };
    log_expect(want2, 5);

    /* The host's own run works as before afterwards. */
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_MS, cb_log, TAG(4)), 0);
    ck_assert_uint_lt(run_host(base), 2 * ALOOP_SEC);
    static const int want3[] = { 1, 10, 30, 2, 3, 4 };
    log_expect(want3, 6);

    /* Inside the host's run it is -EBUSY: from an aloop callback (the core
     * refuses), and from a host callback (libevent refuses, with a warning). */
    ck_assert_int_gt(aloop_call_soon(l, cb_nested, NULL), 0);
    host_timer(base, 10, host_nested, l);
    ck_assert_int_gt(aloop_call_later(l, 20 * ALOOP_MS, cb_log, TAG(5)), 0);
    ck_assert_uint_lt(run_host(base), 2 * ALOOP_SEC);
    ck_assert_int_eq(g_nested_rc, -EBUSY);
    ck_assert_int_eq(g_host_nested_rc, -EBUSY);
    ck_assert_int_eq(g_warnings, 1);
    static const int want4[] = { 1, 10, 30, 2, 3, 4, 5 };
    log_expect(want4, 7);
    close_loop(l);
    event_base_free(base);
}
END_TEST

/* Bad arguments and an fd libevent's epoll refuses. */
START_TEST(test_adopt_errors)
{
    aloop_t *l = NULL;
    struct event_base *base = new_host();
    ck_assert_int_eq(aloop_new_from_event_base(NULL, base), -EINVAL);
    ck_assert_int_eq(aloop_new_from_event_base(&l, NULL), -EINVAL);
    l = adopt(base);
    char path[] = "/tmp/aloop-adopt-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    if (!strcmp(event_base_get_method(base), "epoll"))
        ck_assert_int_eq(aloop_add_reader(l, fd, cb_io_never, NULL), -EPERM);
    close(fd);
    ck_assert_int_eq(aloop_add_reader(l, fd, cb_io_never, NULL), -EBADF);
    ck_assert_uint_lt(run_host(base), 500 * ALOOP_MS);
    close_loop(l);
    event_base_free(base);
    ck_assert_int_eq(g_warnings, 0);
}
END_TEST

/* ---- libev and libevent side by side in one process --------------------- */

/* Debian's libev.so.4 exports libevent's names too (event_add, ...): a
 * process with both, linked the ordinary way, calls the wrong one.  The
 * modules are loaded with RTLD_LOCAL and each links its own library; this
 * process links libevent itself as well, and loads libev by its module. */
struct side {
    aloop_t *loop;
    int p[2];
    int reads, ticks, writes;
};

static void side_read(aloop_t *l, int fd, unsigned events, void *arg)
{
    struct side *s = arg;
    char buf[16];
    (void)l;
    ck_assert_uint_eq(events, ALOOP_READABLE);
    ck_assert_int_eq(read(fd, buf, sizeof buf), 1);
    s->reads++;
}

static void side_write(aloop_t *l, int fd, unsigned events, void *arg)
{
    struct side *s = arg;
    ck_assert_uint_eq(events, ALOOP_WRITABLE);
    ck_assert_int_eq(write(fd, "x", 1), 1);
    s->writes++;
    ck_assert_int_eq(aloop_remove_writer(l, fd), 0);
}

static void side_tick(aloop_t *l, void *arg)
{
    (void)l;
    ((struct side *)arg)->ticks++;
}

START_TEST(test_libev_side_by_side)
{
    int st = aloop_backend_status("libev");
    if (st != 0) {
        fprintf(stderr, "test_libev_side_by_side: skipped, libev backend unavailable (%s)\n",
                aloop_strerror(st));
        return;
    }
    struct side s[2];
    memset(s, 0, sizeof s);
    /* each test process loads the modules in one order: _i == 0 loads libev
     * first (its libevent-compatible names are in the process before the
     * libevent module is used), _i == 1 the other way round */
    if (_i == 0) {
        ck_assert_int_eq(aloop_new(&s[0].loop, "libev"), 0);
        ck_assert_int_eq(aloop_new(&s[1].loop, "libevent"), 0);
    } else {
        ck_assert_int_eq(aloop_new(&s[1].loop, "libevent"), 0);
        ck_assert_int_eq(aloop_new(&s[0].loop, "libev"), 0);
    }
    ck_assert_str_eq(aloop_backend(s[0].loop), "libev");
    ck_assert_str_eq(aloop_backend(s[1].loop), "libevent");
    ck_assert_ptr_nonnull(aloop_native(s[0].loop));
    ck_assert_ptr_nonnull(aloop_native(s[1].loop));
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(pipe2(s[k].p, O_NONBLOCK | O_CLOEXEC), 0);
        ck_assert_int_eq(aloop_add_reader(s[k].loop, s[k].p[0], side_read, &s[k]), 0);
        ck_assert_int_gt(aloop_call_every(s[k].loop, 2 * ALOOP_MS, side_tick, &s[k]), 0);
    }
    /* alternately: each round a write through the loop's writer, a timer
     * wait, and the read it causes */
    for (int round = 1; round <= 5; round++) {
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(aloop_add_writer(s[k].loop, s[k].p[1], side_write, &s[k]), 0);
            int ticks = s[k].ticks;
            for (int n = 0; n < 100 && (s[k].reads < round || s[k].ticks == ticks); n++)
                ck_assert_int_eq(aloop_run(s[k].loop, ALOOP_RUN_ONCE), 1);
            ck_assert_int_eq(s[k].writes, round);
            ck_assert_int_eq(s[k].reads, round);
            ck_assert_int_gt(s[k].ticks, ticks);
        }
    }
    for (int k = 0; k < 2; k++) {
        close_loop(s[k].loop);
        close(s[k].p[0]);
        close(s[k].p[1]);
    }
}
END_TEST

int main(void)
{
    event_set_log_callback(log_cb);
    Suite *s = suite_create("adopt-event");
    TCase *tc = tcase_create("libevent");
    tcase_set_timeout(tc, 5);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_timers_interleave);
    tcase_add_test(tc, test_call_soon_and_io);
    tcase_add_test(tc, test_io_round_before_dispatch);
    tcase_add_test(tc, test_call_soon_from_host);
    tcase_add_test(tc, test_requeue_does_not_starve_host);
    tcase_add_test(tc, test_idle_aloop_keeps_nothing_alive);
    tcase_add_test(tc, test_pending_timer_keeps_host);
    tcase_add_test(tc, test_signal_keeps_host);
    tcase_add_test(tc, test_close_inside_host);
    tcase_add_test(tc, test_close_outside_host);
    tcase_add_test(tc, test_threadsafe_wakes_host);
    tcase_add_test(tc, test_native_and_run);
    tcase_add_test(tc, test_adopt_errors);
    tcase_add_loop_test(tc, test_libev_side_by_side, 0, 2);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
