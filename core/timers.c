/* timers.c -- a 4-ary min-heap of timers on (deadline, then FIFO sequence).
 * Nodes carry their keys, so sifting touches the heap array only, plus one
 * store per move to keep each slot's heap position for O(log n) cancel. */
#include <stdlib.h>

#include "loop.h"

static inline int before(const struct aloop__hnode *a, const struct aloop__hnode *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static inline void place(struct aloop *loop, uint32_t i, struct aloop__hnode n)
{
    loop->timers.n[i] = n;
    aloop__slot(loop, n.idx)->heap = i;
}

static void sift_up(struct aloop *loop, uint32_t i, struct aloop__hnode n)
{
    struct aloop__hnode *h = loop->timers.n;
    while (i > 0) {
        uint32_t p = (i - 1) / 4;
        if (!before(&n, &h[p]))
            break;
        place(loop, i, h[p]);
        i = p;
    }
    place(loop, i, n);
}

static void sift_down(struct aloop *loop, uint32_t i, struct aloop__hnode n)
{
    struct aloop__hnode *h = loop->timers.n;
    uint32_t len = loop->timers.len;
    for (;;) {
        uint32_t c = 4 * i + 1, best = i;
        const struct aloop__hnode *bn = &n;
        uint32_t end = c + 4 < len ? c + 4 : len;
        for (; c < end; c++)
            if (before(&h[c], bn)) {
                best = c;
                bn = &h[c];
            }
        if (best == i)
            break;
        place(loop, i, h[best]);
        i = best;
    }
    place(loop, i, n);
}

int aloop__heap_insert(struct aloop *loop, uint32_t idx, uint64_t when)
{
    struct aloop__heap *h = &loop->timers;
    if (unlikely(h->len == h->cap)) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        struct aloop__hnode *n = realloc(h->n, (size_t)cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        h->n = n;
        h->cap = cap;
    }
    struct aloop__call *c = aloop__slot(loop, idx);
    c->when = when;
    c->state = S_ARMED;
    struct aloop__hnode n = { when, h->seq++, idx };
    sift_up(loop, h->len++, n);
    return 0;
}

/* Take the node at position i out of the heap. */
static void heap_delete(struct aloop *loop, uint32_t i)
{
    struct aloop__heap *h = &loop->timers;
    struct aloop__hnode last = h->n[--h->len];
    if (i == h->len)
        return;
    if (i > 0 && before(&last, &h->n[(i - 1) / 4]))
        sift_up(loop, i, last);
    else
        sift_down(loop, i, last);
}

void aloop__heap_remove(struct aloop *loop, uint32_t idx)
{
    struct aloop__call *c = aloop__slot(loop, idx);
    heap_delete(loop, c->heap);
    c->state = S_IDLE;
}

/* Step 3: move every timer due at the cached time to the ready queue, in
 * deadline order. */
void aloop__timers_expire(struct aloop *loop)
{
    struct aloop__heap *h = &loop->timers;
    uint64_t now = aloop__now(loop);
    while (h->len && h->n[0].when <= now) {
        uint32_t idx = h->n[0].idx;
        struct aloop__call *c = aloop__slot(loop, idx);
        heap_delete(loop, 0);
        c->state = S_IDLE;
        if (unlikely(aloop__enqueue(loop, idx) < 0)) {
            aloop__heap_insert(loop, idx, c->when);   /* room was just freed */
            return;                                   /* retry next iteration */
        }
    }
}

void aloop__heap_fini(struct aloop__heap *h)
{
    free(h->n);
    *h = (struct aloop__heap){0};
}
