/* bench-aloop.c -- the workloads on aloop (ctx: the backend's name), and the
 * plain array-of-function-pointers loop (the physical limit of callsoon). */
#include <stdlib.h>
#include <string.h>

#include <aloop.h>

#include "bench.h"
#include "bench-impl.h"

/* ---- pipes ---------------------------------------------------------------- */

static aloop_t *ploop;

static void pipe_cb(aloop_t *loop, int fd, unsigned events, void *arg)
{
    (void)fd;
    (void)events;
    if (bench_pipes_read((int)(intptr_t)arg))
        aloop_stop(loop);
}

static int p_open(void *ctx) { return aloop_new(&ploop, ctx); }
static int p_add(void *ctx, int i, int fd)
{
    (void)ctx;
    return aloop_add_reader(ploop, fd, pipe_cb, (void *)(intptr_t)i);
}
static int p_del(void *ctx, int i, int fd)
{
    (void)ctx;
    (void)i;
    return aloop_remove_reader(ploop, fd);
}
static int p_nowait(void *ctx)
{
    (void)ctx;
    int r = aloop_run(ploop, ALOOP_RUN_NOWAIT);
    return r < 0 ? r : 0;
}
static int p_run(void *ctx)
{
    (void)ctx;
    int r = aloop_run(ploop, ALOOP_RUN_FOREVER);
    return r < 0 ? r : 0;
}
static void p_close(void *ctx)
{
    (void)ctx;
    aloop_close(ploop);
    ploop = NULL;
}

static const struct bench_pipes_ops pipes_ops = { p_open, p_add, p_del, p_nowait, p_run, p_close };

static int a_pipes(void *ctx, const struct bench_cfg *c, double *out)
{
    return bench_pipes_drive(c, &pipes_ops, ctx, out);
}

/* ---- timers --------------------------------------------------------------- */

static uint32_t tcount;

static void timer_cb(aloop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    tcount++;
}

static int a_timers(void *ctx, const struct bench_cfg *c, double *out)
{
    aloop_t *loop;
    int r = aloop_new(&loop, ctx);
    if (r < 0)
        return r;
    /* warm-up (untimed): schedule and cancel them all, so the timed pass
     * measures the steady state, not first-touch page faults */
    aloop_id_t *ids = malloc((size_t)c->ntimers * sizeof *ids);
    if (!ids) {
        aloop_close(loop);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < c->ntimers && r == 0; i++)
        if ((ids[i] = aloop_call_later(loop, (uint64_t)c->delay_us[i] * ALOOP_US, timer_cb, NULL)) < 0)
            r = (int)ids[i];
    for (uint32_t i = 0; i < c->ntimers && r == 0; i++)
        r = aloop_cancel(loop, ids[i]);
    free(ids);
    tcount = 0;
    aloop_update_time(loop);
    uint64_t t0 = bench_clock(c);
    for (uint32_t i = 0; i < c->ntimers && r == 0; i++) {
        aloop_id_t id = aloop_call_later(loop, (uint64_t)c->delay_us[i] * ALOOP_US, timer_cb, NULL);
        if (id < 0)
            r = (int)id;
    }
    uint64_t t1 = bench_clock(c), w1 = bench_ns(), c1 = bench_cpu_ns();
    if (r < 0) {
        aloop_close(loop);
        return r;
    }
    r = aloop_run(loop, ALOOP_RUN_DEFAULT);
    uint64_t t2 = bench_ns(), c2 = bench_cpu_ns();
    aloop_close(loop);
    if (r < 0)
        return r;
    if (tcount != c->ntimers)
        return -EIO;
    out[TIMERS_SCHED] = bench_sec(t0, t1);
    out[TIMERS_FIRE] = bench_sec(w1, t2);
    out[TIMERS_FIRE_CPU] = bench_sec(c1, c2);
    return 0;
}

static int a_churn(void *ctx, const struct bench_cfg *c, double *out)
{
    aloop_t *loop;
    int r = aloop_new(&loop, ctx);
    if (r < 0)
        return r;
    uint32_t w = c->churn_window ? c->churn_window : 1;
    aloop_id_t *ids = calloc(w, sizeof *ids);
    if (!ids) {
        aloop_close(loop);
        return -ENOMEM;
    }
    aloop_update_time(loop);
    uint64_t t0 = bench_clock(c);
    for (uint32_t i = 0, k = 0, d = 0; i < c->nchurn; i++) {
        if (i >= w && aloop_cancel(loop, ids[k]) < 0)
            r = -EIO;
        ids[k] = aloop_call_later(loop, (uint64_t)c->delay_us[d] * ALOOP_US, timer_cb, NULL);
        if (ids[k] < 0)
            r = (int)ids[k];
        if (++k == w)
            k = 0;
        if (++d == c->ntimers)
            d = 0;
    }
    uint32_t live = c->nchurn < w ? c->nchurn : w;
    for (uint32_t k = 0; k < live; k++)
        if (aloop_cancel(loop, ids[k]) < 0)
            r = -EIO;
    uint64_t t1 = bench_clock(c);
    free(ids);
    aloop_close(loop);
    if (r < 0)
        return r;
    out[0] = bench_sec(t0, t1);
    return 0;
}

/* ---- callsoon ------------------------------------------------------------- */

static uint64_t ccount, ctarget;

static void chain_cb(aloop_t *loop, void *arg)
{
    if (++ccount < ctarget)
        aloop_call_soon(loop, chain_cb, arg);
}

static int a_chain(void *ctx, const struct bench_cfg *c, double *out)
{
    aloop_t *loop;
    int r = aloop_new(&loop, ctx);
    if (r < 0)
        return r;
    ccount = 0;
    ctarget = c->nchain;
    uint64_t t0 = bench_clock(c);
    aloop_id_t id = aloop_call_soon(loop, chain_cb, NULL);
    r = id < 0 ? (int)id : aloop_run(loop, ALOOP_RUN_DEFAULT);
    uint64_t t1 = bench_clock(c);
    aloop_close(loop);
    if (r < 0)
        return r;
    if (ccount != ctarget)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

static void fan_cb(aloop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    ccount++;
}

static int a_fanout(void *ctx, const struct bench_cfg *c, double *out)
{
    aloop_t *loop;
    int r = aloop_new(&loop, ctx);
    if (r < 0)
        return r;
    uint64_t t0 = 0, t1 = 0;
    for (int pass = 0; pass < 2 && r == 0; pass++) {     /* 0: warm-up, untimed */
        ccount = 0;
        t0 = bench_clock(c);
        for (uint32_t i = 0; i < c->nfan && r == 0; i++) {
            aloop_id_t id = aloop_call_soon(loop, fan_cb, NULL);
            if (id < 0)
                r = (int)id;
        }
        if (r == 0)
            r = aloop_run(loop, ALOOP_RUN_DEFAULT);
        t1 = bench_clock(c);
    }
    aloop_close(loop);
    if (r < 0)
        return r;
    if (ccount != c->nfan)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

/* ---- wakeup --------------------------------------------------------------- */

static aloop_t *wloop;
static uint32_t wcount, wtarget;

static void wake_cb(aloop_t *loop, void *arg)
{
    (void)arg;
    if (++wcount == wtarget)
        aloop_stop(loop);
}

static int wake_send(void *ctx, bench_item_cb cb, void *arg)
{
    (void)ctx;
    (void)cb;
    return aloop_call_soon_threadsafe(wloop, wake_cb, arg);
}

static int a_wakeup(void *ctx, const struct bench_cfg *c, int producers, double *out)
{
    int r = aloop_new(&wloop, ctx);
    if (r < 0)
        return r;
    wcount = 0;
    wtarget = c->nwake;
    struct bench_wake *w;
    r = bench_wake_start(&w, producers, c->nwake, wake_send, NULL, NULL, NULL);
    if (r < 0) {
        aloop_close(wloop);
        return r;
    }
    uint64_t t0 = bench_ns();
    bench_wake_go(w);
    r = aloop_run(wloop, ALOOP_RUN_FOREVER);
    uint64_t t1 = bench_ns();
    bench_wake_join(w);
    aloop_close(wloop);
    if (r < 0)
        return r;
    if (wcount != wtarget)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

/* ---- switch (tasks) --------------------------------------------------------
 * The tasks layer's workload lives in bench/bench-task.c, which defines
 *     int aloop_bench_task_switch(const char *backend, const struct bench_cfg *, double *out);
 * Until it is linked in, the weak reference is NULL and switch is n/a. */
extern int aloop_bench_task_switch(const char *backend, const struct bench_cfg *c, double *out)
    __attribute__((weak));

static int a_switch(void *ctx, const struct bench_cfg *c, double *out)
{
    if (!aloop_bench_task_switch)
        return -ENOSYS;
    return aloop_bench_task_switch(ctx, c, out);
}

int bench_switch_available(void)
{
    return aloop_bench_task_switch != NULL;
}

void bench_aloop_impl(struct bench_impl *impl, const char *backend)
{
    memset(impl, 0, sizeof *impl);
    impl->abi = BENCH_ABI;
    impl->name = NULL;              /* the caller names it "aloop-<backend>" */
    impl->version = aloop_version();
    impl->ctx = (void *)backend;
    impl->pipes = a_pipes;
    impl->timers = a_timers;
    impl->churn = a_churn;
    impl->chain = a_chain;
    impl->fanout = a_fanout;
    impl->wakeup = a_wakeup;
    impl->swtch = a_switch;
}

/* ---- plain: a FIFO ring of (function, argument), nothing else ------------- */

struct pcall { void (*fn)(void *); void *arg; };
static struct {
    struct pcall *e;
    uint32_t mask, head, tail;
} ring;

static int ring_push(void (*fn)(void *), void *arg)
{
    if (ring.tail - ring.head == (ring.e ? ring.mask + 1 : 0)) {
        uint32_t cap = ring.e ? 2 * (ring.mask + 1) : 64;
        struct pcall *e = malloc((size_t)cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        for (uint32_t i = ring.head; i != ring.tail; i++)
            e[i & (cap - 1)] = ring.e[i & ring.mask];
        free(ring.e);
        ring.e = e;
        ring.mask = cap - 1;
    }
    ring.e[ring.tail++ & ring.mask] = (struct pcall){ fn, arg };
    return 0;
}

static void ring_run(void)
{
    while (ring.head != ring.tail) {
        struct pcall c = ring.e[ring.head++ & ring.mask];
        c.fn(c.arg);
    }
}

static void ring_free(void)
{
    free(ring.e);
    memset(&ring, 0, sizeof ring);
}

static BENCH_NOINLINE void plain_chain_cb(void *arg)
{
    if (++ccount < ctarget)
        ring_push(plain_chain_cb, arg);
}

static BENCH_NOINLINE void plain_fan_cb(void *arg)
{
    (void)arg;
    ccount++;
}

static int plain_chain(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    ccount = 0;
    ctarget = c->nchain;
    uint64_t t0 = bench_clock(c);
    int r = ring_push(plain_chain_cb, NULL);
    if (r == 0)
        ring_run();
    uint64_t t1 = bench_clock(c);
    ring_free();
    if (r < 0)
        return r;
    if (ccount != ctarget)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

static int plain_fanout(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    int r = 0;
    uint64_t t0 = 0, t1 = 0;
    for (int pass = 0; pass < 2 && r == 0; pass++) {     /* 0: warm-up, untimed */
        ccount = 0;
        t0 = bench_clock(c);
        for (uint32_t i = 0; i < c->nfan && r == 0; i++)
            r = ring_push(plain_fan_cb, NULL);
        if (r == 0)
            ring_run();
        t1 = bench_clock(c);
    }
    ring_free();
    if (r < 0)
        return r;
    if (ccount != c->nfan)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

void bench_plain_impl(struct bench_impl *impl)
{
    memset(impl, 0, sizeof *impl);
    impl->abi = BENCH_ABI;
    impl->name = "plain";
    impl->chain = plain_chain;
    impl->fanout = plain_fanout;
}
