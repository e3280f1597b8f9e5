/* test_adopt_uv.c -- aloop inside a host's libuv loop (aloop_new_from_uv).
 *
 * Every test makes its host loop with plain libuv, adopts it, and runs the
 * HOST's uv_run; aloop's callbacks must fire inside it, and the host's run
 * must return exactly when both sides are idle.  Timing checks have wide
 * margins: they tell "woke up" from "slept through it" (seconds apart).
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
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aloop-uv.h"
#include "suite.h"


/* ---- helpers -------------------------------------------------------------- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The base aloop's relative deadlines count from (its cached clock: the
 * same CLOCK_MONOTONIC as mono_ms, but possibly read a little earlier). */
static uint64_t base_ms(aloop_t *loop)
{
    return aloop_now(loop) / ALOOP_MS;
}

/* What happened, in order, and when (mono_ms). */
static int g_log[64], g_nlog;
static uint64_t g_logt[64];
static int g_in_host_run;       /* set around the host's uv_run */
static int g_outside;           /* an aloop callback ran outside it */

static void log_int(int v)
{
    if (g_nlog < 64) {
        g_logt[g_nlog] = mono_ms();
        g_log[g_nlog++] = v;
    }
}

static void log_expect(const int *want, int n)
{
    char got[256] = "", *p = got;
    for (int i = 0; i < g_nlog && p < got + sizeof got - 16; i++)
        p += sprintf(p, "%d ", g_log[i]);
    ck_assert_msg(g_nlog == n, "log has %d entries, want %d: %s", g_nlog, n, got);
    for (int i = 0; i < n; i++)
        ck_assert_msg(g_log[i] == want[i], "log[%d] = %d, want %d: %s", i, g_log[i], want[i], got);
}
#define LOG_EXPECT(...) do { int w_[] = { __VA_ARGS__ }; \
        log_expect(w_, (int)(sizeof w_ / sizeof w_[0])); } while (0)

/* aloop callback: log its tag, and note whether the host was running. */
static void cb_log(aloop_t *loop, void *arg)
{
    (void)loop;
    if (!g_in_host_run)
        g_outside = 1;
    log_int((int)(intptr_t)arg);
}

static int host_run(uv_loop_t *uv)
{
    g_in_host_run = 1;
    int r = uv_run(uv, UV_RUN_DEFAULT);
    g_in_host_run = 0;
    return r;
}

static void host_init(uv_loop_t *uv, aloop_t **loop)
{
    g_nlog = 0;
    g_outside = 0;
    ck_assert_int_eq(uv_loop_init(uv), 0);
    int r = aloop_new_from_uv(loop, uv);
    ck_assert_msg(r == 0, "aloop_new_from_uv = %d (%s)", r, aloop_strerror(r));
}

static void count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    ++*(int *)arg;
}

/* Close aloop, let the host finish closing aloop's handles, and check that
 * nothing of aloop's is left in it. */
static void host_fini(uv_loop_t *uv, aloop_t *loop)
{
    ck_assert_int_eq(aloop_close(loop), 0);
    ck_assert_int_eq(uv_run(uv, UV_RUN_DEFAULT), 0);
    int n = 0;
    uv_walk(uv, count_handle, &n);
    ck_assert_msg(n == 0, "%d handles left in the host loop after aloop_close", n);
    ck_assert_int_eq(uv_loop_close(uv), 0);
}

/* Host timers log their tag (in t->data). */
static void host_timer_log(uv_timer_t *t)
{
    log_int((int)(intptr_t)t->data);
}

static void host_timer(uv_loop_t *uv, uv_timer_t *t, uint64_t ms, int tag)
{
    ck_assert_int_eq(uv_timer_init(uv, t), 0);
    t->data = TAG(tag);
    ck_assert_int_eq(uv_timer_start(t, host_timer_log, ms, 0), 0);
}

static void on_closed_nop(uv_handle_t *h)
{
    (void)h;
}

static void mk_pipe(int p[2])
{
    ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

/* ---- (1) host and aloop timers interleave in deadline order --------------- */

/* One try: host timers at 20 and 60 ms, aloop timers at 40 and 80 ms.  The
 * order only means something if the process was not stalled for a whole
 * gap (then two deadlines are due at once; the host runs its timers before
 * its poll, aloop after it), which shows as a late host timer.  1: in
 * order; 0: out of order after a stall, try again; fails otherwise. */
static int interleave_once(void)
{
    uv_loop_t uv;
    aloop_t *l;
    uv_timer_t t20, t60;
    host_init(&uv, &l);
    aloop_update_time(l);
    uint64_t t0 = base_ms(l);
    uv_update_time(&uv);
    host_timer(&uv, &t20, 20, 20);
    host_timer(&uv, &t60, 60, 60);
    ck_assert_int_gt(aloop_call_later(l, 80 * ALOOP_MS, cb_log, TAG(80)), 0);
    ck_assert_int_gt(aloop_call_later(l, 40 * ALOOP_MS, cb_log, TAG(40)), 0);
    ck_assert_int_eq(host_run(&uv), 0);
    ck_assert_uint_ge(mono_ms() - t0, 79);
    ck_assert_int_eq(g_outside, 0);
    uv_close((uv_handle_t *)&t20, on_closed_nop);
    uv_close((uv_handle_t *)&t60, on_closed_nop);
    host_fini(&uv, l);
    int ordered = g_nlog == 4 && g_log[0] == 20 && g_log[1] == 40 && g_log[2] == 60 && g_log[3] == 80;
    int stalled = 0;
    for (int i = 0; i < g_nlog; i++)
        if ((g_log[i] == 20 || g_log[i] == 60) && g_logt[i] > t0 + (uint64_t)g_log[i] + 10)
            stalled = 1;
    if (!ordered && !stalled)
        LOG_EXPECT(20, 40, 60, 80);     /* the host was on time, aloop out of order */
    return ordered;
}

START_TEST(test_timers_interleave)
{
    int tries = 0;
    while (!interleave_once() && ++tries < 3)
        ;
    ck_assert_msg(tries < 3, "3 tries stalled: cannot tell the order");
    LOG_EXPECT(20, 40, 60, 80);
}
END_TEST

/* aloop_call_every inside the host, cancelled by itself after 3 ticks. */
static aloop_id_t g_tick_id;
static void cb_tick(aloop_t *loop, void *arg)
{
    (void)arg;
    log_int(1);
    if (g_nlog == 3)
        ck_assert_int_eq(aloop_cancel(loop, g_tick_id), 0);
}

START_TEST(test_call_every_in_host)
{
    uv_loop_t uv;
    aloop_t *l;
    host_init(&uv, &l);
    uint64_t t0 = base_ms(l);
    g_tick_id = aloop_call_every(l, 10 * ALOOP_MS, cb_tick, NULL);
    ck_assert_int_gt(g_tick_id, 0);
    ck_assert_int_eq(host_run(&uv), 0);
    ck_assert_uint_ge(mono_ms() - t0, 29);
    LOG_EXPECT(1, 1, 1);
    host_fini(&uv, l);
}
END_TEST

/* ---- (2) call_soon priorities and I/O inside the host's run --------------- */

static int g_pipe[2];

static void host_timer_write(uv_timer_t *t)
{
    (void)t;
    log_int(100);
    ck_assert_int_eq(write(g_pipe[1], "x", 1), 1);
}

static void io_reader(aloop_t *loop, int fd, unsigned events, void *arg)
{
    (void)arg;
    char c;
    ck_assert_int_eq(events, ALOOP_READABLE);
    ck_assert_int_eq(read(fd, &c, 1), 1);
    if (!g_in_host_run)
        g_outside = 1;
    log_int(200);
    ck_assert_int_eq(aloop_remove_reader(loop, fd), 0);
    /* queued from a callback: next iteration, still inside the host */
    ck_assert_int_gt(aloop_call_soon(loop, cb_log, TAG(300)), 0);
}

START_TEST(test_prio_and_io_in_host)
{
    uv_loop_t uv;
    aloop_t *l;
    uv_timer_t tw;
    host_init(&uv, &l);
    mk_pipe(g_pipe);
    ck_assert_int_gt(aloop_call_soon_prio(l, ALOOP_PRIO_DEFAULT, cb_log, TAG(1)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, ALOOP_PRIO_MAX, cb_log, TAG(2)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, ALOOP_PRIO_MIN, cb_log, TAG(3)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, 1, cb_log, TAG(4)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, ALOOP_PRIO_DEFAULT, cb_log, TAG(5)), 0);
    ck_assert_int_eq(aloop_add_reader(l, g_pipe[0], io_reader, NULL), 0);
    ck_assert_int_eq(uv_timer_init(&uv, &tw), 0);
    ck_assert_int_eq(uv_timer_start(&tw, host_timer_write, 20, 0), 0);
    ck_assert_int_eq(host_run(&uv), 0);
    LOG_EXPECT(2, 4, 1, 5, 3, 100, 200, 300);
    ck_assert_int_eq(g_outside, 0);
    uv_close((uv_handle_t *)&tw, on_closed_nop);
    host_fini(&uv, l);
    close(g_pipe[0]);
    close(g_pipe[1]);
}
END_TEST

/* ---- (3) the host's run returns when both sides are idle, not before ------ */

START_TEST(test_host_returns_when_idle)
{
    uv_loop_t uv;
    aloop_t *l;
    uv_timer_t t;
    host_init(&uv, &l);

    /* nothing anywhere: at once */
    uint64_t t0 = mono_ms();
    ck_assert_int_eq(host_run(&uv), 0);
    ck_assert_uint_lt(mono_ms() - t0, 500);

    /* a host timer only: when it is done */
    host_timer(&uv, &t, 10, 1);
    ck_assert_int_eq(host_run(&uv), 0);
    LOG_EXPECT(1);

    /* an aloop timer only: not before it fired */
    t0 = base_ms(l);
    ck_assert_int_gt(aloop_call_later(l, 50 * ALOOP_MS, cb_log, TAG(2)), 0);
    ck_assert_int_eq(host_run(&uv), 0);
    ck_assert_uint_ge(mono_ms() - t0, 49);
    LOG_EXPECT(1, 2);

    /* a host timer that ends before an aloop timer */
    ck_assert_int_eq(uv_timer_start(&t, host_timer_log, 10, 0), 0);
    t0 = base_ms(l);
    ck_assert_int_gt(aloop_call_later(l, 60 * ALOOP_MS, cb_log, TAG(3)), 0);
    ck_assert_int_eq(host_run(&uv), 0);
    ck_assert_uint_ge(mono_ms() - t0, 59);
    LOG_EXPECT(1, 2, 1, 3);

    /* a queued call only */
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(4)), 0);
    ck_assert_int_eq(host_run(&uv), 0);
    LOG_EXPECT(1, 2, 1, 3, 4);

    /* a cancelled timer keeps nothing alive */
    aloop_id_t id = aloop_call_later(l, 2 * ALOOP_SEC, cb_log, TAG(5));
    ck_assert_int_gt(id, 0);
    ck_assert_int_eq(aloop_cancel(l, id), 0);
    t0 = mono_ms();
    ck_assert_int_eq(host_run(&uv), 0);
    ck_assert_uint_lt(mono_ms() - t0, 500);
    LOG_EXPECT(1, 2, 1, 3, 4);

    uv_close((uv_handle_t *)&t, on_closed_nop);
    host_fini(&uv, l);
}
END_TEST

/* An aloop watcher keeps the host alive until it is removed. */
static void cb_remove_reader(aloop_t *loop, void *arg)
{
    log_int(7);
    ck_assert_int_eq(aloop_remove_reader(loop, *(int *)arg), 0);
}

static void io_never(aloop_t *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    (void)arg;
    log_int(-1);
}

START_TEST(test_watcher_keeps_host_alive)
{
    uv_loop_t uv;
    aloop_t *l;
    int p[2];
    host_init(&uv, &l);
    mk_pipe(p);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_never, NULL), 0);
    uint64_t t0 = base_ms(l);
    ck_assert_int_gt(aloop_call_later(l, 40 * ALOOP_MS, cb_remove_reader, &p[0]), 0);
    ck_assert_int_eq(host_run(&uv), 0);
    ck_assert_uint_ge(mono_ms() - t0, 39);
    LOG_EXPECT(7);
    /* removed from outside the host's run: the next run returns at once */
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_never, NULL), 0);
    ck_assert_int_eq(aloop_remove_reader(l, p[0]), 0);
    t0 = mono_ms();
    ck_assert_int_eq(host_run(&uv), 0);
    ck_assert_uint_lt(mono_ms() - t0, 500);
    LOG_EXPECT(7);
    host_fini(&uv, l);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* ---- (4) aloop_close leaves the host working ------------------------------ */

static volatile sig_atomic_t g_my_sig;
static void my_handler(int sig)
{
    (void)sig;
    g_my_sig++;
}

START_TEST(test_close_leaves_host_working)
{
    uv_loop_t uv;
    aloop_t *l;
    uv_timer_t t;
    int p[2];
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = my_handler;
    ck_assert_int_eq(sigaction(SIGUSR2, &sa, &old), 0);
    g_my_sig = 0;

    host_init(&uv, &l);
    mk_pipe(p);
    /* aloop with everything it can hold on the host */
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_never, NULL), 0);
    ck_assert_int_eq(aloop_add_writer(l, p[1], io_never, NULL), 0);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR2, cb_log, TAG(-2)), 0);
    ck_assert_int_gt(aloop_call_later(l, 2 * ALOOP_SEC, cb_log, TAG(-3)), 0);
    ck_assert_int_gt(aloop_call_every(l, 5 * ALOOP_MS, cb_log, TAG(-4)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(-5)), 0);
    ck_assert_int_eq(aloop_close(l), 0);

    /* the host still runs its own handles, and returns when they are done:
     * none of aloop's is left to keep it (or the pipe) busy */
    host_timer(&uv, &t, 20, 1);
    uint64_t t0 = mono_ms();
    ck_assert_int_eq(host_run(&uv), 0);
    ck_assert_uint_lt(mono_ms() - t0, 1000);
    LOG_EXPECT(1);
    ck_assert_int_eq(uv_timer_start(&t, host_timer_log, 5, 0), 0);
    ck_assert_int_eq(host_run(&uv), 0);
    LOG_EXPECT(1, 1);

    /* the signal's old disposition is back */
    raise(SIGUSR2);
    ck_assert_int_eq(g_my_sig, 1);

    uv_close((uv_handle_t *)&t, on_closed_nop);
    ck_assert_int_eq(uv_run(&uv, UV_RUN_DEFAULT), 0);
    int n = 0;
    uv_walk(&uv, count_handle, &n);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(uv_loop_close(&uv), 0);
    close(p[0]);
    close(p[1]);
    sigaction(SIGUSR2, &old, NULL);
}
END_TEST

/* Closed from a host callback, in the middle of the host's run. */
static aloop_t *g_loop;
static void host_timer_close_aloop(uv_timer_t *t)
{
    (void)t;
    log_int(50);
    ck_assert_int_eq(aloop_close(g_loop), 0);
    g_loop = NULL;
}

START_TEST(test_close_inside_host_run)
{
    uv_loop_t uv;
    uv_timer_t t, t2;
    int p[2];
    host_init(&uv, &g_loop);
    mk_pipe(p);
    ck_assert_int_eq(aloop_add_reader(g_loop, p[0], io_never, NULL), 0);
    ck_assert_int_gt(aloop_call_every(g_loop, 3 * ALOOP_MS, cb_log, TAG(-1)), 0);
    ck_assert_int_eq(uv_timer_init(&uv, &t), 0);
    ck_assert_int_eq(uv_timer_start(&t, host_timer_close_aloop, 20, 0), 0);
    host_timer(&uv, &t2, 40, 60);
    ck_assert_int_eq(host_run(&uv), 0);
    /* ticks before the close, none after it; the later host timer ran */
    ck_assert_int_ge(g_nlog, 3);
    ck_assert_int_eq(g_log[g_nlog - 2], 50);
    ck_assert_int_eq(g_log[g_nlog - 1], 60);
    uv_close((uv_handle_t *)&t, on_closed_nop);
    uv_close((uv_handle_t *)&t2, on_closed_nop);
    ck_assert_int_eq(uv_run(&uv, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&uv), 0);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* ---- (5) a thread-safe call wakes a host blocked in its own poll ---------- */

static struct {
    aloop_t *loop;
    uv_timer_t *keepalive;
    pthread_t main;
    int ran, on_main;
} TS;

static void cb_threadsafe(aloop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    TS.ran++;
    TS.on_main = pthread_equal(pthread_self(), TS.main);
    uv_timer_stop(TS.keepalive);        /* the host has nothing left */
}

static void *ts_thread(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 50 * 1000000L };
    nanosleep(&ts, NULL);
    aloop_call_soon_threadsafe(TS.loop, cb_threadsafe, NULL);
    return NULL;
}

START_TEST(test_threadsafe_wakes_host)
{
    uv_loop_t uv;
    aloop_t *l;
    uv_timer_t keep;
    pthread_t th;
    host_init(&uv, &l);
    /* the host keeps itself alive, blocked in its poll, for 3 s */
    host_timer(&uv, &keep, 3000, -1);
    memset(&TS, 0, sizeof TS);
    TS.loop = l;
    TS.keepalive = &keep;
    TS.main = pthread_self();
    ck_assert_int_eq(pthread_create(&th, NULL, ts_thread, NULL), 0);
    uint64_t t0 = mono_ms();
    ck_assert_int_eq(host_run(&uv), 0);
    uint64_t dt = mono_ms() - t0;
    pthread_join(th, NULL);
    ck_assert_int_eq(TS.ran, 1);
    ck_assert(TS.on_main);
    ck_assert_msg(dt < 1000, "the host slept %llu ms through a thread-safe call",
                  (unsigned long long)dt);
    ck_assert_int_eq(g_nlog, 0);        /* the 3 s timer never fired */
    uv_close((uv_handle_t *)&keep, on_closed_nop);
    host_fini(&uv, l);
}
END_TEST

/* ---- (6) aloop_native, and aloop_run on an adopted loop ------------------- */

static int g_nested_rc;
static void cb_nested_run(aloop_t *loop, void *arg)
{
    (void)arg;
    g_nested_rc = aloop_run(loop, ALOOP_RUN_NOWAIT);
}

static void host_poll_run_aloop(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    g_nested_rc = aloop_run(g_loop, ALOOP_RUN_NOWAIT);
    uv_poll_stop(h);
}

START_TEST(test_native_and_run)
{
    uv_loop_t uv;
    aloop_t *l;
    uv_timer_t t;
    host_init(&uv, &l);
    ck_assert_ptr_eq(aloop_native(l), &uv);
    ck_assert_str_eq(aloop_backend(l), "libuv");

    /* outside the host's run, aloop_run drives the host loop: aloop's
     * callbacks and the host's handles both run, and it returns when aloop
     * has nothing left, as on any backend */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);
    host_timer(&uv, &t, 10, 1);
    uint64_t t0 = base_ms(l);
    ck_assert_int_gt(aloop_call_later(l, 30 * ALOOP_MS, cb_log, TAG(2)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(0)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_uint_ge(mono_ms() - t0, 29);
    LOG_EXPECT(0, 1, 2);

    /* ONCE with a pending timer returns 1; the host's run then still
     * waits for that timer */
    t0 = base_ms(l);
    ck_assert_int_gt(aloop_call_later(l, 40 * ALOOP_MS, cb_log, TAG(3)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    ck_assert_int_eq(host_run(&uv), 0);
    ck_assert_uint_ge(mono_ms() - t0, 39);
    LOG_EXPECT(0, 1, 2, 3);

    /* from an aloop callback inside the host's run: no recursion */
    g_nested_rc = 1;
    ck_assert_int_gt(aloop_call_soon(l, cb_nested_run, NULL), 0);
    ck_assert_int_eq(host_run(&uv), 0);
    ck_assert_int_eq(g_nested_rc, -EBUSY);

    /* from a host I/O callback: uv_run is not reentrant, refused */
    int p[2];
    uv_poll_t ph;
    mk_pipe(p);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    ck_assert_int_eq(uv_poll_init(&uv, &ph, p[0]), 0);
    ck_assert_int_eq(uv_poll_start(&ph, UV_READABLE, host_poll_run_aloop), 0);
    g_loop = l;
    g_nested_rc = 1;
    ck_assert_int_eq(host_run(&uv), 0);
    ck_assert_int_eq(g_nested_rc, -EBUSY);

    /* an fd the host watches already */
    ck_assert_int_eq(uv_poll_start(&ph, UV_READABLE, host_poll_run_aloop), 0);
    ck_assert_int_eq(aloop_add_reader(l, p[0], io_never, NULL), -EEXIST);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);

    uv_close((uv_handle_t *)&ph, on_closed_nop);
    uv_close((uv_handle_t *)&t, on_closed_nop);
    host_fini(&uv, l);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* ---- signals inside the host, next to the host's own uv_signal_t ---------- */

static int g_host_sig;
static void host_on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    g_host_sig++;
    uv_signal_stop(h);
}

static void host_timer_raise(uv_timer_t *t)
{
    (void)t;
    raise(SIGUSR1);
}

static void cb_signal(aloop_t *loop, void *arg)
{
    (void)arg;
    if (!g_in_host_run)
        g_outside = 1;
    log_int(9);
    ck_assert_int_eq(aloop_remove_signal_handler(loop, SIGUSR1), 0);
}

START_TEST(test_signal_in_host)
{
    uv_loop_t uv;
    aloop_t *l;
    uv_timer_t t;
    uv_signal_t hs;
    host_init(&uv, &l);
    g_host_sig = 0;
    ck_assert_int_eq(uv_signal_init(&uv, &hs), 0);
    ck_assert_int_eq(uv_signal_start(&hs, host_on_signal, SIGUSR1), 0);
    ck_assert_int_eq(aloop_add_signal_handler(l, SIGUSR1, cb_signal, NULL), 0);
    ck_assert_int_eq(uv_timer_init(&uv, &t), 0);
    ck_assert_int_eq(uv_timer_start(&t, host_timer_raise, 10, 0), 0);
    ck_assert_int_eq(host_run(&uv), 0);
    LOG_EXPECT(9);
    ck_assert_int_eq(g_host_sig, 1);
    ck_assert_int_eq(g_outside, 0);
    uv_close((uv_handle_t *)&t, on_closed_nop);
    uv_close((uv_handle_t *)&hs, on_closed_nop);
    host_fini(&uv, l);
}
END_TEST

START_TEST(test_bad_args)
{
    uv_loop_t uv;
    aloop_t *l = NULL;
    ck_assert_int_eq(aloop_new_from_uv(NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_new_from_uv(&l, NULL), -EINVAL);
    ck_assert_int_eq(uv_loop_init(&uv), 0);
    ck_assert_int_eq(aloop_new_from_uv(NULL, &uv), -EINVAL);
    ck_assert_ptr_null(l);
    ck_assert_int_eq(uv_loop_close(&uv), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("adopt-uv");
    TCase *tc = tcase_create("libuv");
    tcase_set_timeout(tc, 5);
    tcase_add_test(tc, test_timers_interleave);
    tcase_add_test(tc, test_call_every_in_host);
    tcase_add_test(tc, test_prio_and_io_in_host);
    tcase_add_test(tc, test_host_returns_when_idle);
    tcase_add_test(tc, test_watcher_keeps_host_alive);
    tcase_add_test(tc, test_close_leaves_host_working);
    tcase_add_test(tc, test_close_inside_host_run);
    tcase_add_test(tc, test_threadsafe_wakes_host);
    tcase_add_test(tc, test_native_and_run);
    tcase_add_test(tc, test_signal_in_host);
    tcase_add_test(tc, test_bad_args);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
