/* raw-uv.c -- the workloads written directly against libuv (module
 * aloop-bench-uv.so, linked against libuv only: see bench.h).
 *
 *   pipes     one uv_poll_t per pair (user memory): setting a watcher up is
 *             uv_poll_init + uv_poll_start, tearing it down uv_poll_stop +
 *             uv_close (a libuv handle watches one fd for its life);
 *             uv_stop from the callback that ends the round
 *   timers    one uv_timer_t per timer, uv_timer_init + uv_timer_start
 *             (libuv counts in milliseconds: the delay is truncated to ms;
 *             a handle is initialised once: the timed pass is the start);
 *             churn: uv_timer_stop + uv_timer_start
 *   callsoon  libuv has no deferred-call queue: an active uv_idle_t is how
 *             libuv runs something again in the next iteration.  The chain
 *             is one idle handle whose callback runs nchain times, one per
 *             iteration; the fan-out is nfan idle handles started at once,
 *             each stopping itself (initialised once, outside the timing)
 *   wakeup    uv_async_t + a mutex-protected queue (uv_async_send coalesces)
 *
 * Handles are closed, and their close callbacks run, outside the timings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bench.h"

/* close every handle still open, then the loop */
static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void loop_done(uv_loop_t *loop)
{
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
}

/* ---- pipes ---------------------------------------------------------------- */

static const struct bench_cfg *pcfg;
static uv_loop_t ploop;
static uv_poll_t *pw;

static void pipe_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    if (bench_pipes_read((int)(intptr_t)h->data))
        uv_stop(h->loop);
}

static int p_open(void *ctx)
{
    (void)ctx;
    pw = calloc((size_t)pcfg->npipes, sizeof *pw);
    if (!pw)
        return -ENOMEM;
    int r = uv_loop_init(&ploop);
    if (r < 0)
        free(pw);
    return r;
}

static int p_add(void *ctx, int i, int fd)
{
    (void)ctx;
    int r = uv_poll_init(&ploop, &pw[i], fd);
    if (r < 0)
        return r;
    pw[i].data = (void *)(intptr_t)i;
    r = uv_poll_start(&pw[i], UV_READABLE, pipe_cb);
    if (r < 0)
        uv_close((uv_handle_t *)&pw[i], NULL);
    return r;
}

static int p_del(void *ctx, int i, int fd)
{
    (void)ctx;
    (void)fd;
    uv_poll_stop(&pw[i]);
    uv_close((uv_handle_t *)&pw[i], NULL);
    return 0;
}

static int p_nowait(void *ctx)
{
    (void)ctx;
    uv_run(&ploop, UV_RUN_NOWAIT);
    return 0;
}

static int p_run(void *ctx)
{
    (void)ctx;
    uv_run(&ploop, UV_RUN_DEFAULT);
    return 0;
}

static void p_close(void *ctx)
{
    (void)ctx;
    loop_done(&ploop);
    free(pw);
}

static const struct bench_pipes_ops pipes_ops = { p_open, p_add, p_del, p_nowait, p_run, p_close };

static int r_pipes(void *ctx, const struct bench_cfg *c, double *out)
{
    pcfg = c;
    return bench_pipes_drive(c, &pipes_ops, ctx, out);
}

/* ---- timers --------------------------------------------------------------- */

static uint32_t tcount;

static void timer_cb(uv_timer_t *h)
{
    (void)h;
    tcount++;
}

static int r_timers(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    uv_timer_t *t = malloc((size_t)c->ntimers * sizeof *t);
    if (!t)
        return -ENOMEM;
    memset(t, 0, (size_t)c->ntimers * sizeof *t);
    uv_loop_t loop;
    int r = uv_loop_init(&loop);
    if (r < 0) {
        free(t);
        return r;
    }
    /* warm-up (untimed); a handle is initialised once in its life, so the
     * timed pass is uv_timer_start alone */
    for (uint32_t i = 0; i < c->ntimers && r == 0; i++) {
        uv_timer_init(&loop, &t[i]);
        r = uv_timer_start(&t[i], timer_cb, c->delay_us[i] / 1000u, 0);
    }
    for (uint32_t i = 0; i < c->ntimers; i++)
        uv_timer_stop(&t[i]);
    tcount = 0;
    uv_update_time(&loop);
    uint64_t t0 = bench_clock(c);
    for (uint32_t i = 0; i < c->ntimers && r == 0; i++)
        r = uv_timer_start(&t[i], timer_cb, c->delay_us[i] / 1000u, 0);
    uint64_t t1 = bench_clock(c), w1 = bench_ns(), c1 = bench_cpu_ns();
    if (r == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t t2 = bench_ns(), c2 = bench_cpu_ns();
    loop_done(&loop);
    free(t);
    if (r < 0)
        return r;
    if (tcount != c->ntimers)
        return -EIO;
    out[TIMERS_SCHED] = bench_sec(t0, t1);
    out[TIMERS_FIRE] = bench_sec(w1, t2);
    out[TIMERS_FIRE_CPU] = bench_sec(c1, c2);
    return 0;
}

static int r_churn(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    uint32_t w = c->churn_window ? c->churn_window : 1;
    uv_timer_t *t = calloc(w, sizeof *t);
    if (!t)
        return -ENOMEM;
    uv_loop_t loop;
    int r = uv_loop_init(&loop);
    if (r < 0) {
        free(t);
        return r;
    }
    for (uint32_t k = 0; k < w; k++)
        uv_timer_init(&loop, &t[k]);
    uv_update_time(&loop);
    uint64_t t0 = bench_clock(c);
    for (uint32_t i = 0, k = 0, d = 0; i < c->nchurn && r == 0; i++) {
        uv_timer_stop(&t[k]);
        r = uv_timer_start(&t[k], timer_cb, c->delay_us[d] / 1000u, 0);
        if (++k == w)
            k = 0;
        if (++d == c->ntimers)
            d = 0;
    }
    for (uint32_t k = 0; k < w; k++)
        uv_timer_stop(&t[k]);
    uint64_t t1 = bench_clock(c);
    loop_done(&loop);
    free(t);
    if (r < 0)
        return r;
    out[0] = bench_sec(t0, t1);
    return 0;
}

/* ---- callsoon: idle handles ---------------------------------------------- */

static uint64_t ccount, ctarget;

static void chain_cb(uv_idle_t *h)
{
    if (++ccount >= ctarget)
        uv_idle_stop(h);
}

static int r_chain(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    uv_loop_t loop;
    int r = uv_loop_init(&loop);
    if (r < 0)
        return r;
    uv_idle_t h;
    ccount = 0;
    ctarget = c->nchain;
    uint64_t t0 = bench_clock(c);
    uv_idle_init(&loop, &h);
    uv_idle_start(&h, chain_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t t1 = bench_clock(c);
    loop_done(&loop);
    if (ccount != ctarget)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

static void fan_cb(uv_idle_t *h)
{
    ccount++;
    uv_idle_stop(h);
}

static int r_fanout(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    uv_idle_t *h = malloc((size_t)c->nfan * sizeof *h);
    if (!h)
        return -ENOMEM;
    memset(h, 0, (size_t)c->nfan * sizeof *h);
    uv_loop_t loop;
    int r = uv_loop_init(&loop);
    if (r < 0) {
        free(h);
        return r;
    }
    for (uint32_t i = 0; i < c->nfan; i++)      /* once in a handle's life */
        uv_idle_init(&loop, &h[i]);
    uint64_t t0 = 0, t1 = 0;
    for (int pass = 0; pass < 2; pass++) {      /* 0: warm-up, untimed */
        ccount = 0;
        t0 = bench_clock(c);
        for (uint32_t i = 0; i < c->nfan; i++)
            uv_idle_start(&h[i], fan_cb);
        uv_run(&loop, UV_RUN_DEFAULT);
        t1 = bench_clock(c);
    }
    loop_done(&loop);
    free(h);
    if (ccount != c->nfan)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

/* ---- wakeup: uv_async + queue -------------------------------------------- */

static uv_async_t wasync;
static struct bench_q *wq;
static uint32_t wcount, wtarget;

static void wake_item(void *arg)
{
    (void)arg;
    wcount++;
}

static void async_cb(uv_async_t *h)
{
    bench_q_drain(wq);
    if (wcount == wtarget)
        uv_stop(h->loop);
}

static int wake_send(void *ctx, bench_item_cb cb, void *arg)
{
    (void)ctx;
    int r = bench_q_push(wq, cb, arg);
    if (r == 1)
        uv_async_send(&wasync);
    return r < 0 ? r : 0;
}

static int r_wakeup(void *ctx, const struct bench_cfg *c, int producers, double *out)
{
    (void)ctx;
    int r = bench_q_new(&wq);
    if (r < 0)
        return r;
    uv_loop_t loop;
    r = uv_loop_init(&loop);
    if (r < 0) {
        bench_q_free(wq);
        return r;
    }
    r = uv_async_init(&loop, &wasync, async_cb);
    wcount = 0;
    wtarget = c->nwake;
    struct bench_wake *w;
    if (r == 0)
        r = bench_wake_start(&w, producers, c->nwake, wake_send, NULL, wake_item, NULL);
    uint64_t t0 = bench_ns(), t1 = t0;
    if (r == 0) {
        bench_wake_go(w);
        uv_run(&loop, UV_RUN_DEFAULT);
        t1 = bench_ns();
        bench_wake_join(w);
    }
    loop_done(&loop);
    bench_q_free(wq);
    if (r < 0)
        return r;
    if (wcount != wtarget)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

static char version[32];

static struct bench_impl impl = {
    .abi = BENCH_ABI,
    .name = "raw-libuv",
    .pipes = r_pipes,
    .timers = r_timers,
    .churn = r_churn,
    .chain = r_chain,
    .fanout = r_fanout,
    .wakeup = r_wakeup,
};

BENCH_EXPORT const struct bench_impl *aloop_bench_module(void);
const struct bench_impl *aloop_bench_module(void)
{
    snprintf(version, sizeof version, "libuv %s", uv_version_string());
    impl.version = version;
    return &impl;
}
