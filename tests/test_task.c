/* test_task.c -- behavioural tests of the tasks layer and context variables
 * (API.md "Tasks", "Context variables"), run once per backend.
 *
 * Every test is registered for each backend under test
 * (ALOOP_TEST_BACKENDS=epoll,poll or, by default, aloop_backends()); the
 * TCase is named after the backend, so a failure names it.  Check's fork
 * mode isolates tests (the stack-overflow tests end their process).  Timing
 * checks are "never early" only; upper bounds, where any, are generous.
 *
 * Built a second time as tests/test_task_uv (ALOOP_TEST_ADOPT_UV): every
 * loop is then an adopted libuv host loop (aloop_new_from_uv), and one more
 * test lets the host's own uv_run drive the tasks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aloop.h"
#include "suite.h"
#include "aloop-task.h"
#ifdef ALOOP_TEST_ADOPT_UV
#include "aloop-uv.h"
#endif

/* ---- Backends under test ------------------------------------------------ */

/* ---- Helpers ------------------------------------------------------------ */


#ifdef ALOOP_TEST_ADOPT_UV
/* Each aloop loop adopts a uv loop of its own. */
static struct { aloop_t *l; uv_loop_t *uv; } g_hosts[8];

static aloop_t *new_loop(const char *be)
{
    (void)be;
    for (int i = 0; i < 8; i++)
        if (!g_hosts[i].l) {
            uv_loop_t *uv = malloc(sizeof *uv);
            ck_assert_ptr_nonnull(uv);
            ck_assert_int_eq(uv_loop_init(uv), 0);
            int rc = aloop_new_from_uv(&g_hosts[i].l, uv);
            ck_assert_msg(rc == 0, "aloop_new_from_uv = %d (%s)", rc, aloop_strerror(rc));
            g_hosts[i].uv = uv;
            return g_hosts[i].l;
        }
    ck_abort_msg("too many loops");
    return NULL;
}

static void close_loop(aloop_t *l)
{
    int rc = aloop_close(l);
    ck_assert_msg(rc == 0, "aloop_close = %d (%s)", rc, aloop_strerror(rc));
    for (int i = 0; i < 8; i++)
        if (g_hosts[i].l == l) {
            uv_run(g_hosts[i].uv, UV_RUN_DEFAULT);     /* the host finishes its closes */
            ck_assert_int_eq(uv_loop_close(g_hosts[i].uv), 0);
            free(g_hosts[i].uv);
            g_hosts[i].l = NULL;
        }
}
#else
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
#endif
#define NEW_LOOP() new_loop(BE)

static void mk_socketpair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static aloop_task_t *spawn(aloop_t *l, aloop_task_fn fn, void *arg)
{
    aloop_task_t *t = NULL;
    int rc = aloop_spawn(l, &t, fn, arg);
    ck_assert_msg(rc == 0, "aloop_spawn = %d (%s)", rc, aloop_strerror(rc));
    ck_assert_ptr_nonnull(t);
    return t;
}

static aloop_task_t *spawn_prio(aloop_t *l, int prio, aloop_task_fn fn, void *arg)
{
    aloop_task_t *t = NULL;
    int rc = aloop_spawn_prio(l, &t, prio, fn, arg);
    ck_assert_msg(rc == 0, "aloop_spawn_prio = %d (%s)", rc, aloop_strerror(rc));
    return t;
}

static void *join_ok(aloop_task_t *t)
{
    void *r = TAG(-12345);
    int rc = aloop_task_join(t, &r);
    ck_assert_msg(rc == 0, "aloop_task_join = %d (%s)", rc, aloop_strerror(rc));
    return r;
}

/* An event log: what ran, in order. */
#define LOG_MAX 256
static int g_log[LOG_MAX];
static int g_nlog;

static void log_add(int v)
{
    if (g_nlog < LOG_MAX)
        g_log[g_nlog++] = v;
}

static void log_expect(const int *want, int n, int line)
{
    char got[1024] = "", exp[1024] = "";
    for (int i = 0; i < g_nlog && strlen(got) < 1000; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", g_log[i]);
    for (int i = 0; i < n && strlen(exp) < 1000; i++)
        snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%d ", want[i]);
    ck_assert_msg(g_nlog == n && memcmp(g_log, want, (size_t)n * sizeof *want) == 0,
                  "line %d: log is [%s], expected [%s]", line, got, exp);
}
#define LOG_EXPECT(...)                                                          \
    do {                                                                         \
        const int want_[] = { __VA_ARGS__ };                                     \
        log_expect(want_, (int)(sizeof want_ / sizeof want_[0]), __LINE__);      \
    } while (0)

static void cb_log(aloop_t *loop, void *arg)
{
    (void)loop;
    log_add(UNTAG(arg));
}

static void setup(void)
{
    g_nlog = 0;
    unsetenv("ALOOP_BACKEND");
}

static void teardown(void)
{
}

/* ======================================================================== */
/* Outside a task                                                           */
/* ======================================================================== */

static int g_cb_rc[4];

static void cb_try_waits(aloop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    g_cb_rc[0] = aloop_sleep(ALOOP_MS);
    g_cb_rc[1] = aloop_yield();
    g_cb_rc[2] = aloop_wait_fd(0, ALOOP_READABLE, 0);
    g_cb_rc[3] = aloop_current_task() == NULL;
}

START_TEST(test_eperm_outside_task)
{
    ck_assert_int_eq(aloop_sleep(ALOOP_MS), -EPERM);
    ck_assert_int_eq(aloop_sleep(0), -EPERM);
    ck_assert_int_eq(aloop_yield(), -EPERM);
    ck_assert_int_eq(aloop_wait_fd(0, ALOOP_READABLE, 0), -EPERM);
    ck_assert_ptr_null(aloop_current_task());
    /* nor from a plain callback */
    aloop_t *l = NEW_LOOP();
    memset(g_cb_rc, 0, sizeof g_cb_rc);
    ck_assert_int_gt(aloop_call_soon(l, cb_try_waits, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(g_cb_rc[0], -EPERM);
    ck_assert_int_eq(g_cb_rc[1], -EPERM);
    ck_assert_int_eq(g_cb_rc[2], -EPERM);
    ck_assert_int_eq(g_cb_rc[3], 1);
    close_loop(l);
}
END_TEST

static void *t_return_arg(void *arg)
{
    return arg;
}

START_TEST(test_bad_arguments)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t = TAG(1);
    ck_assert_int_eq(aloop_spawn(NULL, &t, t_return_arg, NULL), -EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(aloop_spawn(l, &t, NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_spawn_prio(l, &t, ALOOP_PRIO_MAX + 1, t_return_arg, NULL), -EINVAL);
    ck_assert_int_eq(aloop_spawn_prio(l, &t, ALOOP_PRIO_MIN - 1, t_return_arg, NULL), -EINVAL);
    ck_assert_int_eq(aloop_task_join(NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_task_cancel(NULL), -EINVAL);
    ck_assert_int_eq(aloop_task_done(NULL), 0);
    ck_assert_ptr_null(aloop_task_loop(NULL));
    aloop_task_release(NULL);
    ck_assert_int_eq(aloop_gather(NULL, 1, NULL), -EINVAL);
    ck_assert_int_eq(aloop_gather(NULL, 0, NULL), 0);
    ck_assert_int_eq(aloop_set_task_stack_size(NULL, 65536), -EINVAL);
    ck_assert_int_eq(aloop_set_task_stack_size(l, 100), -EINVAL);
    ck_assert_int_eq(aloop_set_task_stack_size(l, (size_t)4 << 30), -EINVAL);
    ck_assert_int_eq(aloop_fd_close(NULL, 0), -EINVAL);
    ck_assert_int_eq(aloop_fd_close(l, -1), -EBADF);
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* Join, gather, results, errors                                            */
/* ======================================================================== */

START_TEST(test_join_from_outside)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t = spawn(l, t_return_arg, TAG(42));
    ck_assert_int_eq(aloop_task_done(t), 0);     /* never runs inside spawn */
    ck_assert_ptr_eq(aloop_task_loop(t), l);
    ck_assert_ptr_eq(join_ok(t), TAG(42));
    ck_assert_int_eq(aloop_task_done(t), 1);
    /* a done task answers at once, however often */
    ck_assert_ptr_eq(join_ok(t), TAG(42));
    ck_assert_ptr_eq(join_ok(t), TAG(42));
    ck_assert_int_eq(aloop_task_join(t, NULL), 0);
    aloop_task_release(t);
    close_loop(l);
}
END_TEST

static void *t_sleep_then(void *arg)
{
    int ms = UNTAG(arg);
    if (aloop_sleep((uint64_t)ms * ALOOP_MS) < 0)
        return aloop_task_error(-EINTR);
    return TAG(ms + 1000);
}

static void *t_join_child(void *arg)
{
    aloop_task_t *child = spawn(aloop_task_loop(aloop_current_task()), t_sleep_then, arg);
    void *r = NULL;
    int rc = aloop_task_join(child, &r);
    aloop_task_release(child);
    if (rc < 0)
        return aloop_task_error(rc);
    return TAG(UNTAG(r) + 1);
}

START_TEST(test_join_in_task)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t = spawn(l, t_join_child, TAG(5));
    ck_assert_ptr_eq(join_ok(t), TAG(1006));
    aloop_task_release(t);
    close_loop(l);
}
END_TEST

static void *t_fail(void *arg)
{
    aloop_yield();
    return aloop_task_error(UNTAG(arg));
}

START_TEST(test_join_gather_errors)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t = spawn(l, t_fail, TAG(-EIO));
    void *r = TAG(7);
    ck_assert_int_eq(aloop_task_join(t, &r), -EIO);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(aloop_task_join(t, &r), -EIO);
    aloop_task_release(t);

    /* gather: every task is joined, results in order, first error wins */
    aloop_task_t *ts[5];
    ts[0] = spawn(l, t_sleep_then, TAG(3));
    ts[1] = spawn(l, t_fail, TAG(-EPIPE));
    ts[2] = spawn(l, t_sleep_then, TAG(1));
    ts[3] = spawn(l, t_fail, TAG(-EIO));
    ts[4] = spawn(l, t_return_arg, TAG(9));
    void *res[5];
    ck_assert_int_eq(aloop_gather(ts, 5, res), -EPIPE);
    ck_assert_ptr_eq(res[0], TAG(1003));
    ck_assert_ptr_null(res[1]);
    ck_assert_ptr_eq(res[2], TAG(1001));
    ck_assert_ptr_null(res[3]);
    ck_assert_ptr_eq(res[4], TAG(9));
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(aloop_task_done(ts[i]), 1);
        aloop_task_release(ts[i]);
    }
    /* all good */
    for (int i = 0; i < 5; i++)
        ts[i] = spawn(l, t_return_arg, TAG(i * 10));
    ck_assert_int_eq(aloop_gather(ts, 5, NULL), 0);
    ck_assert_int_eq(aloop_gather(ts, 5, res), 0);
    for (int i = 0; i < 5; i++) {
        ck_assert_ptr_eq(res[i], TAG(i * 10));
        aloop_task_release(ts[i]);
    }
    close_loop(l);
}
END_TEST

static aloop_task_t *g_self;
static int g_rc_self, g_rc_cb;

static void *t_join_self(void *arg)
{
    (void)arg;
    g_self = aloop_current_task();
    g_rc_self = aloop_task_join(g_self, NULL);
    return NULL;
}

static void cb_join(aloop_t *loop, void *arg)
{
    (void)loop;
    g_rc_cb = aloop_task_join(arg, NULL);
}

static aloop_task_t *g_pair[2];

static void *t_join_other(void *arg)
{
    int i = UNTAG(arg);
    aloop_yield();
    return TAG(1000 + aloop_task_join(g_pair[1 - i], NULL));    /* not an error */
}

START_TEST(test_join_misuse)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t = spawn(l, t_join_self, NULL);
    join_ok(t);
    ck_assert_ptr_eq(g_self, t);
    ck_assert_int_eq(g_rc_self, -EDEADLK);
    aloop_task_release(t);

    /* from a plain callback of the running loop: it cannot run the loop */
    t = spawn(l, t_sleep_then, TAG(20));
    g_rc_cb = 1;
    ck_assert_int_gt(aloop_call_soon(l, cb_join, t), 0);
    ck_assert_ptr_eq(join_ok(t), TAG(1020));
    ck_assert_int_eq(g_rc_cb, -EBUSY);
    aloop_task_release(t);

    /* two tasks joining each other: nothing can ever happen */
    g_pair[0] = spawn(l, t_join_other, TAG(0));
    g_pair[1] = spawn(l, t_join_other, TAG(1));
    ck_assert_int_eq(aloop_task_join(g_pair[0], NULL), -EDEADLK);
    ck_assert_int_eq(aloop_task_done(g_pair[0]), 0);
    /* cancelling one ends both */
    ck_assert_int_eq(aloop_task_cancel(g_pair[0]), 0);
    void *r0, *r1;
    ck_assert_int_eq(aloop_task_join(g_pair[0], &r0), 0);
    ck_assert_int_eq(aloop_task_join(g_pair[1], &r1), 0);
    ck_assert_int_eq(UNTAG(r0), 1000 - ECANCELED);
    ck_assert_int_eq(UNTAG(r1), 1000);
    aloop_task_release(g_pair[0]);
    aloop_task_release(g_pair[1]);
    close_loop(l);
}
END_TEST

static void stop_cb(aloop_t *loop, void *arg)
{
    (void)arg;
    aloop_stop(loop);
}

START_TEST(test_join_interrupted_by_stop)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t = spawn(l, t_sleep_then, TAG(200));
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_MS, stop_cb, NULL), 0);
    ck_assert_int_eq(aloop_task_join(t, NULL), -EINTR);
    ck_assert_int_eq(aloop_task_done(t), 0);
    ck_assert_ptr_eq(join_ok(t), TAG(1200));
    aloop_task_release(t);
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* Sleep                                                                    */
/* ======================================================================== */

struct sleeper { int ms; int rc; uint64_t asked, woke; };

static void *t_sleeper(void *arg)
{
    struct sleeper *s = arg;
    s->asked = mono_ns();
    s->rc = aloop_sleep((uint64_t)s->ms * ALOOP_MS);
    s->woke = mono_ns();
    log_add(s->ms);
    return NULL;
}

START_TEST(test_sleep_order_never_early)
{
    aloop_t *l = NEW_LOOP();
    struct sleeper s[6] = { { 30, 1, 0, 0 }, { 10, 1, 0, 0 }, { 50, 1, 0, 0 },
                            { 20, 1, 0, 0 }, { 1, 1, 0, 0 },  { 40, 1, 0, 0 } };
    aloop_task_t *t[6];
    for (int i = 0; i < 6; i++)
        t[i] = spawn(l, t_sleeper, &s[i]);
    ck_assert_int_eq(aloop_gather(t, 6, NULL), 0);
    /* woken in the order of their deadlines (when each asked + how long):
     * 1 10 20 30 40 50, unless the tasks began far apart (valgrind) */
    int order[6];
    for (int i = 0; i < 6; i++) {
        int k = i;
        uint64_t due = s[i].asked + (uint64_t)s[i].ms * ALOOP_MS;
        while (k > 0 && s[order[k - 1]].asked + (uint64_t)s[order[k - 1]].ms * ALOOP_MS > due) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    ck_assert_int_eq(g_nlog, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(g_log[i] == s[order[i]].ms, "woke %d ms sleeper at place %d, expected %d",
                      g_log[i], i, s[order[i]].ms);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(s[i].rc, 0);
        uint64_t took = s[i].woke - s[i].asked;
        ck_assert_msg(took >= (uint64_t)s[i].ms * ALOOP_MS, "slept %d ms: woke after %llu ns",
                      s[i].ms, (unsigned long long)took);
        ck_assert_msg(took < (uint64_t)s[i].ms * ALOOP_MS + 2 * ALOOP_SEC, "slept far too long");
        aloop_task_release(t[i]);
    }
    close_loop(l);
}
END_TEST

static void *t_sleep_equal(void *arg)
{
    aloop_sleep(5 * ALOOP_MS);
    log_add(UNTAG(arg));
    return NULL;
}

START_TEST(test_sleep_loop_keeps_running)
{
    /* tasks sleep while plain timers and callbacks go on */
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t = spawn(l, t_sleep_equal, TAG(2));
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(1)), 0);
    ck_assert_int_gt(aloop_call_later(l, 50 * ALOOP_MS, cb_log, TAG(3)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(1, 2, 3);
    ck_assert_int_eq(aloop_task_done(t), 1);
    aloop_task_release(t);
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* Yield and priorities                                                     */
/* ======================================================================== */

static void *t_yield_log(void *arg)
{
    int base = UNTAG(arg);
    aloop_t *loop = aloop_task_loop(aloop_current_task());
    log_add(base + 1);
    /* queued before the yield: runs before the task resumes */
    aloop_call_soon(loop, cb_log, TAG(base + 2));
    ck_assert_int_eq(aloop_yield(), 0);
    log_add(base + 3);
    return NULL;
}

START_TEST(test_yield_after_ready_callbacks)
{
    aloop_t *l = NEW_LOOP();
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(1)), 0);
    aloop_task_t *t = spawn(l, t_yield_log, TAG(10));
    ck_assert_int_gt(aloop_call_soon(l, cb_log, TAG(2)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    /* iteration 1: 1, the task's start (11), 2; iteration 2: 12, then the
     * task's resume (13) */
    LOG_EXPECT(1, 11, 2, 12, 13);
    aloop_task_release(t);
    close_loop(l);
}
END_TEST

static void *t_pingpong(void *arg)
{
    int id = UNTAG(arg);
    for (int i = 0; i < 4; i++) {
        log_add(id * 10 + i);
        ck_assert_int_eq(aloop_yield(), 0);
    }
    return NULL;
}

START_TEST(test_yield_interleaves)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t[2] = { spawn(l, t_pingpong, TAG(1)), spawn(l, t_pingpong, TAG(2)) };
    ck_assert_int_eq(aloop_gather(t, 2, NULL), 0);
    LOG_EXPECT(10, 20, 11, 21, 12, 22, 13, 23);
    aloop_task_release(t[0]);
    aloop_task_release(t[1]);
    close_loop(l);
}
END_TEST

/* A yielding task may switch straight to the next task the drain would
 * resume, and begin the next iteration itself when it would only run queued
 * work.  None of that may show: plain callbacks between tasks, run modes,
 * stop and the poll that ready I/O waits for keep their rules. */
static int g_chain_left;
static void cb_chain(aloop_t *loop, void *arg)
{
    log_add(UNTAG(arg));
    if (--g_chain_left > 0)
        aloop_call_soon(loop, cb_chain, TAG(UNTAG(arg) + 1));
}

START_TEST(test_yield_handoff_with_callbacks)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t[2] = { spawn(l, t_pingpong, TAG(1)), spawn(l, t_pingpong, TAG(2)) };
    g_chain_left = 4;
    ck_assert_int_gt(aloop_call_soon(l, cb_chain, TAG(100)), 0);
    ck_assert_int_eq(aloop_gather(t, 2, NULL), 0);
    /* each iteration: task 1, task 2, then the callback queued last time */
    LOG_EXPECT(10, 20, 100, 11, 21, 101, 12, 22, 102, 13, 23, 103);
    aloop_task_release(t[0]);
    aloop_task_release(t[1]);
    close_loop(l);
}
END_TEST

START_TEST(test_yield_run_once)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t[2] = { spawn(l, t_pingpong, TAG(1)), spawn(l, t_pingpong, TAG(2)) };
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_ONCE), 1);
    LOG_EXPECT(10, 20);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);
    LOG_EXPECT(10, 20, 11, 21);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_ONCE), 1);
    LOG_EXPECT(10, 20, 11, 21, 12, 22);
    ck_assert_int_eq(aloop_gather(t, 2, NULL), 0);
    LOG_EXPECT(10, 20, 11, 21, 12, 22, 13, 23);
    aloop_task_release(t[0]);
    aloop_task_release(t[1]);
    close_loop(l);
}
END_TEST

static void *t_yield_stop(void *arg)
{
    int id = UNTAG(arg);
    for (int i = 0; i < 4; i++) {
        log_add(id * 10 + i);
        if (id == 2 && i == 1)
            aloop_stop(aloop_task_loop(aloop_current_task()));
        ck_assert_int_eq(aloop_yield(), 0);
    }
    return NULL;
}

START_TEST(test_yield_stop)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t[2] = { spawn(l, t_yield_stop, TAG(1)), spawn(l, t_yield_stop, TAG(2)) };
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(10, 20, 11, 21);     /* the iteration that stopped ends, no more */
    ck_assert_int_eq(aloop_gather(t, 2, NULL), 0);
    LOG_EXPECT(10, 20, 11, 21, 12, 22, 13, 23);
    aloop_task_release(t[0]);
    aloop_task_release(t[1]);
    close_loop(l);
}
END_TEST

static int g_yields, g_read_at;
static void *t_spin(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000 && !g_read_at; i++) {
        g_yields++;
        aloop_yield();
    }
    return NULL;
}

static void on_read_once(aloop_t *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    (void)arg;
    g_read_at = g_yields;
    aloop_remove_reader(loop, fd);
}

START_TEST(test_yield_io_not_starved)
{
    aloop_t *l = NEW_LOOP();
    int sv[2];
    mk_socketpair(sv);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    g_yields = g_read_at = 0;
    aloop_task_t *t[2] = { spawn(l, t_spin, NULL), spawn(l, t_spin, NULL) };
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);    /* both started */
    ck_assert_int_eq(aloop_add_reader(l, sv[0], on_read_once, NULL), 0);
    ck_assert_int_eq(aloop_gather(t, 2, NULL), 0);
    /* queued work may delay a poll by at most 64 iterations (2 yields each) */
    ck_assert_msg(g_read_at > 0 && g_read_at <= 2 * 66, "%s: read after %d yields", BE, g_read_at);
    aloop_task_release(t[0]);
    aloop_task_release(t[1]);
    close(sv[0]);
    close(sv[1]);
    close_loop(l);
}
END_TEST

/* One iteration per round: the loop runs each ready callback of the
 * iteration once, so one yield = one iteration. */
static void *t_yield_iter(void *arg)
{
    int id = UNTAG(arg);
    for (int i = 0; i < 3; i++) {
        log_add(id);
        aloop_yield();
    }
    return NULL;
}

START_TEST(test_priority_order)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t[5];
    t[0] = spawn_prio(l, ALOOP_PRIO_MIN, t_yield_iter, TAG(-2));
    t[1] = spawn_prio(l, ALOOP_PRIO_DEFAULT, t_yield_iter, TAG(10));
    t[2] = spawn_prio(l, ALOOP_PRIO_MAX, t_yield_iter, TAG(2));
    t[3] = spawn_prio(l, ALOOP_PRIO_DEFAULT, t_yield_iter, TAG(11));
    t[4] = spawn_prio(l, 1, t_yield_iter, TAG(1));
    /* plain callbacks of the same priorities take their places by FIFO */
    ck_assert_int_gt(aloop_call_soon_prio(l, ALOOP_PRIO_MAX, cb_log, TAG(100)), 0);
    ck_assert_int_gt(aloop_call_soon_prio(l, ALOOP_PRIO_MIN, cb_log, TAG(-100)), 0);
    ck_assert_int_eq(aloop_gather(t, 5, NULL), 0);
    LOG_EXPECT(2, 100, 1, 10, 11, -2, -100,
               2, 1, 10, 11, -2,
               2, 1, 10, 11, -2);
    for (int i = 0; i < 5; i++)
        aloop_task_release(t[i]);
    close_loop(l);
}
END_TEST

/* A high-priority task sleeping and a low one: when both are due in one
 * iteration, the high one resumes first. */
static void *t_sleep_log(void *arg)
{
    aloop_sleep(5 * ALOOP_MS);
    log_add(UNTAG(arg));
    return NULL;
}

static void busy_cb(aloop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    uint64_t until = mono_ns() + 15 * ALOOP_MS;     /* both timers expire meanwhile */
    while (mono_ns() < until) {}
}

START_TEST(test_priority_timers)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *lo = spawn_prio(l, ALOOP_PRIO_MIN, t_sleep_log, TAG(1));
    aloop_task_t *hi = spawn_prio(l, ALOOP_PRIO_MAX, t_sleep_log, TAG(2));
    ck_assert_int_gt(aloop_call_later(l, 2 * ALOOP_MS, busy_cb, NULL), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(2, 1);
    aloop_task_release(lo);
    aloop_task_release(hi);
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* wait_fd                                                                  */
/* ======================================================================== */

struct fdw { int fd; unsigned ev; uint64_t timeout; int rc; uint64_t took, woke; };

static void *t_wait_fd(void *arg)
{
    struct fdw *w = arg;
    uint64_t t0 = mono_ns();
    w->rc = aloop_wait_fd(w->fd, w->ev, w->timeout);
    w->woke = mono_ns();
    w->took = w->woke - t0;
    return NULL;
}

static void cb_write_byte(aloop_t *loop, void *arg)
{
    (void)loop;
    ck_assert_int_eq(write(UNTAG(arg), "x", 1), 1);
}

START_TEST(test_wait_fd_ready)
{
    aloop_t *l = NEW_LOOP();
    int sv[2];
    mk_socketpair(sv);
    struct fdw r = { sv[0], ALOOP_READABLE, 0, 0, 0, 0 };
    aloop_task_t *t = spawn(l, t_wait_fd, &r);
    /* the write is due 20 ms after now (the task's wait begins later) */
    uint64_t t0 = mono_ns();
    aloop_update_time(l);
    ck_assert_int_gt(aloop_call_later(l, 20 * ALOOP_MS, cb_write_byte, TAG(sv[1])), 0);
    join_ok(t);
    ck_assert_int_eq(r.rc, ALOOP_READABLE);
    ck_assert_uint_ge(r.woke - t0, 20 * ALOOP_MS);
    aloop_task_release(t);
    /* the wait's reader is gone */
    ck_assert_int_eq(aloop_remove_reader(l, sv[0]), -ENOENT);

    /* writable at once; asking for both gives the one that is ready */
    struct fdw w = { sv[1], ALOOP_WRITABLE, 0, 0, 0, 0 };
    t = spawn(l, t_wait_fd, &w);
    join_ok(t);
    ck_assert_int_eq(w.rc, ALOOP_WRITABLE);
    aloop_task_release(t);
    char c;
    ck_assert_int_eq(read(sv[0], &c, 1), 1);
    struct fdw b = { sv[0], ALOOP_READABLE | ALOOP_WRITABLE, 0, 0, 0, 0 };
    t = spawn(l, t_wait_fd, &b);
    join_ok(t);
    ck_assert_int_eq(b.rc, ALOOP_WRITABLE);
    aloop_task_release(t);
    ck_assert_int_eq(aloop_remove_writer(l, sv[0]), -ENOENT);
    ck_assert_int_eq(aloop_remove_reader(l, sv[0]), -ENOENT);

    /* bad arguments */
    struct fdw e1 = { sv[0], 0, 0, 0, 0, 0 }, e2 = { -1, ALOOP_READABLE, 0, 0, 0, 0 },
               e3 = { sv[0], 4, 0, 0, 0, 0 };
    aloop_task_t *te[3] = { spawn(l, t_wait_fd, &e1), spawn(l, t_wait_fd, &e2),
                            spawn(l, t_wait_fd, &e3) };
    ck_assert_int_eq(aloop_gather(te, 3, NULL), 0);
    ck_assert_int_eq(e1.rc, -EINVAL);
    ck_assert_int_eq(e2.rc, -EBADF);
    ck_assert_int_eq(e3.rc, -EINVAL);
    for (int i = 0; i < 3; i++)
        aloop_task_release(te[i]);
    close_loop(l);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_wait_fd_timeout)
{
    aloop_t *l = NEW_LOOP();
    int sv[2];
    mk_socketpair(sv);
    struct fdw r = { sv[0], ALOOP_READABLE, 30 * ALOOP_MS, 0, 0, 0 };
    aloop_task_t *t = spawn(l, t_wait_fd, &r);
    join_ok(t);
    ck_assert_int_eq(r.rc, -ETIMEDOUT);
    ck_assert_uint_ge(r.took, 30 * ALOOP_MS);
    ck_assert_int_eq(aloop_remove_reader(l, sv[0]), -ENOENT);
    aloop_task_release(t);
    /* data before the timeout: the timer is cancelled with the wait */
    struct fdw r2 = { sv[0], ALOOP_READABLE, 5 * ALOOP_SEC, 0, 0, 0 };
    t = spawn(l, t_wait_fd, &r2);
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_MS, cb_write_byte, TAG(sv[1])), 0);
    uint64_t t0 = mono_ns();
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);     /* nothing left: no timer */
    ck_assert_uint_lt(mono_ns() - t0, 2 * ALOOP_SEC);
    ck_assert_int_eq(r2.rc, ALOOP_READABLE);
    aloop_task_release(t);
    close_loop(l);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_wait_fd_busy)
{
    aloop_t *l = NEW_LOOP();
    int sv[2];
    mk_socketpair(sv);
    struct fdw a = { sv[0], ALOOP_READABLE, 0, 0, 0, 0 }, b = { sv[0], ALOOP_READABLE, 0, 0, 0, 0 },
               c = { sv[0], ALOOP_WRITABLE, 0, 0, 0, 0 };
    aloop_task_t *ta = spawn(l, t_wait_fd, &a), *tb = spawn(l, t_wait_fd, &b),
                 *tc = spawn(l, t_wait_fd, &c);
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_MS, cb_write_byte, TAG(sv[1])), 0);
    aloop_task_t *all[3] = { ta, tb, tc };
    ck_assert_int_eq(aloop_gather(all, 3, NULL), 0);
    ck_assert_int_eq(a.rc, ALOOP_READABLE);
    ck_assert_int_eq(b.rc, -EBUSY);      /* the reader is taken */
    ck_assert_int_eq(c.rc, ALOOP_WRITABLE);
    for (int i = 0; i < 3; i++)
        aloop_task_release(all[i]);
    close_loop(l);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

static void *t_close_fd(void *arg)
{
    aloop_sleep(10 * ALOOP_MS);
    return TAG(aloop_fd_close(aloop_task_loop(aloop_current_task()), UNTAG(arg)));
}

static void *t_plain_close(void *arg)
{
    aloop_sleep(10 * ALOOP_MS);
    return TAG(close(UNTAG(arg)));
}

START_TEST(test_wait_fd_closed_by_other_task)
{
    aloop_t *l = NEW_LOOP();
    int sv[2];
    mk_socketpair(sv);
    /* a quiet socket with a full send buffer: neither readable nor writable */
    char buf[65536];
    memset(buf, 0, sizeof buf);
    while (write(sv[0], buf, sizeof buf) > 0) {}
    ck_assert_int_eq(errno, EAGAIN);
    /* aloop_fd_close wakes both waiters with -EBADF */
    struct fdw r = { sv[0], ALOOP_READABLE, 0, 0, 0, 0 };
    struct fdw w = { sv[0], ALOOP_WRITABLE, 0, 0, 0, 0 };
    aloop_task_t *tr = spawn(l, t_wait_fd, &r), *tw = spawn(l, t_wait_fd, &w);
    aloop_task_t *tc = spawn(l, t_close_fd, TAG(sv[0]));
    ck_assert_ptr_eq(join_ok(tc), TAG(0));
    join_ok(tr);
    join_ok(tw);
    ck_assert_int_eq(r.rc, -EBADF);
    ck_assert_int_eq(w.rc, -EBADF);
    ck_assert_int_eq(fcntl(sv[0], F_GETFD), -1);      /* closed */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 0);   /* nothing left watched */
    aloop_task_release(tr);
    aloop_task_release(tw);
    aloop_task_release(tc);
    close(sv[1]);

    /* a plain close() does not wake the waiter: its timeout does, and no
     * backend crashes */
    mk_socketpair(sv);
    struct fdw r2 = { sv[0], ALOOP_READABLE, 60 * ALOOP_MS, 0, 0, 0 };
    tr = spawn(l, t_wait_fd, &r2);
    tc = spawn(l, t_plain_close, TAG(sv[0]));
    join_ok(tc);
    join_ok(tr);
    ck_assert_int_eq(r2.rc, -ETIMEDOUT);
    ck_assert_uint_ge(r2.took, 60 * ALOOP_MS);
    aloop_task_release(tr);
    aloop_task_release(tc);
    close_loop(l);
    close(sv[1]);
}
END_TEST

/* ======================================================================== */
/* Cancellation                                                             */
/* ======================================================================== */

struct canc { uint64_t ms; int rc1, rc2, started; uint64_t took, woke; int fd; };

static void *t_cancel_sleep(void *arg)
{
    struct canc *c = arg;
    c->started = 1;
    uint64_t t0 = mono_ns();
    c->rc1 = aloop_sleep(c->ms * ALOOP_MS);
    c->woke = mono_ns();
    c->took = c->woke - t0;
    c->rc2 = aloop_sleep(ALOOP_MS);     /* delivered once: this one sleeps */
    return TAG(7);
}

static void cb_cancel(aloop_t *loop, void *arg)
{
    (void)loop;
    ck_assert_int_eq(aloop_task_cancel(arg), 0);
}

START_TEST(test_cancel_while_sleeping)
{
    aloop_t *l = NEW_LOOP();
    struct canc c = { 10000, 1, 1, 0, 0, 0, -1 };
    aloop_task_t *t = spawn(l, t_cancel_sleep, &c);
    /* the cancel is due 10 ms after now (the task's sleep begins later) */
    uint64_t t0 = mono_ns();
    aloop_update_time(l);
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_MS, cb_cancel, t), 0);
    ck_assert_ptr_eq(join_ok(t), TAG(7));
    ck_assert_uint_lt(mono_ns() - t0, 5 * ALOOP_SEC);
    ck_assert_int_eq(c.rc1, -ECANCELED);
    ck_assert_int_eq(c.rc2, 0);
    ck_assert_uint_ge(c.woke - t0, 10 * ALOOP_MS);
    /* after completion: harmless */
    ck_assert_int_eq(aloop_task_cancel(t), 0);
    ck_assert_int_eq(aloop_task_cancel(t), 0);
    ck_assert_ptr_eq(join_ok(t), TAG(7));
    aloop_task_release(t);
    close_loop(l);
}
END_TEST

START_TEST(test_cancel_before_first_run)
{
    aloop_t *l = NEW_LOOP();
    struct canc c = { 10000, 1, 1, 0, 0, 0, -1 };
    aloop_task_t *t = spawn(l, t_cancel_sleep, &c);
    ck_assert_int_eq(aloop_task_cancel(t), 0);
    ck_assert_int_eq(c.started, 0);
    ck_assert_ptr_eq(join_ok(t), TAG(7));
    ck_assert_int_eq(c.started, 1);        /* it runs: the task decides */
    ck_assert_int_eq(c.rc1, -ECANCELED);   /* its first wait returns at once */
    ck_assert_uint_lt(c.took, ALOOP_SEC);
    ck_assert_int_eq(c.rc2, 0);
    aloop_task_release(t);
    close_loop(l);
}
END_TEST

static void *t_cancel_fd(void *arg)
{
    struct canc *c = arg;
    c->rc1 = aloop_wait_fd(c->fd, ALOOP_READABLE, (uint64_t)c->ms * ALOOP_MS);
    c->rc2 = aloop_wait_fd(c->fd, ALOOP_READABLE, 5 * ALOOP_MS);
    return NULL;
}

START_TEST(test_cancel_while_waiting_fd)
{
    aloop_t *l = NEW_LOOP();
    int sv[2];
    mk_socketpair(sv);
    struct canc c = { 0, 1, 1, 0, 0, 0, sv[0] };
    aloop_task_t *t = spawn(l, t_cancel_fd, &c);
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_MS, cb_cancel, t), 0);
    join_ok(t);
    ck_assert_int_eq(c.rc1, -ECANCELED);
    ck_assert_int_eq(c.rc2, -ETIMEDOUT);
    ck_assert_int_eq(aloop_remove_reader(l, sv[0]), -ENOENT);
    aloop_task_release(t);
    /* with a timeout armed: the timer goes with the wait */
    struct canc c2 = { 10000, 1, 1, 0, 0, 0, sv[0] };
    t = spawn(l, t_cancel_fd, &c2);
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_MS, cb_cancel, t), 0);
    uint64_t t0 = mono_ns();
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_uint_lt(mono_ns() - t0, 5 * ALOOP_SEC);
    ck_assert_int_eq(aloop_task_done(t), 1);
    ck_assert_int_eq(c2.rc1, -ECANCELED);
    aloop_task_release(t);
    close_loop(l);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

static void *t_cancel_join(void *arg)
{
    aloop_task_t *target = arg;
    int rc = aloop_task_join(target, NULL);
    return TAG(1000 + rc);
}

static void *t_yield_rcs(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        log_add(aloop_yield());
    return NULL;
}

static void *t_self_cancel(void *arg)
{
    (void)arg;
    ck_assert_int_eq(aloop_task_cancel(aloop_current_task()), 0);
    int rc1 = aloop_yield();
    int rc2 = aloop_yield();
    return TAG(rc1 * 1000 + rc2);
}

START_TEST(test_cancel_join_and_self)
{
    aloop_t *l = NEW_LOOP();
    struct canc c = { 10000, 1, 1, 0, 0, 0, -1 };
    aloop_task_t *sleeper = spawn(l, t_cancel_sleep, &c);
    aloop_task_t *joiner = spawn(l, t_cancel_join, sleeper);
    ck_assert_int_gt(aloop_call_later(l, 10 * ALOOP_MS, cb_cancel, joiner), 0);
    ck_assert_int_eq(UNTAG(join_ok(joiner)), 1000 - ECANCELED);
    ck_assert_int_eq(aloop_task_done(sleeper), 0);     /* untouched */
    ck_assert_int_eq(aloop_task_cancel(sleeper), 0);
    ck_assert_ptr_eq(join_ok(sleeper), TAG(7));
    ck_assert_int_eq(c.rc1, -ECANCELED);
    aloop_task_release(sleeper);
    aloop_task_release(joiner);

    aloop_task_t *s = spawn(l, t_self_cancel, NULL);
    ck_assert_int_eq(UNTAG(join_ok(s)), -ECANCELED * 1000);
    aloop_task_release(s);

    /* a task cancelled in a yield whose resume is already queued */
    aloop_task_t *y = spawn(l, t_yield_rcs, NULL);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);   /* started, yielded */
    ck_assert_int_eq(aloop_task_cancel(y), 0);
    join_ok(y);
    LOG_EXPECT(-ECANCELED, 0, 0);
    aloop_task_release(y);
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* Spawning, release, nesting, plain callbacks and coroutines together      */
/* ======================================================================== */

static void *t_nest(void *arg)
{
    int depth = UNTAG(arg);
    if (depth == 0)
        return TAG(0);
    aloop_t *loop = aloop_task_loop(aloop_current_task());
    aloop_task_t *kids[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(aloop_spawn(loop, &kids[i], t_nest, TAG(depth - 1)), 0);
    void *res[3];
    ck_assert_int_eq(aloop_gather(kids, 3, res), 0);
    int sum = 1;
    for (int i = 0; i < 3; i++) {
        sum += UNTAG(res[i]);
        aloop_task_release(kids[i]);
    }
    aloop_yield();
    return TAG(sum);
}

START_TEST(test_nested_spawns)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t = spawn(l, t_nest, TAG(5));
    /* 1 + 3 + 9 + 27 + 81 inner tasks */
    ck_assert_int_eq(UNTAG(join_ok(t)), 121);
    aloop_task_release(t);
    close_loop(l);
}
END_TEST

static int g_detached_done;

static void *t_detached(void *arg)
{
    aloop_sleep((uint64_t)UNTAG(arg) * ALOOP_MS);
    g_detached_done++;
    return NULL;
}

static void cb_spawn(aloop_t *loop, void *arg)
{
    ck_assert_int_eq(aloop_spawn(loop, NULL, t_detached, arg), 0);
}

START_TEST(test_release_and_detached)
{
    aloop_t *l = NEW_LOOP();
    g_detached_done = 0;
    aloop_task_t *t = spawn(l, t_detached, TAG(5));
    aloop_task_release(t);                          /* runs on */
    ck_assert_int_eq(aloop_spawn(l, NULL, t_detached, TAG(1)), 0);
    ck_assert_int_gt(aloop_call_soon(l, cb_spawn, TAG(2)), 0);   /* from a plain callback */
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    ck_assert_int_eq(g_detached_done, 3);
    /* handles are recycled after release: many rounds, no growth */
    for (int round = 0; round < 1000; round++) {
        t = spawn(l, t_return_arg, TAG(round));
        ck_assert_ptr_eq(join_ok(t), TAG(round));
        aloop_task_release(t);
    }
    close_loop(l);
}
END_TEST

/* asyncio's gather of plain functions and coroutines: a plain function is a
 * callback, a coroutine a task; the loop runs both. */
static int g_plain_ran;

static void plain_fn(aloop_t *loop, void *arg)
{
    (void)loop;
    g_plain_ran += UNTAG(arg);
}

static void *coro_fn(void *arg)
{
    aloop_sleep(ALOOP_MS);
    return TAG(UNTAG(arg) * 2);
}

START_TEST(test_plain_and_coroutines)
{
    aloop_t *l = NEW_LOOP();
    g_plain_ran = 0;
    aloop_task_t *t[3];
    for (int i = 0; i < 3; i++) {
        ck_assert_int_gt(aloop_call_soon(l, plain_fn, TAG(i + 1)), 0);
        t[i] = spawn(l, coro_fn, TAG(i + 1));
    }
    ck_assert_int_gt(aloop_call_later(l, 2 * ALOOP_MS, plain_fn, TAG(100)), 0);
    void *res[3];
    ck_assert_int_eq(aloop_gather(t, 3, res), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);   /* the rest */
    ck_assert_int_eq(g_plain_ran, 106);
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_eq(res[i], TAG((i + 1) * 2));
        aloop_task_release(t[i]);
    }
    close_loop(l);
}
END_TEST

START_TEST(test_current_task)
{
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t = spawn(l, t_join_self, NULL);      /* records itself */
    g_self = NULL;
    join_ok(t);
    ck_assert_ptr_eq(g_self, t);
    ck_assert_ptr_null(aloop_current_task());
    aloop_task_release(t);
    close_loop(l);
}
END_TEST

/* ======================================================================== */
/* Many tasks, stacks                                                       */
/* ======================================================================== */

static long g_many_sum;

static void *t_many(void *arg)
{
    int i = UNTAG(arg);
    char buf[512];      /* touch some stack */
    memset(buf, i & 0x7f, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
    if (aloop_sleep(ALOOP_MS + (uint64_t)(i % 7) * ALOOP_MS) < 0)
        return aloop_task_error(-EINTR);
    if (aloop_yield() < 0)
        return aloop_task_error(-EINTR);
    g_many_sum += i;
    return TAG(i + buf[1] - (i & 0x7f));
}

START_TEST(test_100k_tasks)
{
#if defined(__SANITIZE_THREAD__)
    int N = 5000;           /* TSan counts a fiber as a thread: 8128 at most */
#else
    int N = 100000;
#endif
    /* fewer under valgrind, whose address-space map cannot hold so many */
    const char *env = getenv("ALOOP_TEST_NTASKS");
    if (env && atoi(env) > 0)
        N = atoi(env);
    aloop_t *l = NEW_LOOP();
    aloop_task_t **t = malloc((size_t)N * sizeof *t);
    void **res = malloc((size_t)N * sizeof *res);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(res);
    g_many_sum = 0;
    for (int i = 0; i < N; i++)
        t[i] = spawn(l, t_many, TAG(i));
    ck_assert_int_eq(aloop_gather(t, N, res), 0);
    ck_assert_int_eq(g_many_sum, (long)N * (N - 1) / 2);
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_eq(res[i], TAG(i));
        aloop_task_release(t[i]);
    }
    /* and a second wave on the pooled stacks */
    g_many_sum = 0;
    for (int i = 0; i < N; i++)
        t[i] = spawn(l, t_many, TAG(i));
    ck_assert_int_eq(aloop_gather(t, N, NULL), 0);
    ck_assert_int_eq(g_many_sum, (long)N * (N - 1) / 2);
    for (int i = 0; i < N; i++)
        aloop_task_release(t[i]);
    free(t);
    free(res);
    close_loop(l);
}
END_TEST

static void *t_big_stack(void *arg)
{
    size_t n = (size_t)UNTAG(arg);
    char *buf = __builtin_alloca(n);
    memset(buf, 0x5a, n);
    __asm__ volatile("" : : "r"(buf) : "memory");
    aloop_yield();
    return TAG(buf[n - 1] + buf[0]);
}

START_TEST(test_stack_size)
{
    aloop_t *l = NEW_LOOP();
    ck_assert_int_eq(aloop_set_task_stack_size(l, 1 << 20), 0);
    aloop_task_t *t = spawn(l, t_big_stack, TAG(600 << 10));
    ck_assert_ptr_eq(join_ok(t), TAG(0xb4));
    aloop_task_release(t);
    /* back to a small size, and to the big one again */
    ck_assert_int_eq(aloop_set_task_stack_size(l, 32 << 10), 0);
    t = spawn(l, t_big_stack, TAG(16 << 10));
    ck_assert_ptr_eq(join_ok(t), TAG(0xb4));
    aloop_task_release(t);
    ck_assert_int_eq(aloop_set_task_stack_size(l, 1 << 20), 0);
    t = spawn(l, t_big_stack, TAG(600 << 10));
    ck_assert_ptr_eq(join_ok(t), TAG(0xb4));
    aloop_task_release(t);
    close_loop(l);
}
END_TEST

/* Recursion that fills every frame: it overflows a 64 KiB stack by ~16 KiB. */
static int __attribute__((noinline)) deep(int n)
{
    char buf[1024];
    memset(buf, 0xa5, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
    if (n == 0)
        return buf[3];
    return deep(n - 1) + buf[n & 1023];
}

static void *t_overflow(void *arg)
{
    (void)arg;
    aloop_yield();
    int v = deep(75);
    aloop_yield();      /* the switch out checks the stack */
    return TAG(v);
}

START_TEST(test_stack_overflow_guarded)
{
    /* the first stacks of a process have a guard page: SIGSEGV */
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t = spawn(l, t_overflow, NULL);
    aloop_task_join(t, NULL);
    ck_abort_msg("the overflow went unnoticed");
}
END_TEST

START_TEST(test_stack_overflow_canary)
{
    /* no guard pages left: the canary zone is checked at the next switch */
    setenv("ALOOP_TASK_GUARDS", "0", 1);
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t = spawn(l, t_overflow, NULL);
    aloop_task_join(t, NULL);
    ck_abort_msg("the overflow went unnoticed");
}
END_TEST

/* ======================================================================== */
/* aloop_close with tasks                                                   */
/* ======================================================================== */

static int g_cleanup, g_stubborn_waits, g_never_started_ran;

static void *t_forever_polite(void *arg)
{
    (void)arg;
    for (;;) {
        int rc = aloop_sleep(ALOOP_SEC);
        if (rc == -ECANCELED) {
            g_cleanup++;
            /* cleanup may still wait: it answers at once */
            ck_assert_int_eq(aloop_yield(), -ECANCELED);
            return NULL;
        }
    }
}

static void *t_forever_stubborn(void *arg)
{
    (void)arg;
    for (;;) {
        aloop_sleep(ALOOP_SEC);
        g_stubborn_waits++;
    }
    return NULL;
}

static void *t_never_started(void *arg)
{
    (void)arg;
    g_never_started_ran = 1;
    return NULL;
}

START_TEST(test_close_reclaims_tasks)
{
    aloop_t *l = NEW_LOOP();
    g_cleanup = g_stubborn_waits = g_never_started_ran = 0;
    int sv[2];
    mk_socketpair(sv);
    aloop_task_t *keep = spawn(l, t_forever_polite, NULL);       /* handle kept */
    ck_assert_int_eq(aloop_spawn(l, NULL, t_forever_polite, NULL), 0);
    ck_assert_int_eq(aloop_spawn(l, NULL, t_forever_stubborn, NULL), 0);
    struct fdw w = { sv[0], ALOOP_READABLE, 0, 0, 0, 0 };
    ck_assert_int_eq(aloop_spawn(l, NULL, t_wait_fd, &w), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_NOWAIT), 1);     /* all started and waiting */
    ck_assert_int_eq(aloop_spawn(l, NULL, t_never_started, NULL), 0);
    ck_assert_int_eq(aloop_task_done(keep), 0);
    close_loop(l);
    ck_assert_int_eq(g_cleanup, 2);
    ck_assert_int_eq(g_stubborn_waits, 65);         /* then abandoned */
    ck_assert_int_eq(g_never_started_ran, 0);
    ck_assert_int_eq(w.rc, -ECANCELED);
    /* a new loop, maybe at the same address, starts clean */
    l = NEW_LOOP();
    aloop_task_t *t = spawn(l, t_return_arg, TAG(3));
    ck_assert_ptr_eq(join_ok(t), TAG(3));
    aloop_task_release(t);
    close_loop(l);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_two_loops)
{
    aloop_t *a = NEW_LOOP(), *b = NEW_LOOP();
    aloop_task_t *ta = spawn(a, t_sleep_then, TAG(2)), *tb = spawn(b, t_sleep_then, TAG(3));
    ck_assert_ptr_eq(join_ok(tb), TAG(1003));
    ck_assert_int_eq(aloop_task_done(ta), 0);
    ck_assert_ptr_eq(join_ok(ta), TAG(1002));
    aloop_task_release(ta);
    aloop_task_release(tb);
    close_loop(b);
    close_loop(a);
}
END_TEST

/* ======================================================================== */
/* Context variables                                                        */
/* ======================================================================== */

static aloop_ctxvar_t *g_var, *g_var2;
static int g_freed;
static void count_free(void *v)
{
    (void)v;
    g_freed++;
}

#define V(x) aloop_ctxvar_get(g_var, TAG(x))

static void *t_ctx_child(void *arg)
{
    int id = UNTAG(arg);
    int seen = UNTAG(V(-1));
    aloop_yield();
    ck_assert_int_eq(aloop_ctxvar_set(g_var, TAG(id)), 0);
    ck_assert_int_eq(UNTAG(V(-1)), id);
    aloop_yield();
    ck_assert_int_eq(UNTAG(V(-1)), id);     /* a sibling's set is not seen */
    return TAG(seen);
}

static void *t_ctx_grandchild(void *arg)
{
    (void)arg;
    return V(-1);
}

static void *t_ctx_parent(void *arg)
{
    (void)arg;
    aloop_t *loop = aloop_task_loop(aloop_current_task());
    ck_assert_int_eq(UNTAG(V(-1)), 1);      /* the spawner's */
    ck_assert_int_eq(aloop_ctxvar_set(g_var, TAG(2)), 0);
    aloop_task_t *k1, *k2, *g1, *g2;
    ck_assert_int_eq(aloop_spawn(loop, &k1, t_ctx_child, TAG(10)), 0);
    ck_assert_int_eq(aloop_spawn(loop, &k2, t_ctx_child, TAG(20)), 0);
    ck_assert_int_eq(aloop_spawn(loop, &g1, t_ctx_grandchild, NULL), 0);   /* sees 2 */
    ck_assert_int_eq(aloop_ctxvar_set(g_var, TAG(3)), 0);
    ck_assert_int_eq(aloop_spawn(loop, &g2, t_ctx_grandchild, NULL), 0);   /* sees 3 */
    void *r1, *r2;
    ck_assert_int_eq(aloop_task_join(k1, &r1), 0);
    ck_assert_int_eq(aloop_task_join(k2, &r2), 0);
    ck_assert_int_eq(UNTAG(r1), 2);
    ck_assert_int_eq(UNTAG(r2), 2);
    ck_assert_int_eq(UNTAG(V(-1)), 3);      /* children's sets never seen */
    ck_assert_int_eq(UNTAG(join_ok(g1)), 2);
    ck_assert_int_eq(UNTAG(join_ok(g2)), 3);
    aloop_task_release(k1);
    aloop_task_release(k2);
    aloop_task_release(g1);
    aloop_task_release(g2);
    return NULL;
}

START_TEST(test_ctxvar_isolation)
{
    g_freed = 0;
    g_var = aloop_ctxvar_new("request", count_free);
    ck_assert_ptr_nonnull(g_var);
    ck_assert_str_eq(aloop_ctxvar_name(g_var), "request");
    ck_assert_int_eq(UNTAG(V(-1)), -1);
    ck_assert_int_eq(aloop_ctxvar_set(NULL, NULL), -EINVAL);
    ck_assert_int_eq(aloop_ctxvar_set(g_var, TAG(1)), 0);   /* the base context */
    ck_assert_int_eq(UNTAG(V(-1)), 1);
    aloop_t *l = NEW_LOOP();
    aloop_task_t *p = spawn(l, t_ctx_parent, NULL);
    join_ok(p);
    aloop_task_release(p);
    ck_assert_int_eq(UNTAG(V(-1)), 1);      /* the parent's sets never seen */
    close_loop(l);
    /* every value set in tasks became unreachable: 2, 3, 10, 20 */
    ck_assert_int_eq(g_freed, 4);
    ck_assert_int_eq(aloop_ctxvar_set(g_var, TAG(1)), 0);   /* the same value: nothing */
    ck_assert_int_eq(g_freed, 4);
    ck_assert_int_eq(aloop_ctxvar_set(g_var, TAG(5)), 0);
    ck_assert_int_eq(g_freed, 5);           /* 1 was reachable from the base only */
    aloop_ctxvar_free(g_var);               /* 5 stays with the base context */
    ck_assert_int_eq(g_freed, 5);
}
END_TEST

static void cb_ctx_check(aloop_t *loop, void *arg)
{
    (void)loop;
    log_add(UNTAG(V(-1)));
    /* a callback's sets stay in its copy */
    ck_assert_int_eq(aloop_ctxvar_set(g_var, TAG(UNTAG(arg))), 0);
    ck_assert_int_eq(aloop_ctxvar_set(g_var2, TAG(UNTAG(arg))), 0);
}

static void *t_ctx_callbacks(void *arg)
{
    (void)arg;
    aloop_t *loop = aloop_task_loop(aloop_current_task());
    ck_assert_int_eq(aloop_ctxvar_set(g_var, TAG(7)), 0);
    aloop_call_soon(loop, cb_ctx_check, TAG(70));
    aloop_call_later(loop, ALOOP_MS, cb_ctx_check, TAG(71));
    aloop_call_soon_prio(loop, ALOOP_PRIO_MAX, cb_ctx_check, TAG(72));
    ck_assert_int_eq(aloop_ctxvar_set(g_var, TAG(8)), 0);
    aloop_call_soon(loop, cb_ctx_check, TAG(80));
    aloop_sleep(5 * ALOOP_MS);
    ck_assert_int_eq(UNTAG(V(-1)), 8);
    ck_assert_int_eq(UNTAG(aloop_ctxvar_get(g_var2, TAG(-1))), -1);
    return NULL;
}

START_TEST(test_ctxvar_call_soon)
{
    g_freed = 0;
    g_var = aloop_ctxvar_new("a", count_free);
    g_var2 = aloop_ctxvar_new(NULL, NULL);
    ck_assert_str_eq(aloop_ctxvar_name(g_var2), "");
    aloop_t *l = NEW_LOOP();
    /* from the (empty) base context: the callback's sets do not leak */
    ck_assert_int_gt(aloop_call_soon(l, cb_ctx_check, TAG(50)), 0);
    ck_assert_int_eq(aloop_run(l, ALOOP_RUN_DEFAULT), 0);
    LOG_EXPECT(-1);
    ck_assert_int_eq(UNTAG(V(-1)), -1);
    ck_assert_int_eq(UNTAG(aloop_ctxvar_get(g_var2, TAG(-1))), -1);
    ck_assert_int_eq(g_freed, 1);
    g_nlog = 0;
    aloop_task_t *t = spawn(l, t_ctx_callbacks, NULL);
    join_ok(t);
    aloop_task_release(t);
    LOG_EXPECT(7, 7, 8, 7);     /* prio MAX first; then FIFO; the timer last */
    ck_assert_int_eq(UNTAG(V(-1)), -1);
    /* pending callbacks dropped by close release their contexts */
    ck_assert_int_eq(aloop_ctxvar_set(g_var, TAG(9)), 0);
    ck_assert_int_gt(aloop_call_later(l, ALOOP_SEC, cb_ctx_check, TAG(90)), 0);
    ck_assert_int_eq(aloop_ctxvar_set(g_var, TAG(10)), 0);
    int before = g_freed;
    close_loop(l);
    ck_assert_int_eq(g_freed, before + 1);      /* 9 */
    aloop_ctxvar_free(g_var);
    aloop_ctxvar_free(g_var2);
}
END_TEST

/* Many variables: the trie grows levels and stays correct. */
static void *t_ctx_many(void *arg)
{
    aloop_ctxvar_t **vars = arg;
    for (int i = 0; i < 300; i += 2)
        ck_assert_int_eq(aloop_ctxvar_set(vars[i], TAG(i + 1000)), 0);
    for (int i = 0; i < 300; i++)
        ck_assert_int_eq(UNTAG(aloop_ctxvar_get(vars[i], TAG(-1))), i % 2 ? i : i + 1000);
    return NULL;
}

START_TEST(test_ctxvar_many)
{
    aloop_ctxvar_t *vars[300];
    g_freed = 0;
    for (int i = 0; i < 300; i++) {
        vars[i] = aloop_ctxvar_new("v", count_free);
        ck_assert_ptr_nonnull(vars[i]);
        if (i % 2)
            ck_assert_int_eq(aloop_ctxvar_set(vars[i], TAG(i)), 0);
    }
    aloop_t *l = NEW_LOOP();
    aloop_task_t *t = spawn(l, t_ctx_many, vars);
    join_ok(t);
    aloop_task_release(t);
    close_loop(l);
    ck_assert_int_eq(g_freed, 150);
    for (int i = 0; i < 300; i++) {
        ck_assert_int_eq(UNTAG(aloop_ctxvar_get(vars[i], TAG(-1))), i % 2 ? i : -1);
        aloop_ctxvar_free(vars[i]);
    }
}
END_TEST

#ifdef ALOOP_TEST_ADOPT_UV
/* ======================================================================== */
/* The host drives: tasks inside the host's own uv_run                      */
/* ======================================================================== */

static int g_host_timer_fired;

static void host_timer(uv_timer_t *t)
{
    (void)t;
    g_host_timer_fired++;
}

static void *t_host_pingpong(void *arg)
{
    int id = UNTAG(arg);
    for (int i = 0; i < 3; i++) {
        log_add(id * 10 + i);
        if (aloop_yield() < 0)
            return aloop_task_error(-EINTR);
    }
    aloop_sleep(20 * ALOOP_MS);
    return TAG(id);
}

static void *t_host_joiner(void *arg)
{
    aloop_task_t **kids = arg;
    void *res[2];
    int rc = aloop_gather(kids, 2, res);
    aloop_task_release(kids[0]);
    aloop_task_release(kids[1]);
    return rc < 0 ? aloop_task_error(rc) : TAG(UNTAG(res[0]) + UNTAG(res[1]));
}

START_TEST(test_adopted_host_runs_tasks)
{
    uv_loop_t uv;
    ck_assert_int_eq(uv_loop_init(&uv), 0);
    aloop_t *l;
    ck_assert_int_eq(aloop_new_from_uv(&l, &uv), 0);
    uv_timer_t timer;
    uv_timer_init(&uv, &timer);
    uv_timer_start(&timer, host_timer, 5, 0);
    g_host_timer_fired = 0;
    /* spawned from host code, outside any iteration */
    aloop_task_t *kids[2] = { spawn(l, t_host_pingpong, TAG(1)), spawn(l, t_host_pingpong, TAG(2)) };
    aloop_task_t *j = spawn(l, t_host_joiner, kids);
    int sv[2];
    mk_socketpair(sv);
    struct fdw w = { sv[0], ALOOP_READABLE, 0, 0, 0, 0 };
    aloop_task_t *tw = spawn(l, t_wait_fd, &w);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    uint64_t t0 = mono_ns();
    ck_assert_int_eq(uv_run(&uv, UV_RUN_DEFAULT), 0);       /* returns when all is done */
    ck_assert_uint_ge(mono_ns() - t0, 20 * ALOOP_MS);
    ck_assert_int_eq(g_host_timer_fired, 1);
    LOG_EXPECT(10, 20, 11, 21, 12, 22);
    ck_assert_int_eq(aloop_task_done(j), 1);
    ck_assert_ptr_eq(join_ok(j), TAG(3));
    ck_assert_int_eq(w.rc, ALOOP_READABLE);
    aloop_task_release(j);
    aloop_task_release(tw);
    ck_assert_int_eq(aloop_close(l), 0);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&uv, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&uv), 0);
    close(sv[0]);
    close(sv[1]);
}
END_TEST
#endif

/* ======================================================================== */

static void add_all_tests(TCase *tc, int i)
{
    const TTest *tests[] = {
        test_eperm_outside_task,
        test_bad_arguments,
        test_join_from_outside,
        test_join_in_task,
        test_join_gather_errors,
        test_join_misuse,
        test_join_interrupted_by_stop,
        test_sleep_order_never_early,
        test_sleep_loop_keeps_running,
        test_yield_after_ready_callbacks,
        test_yield_interleaves,
        test_yield_handoff_with_callbacks,
        test_yield_run_once,
        test_yield_stop,
        test_yield_io_not_starved,
        test_priority_order,
        test_priority_timers,
        test_wait_fd_ready,
        test_wait_fd_timeout,
        test_wait_fd_busy,
        test_wait_fd_closed_by_other_task,
        test_cancel_while_sleeping,
        test_cancel_before_first_run,
        test_cancel_while_waiting_fd,
        test_cancel_join_and_self,
        test_nested_spawns,
        test_release_and_detached,
        test_plain_and_coroutines,
        test_current_task,
        test_100k_tasks,
        test_stack_size,
        test_close_reclaims_tasks,
        test_two_loops,
        test_ctxvar_isolation,
        test_ctxvar_call_soon,
        test_ctxvar_many,
    };
    for (size_t k = 0; k < sizeof tests / sizeof tests[0]; k++)
        tcase_add_loop_test(tc, tests[k], i, i + 1);
#ifdef ALOOP_TEST_ADOPT_UV
    tcase_add_loop_test(tc, test_adopted_host_runs_tasks, i, i + 1);
#endif
}

/* The overflow tests end their process: a TCase of their own ("epoll
 * overflow"), so that CK_FORK=no CK_RUN_CASE=epoll runs the rest in one
 * process (for leak checkers). */
static void add_overflow_tests(TCase *tc, int i)
{
    /* A guarded overflow faults on the guard page.  Under ASan its SEGV
     * handler would report the (expected) overflow as an error, which CI
     * treats as a finding: the plain run covers this case.  Under TSan it
     * exits with 66. */
#if defined(__SANITIZE_ADDRESS__)
    (void)test_stack_overflow_guarded;
#elif defined(__SANITIZE_THREAD__)
    tcase_add_loop_exit_test(tc, test_stack_overflow_guarded, 66, i, i + 1);
#else
    tcase_add_loop_test_raise_signal(tc, test_stack_overflow_guarded, SIGSEGV, i, i + 1);
#endif
    tcase_add_loop_test_raise_signal(tc, test_stack_overflow_canary, SIGABRT, i, i + 1);
}

int main(void)
{
#ifdef ALOOP_TEST_ADOPT_UV
    g_backends[g_nbackends++] = "libuv-adopted";
#else
    backends_init();
#endif
    if (g_nbackends == 0) {
        fprintf(stderr, "test_task: no backends to test\n");
        return EXIT_FAILURE;
    }
    Suite *s = suite_create("aloop-task");
    for (int i = 0; i < g_nbackends; i++) {
        TCase *tc = tcase_create(g_backends[i]);
        tcase_set_timeout(tc, 60);
        tcase_add_checked_fixture(tc, setup, teardown);
        add_all_tests(tc, i);
        suite_add_tcase(s, tc);
        static char names[MAX_BACKENDS][64];
        snprintf(names[i], sizeof names[i], "%s overflow", g_backends[i]);
        TCase *tco = tcase_create(names[i]);
        tcase_set_timeout(tco, 60);
        tcase_add_checked_fixture(tco, setup, teardown);
        add_overflow_tests(tco, i);
        suite_add_tcase(s, tco);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
