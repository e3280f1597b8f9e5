/* timers.c -- the timer heap and the timer API (aloop_call_later / _at /
 * _every, aloop_cancel).
 *
 * A 4-ary min-heap of 16-byte nodes {deadline, ord}, ord = (seq << 32) | slot
 * index: ordering on (deadline, ord) is deadline order, then FIFO (seq is
 * unique among live timers, so the index never decides).  Nodes carry their
 * keys, so sifting reads the heap array only, plus one store per move into
 * pos[] (a compact array by slot index, not the 64-byte slots) to keep each
 * timer's heap position for O(log n) cancel.  The array is laid out as
 * libev's: the root is the 4th node of a 64-byte-aligned block, so the 4
 * children of any node share one cache line.
 *
 * seq is 32 bits: before it would wrap, the live timers are sorted and
 * renumbered 0..len-1 (once per 4 billion timers, in place).  A new timer's
 * seq is larger than every live timer's, so inserting compares deadlines
 * only.  Past the last node are sentinels (below), so that sifting down
 * always compares four children, branch-free.
 *
 * The timer API lives here, next to the heap, so that its fast paths inline
 * the heap operations. */
#include <stdlib.h>
#include <string.h>

#include "loop.h"

#define HEAP_OFF 3              /* nodes before the root in the allocation */
#define HEAP_ALIGN 64
#define HEAP_PAD 3              /* sentinels past the last possible node */

/* Every node past the heap (n[len] .. n[cap + HEAP_PAD - 1]) is a sentinel,
 * after every real node (a real ord is below UINT64_MAX: seq never reaches
 * UINT32_MAX), so that sifting down always compares four children. */
#define SENTINEL ((struct aloop__hnode){ UINT64_MAX, UINT64_MAX })

#ifdef __SIZEOF_INT128__
__extension__ typedef unsigned __int128 u128;
#endif

static inline int before(const struct aloop__hnode *a, const struct aloop__hnode *b)
{
#ifdef __SIZEOF_INT128__
    /* one 128-bit compare: cmp + sbb, no branch */
    return (((u128)a->when << 64) | a->ord) < (((u128)b->when << 64) | b->ord);
#else
    return a->when < b->when || (a->when == b->when && a->ord < b->ord);
#endif
}

/* Hide a pointer's provenance from the optimizer: the winner of a
 * tournament is then re-read through it instead of being selected value by
 * value (fewer registers, no spills). */
#define OPAQUE(p) __asm__("" : "+r"(p))

static inline uint32_t node_idx(const struct aloop__hnode *n)
{
    return (uint32_t)n->ord;
}

/* Move the node at *last (just past the heap) down from the hole at i,
 * which has children; then make *last a sentinel.  Returns 0. */
static __attribute__((noinline)) int sift_down(struct aloop__hnode *h, uint32_t *pos, uint32_t i,
                                                struct aloop__hnode *last)
{
    struct aloop__hnode *c = h + 4 * (size_t)i + 1;
    do {
        /* a branch-free tournament of the four children; past the heap
         * are `last` itself (never before itself) and sentinels */
        size_t b0 = (size_t)before(&c[1], &c[0]);
        size_t b1 = 2 + (size_t)before(&c[3], &c[2]);
        struct aloop__hnode *m = c + (before(&c[b1], &c[b0]) ? b1 : b0);
        OPAQUE(m);
        if (!before(m, last))
            break;
        h[i] = *m;
        pos[node_idx(m)] = i;
        i = (uint32_t)(m - h);
        c = h + 4 * (size_t)i + 1;
    } while (c < last);
    h[i] = *last;
    pos[node_idx(last)] = i;
    *last = SENTINEL;
    return 0;
}

/* Move the node at *last (just past the heap) up from the hole at i, whose
 * parent comes after it; then make *last a sentinel.  Returns 0. */
static __attribute__((noinline)) int sift_up_del(struct aloop__hnode *h, uint32_t *pos, uint32_t i,
                                                 struct aloop__hnode *last)
{
    struct aloop__hnode *hole = h + i;
    do {
        uint32_t p = (i - 1) / 4;
        struct aloop__hnode *pn = h + p;
        *hole = *pn;
        pos[node_idx(hole)] = i;
        hole = pn;
        i = p;
    } while (i > 0 && before(last, &h[(i - 1) / 4]));
    *hole = *last;
    pos[node_idx(last)] = i;
    *last = SENTINEL;
    return 0;
}

/* Take the node at position i out of the heap.  Returns 0; the rare and
 * the longer cases are tail calls, so that this inlines into aloop_cancel
 * as a leaf. */
static inline __attribute__((always_inline)) int heap_delete_inline(struct aloop *loop, uint32_t i)
{
    struct aloop__heap *hp = &loop->timers;
    uint32_t len = --hp->len;
    struct aloop__hnode *h = hp->n;
    /* the last node, now just past the heap (nothing below writes there),
     * fills the hole at i */
    struct aloop__hnode *last = h + len;
    if (likely(i != len)) {
        uint32_t *pos = hp->pos;
        if (i > 0 && before(last, &h[(i - 1) / 4]))
            return sift_up_del(h, pos, i, last);
        if (h + 4 * (size_t)i + 1 < last)
            return sift_down(h, pos, i, last);
        h[i] = *last;           /* a leaf */
        pos[node_idx(last)] = i;
    }
    *last = SENTINEL;
    return 0;
}

static __attribute__((noinline)) int heap_delete(struct aloop *loop, uint32_t i)
{
    return heap_delete_inline(loop, i);
}

/* Take the root out of the heap.  Bottom-up (Floyd): the hole goes down to
 * a leaf along the smaller children, one tournament per level and no
 * compare with the last node, which almost always belongs near the bottom;
 * the last node then rises from there. */
static void heap_pop(struct aloop *loop)
{
    struct aloop__heap *hp = &loop->timers;
    uint32_t len = --hp->len;
    struct aloop__hnode *h = hp->n, *last = h + len;
    uint32_t *pos = hp->pos;
    uint32_t i = 0;
    for (;;) {
        struct aloop__hnode *c = h + 4 * (size_t)i + 1;
        if (c >= last)
            break;
        /* the smallest child: past the heap are `last` and sentinels */
        size_t b0 = (size_t)before(&c[1], &c[0]);
        size_t b1 = 2 + (size_t)before(&c[3], &c[2]);
        struct aloop__hnode *m = c + (before(&c[b1], &c[b0]) ? b1 : b0);
        if (m == last)
            break;              /* the last node is the smallest child */
        h[i] = *m;
        pos[node_idx(m)] = i;
        i = (uint32_t)(m - h);
    }
    while (i > 0 && before(last, &h[(i - 1) / 4])) {
        uint32_t p = (i - 1) / 4;
        h[i] = h[p];
        pos[node_idx(&h[i])] = i;
        i = p;
    }
    if (i < len) {
        h[i] = *last;
        pos[node_idx(last)] = i;
    }
    *last = SENTINEL;
}

/* seq is about to wrap: sort the live nodes on (deadline, ord) in place
 * (a sorted array is a valid heap) and number them 0..len-1. */
static void renumber(struct aloop *loop)
{
    struct aloop__heap *hp = &loop->timers;
    struct aloop__hnode *h = hp->n;
    uint32_t *pos = hp->pos;
    uint32_t len = hp->len;
    /* heapsort: pop the minimum into the place just freed at the end,
     * giving descending order (a plain sift-down bounded by k: the nodes
     * past k are not sentinels here)... */
    for (uint32_t k = len; k > 1; k--) {
        struct aloop__hnode min = h[0], n = h[k - 1];
        uint32_t i = 0, n_ = k - 1;
        for (;;) {
            uint32_t c = 4 * i + 1, m = i;
            for (uint32_t j = c; j < n_ && j < c + 4; j++)
                if (before(&h[j], m == i ? &n : &h[m]))
                    m = j;
            if (m == i)
                break;
            h[i] = h[m];
            i = m;
        }
        h[i] = n;
        h[k - 1] = min;
    }
    /* ...then reverse it */
    for (uint32_t a = 0, b = len ? len - 1 : 0; a < b; a++, b--) {
        struct aloop__hnode t = h[a];
        h[a] = h[b];
        h[b] = t;
    }
    for (uint32_t i = 0; i < len; i++) {
        h[i].ord = ((uint64_t)i << 32) | node_idx(&h[i]);
        pos[node_idx(&h[i])] = i;
    }
    hp->seq = len;
}

/* Make room for one more node and a fresh seq. */
static __attribute__((noinline)) int heap_room(struct aloop *loop)
{
    struct aloop__heap *hp = &loop->timers;
    if (hp->seq == UINT32_MAX)
        renumber(loop);
    if (hp->len == hp->cap) {
        if (hp->cap > UINT32_MAX / 2)
            return -ENOMEM;
        uint32_t cap = hp->cap ? hp->cap * 2 : 64;
        size_t bytes = ((size_t)HEAP_OFF + cap + HEAP_PAD) * sizeof(struct aloop__hnode);
        void *mem;
        if (posix_memalign(&mem, HEAP_ALIGN, (bytes + HEAP_ALIGN - 1) & ~(size_t)(HEAP_ALIGN - 1)) != 0)
            return -ENOMEM;
        struct aloop__hnode *n = (struct aloop__hnode *)mem + HEAP_OFF;
        if (hp->n) {
            memcpy(n, hp->n, (size_t)hp->len * sizeof *n);
            free(hp->n - HEAP_OFF);
        }
        for (uint32_t i = hp->len; i < cap + HEAP_PAD; i++)
            n[i] = SENTINEL;
        hp->n = n;
        hp->cap = cap;
    }
    return 0;
}

static inline __attribute__((always_inline)) int heap_reserve(struct aloop *loop)
{
    struct aloop__heap *hp = &loop->timers;
    if (unlikely(hp->len == hp->cap || hp->seq == UINT32_MAX))
        return heap_room(loop);
    return 0;
}

/* Arm slot c (index idx) at `when`; heap_reserve() must have succeeded. */
static inline __attribute__((always_inline)) void heap_push(struct aloop *loop, struct aloop__call *c, uint32_t idx,
                                                            uint64_t when)
{
    struct aloop__heap *hp = &loop->timers;
    struct aloop__hnode *h = hp->n;
    uint32_t *pos = hp->pos;
    size_t i = hp->len++;
    uint64_t ord = ((uint64_t)hp->seq++ << 32) | idx;
    /* the new seq is the largest: among equal deadlines it goes last, so
     * only deadlines need comparing */
    while (i > 0) {
        size_t p = (i - 1) / 4;
        if (when >= h[p].when)
            break;
        h[i] = h[p];
        pos[node_idx(&h[i])] = (uint32_t)i;
        i = p;
    }
    h[i].when = when;
    h[i].ord = ord;
    pos[idx] = (uint32_t)i;
    c->when = when;
    c->state = S_ARMED;
}

/* Make pos[] cover every slot of the slab. */
static __attribute__((noinline)) int pos_grow(struct aloop *loop)
{
    struct aloop__heap *hp = &loop->timers;
    uint32_t need = loop->slab.nchunks << ALOOP__CHUNK_SHIFT;
    if (need <= hp->npos)
        return 0;
    /* doubling: the slab grows a chunk at a time, and copying pos[] on
     * every chunk made a million timers quadratic */
    uint32_t n = hp->npos ? hp->npos : ALOOP__CHUNK;
    while (n < need)
        n = n > UINT32_MAX / 2 ? need : n * 2;
    uint32_t *pos = realloc(hp->pos, (size_t)n * sizeof *pos);
    if (!pos)
        return -ENOMEM;
    hp->pos = pos;
    hp->npos = n;
    return 0;
}

int aloop__heap_insert(struct aloop *loop, uint32_t idx, uint64_t when)
{
    if (unlikely(idx >= loop->timers.npos) && pos_grow(loop) < 0)
        return -ENOMEM;
    if (unlikely(heap_reserve(loop) < 0))
        return -ENOMEM;
    heap_push(loop, aloop__slot(loop, idx), idx, when);
    return 0;
}

void aloop__heap_remove(struct aloop *loop, uint32_t idx)
{
    heap_delete(loop, loop->timers.pos[idx]);
    aloop__slot(loop, idx)->state = S_IDLE;
}

/* Step 3: move every timer due at the cached time to the ready queue, in
 * deadline order. */
void aloop__timers_expire(struct aloop *loop)
{
    struct aloop__heap *hp = &loop->timers;
    uint64_t now = aloop__now(loop);
    while (hp->len && hp->n[0].when <= now) {
        uint32_t idx = node_idx(&hp->n[0]);
        uint64_t when = hp->n[0].when;
        struct aloop__call *c = aloop__slot(loop, idx);
        heap_pop(loop);
        c->state = S_IDLE;
        if (unlikely(aloop__enqueue_call(loop, c) < 0)) {
            aloop__heap_insert(loop, idx, when);      /* room was just freed */
            return;                                   /* retry next iteration */
        }
    }
}

void aloop__heap_fini(struct aloop__heap *h)
{
    if (h->n)
        free(h->n - HEAP_OFF);
    free(h->pos);
    *h = (struct aloop__heap){0};
}

/* ---- the API -------------------------------------------------------------- */

/* The general case: any of the conditions the fast paths below leave out. */
static __attribute__((noinline)) aloop_id_t new_timer(aloop_t *loop, uint64_t when, uint64_t interval, aloop_cb cb,
                                                      void *arg)
{
    uint32_t idx;
    if (unlikely(heap_reserve(loop) < 0))
        return -ENOMEM;
    struct aloop__call *c = aloop__slot_take(loop, &idx);
    if (unlikely(!c))
        return -ENOMEM;
    if (unlikely(idx >= loop->timers.npos) && pos_grow(loop) < 0) {
        aloop__slot_release(loop, c);
        return -ENOMEM;
    }
    c->cb = cb;
    c->arg = arg;
    aloop__slot_set_kind(c, interval ? K_EVERY : K_TIMER, aloop__ctx_capture());
    c->prio = ALOOP_PRIO_DEFAULT;
    c->interval = interval;
    heap_push(loop, c, idx, when);
    aloop__notify(loop);
    return aloop__call_id(c);
}

/* now + delay, saturating */
static inline uint64_t add_sat(uint64_t now, uint64_t delay)
{
    uint64_t when;
    return __builtin_add_overflow(now, delay, &when) ? UINT64_MAX : when;
}

/* The common case as a leaf function: the clock is cached, the heap, the
 * slab and pos[] have room, no context to capture, no host to notify. */
static inline __attribute__((always_inline)) aloop_id_t timer_fast(aloop_t *loop, uint64_t when, aloop_cb cb,
                                                                   void *arg)
{
    struct aloop__heap *hp = &loop->timers;
    struct aloop__slab *s = &loop->slab;
    /* pos[] covers every slot below npos */
    struct aloop__call *c = s->free;
    if (unlikely(hp->len == hp->cap || hp->seq == UINT32_MAX || !c || c->idx1 > hp->npos ||
                 atomic_load_explicit(&aloop__ctx, memory_order_relaxed) != NULL || loop->adopted))
        return new_timer(loop, when, 0, cb, arg);
    uint32_t idx = c->idx1 - 1;
    s->free = c->next_free;
    c->cb = cb;
    c->arg = arg;
    /* c->ctx: NULL in every free slot (aloop__slot_release clears it).
     * c->when, c->interval: read for K_EVERY only. */
    c->prio = ALOOP_PRIO_DEFAULT;
    c->kind_ctx = K_TIMER;      /* no context (see above) */
    c->state = S_ARMED;
    aloop_id_t id = aloop__call_id(c);
    /* sift up: the new seq is the largest, so among equal deadlines the new
     * timer goes last and only deadlines need comparing */
    struct aloop__hnode *h = hp->n;
    uint32_t *pos = hp->pos;
    uint32_t i = hp->len++;
    uint64_t ord = ((uint64_t)hp->seq++ << 32) | idx;
    struct aloop__hnode *hole = h + i;
    while (i > 0) {
        uint32_t p = (i - 1) / 4;
        struct aloop__hnode *pn = h + p;
        if (when >= pn->when)
            break;
        *hole = *pn;
        pos[node_idx(hole)] = i;
        hole = pn;
        i = p;
    }
    hole->when = when;
    hole->ord = ord;
    pos[node_idx(hole)] = i;
    return id;
}

static __attribute__((noinline)) aloop_id_t call_later_clock(aloop_t *loop, uint64_t delay_ns, aloop_cb cb, void *arg)
{
    return new_timer(loop, add_sat(aloop__now(loop), delay_ns), 0, cb, arg);
}

aloop_id_t aloop_call_later(aloop_t *loop, uint64_t delay_ns, aloop_cb cb, void *arg)
{
    if (unlikely(!loop || !cb))
        return -EINVAL;
    if (unlikely(!loop->now_valid))
        return call_later_clock(loop, delay_ns, cb, arg);
    return timer_fast(loop, add_sat(loop->now, delay_ns), cb, arg);
}

aloop_id_t aloop_call_at(aloop_t *loop, uint64_t when_ns, aloop_cb cb, void *arg)
{
    if (unlikely(!loop || !cb))
        return -EINVAL;
    return timer_fast(loop, when_ns, cb, arg);
}

aloop_id_t aloop_call_every(aloop_t *loop, uint64_t interval_ns, aloop_cb cb, void *arg)
{
    if (unlikely(!loop || !cb || interval_ns == 0))
        return -EINVAL;
    return new_timer(loop, add_sat(aloop__now(loop), interval_ns), interval_ns, cb, arg);
}

/* aloop_cancel's general case */
static __attribute__((noinline)) int cancel_slow(aloop_t *loop, struct aloop__call *c, uint32_t idx)
{
    if (c->state == S_ARMED)
        heap_delete(loop, loop->timers.pos[idx]);
    else if (c->state == S_QUEUED && c->kind <= K_EVERY)
        aloop__dequeue(loop, c);
    else
        return -ENOENT;
    aloop__slot_release(loop, c);
    aloop__notify(loop);
    return 0;
}

int aloop_cancel(aloop_t *loop, aloop_id_t id)
{
    if (unlikely(!loop))
        return -EINVAL;
    /* id = (gen << 32) | (index + 1); index + 1 == 0 gives UINT32_MAX,
     * which is never below the slab's size */
    uint32_t idx = (uint32_t)id - 1;
    if (unlikely(idx >= (loop->slab.nchunks << ALOOP__CHUNK_SHIFT)))
        return -ENOENT;
    struct aloop__call *c = aloop__slot(loop, idx);
    /* a live slot's gen is below 2^31, so this also rejects ids < 0 (and a
     * retired slot, whose gen is 2^31, is free: cancel_slow rejects it) */
    if (unlikely(c->id != (uint64_t)id))
        return -ENOENT;
    /* the common case, a leaf: an armed timer (only timers are armed)
     * without a context, no host to notify */
    if (unlikely(c->state != S_ARMED || c->ctx != NULL || loop->adopted))
        return cancel_slow(loop, c, idx);
    uint32_t i = loop->timers.pos[idx];
    /* free the slot (aloop__slot_release, its context known NULL), then
     * take its node out: the heap never writes the position of the node it
     * deletes */
    aloop__slot_release_ran(loop, c);
    return heap_delete_inline(loop, i);
}
