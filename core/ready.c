/* ready.c -- the ready queue: one FIFO ring per priority level.
 *
 * Entries are slot addresses.  Cancelling or moving a queued slot clears its
 * entry (the slot keeps its place), which is skipped when reached: O(1)
 * cancel without a doubly linked list.  Only entries queued before the drain
 * starts run in it (asyncio's rule): the drain notes where each level ends. */
#include <stdlib.h>

#include "loop.h"

int aloop__ring_grow(struct aloop *loop, struct aloop__ring *r)
{
    uint32_t cap = r->e ? (r->mask + 1) * 2 : 64;
    if (cap == 0)
        return -ENOMEM;
    struct aloop__call **e = malloc((size_t)cap * sizeof *e);
    if (!e)
        return -ENOMEM;
    /* head and tail run freely; keep each entry at its index mod cap */
    for (uint32_t i = r->head; i != r->tail; i++)
        e[i & (cap - 1)] = r->e[i & r->mask];
    free(r->e);
    r->e = e;
    r->mask = cap - 1;
    r->limit = loop->adopted ? 0 : cap;
    return 0;
}

__attribute__((cold)) int aloop__enqueue_grow(struct aloop *loop, struct aloop__call *c)
{
    unsigned level = (unsigned)(c->prio - ALOOP_PRIO_MIN);
    struct aloop__ring *r = &loop->ready[level];
    int rc = aloop__ring_grow(loop, r);
    if (rc == 0)
        aloop__enqueue_room(loop, r, 1u << level, c);
    return rc;
}

void aloop__ready_fini(struct aloop *loop)
{
    for (int l = 0; l < ALOOP__NPRIO; l++) {
        free(loop->ready[l].e);
        free(loop->moved[l].e);
        loop->ready[l] = loop->moved[l] = (struct aloop__ring){ .mask = UINT32_MAX };
    }
    loop->ntomb = 0;
    loop->readymask = loop->movedmask = 0;
}

/* Whether queued slot c's live entry was queued before the drain in
 * progress began (an iteration begun in place is a drain of its own). */
static int queued_before(const struct aloop *loop, const struct aloop__call *c)
{
    /* a moved ring holds nothing else */
    if (c->mring)
        return 1;
    /* else its entry is in the ready ring of its level, at qpos (not yet
     * popped, so at or past the head): before the end this drain stops at?
     * A level other than the one draining, in a drain of one level, had no
     * entries when it began. */
    unsigned l = (unsigned)(c->prio - ALOOP_PRIO_MIN);
    const struct aloop__ring *r = &loop->ready[l];
    uint32_t end;
    if (loop->drain_ring == r)
        end = loop->drain_end;
    else if (loop->drain_snap & (1u << l))
        end = loop->snap_end[l];
    else
        return 0;
    return c->qpos - r->head < end - r->head;
}

/* A slot queued before the current drain began still runs in it when its
 * priority changes: it joins the `moved` ring of its new level (or of the
 * level being drained, if its new level is already done), drained right
 * after that level's own entries.  Otherwise it moves to the tail of its
 * new level's ring. */
int aloop__requeue(struct aloop *loop, uint32_t idx, int prio)
{
    struct aloop__call *c = aloop__slot(loop, idx);
    int before = loop->draining >= 0 && queued_before(loop, c);
    int l = prio - ALOOP_PRIO_MIN;
    struct aloop__ring *r = before ? &loop->moved[l < loop->draining ? l : loop->draining]
                                   : &loop->ready[l];
    /* room first: on -ENOMEM the slot keeps its entry and priority */
    if (aloop__ring_full(r) && aloop__ring_grow(loop, r) < 0)
        return -ENOMEM;
    aloop__dequeue(loop, c);
    c->prio = (int8_t)prio;
    c->state = S_QUEUED;
    if (!before) {
        aloop__enqueue_marked(loop, r, 1u << l, c);
        return 0;
    }
    uint32_t pos = r->tail++;
    r->e[pos & r->mask] = c;
    c->qpos = pos;
    c->mring = (uint32_t)(r - loop->moved) + 1;
    loop->movedmask |= 1u << (unsigned)(r - loop->moved);
    loop->drain_bit = ALOOP__BAR; /* no next iteration in place */
    return 0;                   /* still part of this drain */
}

__attribute__((cold, noinline)) int aloop__ready_next_iteration_slow(struct aloop *loop,
                                                                   struct aloop__ring *r)
{
    uint32_t no = (loop->readymask ^ loop->drain_bit) |
                  atomic_load_explicit(&loop->flags, memory_order_relaxed);
    if (no)
        return 0;               /* also when skip_left is 0 (aloop__skip_one) */
    /* timers: the iteration reads the clock, as iterate() would, and keeps
     * that time; if the first one is due, the loop's own iteration expires
     * it (reading the clock again), else nothing differs and this one goes
     * on in place */
    loop->now_valid = 0;
    if (loop->timers.n[0].when <= aloop__now(loop))
        return 0;
    aloop__skip_one(loop);
    loop->drain_end = r->tail;
    return 1;
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
        aloop__slot_set_ctx(c, NULL);
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
    case K_BATCH:
        aloop__slot_free(loop, idx);
        aloop__inbox_run(loop);     /* thread-safe calls run in the base context */
        return;
    case K_SIGNAL:
    case K_TASK:
        c->state = S_IDLE;
        cb(loop, arg);      /* signals and I/O run in the base context; a
                               task swaps its own in */
        return;
    }
}

/* Pop the next entry of ring r and run it if it is live. */
static inline __attribute__((always_inline)) void drain_one(struct aloop *loop, struct aloop__ring *r)
{
    struct aloop__call *c = r->e[r->head++ & r->mask];
    if (unlikely(!c)) {
        loop->ntomb--;          /* cancelled or moved */
        return;
    }
    if (likely(c->kind_ctx <= K_TIMER)) {   /* kind <= K_TIMER, no context */
        aloop_cb cb = c->cb;    /* the common cases, a call or a timer, inline */
        void *arg = c->arg;
        aloop__slot_release_ran(loop, c);   /* c->ctx is NULL */
        cb(loop, arg);
    } else if (likely((unsigned)(c->kind - K_READ) <= K_WRITE - K_READ)) {
        c->state = S_IDLE;      /* a ready fd's watcher (never with a context), inline too */
        aloop__io_run(loop, c);
    } else {
        c->state = S_IDLE;      /* popped: no entry to clear any more */
        run_one(loop, c->idx1 - 1, c);
    }
}

/* Pop the entries of ring r (loop->drain_ring) up to position
 * loop->drain_end and run the live ones.  The end lives in the loop:
 * aloop__ready_take() (loop.h) may pop entries too, and the next iteration
 * begun in place moves it.  drain_ring stays set between the drains of one
 * aloop__ready_run, which clears it when done. */
static inline void drain_to_end(struct aloop *loop, struct aloop__ring *r)
{
    while (r->head != loop->drain_end)
        drain_one(loop, r);
}

/* The same when the ring holds entries before its end (a next iteration
 * just begun in place): no test before the first. */
static inline void drain_to_end_nonempty(struct aloop *loop, struct aloop__ring *r)
{
    do
        drain_one(loop, r);
    while (r->head != loop->drain_end);
}

static inline void drain(struct aloop *loop, struct aloop__ring *r, uint32_t end)
{
    loop->drain_ring = r;
    loop->drain_end = end;
    drain_to_end(loop, r);
}

/* Drain the moved ring of level l until it is empty (a slot moved again
 * while it drains lands in it, or in a lower level's). */
static void drain_moved_level(struct aloop *loop, unsigned l)
{
    struct aloop__ring *m = &loop->moved[l];
    loop->draining = (int)l;
    loop->drain_bit = ALOOP__BAR;
    while (m->head != m->tail) {
        struct aloop__call *c = m->e[m->head & m->mask];
        if (c)
            c->mring = 0;       /* popped by this drain */
        drain(loop, m, m->head + 1);
    }
    loop->movedmask &= ~(1u << l);
}

/* Drain the moved rings of the levels in `below`, highest first, until none
 * is left: a drain of one level, whose lower levels hold no entries queued
 * before it. */
static void drain_moved(struct aloop *loop, unsigned below)
{
    unsigned todo;
    while ((todo = loop->movedmask & below) != 0) {
        unsigned l = 31u - (unsigned)__builtin_clz(todo);
        drain_moved_level(loop, l);
        below = (1u << l) - 1;
    }
}

void aloop__ready_run(struct aloop *loop)
{
    unsigned snap = loop->readymask;

    if (likely((snap & (snap - 1)) == 0)) {
        /* the common case: at most one level holds entries */
        if (snap) {
            unsigned l = (unsigned)__builtin_ctz(snap);
            struct aloop__ring *r = &loop->ready[l];
            loop->draining = (int)l;
            loop->drain_bit = loop->inplace && loop->skip_left ? snap : ALOOP__BAR;
            drain(loop, r, r->tail);
            /* queued work only: the next iterations run here (loop.h),
             * which moves drain_end */
            while (r->head != r->tail && aloop__ready_next_iteration(loop, r))
                drain_to_end_nonempty(loop, r);
            if (r->head == r->tail)
                loop->readymask &= ~snap;
            if (unlikely(loop->movedmask))
                drain_moved(loop, (snap << 1) - 1);
            loop->drain_ring = NULL;
        }
        loop->draining = -1;
        return;
    }

    loop->drain_bit = ALOOP__BAR;
    loop->drain_snap = snap;
    for (unsigned m = snap; m; m &= m - 1) {
        unsigned l = (unsigned)__builtin_ctz(m);
        loop->snap_end[l] = loop->ready[l].tail;
    }

    /* highest level first; a level is visited if it had entries when the
     * drain began, or gains moved ones (always at or below the current) */
    unsigned below = (1u << ALOOP__NPRIO) - 1;
    for (;;) {
        unsigned todo = (snap | loop->movedmask) & below;
        if (!todo)
            break;
        unsigned l = 31u - (unsigned)__builtin_clz(todo);
        unsigned bit = 1u << l;
        below = bit - 1;
        loop->draining = (int)l;
        if (snap & bit) {
            struct aloop__ring *r = &loop->ready[l];
            drain(loop, r, loop->snap_end[l]);
            if (r->head == r->tail)
                loop->readymask &= ~bit;
        }
        if (unlikely(loop->movedmask & bit))
            drain_moved_level(loop, l);     /* lower levels' own entries first */
    }
    loop->drain_snap = 0;
    loop->drain_ring = NULL;
    loop->draining = -1;
}
