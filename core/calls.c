/* calls.c -- the slab of call slots, ids, and the deferred-call API. */
#include <stdlib.h>
#include <string.h>

#include "loop.h"

const struct aloop__ctx_ops *_Atomic aloop__ctx;

int aloop__slab_grow(struct aloop__slab *s)
{
    if (s->nchunks == s->cap_chunks) {
        uint32_t cap = s->cap_chunks ? s->cap_chunks * 2 : 8;
        if (cap > (UINT32_MAX >> ALOOP__CHUNK_SHIFT))
            return -ENOMEM;
        struct aloop__call **c = realloc(s->chunks, cap * sizeof *c);
        if (!c)
            return -ENOMEM;
        s->chunks = c;
        s->cap_chunks = cap;
    }
    struct aloop__call *chunk = malloc(ALOOP__CHUNK * sizeof *chunk);
    if (!chunk)
        return -ENOMEM;
    uint32_t base = s->nchunks << ALOOP__CHUNK_SHIFT;
    /* one pass: every field zero but these, the new slots threaded onto the
     * free list in index order */
    for (uint32_t i = 0; i < ALOOP__CHUNK; i++)
        chunk[i] = (struct aloop__call){
            .idx1 = base + i + 1,
            .gen = 1,
            .next_free = i + 1 < ALOOP__CHUNK ? &chunk[i + 1] : s->free,
        };
    s->chunks[s->nchunks++] = chunk;
    s->free = chunk;
    return 0;
}

void aloop__slab_fini(struct aloop__slab *s)
{
    for (uint32_t i = 0; i < s->nchunks; i++)
        free(s->chunks[i]);
    free(s->chunks);
    memset(s, 0, sizeof *s);
}

struct aloop__call *aloop__slot_lookup(struct aloop *loop, aloop_id_t id, uint32_t *idx)
{
    if (id <= 0)
        return NULL;
    uint64_t low = (uint64_t)id & 0xffffffffu;
    if (low == 0 || low - 1 >= ((uint64_t)loop->slab.nchunks << ALOOP__CHUNK_SHIFT))
        return NULL;
    struct aloop__call *c = aloop__slot(loop, (uint32_t)(low - 1));
    if (c->id != (uint64_t)id || c->kind > K_EVERY ||
        (c->state != S_QUEUED && c->state != S_ARMED))
        return NULL;
    *idx = (uint32_t)(low - 1);
    return c;
}

static inline __attribute__((always_inline)) struct aloop__call *new_call(aloop_t *loop, int prio, aloop_cb cb, void *arg, uint32_t *idx)
{
    struct aloop__call *c = aloop__slot_take(loop, idx);
    if (unlikely(!c))
        return NULL;
    c->cb = cb;
    c->arg = arg;
    c->prio = (int8_t)prio;
    aloop__slot_set_kind(c, K_CALL, aloop__ctx_capture());
    return c;
}

static inline __attribute__((always_inline)) aloop_id_t call_soon(aloop_t *loop, int prio, aloop_cb cb, void *arg)
{
    uint32_t idx;
    struct aloop__call *c = new_call(loop, prio, cb, arg, &idx);
    if (unlikely(!c))
        return -ENOMEM;
    if (unlikely(aloop__enqueue_call(loop, c) < 0)) {
        aloop__slot_release(loop, c);
        return -ENOMEM;
    }
    aloop__notify(loop);
    return aloop__call_id(c);
}

static __attribute__((noinline)) aloop_id_t call_soon_slow(aloop_t *loop, int prio, aloop_cb cb,
                                                          void *arg)
{
    return call_soon(loop, prio, cb, arg);
}

/* The common case, a leaf without a stack frame: a free slot, room in the
 * ring, no context to capture (no tasks layer), no adopted host to tell.
 * Anything else tail-calls the general code. */
static inline __attribute__((always_inline)) aloop_id_t call_soon_fast(aloop_t *loop, int prio,
                                                                      aloop_cb cb, void *arg)
{
    unsigned level = (unsigned)(prio - ALOOP_PRIO_MIN);
    struct aloop__ring *r = &loop->ready[level];
    /* the atomic first: the compiler reloads across it what was read before;
     * an adopted loop's rings have no room for it (limit 0) */
    if (unlikely(atomic_load_explicit(&aloop__ctx, memory_order_relaxed) ||
                 loop->slab.free == NULL || r->tail - r->head >= r->limit))
        return call_soon_slow(loop, prio, cb, arg);
    uint32_t idx;
    struct aloop__call *c = aloop__slot_pop(loop, &idx);
    c->cb = cb;
    c->arg = arg;
    /* no context (c->ctx is NULL in a free slot), queued: one store, which
     * the drain's load of kind_ctx can be forwarded from */
    c->kind_prio_state = ALOOP__KPS(K_CALL, prio, S_QUEUED);
    aloop__enqueue_marked(loop, r, 1u << level, c);
    return aloop__call_id(c);
}

aloop_id_t aloop_call_soon_prio(aloop_t *loop, int prio, aloop_cb cb, void *arg)
{
    if (unlikely(!loop || !cb || !aloop__prio_ok(prio)))
        return -EINVAL;
    return call_soon_fast(loop, prio, cb, arg);
}

aloop_id_t aloop_call_soon(aloop_t *loop, aloop_cb cb, void *arg)
{
    if (unlikely(!loop || !cb))
        return -EINVAL;
    return call_soon_fast(loop, ALOOP_PRIO_DEFAULT, cb, arg);
}

/* aloop_call_later / _at / _every and aloop_cancel are in timers.c, next
 * to the heap they inline. */

int aloop_set_priority(aloop_t *loop, aloop_id_t id, int prio)
{
    uint32_t idx;
    if (unlikely(!loop || !aloop__prio_ok(prio)))
        return -EINVAL;
    struct aloop__call *c = aloop__slot_lookup(loop, id, &idx);
    if (!c)
        return -ENOENT;
    if (c->prio == prio)
        return 0;
    if (c->state == S_QUEUED)
        return aloop__requeue(loop, idx, prio);
    c->prio = (int8_t)prio;
    return 0;
}
