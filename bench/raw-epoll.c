/* raw-epoll.c -- the workloads on a hand-written epoll loop: what a
 * programmer would write without a library.  A watcher is a struct the user
 * owns, named by epoll's data.ptr; timers are a binary min-heap of
 * (deadline, timer) with the timer's heap position kept for O(log n)
 * cancel; the clock is read once per iteration; epoll_wait blocks until the
 * earliest deadline (rounded up to a millisecond); the thread-safe queue is
 * bench_q plus an eventfd.  No deferred-call queue: callsoon is n/a here
 * (the plain loop is the limit to compare with). */
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench.h"
#include "bench-impl.h"

#define MAXEV 1024

struct watcher {
    void (*cb)(struct watcher *w);
    int i;
};

static struct {
    int ep;
    int stop;
    struct watcher *w;
    int nw;
    struct epoll_event ev[MAXEV];
} E = { .ep = -1 };

static void dispatch(int n)
{
    for (int k = 0; k < n; k++) {
        struct watcher *w = E.ev[k].data.ptr;
        w->cb(w);
    }
}

static int poll_once(int timeout_ms)
{
    int n = epoll_wait(E.ep, E.ev, MAXEV, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    dispatch(n);
    return 0;
}

/* ---- pipes ---------------------------------------------------------------- */

static const struct bench_cfg *pcfg;

static void pipe_cb(struct watcher *w)
{
    if (bench_pipes_read(w->i))
        E.stop = 1;
}

static int p_open(void *ctx)
{
    (void)ctx;
    E.ep = epoll_create1(EPOLL_CLOEXEC);
    if (E.ep < 0)
        return -errno;
    E.w = calloc((size_t)pcfg->npipes, sizeof *E.w);
    if (!E.w) {
        close(E.ep);
        return -ENOMEM;
    }
    return 0;
}

static int p_add(void *ctx, int i, int fd)
{
    (void)ctx;
    E.w[i].cb = pipe_cb;
    E.w[i].i = i;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &E.w[i] };
    return epoll_ctl(E.ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int p_del(void *ctx, int i, int fd)
{
    (void)ctx;
    (void)i;
    return epoll_ctl(E.ep, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

static int p_nowait(void *ctx)
{
    (void)ctx;
    return poll_once(0);
}

static int p_run(void *ctx)
{
    (void)ctx;
    int r = 0;
    for (E.stop = 0; !E.stop && r == 0;)
        r = poll_once(-1);
    return r;
}

static void p_close(void *ctx)
{
    (void)ctx;
    close(E.ep);
    E.ep = -1;
    free(E.w);
    E.w = NULL;
}

static const struct bench_pipes_ops pipes_ops = { p_open, p_add, p_del, p_nowait, p_run, p_close };

static int e_pipes(void *ctx, const struct bench_cfg *c, double *out)
{
    pcfg = c;
    return bench_pipes_drive(c, &pipes_ops, ctx, out);
}

/* ---- timers: a binary heap ---------------------------------------------- */

struct timer {
    void (*cb)(struct timer *t);
    uint32_t pos;               /* in the heap; UINT32_MAX when not armed */
};
struct hnode { uint64_t when; struct timer *t; };

static struct {
    struct hnode *h;
    uint32_t len, cap;
} H;

static inline void h_set(uint32_t i, struct hnode n)
{
    H.h[i] = n;
    n.t->pos = i;
}

static void h_up(uint32_t i, struct hnode n)
{
    while (i) {
        uint32_t p = (i - 1) / 2;
        if (H.h[p].when <= n.when)
            break;
        h_set(i, H.h[p]);
        i = p;
    }
    h_set(i, n);
}

static void h_down(uint32_t i, struct hnode n)
{
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= H.len)
            break;
        if (c + 1 < H.len && H.h[c + 1].when < H.h[c].when)
            c++;
        if (n.when <= H.h[c].when)
            break;
        h_set(i, H.h[c]);
        i = c;
    }
    h_set(i, n);
}

static int timer_start(struct timer *t, uint64_t when)
{
    if (H.len == H.cap) {
        uint32_t cap = H.cap ? 2 * H.cap : 64;
        struct hnode *h = realloc(H.h, (size_t)cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        H.h = h;
        H.cap = cap;
    }
    h_up(H.len++, (struct hnode){ when, t });
    return 0;
}

static void timer_stop(struct timer *t)
{
    uint32_t i = t->pos;
    if (i == UINT32_MAX)
        return;
    t->pos = UINT32_MAX;
    struct hnode last = H.h[--H.len];
    if (i == H.len)
        return;
    if (i && H.h[(i - 1) / 2].when > last.when)
        h_up(i, last);
    else
        h_down(i, last);
}

static void heap_free(void)
{
    free(H.h);
    memset(&H, 0, sizeof H);
}

/* run timers until none is left */
static int timers_run(void)
{
    while (H.len) {
        uint64_t now = bench_ns();
        while (H.len && H.h[0].when <= now) {
            struct timer *t = H.h[0].t;
            timer_stop(t);
            t->cb(t);
        }
        if (!H.len)
            break;
        uint64_t d = H.h[0].when - now;
        int r = poll_once((int)((d + 999999) / 1000000));
        if (r < 0)
            return r;
    }
    return 0;
}

static uint32_t tcount;

static void timer_cb(struct timer *t)
{
    (void)t;
    tcount++;
}

static int e_timers(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    struct timer *t = malloc((size_t)c->ntimers * sizeof *t);
    if (!t)
        return -ENOMEM;
    memset(t, 0, (size_t)c->ntimers * sizeof *t);
    E.ep = epoll_create1(EPOLL_CLOEXEC);
    if (E.ep < 0) {
        free(t);
        return -errno;
    }
    int r = 0;
    uint64_t now = bench_ns();
    for (uint32_t i = 0; i < c->ntimers && r == 0; i++)      /* warm-up */
        r = timer_start(&t[i], now + (uint64_t)c->delay_us[i] * 1000u);
    for (uint32_t i = 0; i < c->ntimers && r == 0; i++)
        timer_stop(&t[i]);
    tcount = 0;
    uint64_t t0 = bench_clock(c);
    now = bench_ns();
    for (uint32_t i = 0; i < c->ntimers && r == 0; i++) {
        t[i].cb = timer_cb;
        r = timer_start(&t[i], now + (uint64_t)c->delay_us[i] * 1000u);
    }
    uint64_t t1 = bench_clock(c), w1 = bench_ns(), c1 = bench_cpu_ns();
    if (r == 0)
        r = timers_run();
    uint64_t t2 = bench_ns(), c2 = bench_cpu_ns();
    close(E.ep);
    E.ep = -1;
    heap_free();
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

static int e_churn(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    uint32_t w = c->churn_window ? c->churn_window : 1;
    struct timer *t = calloc(w, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (uint32_t k = 0; k < w; k++) {
        t[k].cb = timer_cb;
        t[k].pos = UINT32_MAX;
    }
    int r = 0;
    uint64_t t0 = bench_clock(c), now = bench_ns();
    for (uint32_t i = 0, k = 0, d = 0; i < c->nchurn && r == 0; i++) {
        timer_stop(&t[k]);
        r = timer_start(&t[k], now + (uint64_t)c->delay_us[d] * 1000u);
        if (++k == w)
            k = 0;
        if (++d == c->ntimers)
            d = 0;
    }
    for (uint32_t k = 0; k < w; k++)
        timer_stop(&t[k]);
    uint64_t t1 = bench_clock(c);
    heap_free();
    free(t);
    if (r < 0)
        return r;
    out[0] = bench_sec(t0, t1);
    return 0;
}

/* ---- wakeup: bench_q + eventfd ------------------------------------------- */

static struct bench_q *wq;
static int wfd = -1;
static uint32_t wcount, wtarget;

static void wake_item(void *arg)
{
    (void)arg;
    wcount++;
}

static void wake_cb(struct watcher *w)
{
    (void)w;
    uint64_t v;
    if (read(wfd, &v, sizeof v) < 0 && errno != EAGAIN)
        return;
    bench_q_drain(wq);
    if (wcount == wtarget)
        E.stop = 1;
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

static int e_wakeup(void *ctx, const struct bench_cfg *c, int producers, double *out)
{
    (void)ctx;
    int r = bench_q_new(&wq);
    if (r < 0)
        return r;
    E.ep = epoll_create1(EPOLL_CLOEXEC);
    wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    static struct watcher ww = { wake_cb, 0 };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ww };
    if (E.ep < 0 || wfd < 0 || epoll_ctl(E.ep, EPOLL_CTL_ADD, wfd, &ev) < 0)
        r = -errno;
    struct bench_wake *w = NULL;
    wcount = 0;
    wtarget = c->nwake;
    if (r == 0)
        r = bench_wake_start(&w, producers, c->nwake, wake_send, NULL, wake_item, NULL);
    uint64_t t0 = bench_ns(), t1 = t0;
    if (r == 0) {
        bench_wake_go(w);
        for (E.stop = 0; !E.stop && r == 0;)
            r = poll_once(-1);
        t1 = bench_ns();
        bench_wake_join(w);
    }
    if (E.ep >= 0)
        close(E.ep);
    if (wfd >= 0)
        close(wfd);
    E.ep = wfd = -1;
    bench_q_free(wq);
    if (r < 0)
        return r;
    if (wcount != wtarget)
        return -EIO;
    out[0] = bench_sec(t0, t1);
    return 0;
}

void bench_epoll_impl(struct bench_impl *impl)
{
    memset(impl, 0, sizeof *impl);
    impl->abi = BENCH_ABI;
    impl->name = "raw-epoll";
    impl->version = NULL;
    impl->pipes = e_pipes;
    impl->timers = e_timers;
    impl->churn = e_churn;
    impl->wakeup = e_wakeup;
}
