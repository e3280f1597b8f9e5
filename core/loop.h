/* loop.h -- the loop object and the core's internal interfaces.
 * Not installed.  Names are aloop__<area>_<verb>, hidden by visibility. */
#ifndef ALOOP_CORE_LOOP_H
#define ALOOP_CORE_LOOP_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aloop.h"
#include "backend.h"

#define ALOOP__HIDDEN __attribute__((visibility("hidden")))
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ALOOP__NPRIO  (ALOOP_PRIO_MAX - ALOOP_PRIO_MIN + 1)
#define ALOOP__BAR    (1u << 31)    /* drain_bit: no next iteration in place */
#define ALOOP__NSIG   65          /* signals 1..64 */

/* ---- calls: deferred calls, timers, and the pending slots of watchers ----
 * Every queued thing is a slot in a chunked slab (stable addresses), named
 * by an index.  A user-visible id is (gen << 32) | (index + 1); gen is bumped
 * whenever the slot is freed, so ids are never reused (a slot whose gen
 * reaches 2^31 is retired). */
enum aloop__kind { K_CALL, K_TIMER, /* these two first: ready.c's drain runs them inline */
                  K_EVERY, K_READ, K_WRITE, K_SIGNAL,
                  K_TASK,  /* a task's resident resume slot: not freed when run */
                  K_BATCH  /* the thread-safe calls of one wake-up, in order */ };
enum aloop__state { S_FREE, S_IDLE, S_QUEUED, S_ARMED };

struct aloop__call {
    union {
        aloop_cb cb;
        aloop_io_cb iocb;       /* K_READ, K_WRITE: the watcher's callback */
    };
    void *arg;
    void *ctx;                  /* context captured when queued (tasks layer) */
    union {
        uint64_t when;          /* timers: deadline */
        struct aloop__call *next_free;  /* a free slot: the free list */
    };
    uint64_t interval;          /* K_EVERY; K_READ/K_WRITE: the fd; K_SIGNAL: signum */
    union {                     /* x86-64 and every little-endian target */
        uint64_t id;            /* the id it has (or will have, while free):
                                   (gen << 32) | (index + 1) */
        struct {
            uint32_t idx1;      /* its own index + 1 (a timer's heap
                                   position is in loop->timers.pos) */
            uint32_t gen;       /* generation, bumped when freed */
        };
    };
    uint32_t mring;             /* queued in a moved ring (set_priority in a
                                   drain): that ring's level + 1; else 0 */
    uint32_t qpos;              /* queued: its entry's position in its ring
                                   (the ready ring of its level, or moved
                                   ring mring - 1), which a dequeue clears */
    union {
        struct {
            union {
                struct {
                    uint8_t kind;
                    uint8_t withctx;    /* ctx != NULL (aloop__slot_set_ctx) */
                };
                uint16_t kind_ctx;      /* <= K_TIMER: a call or a timer without
                                           a context, which a drain runs inline */
            };
            int8_t prio;
            uint8_t state;
        };
        uint32_t kind_prio_state;       /* the four in one store (call_soon) */
    };
};

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "struct aloop__call: id's low half is idx1, kind_prio_state's low byte kind "
              "(a big-endian target swaps them)");

/* kind_prio_state of a slot of kind k, no context, priority prio, state s */
#define ALOOP__KPS(k, prio, s) \
    ((uint32_t)(k) | (uint32_t)(uint8_t)(int8_t)(prio) << 16 | (uint32_t)(s) << 24)

#define ALOOP__CHUNK_SHIFT 10
#define ALOOP__CHUNK (1u << ALOOP__CHUNK_SHIFT)

struct aloop__slab {
    struct aloop__call **chunks;
    uint32_t nchunks, cap_chunks;
    uint32_t used;              /* slots handed out at least once */
    struct aloop__call *free;   /* the free list (by pointer: no chunk
                                   lookup on the way), NULL when empty */
};

/* ---- ready queue: one FIFO ring per priority of slot addresses -----------
 * An entry is the slot's address (its index is in the slot), so a drain
 * reaches it with no chunk table.  A queued slot knows its entry's place
 * (qpos, mring): taking it off the queue -- cancel, a removed watcher, a
 * new priority -- clears that entry to NULL, which the drain skips.  So a
 * slot has at most one entry that is not NULL, and only while S_QUEUED. */
struct aloop__call;
struct aloop__ring {
    struct aloop__call **e;
    uint32_t limit;             /* call_soon's fast path while count < limit:
                                   the capacity, or 0 on an adopted loop
                                   (whose call_soon tells the host) */
    uint32_t mask;              /* capacity - 1: UINT32_MAX while empty (e
                                   NULL), so that capacity = mask + 1 = 0 */
    uint32_t head, tail;        /* run freely; count = tail - head */
};

static inline int aloop__ring_full(const struct aloop__ring *r)
{
    return r->tail - r->head == r->mask + 1;
}

/* ---- timer heap: 4-ary min-heap on (when, ord) (timers.c) ---------------- */
struct aloop__hnode {
    uint64_t when;
    uint64_t ord;               /* (FIFO sequence << 32) | slot index */
};
struct aloop__heap {
    struct aloop__hnode *n;     /* n[0] is the root; allocated 64-byte aligned,
                                   3 nodes before n[0] (timers.c) */
    uint32_t len, cap;
    uint32_t seq;               /* next sequence; renumbered before it wraps */
    uint32_t npos;
    uint32_t *pos;              /* by slot index: an armed timer's place in n */
};

/* ---- fd table ------------------------------------------------------------ */
struct aloop__fd {
    struct aloop__call *rc, *wc;    /* the reader's / writer's slot (K_READ,
                                   K_WRITE: its callback, arg and fd), or
                                   NULL */
    uint8_t want;               /* what the user watches */
    uint8_t kernel;             /* what the backend was last told */
    uint8_t changed;            /* on the change list */
    int8_t prio;
};

struct aloop__inbox_item { aloop_cb cb; void *arg; };

/* loop->flags: one word, so that a next iteration begun in place reads both
 * with one load */
#define ALOOP__WAKE 1u      /* a wake-up was requested and not yet seen */
#define ALOOP__STOP 2u      /* aloop_stop(): the run ends after this iteration */

struct aloop {
    /* hot: the ready queue and the slab */
    struct aloop__slab slab;
    struct aloop__ring ready[ALOOP__NPRIO];
    struct aloop__ring moved[ALOOP__NPRIO]; /* moved by set_priority mid-drain */
    uint32_t ntomb;             /* cleared entries still in the rings
                                   (aloop__nready) */
    unsigned readymask;         /* levels whose ring may hold entries */
    unsigned movedmask;         /* levels whose moved ring holds entries */
    unsigned drain_snap;        /* a drain of several levels: the levels that
                                   held entries when it began, 0 otherwise */
    uint32_t snap_end[ALOOP__NPRIO];    /* their positions where it stops */
    int draining;               /* level being drained, or -1 */
    struct aloop__ring *drain_ring; /* the ring being drained, or NULL */
    uint32_t drain_end;         /* its position where this drain stops */
    uint8_t inplace;            /* aloop_run DEFAULT/FOREVER, not adopted */
    unsigned drain_bit;         /* the drained level's bit in readymask while
                                   its next iteration may begin in place
                                   (aloop__ready_next_iteration): inplace,
                                   a drain of one level only, nothing moved
                                   by set_priority, skip_left not 0.
                                   Else ALOOP__BAR, a bit
                                   no level has, so readymask ^ it is never
                                   0 (not even while a moved ring, which
                                   readymask does not count, is drained) */
    uint32_t skip_left;         /* polls that may still be skipped in a row
                                   (skip_max - skip_left: skipped so far) */
    uint32_t skip_max;          /* polls that may be skipped in a row: 63
                                   while an fd or a signal is watched, else
                                   unbounded (UINT32_MAX) */
    uint64_t now;
    int now_valid;
    int running;                /* inside aloop_run */
    int first;                  /* first iteration of this run */
    int adopted;                /* a host loop owns the iteration */
    atomic_uint flags;          /* ALOOP__WAKE, ALOOP__STOP: set by any thread */

    struct aloop__heap timers;

    struct aloop__fd *fds;
    int nfds_cap;
    int nwatchers;              /* user fds with a reader or writer */
    int *changes;
    int nchanges, changes_cap;

    const struct aloop_backend *be;
    void *bdata;
    pid_t pid;                  /* of the process that created the loop */
    int forked;                 /* being closed in a forked child */
    void *module;               /* dlopen handle of the backend's module */

    /* wake-up: eventfd (or pipe) unless the backend wakes natively */
    int wakefd_r, wakefd_w;

    /* thread-safe calls: a mutex-protected inbox, swapped out whole */
    pthread_mutex_t inbox_lock;
    struct aloop__inbox_item *inbox, *inbox_spare;   /* producers' / the loop's batch */
    uint32_t inbox_len, inbox_cap, spare_cap;
    uint32_t batch_len, batch_pos;
    atomic_int inbox_nonempty;

    /* signals */
    struct { uint32_t slot; } sig[ALOOP__NSIG];
    int nsignals;
    _Atomic uint64_t sig_pending;   /* bit (signum - 1) */
};

/* The one thing the loop core knows of the layers above it: a callback runs
 * in the context that was current when it was scheduled (asyncio's
 * contextvars).  The tasks layer installs these operations on first use;
 * until then every ctx is NULL and nothing is called. */
struct aloop__ctx_ops {
    void *(*capture)(void);         /* the current context, with a reference */
    void *(*enter)(void *ctx);      /* make ctx current; returns the previous */
    void (*leave)(void *prev);      /* make prev current again */
    void (*retain)(void *ctx);      /* take a reference */
    void (*release)(void *ctx);     /* drop a reference */
};
extern ALOOP__HIDDEN const struct aloop__ctx_ops *_Atomic aloop__ctx;

static inline void *aloop__ctx_capture(void)
{
    const struct aloop__ctx_ops *ops = atomic_load_explicit(&aloop__ctx, memory_order_relaxed);
    return unlikely(ops != NULL) ? ops->capture() : NULL;
}

/* task/task.c: cancel and reclaim the loop's tasks, and drop the contexts
 * pending calls hold; aloop_close() calls it first. */
ALOOP__HIDDEN void aloop__tasks_close(struct aloop *loop);

/* calls.c */
ALOOP__HIDDEN int aloop__slab_grow(struct aloop__slab *s);
ALOOP__HIDDEN void aloop__slab_fini(struct aloop__slab *s);

static inline struct aloop__call *aloop__slot(const struct aloop *loop, uint32_t idx)
{
    return &loop->slab.chunks[idx >> ALOOP__CHUNK_SHIFT][idx & (ALOOP__CHUNK - 1)];
}

/* Pop a slot off a free list known not to be empty. */
static inline struct aloop__call *aloop__slot_pop(struct aloop *loop, uint32_t *idx)
{
    struct aloop__slab *s = &loop->slab;
    struct aloop__call *c = s->free;
    s->free = c->next_free;
    c->state = S_IDLE;
    *idx = c->idx1 - 1;
    return c;
}

/* Set the context a slot's call runs in (NULL: none). */
static inline void aloop__slot_set_ctx(struct aloop__call *c, void *ctx)
{
    c->ctx = ctx;
    c->withctx = ctx != NULL;
}

/* Set a slot's kind and context together: kind_ctx in one store, which the
 * drain's load of it can be forwarded from (not from two byte stores). */
static inline void aloop__slot_set_kind(struct aloop__call *c, enum aloop__kind kind, void *ctx)
{
    c->ctx = ctx;
    c->kind_ctx = (uint16_t)(kind | (ctx != NULL ? 0x100u : 0u));
}

/* Take a free slot: its address, and its index in *idx; NULL on ENOMEM. */
static inline struct aloop__call *aloop__slot_take(struct aloop *loop, uint32_t *idx)
{
    if (unlikely(loop->slab.free == NULL) && aloop__slab_grow(&loop->slab) < 0)
        return NULL;
    return aloop__slot_pop(loop, idx);
}

/* Take a free slot; UINT32_MAX on ENOMEM. */
static inline uint32_t aloop__slot_alloc(struct aloop *loop)
{
    uint32_t idx;
    return aloop__slot_take(loop, &idx) ? idx : UINT32_MAX;
}

/* Bump a freed slot's generation.  0: it reached 2^31, which no id can
 * hold (ids are positive), and the slot is retired -- its ids must never
 * come back.  (The sign is the test.)  The add is to the whole id: the next
 * call_soon loads it whole, and a load wider than the last store to it
 * cannot be forwarded from that store (a stall of ~15 cycles per link,
 * measured with perf, when this was a 32-bit add to gen). */
static inline int aloop__gen_next(struct aloop__call *c)
{
    c->id += UINT64_C(1) << 32;
    return (int64_t)c->id >= 0;
}

/* Free a slot that is not queued (its entry was just popped to run it, or
 * it never had one) and holds no context.  S_FREE matters: the bumped id is
 * the one its next call will get, which an id of another loop may equal. */
static inline void aloop__slot_release_ran(struct aloop *loop, struct aloop__call *c)
{
    c->state = S_FREE;
    if (unlikely(!aloop__gen_next(c)))
        return;                 /* retired: its ids must never come back */
    c->next_free = loop->slab.free;
    loop->slab.free = c;
}

static inline void aloop__dequeue(struct aloop *loop, struct aloop__call *c);

static inline void aloop__slot_release(struct aloop *loop, struct aloop__call *c)
{
    if (unlikely(c->ctx != NULL)) {
        atomic_load_explicit(&aloop__ctx, memory_order_relaxed)->release(c->ctx);
        aloop__slot_set_ctx(c, NULL);
    }
    if (unlikely(c->state == S_QUEUED))     /* callers dequeue first: a safety net */
        aloop__dequeue(loop, c);
    aloop__slot_release_ran(loop, c);
}

static inline void aloop__slot_free(struct aloop *loop, uint32_t idx)
{
    aloop__slot_release(loop, aloop__slot(loop, idx));
}

static inline aloop_id_t aloop__call_id(const struct aloop__call *c)
{
    return (aloop_id_t)c->id;   /* one load: (gen << 32) | (idx + 1) */
}

static inline aloop_id_t aloop__slot_id(const struct aloop *loop, uint32_t idx)
{
    return aloop__call_id(aloop__slot(loop, idx));
}

/* The slot an id names, if it is still live (queued or armed user call). */
ALOOP__HIDDEN struct aloop__call *aloop__slot_lookup(struct aloop *loop, aloop_id_t id, uint32_t *idx);

/* ready.c */
ALOOP__HIDDEN int aloop__ring_grow(struct aloop *loop, struct aloop__ring *r);
ALOOP__HIDDEN void aloop__ready_fini(struct aloop *loop);
ALOOP__HIDDEN void aloop__ready_run(struct aloop *loop);

/* Queue slot c on ring r -- the ring of level bit `bit` -- known to have
 * room.  _marked: c->state is S_QUEUED already. */
static inline void aloop__enqueue_marked(struct aloop *loop, struct aloop__ring *r, unsigned bit,
                                         struct aloop__call *c)
{
    uint32_t pos = r->tail++;
    r->e[pos & r->mask] = c;
    c->qpos = pos;
    loop->readymask |= bit;
}

static inline void aloop__enqueue_room(struct aloop *loop, struct aloop__ring *r, unsigned bit,
                                       struct aloop__call *c)
{
    c->state = S_QUEUED;
    aloop__enqueue_marked(loop, r, bit, c);
}

/* The same for a full ring, the ring of c's level: grow it first (ready.c,
 * out of line and cold, with few arguments, so that callers of
 * aloop__enqueue_at keep little or no frame for it).  -ENOMEM. */
ALOOP__HIDDEN int aloop__enqueue_grow(struct aloop *loop, struct aloop__call *c);

/* r and bit: the ring of c's level and its bit */
static inline int aloop__enqueue_at(struct aloop *loop, struct aloop__ring *r, unsigned bit,
                                    struct aloop__call *c)
{
    if (unlikely(aloop__ring_full(r)))
        return aloop__enqueue_grow(loop, c);
    aloop__enqueue_room(loop, r, bit, c);
    return 0;
}

static inline int aloop__enqueue_call(struct aloop *loop, struct aloop__call *c)
{
    unsigned level = (unsigned)(c->prio - ALOOP_PRIO_MIN);
    return aloop__enqueue_at(loop, &loop->ready[level], 1u << level, c);
}

static inline int aloop__enqueue(struct aloop *loop, uint32_t idx)
{
    return aloop__enqueue_call(loop, aloop__slot(loop, idx));
}

/* A backend says fd is ready (aloop__io_ready, backend.h): queue its reader
 * and/or writer, once each per iteration.  Inline here for the backends built
 * into libaloop (epoll, poll, select: their wait loops call it per ready fd,
 * without a call through the PLT); modules call the exported function.  The
 * watched case first: the core's wake-up fd is never a user's, so its want
 * is 0.  On ENOMEM the event is dropped for this poll; a level-triggered fd
 * reports again at the next. */
static inline void aloop__io_ready_inline(struct aloop *loop, int fd, unsigned events)
{
    if (likely((unsigned)fd < (unsigned)loop->nfds_cap)) {
        struct aloop__fd *f = &loop->fds[fd];
        events &= f->want;
        if (likely(events != 0)) {
            if ((events & ALOOP_READABLE) && f->rc->state != S_QUEUED)
                aloop__enqueue_call(loop, f->rc);
            if ((events & ALOOP_WRITABLE) && f->wc->state != S_QUEUED)
                aloop__enqueue_call(loop, f->wc);
            return;
        }
    }
    if (unlikely(fd == loop->wakefd_r))
        atomic_fetch_or_explicit(&loop->flags, ALOOP__WAKE, memory_order_relaxed);
}

/* How many live slots are queued: the entries in the rings less the
 * cleared ones.  Not a counter kept by every enqueue and pop (one
 * read-modify-write less on each, the hot paths): the loop asks once per
 * iteration, and a ring that holds entries has its bit in readymask (or
 * movedmask). */
static inline uint32_t aloop__nready(const struct aloop *loop)
{
    if (likely((loop->readymask | loop->movedmask) == 0))
        return 0;
    uint32_t n = 0;
    for (int l = 0; l < ALOOP__NPRIO; l++)
        n += (loop->ready[l].tail - loop->ready[l].head) + (loop->moved[l].tail - loop->moved[l].head);
    return n - loop->ntomb;
}

/* Give a queued slot a new priority (calls.c, io.c). */
ALOOP__HIDDEN int aloop__requeue(struct aloop *loop, uint32_t idx, int prio);

/* Take a queued slot off the queue: clear its entry. */
static inline void aloop__dequeue(struct aloop *loop, struct aloop__call *c)
{
    struct aloop__ring *r = c->mring ? &loop->moved[c->mring - 1]
                                     : &loop->ready[c->prio - ALOOP_PRIO_MIN];
    struct aloop__call **e = &r->e[c->qpos & r->mask];
    if (likely(*e == c)) {
        *e = NULL;
        loop->ntomb++;
    }
    c->mring = 0;
    c->state = S_IDLE;
}

/* When a single-level drain is done and the next iteration would do nothing
 * but run queued calls of this same level -- a run in DEFAULT or FOREVER
 * mode, poll skippable (loop.c's rule: not 64 in a row, unless no fd and
 * no signal is watched), no timer due, no wake-up or thread-safe call, no stop, nothing
 * moved -- begin that iteration here, exactly as iterate() would begin it,
 * and return 1: its drain goes on in place.  r must hold entries.
 *
 * aloop__ready_take() is the tasks layer's direct hand-off from one task to
 * the next: if the next entry the drain in progress would run (beginning
 * the next iteration so) is a task's resume (K_TASK), pop it as the drain
 * would and return its arg.  NULL: go back to the loop, which goes on where
 * this left off. */
/* One more poll skipped in a row: the last one allowed bars the next
 * (drain_bit is never the level's bit while skip_left is 0), so the test
 * of the count is the decrement's own. */
static inline void aloop__skip_one(struct aloop *loop)
{
    if (unlikely(--loop->skip_left == 0))
        loop->drain_bit = ALOOP__BAR;
}

/* The same when a rule may bar it or a timer is pending (ready.c, cold) */
ALOOP__HIDDEN int aloop__ready_next_iteration_slow(struct aloop *loop, struct aloop__ring *r);

static inline __attribute__((always_inline)) int aloop__ready_next_iteration(struct aloop *loop,
                                                                           struct aloop__ring *r)
{
    /* One branch for all the rules: live entries exist only in r when
     * readymask is r's bit alone and nothing moved (a move, like every
     * other bar, sets drain_bit to ALOOP__BAR).  If r holds none (every
     * entry left was cancelled), the iteration begun here runs nothing and
     * the loop goes on as after any empty iteration: no test of nready.
     * What iterate() reads only when ALOOP__WAKE is set -- the inbox, a
     * batch not yet queued (which sets it again) -- needs none either. */
    uint32_t no = (loop->readymask ^ loop->drain_bit) | loop->timers.len |
                  atomic_load_explicit(&loop->flags, memory_order_relaxed);
    if (unlikely(no != 0))
        return aloop__ready_next_iteration_slow(loop, r);
    loop->now_valid = 0;
    aloop__skip_one(loop);
    loop->drain_end = r->tail;
    return 1;
}

static inline __attribute__((always_inline)) void *aloop__ready_take(struct aloop *loop)
{
    struct aloop__ring *r = loop->drain_ring;
    if (unlikely(!r))
        return NULL;
    if (r->head == loop->drain_end && (r->head == r->tail || !aloop__ready_next_iteration(loop, r)))
        return NULL;
    struct aloop__call *c = r->e[r->head & r->mask];
    if (!c || c->kind != K_TASK)
        return NULL;
    r->head++;
    c->state = S_IDLE;
    return c->arg;
}

/* timers.c */
ALOOP__HIDDEN int aloop__heap_insert(struct aloop *loop, uint32_t idx, uint64_t when);
ALOOP__HIDDEN void aloop__heap_remove(struct aloop *loop, uint32_t idx);
ALOOP__HIDDEN void aloop__timers_expire(struct aloop *loop);
ALOOP__HIDDEN void aloop__heap_fini(struct aloop__heap *h);

/* io.c */
ALOOP__HIDDEN void aloop__io_flush(struct aloop *loop);
ALOOP__HIDDEN void aloop__io_fini(struct aloop *loop);

/* Run a reader's or writer's pending slot (K_READ, K_WRITE), now idle. */
static inline void aloop__io_run(struct aloop *loop, struct aloop__call *c)
{
    c->iocb(loop, (int)c->interval, c->kind == K_READ ? ALOOP_READABLE : ALOOP_WRITABLE, c->arg);
}

/* signal.c */
ALOOP__HIDDEN void aloop__signals_collect(struct aloop *loop);
ALOOP__HIDDEN void aloop__signals_fini(struct aloop *loop);

/* wakeup.c */
ALOOP__HIDDEN int aloop__wake_init(struct aloop *loop);
ALOOP__HIDDEN void aloop__wake_fini(struct aloop *loop);
ALOOP__HIDDEN void aloop__wake(struct aloop *loop);     /* async-signal-safe */
ALOOP__HIDDEN void aloop__wake_collect(struct aloop *loop);
ALOOP__HIDDEN void aloop__inbox_fini(struct aloop *loop);
ALOOP__HIDDEN void aloop__inbox_run(struct aloop *loop);

/* registry.c */
ALOOP__HIDDEN int aloop__registry_find(const char *name, const struct aloop_backend **be, void **module);

/* loop.c */
static inline uint64_t aloop__now(struct aloop *loop)
{
    if (!loop->now_valid) {
        uint64_t t = aloop__clock();
        if (t > loop->now)
            loop->now = t;
        loop->now_valid = 1;
    }
    return loop->now;
}

/* Tell an adopted host that aloop's pending work changed (not while
 * aloop__dispatch runs: it re-arms the host itself when done). */
static inline void aloop__notify(struct aloop *loop)
{
    if (unlikely(loop->adopted) && !loop->running)
        loop->be->update(loop);
}

/* nwatchers or nsignals changed: how many polls may be skipped in a row
 * (loop.c's rule). */
static inline void aloop__watched_changed(struct aloop *loop)
{
    /* the count of polls skipped in a row carries over */
    uint32_t skipped = loop->skip_max - loop->skip_left;
    loop->skip_max = (loop->nwatchers | loop->nsignals) ? 63 : UINT32_MAX;
    loop->skip_left = skipped < loop->skip_max ? loop->skip_max - skipped : 0;
    if (loop->skip_left == 0)
        loop->drain_bit = ALOOP__BAR;   /* aloop__skip_one's rule */
}
static inline unsigned aloop__flag(const struct aloop *loop, unsigned f)
{
    return atomic_load_explicit(&((struct aloop *)loop)->flags, memory_order_relaxed) & f;
}

static inline int aloop__prio_ok(int prio)
{
    return prio >= ALOOP_PRIO_MIN && prio <= ALOOP_PRIO_MAX;
}

#endif /* ALOOP_CORE_LOOP_H */
