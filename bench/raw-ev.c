/* raw-ev.c -- the workloads written directly against libev (module
 * aloop-bench-ev.so, linked against libev only: see bench.h).
 *
 *   pipes     one ev_io per pair (user memory), ev_io_init + ev_io_start;
 *             ev_break from the callback that ends the round
 *   timers    one ev_timer per timer, ev_timer_init + ev_timer_start;
 *             churn: ev_timer_stop + ev_timer_set + ev_timer_start
 *   callsoon  ev_feed_event: the chain feeds the same (unstarted) watcher
 *             again from its callback; the fan-out feeds nfan watchers
 *   wakeup    ev_async + a mutex-protected queue (ev_async coalesces) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "bench.h"

static struct ev_loop *new_loop(void)
{
    return ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
}

/* ---- pipes ---------------------------------------------------------------- */

static const struct bench_cfg *pcfg;
static struct ev_loop *ploop;
static ev_io *pw;

static void pipe_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    if (bench_pipes_read((int)(intptr_t)w->data))
        ev_break(loop, EVBREAK_ONE);
}

static int p_open(void *ctx)
{
    (void)ctx;
    pw = calloc((size_t)pcfg->npipes, sizeof *pw);
    if (!pw)
        return -ENOMEM;
    ploop = new_loop();
    if (!ploop) {
        free(pw);
        return -ENOSYS;
    }
    return 0;
}

static int p_add(void *ctx, int i, int fd)
{
    (void)ctx;
    ev_io_init(&pw[i], pipe_cb, fd, EV_READ);
    pw[i].data = (void *)(intptr_t)i;
    ev_io_start(ploop, &pw[i]);
    return 0;
}

static int p_del(void *ctx, int i, int fd)
{
    (void)ctx;
    (void)fd;
    ev_io_stop(ploop, &pw[i]);
    return 0;
}

static int p_nowait(void *ctx)
{
    (void)ctx;
    ev_run(ploop, EVRUN_NOWAIT);
    return 0;
}

static int p_run(void *ctx)
{
    (void)ctx;
    ev_run(ploop, 0);
    return 0;
}

static void p_close(void *ctx)
{
    (void)ctx;
    ev_loop_destroy(ploop);
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

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    tcount++;
}

static int r_timers(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    ev_timer *t = malloc((size_t)c->ntimers * sizeof *t);
    if (!t)
        return -ENOMEM;
    memset(t, 0, (size_t)c->ntimers * sizeof *t);
    struct ev_loop *loop = new_loop();
    if (!loop) {
        free(t);
        return -ENOSYS;
    }
    for (uint32_t i = 0; i < c->ntimers; i++) {                 /* warm-up */
        ev_timer_init(&t[i], timer_cb, (ev_tstamp)c->delay_us[i] * 1e-6, 0.);
        ev_timer_start(loop, &t[i]);
    }
    for (uint32_t i = 0; i < c->ntimers; i++)
        ev_timer_stop(loop, &t[i]);
    tcount = 0;
    ev_now_update(loop);
    uint64_t t0 = bench_clock(c);
    for (uint32_t i = 0; i < c->ntimers; i++) {
        ev_timer_init(&t[i], timer_cb, (ev_tstamp)c->delay_us[i] * 1e-6, 0.);
        ev_timer_start(loop, &t[i]);
    }
    uint64_t t1 = bench_clock(c), w1 = bench_ns(), c1 = bench_cpu_ns();
    ev_run(loop, 0);
    uint64_t t2 = bench_ns(), c2 = bench_cpu_ns();
    ev_loop_destroy(loop);
    free(t);
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
    ev_timer *t = calloc(w, sizeof *t);
    if (!t)
        return -ENOMEM;
    struct ev_loop *loop = new_loop();
    if (!loop) {
        free(t);
        return -ENOSYS;
    }
    for (uint32_t k = 0; k < w; k++)
        ev_timer_init(&t[k], timer_cb, 0., 0.);
    ev_now_update(loop);
    uint64_t t0 = bench_clock(c);
    for (uint32_t i = 0, k = 0, d = 0; i < c->nchurn; i++) {
        ev_timer_stop(loop, &t[k]);
        ev_timer_set(&t[k], (ev_tstamp)c->delay_us[d] * 1e-6, 0.);
        ev_timer_start(loop, &t[k]);
        if (++k == w)
            k = 0;
        if (++d == c->ntimers)
            d = 0;
    }
    for (uint32_t k = 0; k < w; k++)
        ev_timer_stop(loop, &t[k]);
    uint64_t t1 = bench_clock(c);
    ev_loop_destroy(loop);
    free(t);
    out[0] = bench_sec(t0, t1);
    return 0;
}

/* ---- callsoon: ev_feed_event --------------------------------------------- */

static uint64_t ccount, ctarget;

static void chain_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    if (++ccount < ctarget)
        ev_feed_event(loop, w, revents);
}

static int r_chain(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    struct ev_loop *loop = new_loop();
    if (!loop)
        return -ENOSYS;
    ev_idle w;
    ccount = 0;
    ctarget = c->nchain;
    uint64_t t0 = bench_clock(c);
    ev_init(&w, chain_cb);
    ev_feed_event(loop, &w, EV_CUSTOM);
    ev_run(loop, 0);
    uint64_t t1 = bench_clock(c);
    ev_loop_destroy(loop);
    if (ccount != ctarget)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

static void fan_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    ccount++;
}

static int r_fanout(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    ev_idle *w = malloc((size_t)c->nfan * sizeof *w);
    if (!w)
        return -ENOMEM;
    memset(w, 0, (size_t)c->nfan * sizeof *w);
    struct ev_loop *loop = new_loop();
    if (!loop) {
        free(w);
        return -ENOSYS;
    }
    uint64_t t0 = 0, t1 = 0;
    for (int pass = 0; pass < 2; pass++) {      /* 0: warm-up, untimed */
        ccount = 0;
        t0 = bench_clock(c);
        for (uint32_t i = 0; i < c->nfan; i++) {
            ev_init(&w[i], fan_cb);
            ev_feed_event(loop, &w[i], EV_CUSTOM);
        }
        ev_run(loop, 0);
        t1 = bench_clock(c);
    }
    ev_loop_destroy(loop);
    free(w);
    if (ccount != c->nfan)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

/* ---- wakeup: ev_async + queue -------------------------------------------- */

static struct ev_loop *wloop;
static ev_async wasync;
static struct bench_q *wq;
static uint32_t wcount, wtarget;

static void wake_item(void *arg)
{
    (void)arg;
    wcount++;
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w;
    (void)revents;
    bench_q_drain(wq);
    if (wcount == wtarget)
        ev_break(loop, EVBREAK_ONE);
}

static int wake_send(void *ctx, bench_item_cb cb, void *arg)
{
    (void)ctx;
    int r = bench_q_push(wq, cb, arg);
    if (r == 1)
        ev_async_send(wloop, &wasync);
    return r < 0 ? r : 0;
}

static int r_wakeup(void *ctx, const struct bench_cfg *c, int producers, double *out)
{
    (void)ctx;
    int r = bench_q_new(&wq);
    if (r < 0)
        return r;
    wloop = new_loop();
    if (!wloop) {
        bench_q_free(wq);
        return -ENOSYS;
    }
    ev_async_init(&wasync, async_cb);
    ev_async_start(wloop, &wasync);
    wcount = 0;
    wtarget = c->nwake;
    struct bench_wake *w;
    r = bench_wake_start(&w, producers, c->nwake, wake_send, NULL, wake_item, NULL);
    uint64_t t0 = bench_ns(), t1 = t0;
    if (r == 0) {
        bench_wake_go(w);
        ev_run(wloop, 0);
        t1 = bench_ns();
        bench_wake_join(w);
    }
    ev_async_stop(wloop, &wasync);
    ev_loop_destroy(wloop);
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
    .name = "raw-libev",
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
    snprintf(version, sizeof version, "libev %d.%d", ev_version_major(), ev_version_minor());
    impl.version = version;
    return &impl;
}
