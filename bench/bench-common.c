/* bench-common.c -- the pipes round driver, producer threads for the wakeup
 * workload, and the mutex-protected call queue the raw loops pair with their
 * wake-up primitive.  Compiled into aloop-bench and into every raw-library
 * module (each gets its own copy of the state below). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "bench.h"

/* ---- pipes ---------------------------------------------------------------- */

static struct {
    const struct bench_cfg *c;
    int count, fired, writes, failures;
} P;

int bench_pipes_read(int i)
{
    unsigned char ch;
    if (recv(P.c->fds[2 * i], &ch, 1, 0) == 1)
        P.count++;
    else
        P.failures++;
    if (P.writes > 0) {
        int w = i + 1;
        if (w >= P.c->npipes)
            w = 0;
        if (send(P.c->fds[2 * w + 1], "e", 1, MSG_NOSIGNAL) == 1)
            P.fired++;
        else
            P.failures++;
        P.writes--;
    }
    return P.count >= P.fired;
}

int bench_pipes_drive(const struct bench_cfg *c, const struct bench_pipes_ops *ops,
                      void *ctx, double *out)
{
    if (c->npipes < 1 || c->nactive < 1 || c->nactive > c->npipes || c->rounds < 1)
        return -EINVAL;
    P.c = c;
    int r = ops->open(ctx);
    if (r < 0)
        return r;
    uint64_t ev = 0, setup = 0;
    for (int round = -1; round < c->rounds && r == 0; round++) {
        int added = 0;
        uint64_t t0 = bench_clock(c);
        for (; added < c->npipes; added++)
            if ((r = ops->add(ctx, added, c->fds[2 * added])) < 0)
                break;
        if (r == 0)
            r = ops->nowait(ctx);
        uint64_t t1 = bench_clock(c);
        if (r == 0) {
            P.count = P.fired = P.failures = 0;
            P.writes = c->nwrites;
            for (int i = 0; i < c->nactive; i++) {
                if (send(c->fds[2 * bench_pipes_first(c, i) + 1], "e", 1, MSG_NOSIGNAL) == 1)
                    P.fired++;
                else
                    P.failures++;
            }
        }
        uint64_t t2 = bench_clock(c);
        if (r == 0)
            r = ops->run(ctx);
        uint64_t t3 = bench_clock(c);
        for (int i = 0; i < added; i++)
            ops->del(ctx, i, c->fds[2 * i]);
        ops->nowait(ctx);
        if (r == 0 && (P.failures || P.count != P.fired))
            r = -EIO;
        if (round >= 0) {
            ev += t3 - t2;
            setup += (t1 - t0) + (t3 - t2);
        }
    }
    ops->close(ctx);
    if (r < 0)
        return r;
    out[PIPES_EVENTS] = (double)ev * 1e-9 / c->rounds;
    out[PIPES_SETUP] = (double)setup * 1e-9 / c->rounds;
    return 0;
}

#define MAXPROD 16

struct bench_wake;
struct prod { struct bench_wake *w; int i; };

struct bench_wake {
    pthread_t th[MAXPROD];
    struct prod prod[MAXPROD];
    int n;
    uint32_t share[MAXPROD];
    atomic_int go;
    bench_send_fn send;
    void *ctx;
    bench_item_cb cb;
    void *arg;
};

static void *producer(void *p)
{
    struct prod *me = p;
    struct bench_wake *w = me->w;
    while (!atomic_load_explicit(&w->go, memory_order_acquire))
        sched_yield();
    for (uint32_t k = w->share[me->i]; k; k--)
        while (w->send(w->ctx, w->cb, w->arg) < 0)
            sched_yield();
    return NULL;
}

int bench_wake_start(struct bench_wake **out, int producers, uint32_t nwake,
                     bench_send_fn send, void *ctx, bench_item_cb cb, void *arg)
{
    if (producers < 1 || producers > MAXPROD)
        return -EINVAL;
    struct bench_wake *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->send = send;
    w->ctx = ctx;
    w->cb = cb;
    w->arg = arg;
    for (int i = 0; i < producers; i++)
        w->share[i] = nwake / (uint32_t)producers + ((uint32_t)i < nwake % (uint32_t)producers);
    for (int i = 0; i < producers; i++) {
        w->prod[i].w = w;
        w->prod[i].i = i;
        int r = pthread_create(&w->th[i], NULL, producer, &w->prod[i]);
        if (r) {
            atomic_store(&w->go, 1);
            for (int j = 0; j < i; j++)
                pthread_join(w->th[j], NULL);
            free(w);
            return -r;
        }
        w->n++;
    }
    *out = w;
    return 0;
}

void bench_wake_go(struct bench_wake *w)
{
    atomic_store_explicit(&w->go, 1, memory_order_release);
}

void bench_wake_join(struct bench_wake *w)
{
    for (int i = 0; i < w->n; i++)
        pthread_join(w->th[i], NULL);
    free(w);
}

/* ---- the queue ----------------------------------------------------------- */

struct item { bench_item_cb cb; void *arg; };

struct bench_q {
    pthread_mutex_t lock;
    struct item *v, *spare;
    uint32_t n, cap, spare_cap;
};

int bench_q_new(struct bench_q **out)
{
    struct bench_q *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    pthread_mutex_init(&q->lock, NULL);
    *out = q;
    return 0;
}

void bench_q_free(struct bench_q *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->lock);
    free(q->v);
    free(q->spare);
    free(q);
}

int bench_q_push(struct bench_q *q, bench_item_cb cb, void *arg)
{
    pthread_mutex_lock(&q->lock);
    if (q->n == q->cap) {
        uint32_t cap = q->cap ? 2 * q->cap : 1024;
        struct item *v = realloc(q->v, (size_t)cap * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&q->lock);
            return -ENOMEM;
        }
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n].cb = cb;
    q->v[q->n].arg = arg;
    int was_empty = q->n++ == 0;
    pthread_mutex_unlock(&q->lock);
    return was_empty;
}

uint32_t bench_q_drain(struct bench_q *q)
{
    pthread_mutex_lock(&q->lock);
    struct item *v = q->v;
    uint32_t n = q->n, cap = q->cap;
    q->v = q->spare;
    q->cap = q->spare_cap;
    q->n = 0;
    pthread_mutex_unlock(&q->lock);
    for (uint32_t i = 0; i < n; i++)
        v[i].cb(v[i].arg);
    q->spare = v;
    q->spare_cap = cap;
    return n;
}
