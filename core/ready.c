/* ready.c -- the ready queue: one FIFO ring per priority level.
 *
 * Entries are (slot index, tok).  Cancelling or moving a queued slot bumps its
 * tok, so its old entry is skipped when reached: O(1) cancel without a doubly
 * linked list.  Only entries queued before the drain starts run in it
 * (asyncio's rule): the drain counts each level first. */
#include <stdlib.h>

#include "loop.h"

int aloop__ring_grow(struct aloop__ring *r)
{
    uint32_t cap = r->cap ? r->cap * 2 : 64;
    if (cap == 0)
        return -ENOMEM;
    struct aloop__entry *e = malloc((size_t)cap * sizeof *e);
    if (!e)
        return -ENOMEM;
    /* head and tail run freely; keep each entry at its index mod cap */
    for (uint32_t i = r->head; i != r->tail; i++)
        e[i & (cap - 1)] = r->e[i & r->mask];
    free(r->e);
    r->e = e;
    r->mask = cap - 1;
    r->cap = cap;
    return 0;
}

void aloop__ready_fini(struct aloop *loop)
{
    for (int l = 0; l < ALOOP__NPRIO; l++) {
        free(loop->ready[l].e);
        loop->ready[l] = (struct aloop__ring){0};
    }
    loop->nready = 0;
}

/* Call cb in the context it was scheduled in. */
static void call_in(aloop_t *loop, aloop_cb cb, void *arg, void *ctx)
{
    if (likely(ctx == NULL)) {
        cb(loop, arg);
        return;
    }
    const struct aloop__ctx_ops *ops = atomic_load_explicit(&aloop__ctx, memory_order_relaxed);
    void *prev = ops->enter(ctx);
    cb(loop, arg);
    ops->leave(prev);
}

static void run_one(struct aloop *loop, uint32_t idx, struct aloop__call *c)
{
    aloop_cb cb = c->cb;
    void *arg = c->arg;

    switch (c->kind) {
    case K_CALL:
    case K_TIMER: {
        void *ctx = c->ctx;     /* the slot is freed first: keep the reference */
        c->ctx = NULL;
        aloop__slot_free(loop, idx);
        call_in(loop, cb, arg, ctx);
        if (unlikely(ctx != NULL))
            atomic_load_explicit(&aloop__ctx, memory_order_relaxed)->release(ctx);
        return;
    }
    case K_EVERY: {
        /* re-arm before the call, so the callback may cancel its own id */
        uint64_t now = aloop__now(loop);
        uint64_t when = c->when + c->interval;
        if (when <= now || when < c->when)
            when = now + c->interval;
        c->state = S_IDLE;
        void *ctx = c->ctx;
        const struct aloop__ctx_ops *ops = atomic_load_explicit(&aloop__ctx, memory_order_relaxed);
        if (unlikely(ctx != NULL))  /* the callback may cancel its own id */
            ops->retain(ctx);
        if (aloop__heap_insert(loop, idx, when) < 0)
            aloop__slot_free(loop, idx);    /* cannot happen: its heap place was just freed */
        call_in(loop, cb, arg, ctx);
        if (unlikely(ctx != NULL))
            ops->release(ctx);
        return;
    }
    case K_READ:
    case K_WRITE:
        c->state = S_IDLE;
        aloop__io_run(loop, c);
        return;
    case K_SIGNAL:
        c->state = S_IDLE;
        cb(loop, arg);      /* signals and I/O run in the base context */
        return;
    }
}

void aloop__ready_run(struct aloop *loop)
{
    uint32_t n[ALOOP__NPRIO];
    for (int l = 0; l < ALOOP__NPRIO; l++)
        n[l] = loop->ready[l].tail - loop->ready[l].head;

    for (int l = ALOOP__NPRIO - 1; l >= 0; l--) {
        struct aloop__ring *r = &loop->ready[l];
        for (uint32_t k = n[l]; k; k--) {
            struct aloop__entry e = r->e[r->head++ & r->mask];
            struct aloop__call *c = aloop__slot(loop, e.idx);
            if (c->tok != e.tok)
                continue;       /* cancelled or moved */
            loop->nready--;
            run_one(loop, e.idx, c);
        }
    }
}
