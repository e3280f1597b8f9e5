/* raw-event.c -- the workloads written directly against libevent (module
 * aloop-bench-event.so, linked against libevent_core only: see bench.h).
 *
 *   pipes     one struct event per pair (user memory), event_assign with
 *             EV_READ | EV_PERSIST + event_add, as libevent's own bench.c;
 *             event_base_loopbreak from the callback that ends the round
 *   timers    one struct event per timer, evtimer_assign + evtimer_add;
 *             churn: evtimer_del + evtimer_add
 *   callsoon  event_active: the chain re-activates the same event from its
 *             callback; the fan-out activates nfan events
 *   wakeup    an eventfd with a persistent read event + a mutex-protected
 *             queue (libevent_core has no thread-safe activation without
 *             libevent_pthreads) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "bench.h"

/* ---- pipes ---------------------------------------------------------------- */

static const struct bench_cfg *pcfg;
static struct event_base *pbase;
static struct event *pev;

static void pipe_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    if (bench_pipes_read((int)(intptr_t)arg))
        event_base_loopbreak(pbase);
}

static int p_open(void *ctx)
{
    (void)ctx;
    pev = calloc((size_t)pcfg->npipes, sizeof *pev);
    if (!pev)
        return -ENOMEM;
    pbase = event_base_new();
    if (!pbase) {
        free(pev);
        return -ENOSYS;
    }
    return 0;
}

static int p_add(void *ctx, int i, int fd)
{
    (void)ctx;
    if (event_assign(&pev[i], pbase, fd, EV_READ | EV_PERSIST, pipe_cb, (void *)(intptr_t)i) < 0 ||
        event_add(&pev[i], NULL) < 0)
        return -EIO;
    return 0;
}

static int p_del(void *ctx, int i, int fd)
{
    (void)ctx;
    (void)fd;
    return event_del(&pev[i]) < 0 ? -EIO : 0;
}

static int p_nowait(void *ctx)
{
    (void)ctx;
    return event_base_loop(pbase, EVLOOP_NONBLOCK) < 0 ? -EIO : 0;
}

static int p_run(void *ctx)
{
    (void)ctx;
    return event_base_loop(pbase, 0) < 0 ? -EIO : 0;
}

static void p_close(void *ctx)
{
    (void)ctx;
    event_base_free(pbase);
    free(pev);
}

static const struct bench_pipes_ops pipes_ops = { p_open, p_add, p_del, p_nowait, p_run, p_close };

static int r_pipes(void *ctx, const struct bench_cfg *c, double *out)
{
    pcfg = c;
    return bench_pipes_drive(c, &pipes_ops, ctx, out);
}

/* ---- timers --------------------------------------------------------------- */

static uint32_t tcount;

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    tcount++;
}

static struct timeval tv_of(uint32_t us)
{
    struct timeval tv = { (time_t)(us / 1000000u), (suseconds_t)(us % 1000000u) };
    return tv;
}

static int r_timers(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    struct event *t = malloc((size_t)c->ntimers * sizeof *t);
    if (!t)
        return -ENOMEM;
    memset(t, 0, (size_t)c->ntimers * sizeof *t);
    struct event_base *base = event_base_new();
    if (!base) {
        free(t);
        return -ENOSYS;
    }
    int r = 0;
    for (uint32_t i = 0; i < c->ntimers; i++) {                 /* warm-up */
        struct timeval tv = tv_of(c->delay_us[i]);
        evtimer_assign(&t[i], base, timer_cb, NULL);
        if (evtimer_add(&t[i], &tv) < 0)
            r = -EIO;
    }
    for (uint32_t i = 0; i < c->ntimers; i++)
        evtimer_del(&t[i]);
    tcount = 0;
    uint64_t t0 = bench_clock(c);
    for (uint32_t i = 0; i < c->ntimers; i++) {
        struct timeval tv = tv_of(c->delay_us[i]);
        evtimer_assign(&t[i], base, timer_cb, NULL);
        if (evtimer_add(&t[i], &tv) < 0)
            r = -EIO;
    }
    uint64_t t1 = bench_clock(c), w1 = bench_ns(), c1 = bench_cpu_ns();
    if (r == 0 && event_base_loop(base, 0) < 0)
        r = -EIO;
    uint64_t t2 = bench_ns(), c2 = bench_cpu_ns();
    event_base_free(base);
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
    struct event *t = calloc(w, sizeof *t);
    if (!t)
        return -ENOMEM;
    struct event_base *base = event_base_new();
    if (!base) {
        free(t);
        return -ENOSYS;
    }
    for (uint32_t k = 0; k < w; k++)
        evtimer_assign(&t[k], base, timer_cb, NULL);
    int r = 0;
    uint64_t t0 = bench_clock(c);
    for (uint32_t i = 0, k = 0, d = 0; i < c->nchurn; i++) {
        struct timeval tv = tv_of(c->delay_us[d]);
        evtimer_del(&t[k]);
        if (evtimer_add(&t[k], &tv) < 0)
            r = -EIO;
        if (++k == w)
            k = 0;
        if (++d == c->ntimers)
            d = 0;
    }
    for (uint32_t k = 0; k < w; k++)
        evtimer_del(&t[k]);
    uint64_t t1 = bench_clock(c);
    event_base_free(base);
    free(t);
    if (r < 0)
        return r;
    out[0] = bench_sec(t0, t1);
    return 0;
}

/* ---- callsoon: event_active ---------------------------------------------- */

static uint64_t ccount, ctarget;

static void chain_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    if (++ccount < ctarget)
        event_active(arg, what, 1);
}

static int r_chain(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    struct event_base *base = event_base_new();
    if (!base)
        return -ENOSYS;
    struct event ev;
    ccount = 0;
    ctarget = c->nchain;
    int r = 0;
    uint64_t t0 = bench_clock(c);
    event_assign(&ev, base, -1, 0, chain_cb, &ev);
    event_active(&ev, EV_TIMEOUT, 1);
    if (event_base_loop(base, 0) < 0)
        r = -EIO;
    uint64_t t1 = bench_clock(c);
    event_base_free(base);
    if (r < 0)
        return r;
    if (ccount != ctarget)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

static void fan_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    ccount++;
}

static int r_fanout(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    struct event *ev = malloc((size_t)c->nfan * sizeof *ev);
    if (!ev)
        return -ENOMEM;
    memset(ev, 0, (size_t)c->nfan * sizeof *ev);
    struct event_base *base = event_base_new();
    if (!base) {
        free(ev);
        return -ENOSYS;
    }
    int r = 0;
    uint64_t t0 = 0, t1 = 0;
    for (int pass = 0; pass < 2 && r == 0; pass++) {     /* 0: warm-up, untimed */
        ccount = 0;
        t0 = bench_clock(c);
        for (uint32_t i = 0; i < c->nfan; i++) {
            event_assign(&ev[i], base, -1, 0, fan_cb, NULL);
            event_active(&ev[i], EV_TIMEOUT, 1);
        }
        if (event_base_loop(base, 0) < 0)
            r = -EIO;
        t1 = bench_clock(c);
    }
    event_base_free(base);
    free(ev);
    if (r < 0)
        return r;
    if (ccount != c->nfan)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

/* ---- wakeup: eventfd + queue --------------------------------------------- */

static struct event_base *wbase;
static struct bench_q *wq;
static int wfd = -1;
static uint32_t wcount, wtarget;

static void wake_item(void *arg)
{
    (void)arg;
    wcount++;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
        return;
    bench_q_drain(wq);
    if (wcount == wtarget)
        event_base_loopbreak(wbase);
}

static int wake_send(void *ctx, bench_item_cb cb, void *arg)
{
    (void)ctx;
    int r = bench_q_push(wq, cb, arg);
    if (r == 1) {
        uint64_t one = 1;
        while (write(wfd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
    return r < 0 ? r : 0;
}

static int r_wakeup(void *ctx, const struct bench_cfg *c, int producers, double *out)
{
    (void)ctx;
    int r = bench_q_new(&wq);
    if (r < 0)
        return r;
    wbase = event_base_new();
    wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct event ev;
    if (!wbase || wfd < 0)
        r = -ENOSYS;
    if (r == 0) {
        event_assign(&ev, wbase, wfd, EV_READ | EV_PERSIST, wake_cb, NULL);
        if (event_add(&ev, NULL) < 0)
            r = -EIO;
    }
    wcount = 0;
    wtarget = c->nwake;
    struct bench_wake *w;
    if (r == 0)
        r = bench_wake_start(&w, producers, c->nwake, wake_send, NULL, wake_item, NULL);
    uint64_t t0 = bench_ns(), t1 = t0;
    if (r == 0) {
        bench_wake_go(w);
        if (event_base_loop(wbase, 0) < 0)
            r = -EIO;
        t1 = bench_ns();
        bench_wake_join(w);
        event_del(&ev);
    }
    if (wbase)
        event_base_free(wbase);
    if (wfd >= 0)
        close(wfd);
    wfd = -1;
    bench_q_free(wq);
    if (r < 0)
        return r;
    if (wcount != wtarget)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

static char version[48];

static struct bench_impl impl = {
    .abi = BENCH_ABI,
    .name = "raw-libevent",
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
    snprintf(version, sizeof version, "libevent %s", event_get_version());
    impl.version = version;
    return &impl;
}
