/* task.c -- tasks: stackful coroutines scheduled through the loop's ready
 * queue.
 *
 * A task runs only inside a callback of its loop (or of aloop_close()).  To
 * wait, it registers what will wake it -- a call slot in the ready queue
 * (yield, a finished join), a timer slot (sleep, a timeout), a reader or
 * writer (an fd) -- all at the task's priority, and switches back to the
 * callback that resumed it.  The waking callback switches into the task
 * again.  So a task is ordered against other ready work exactly as a
 * callback of its priority, and nothing but the core's pooled call slots is
 * allocated per wait; task structs and stacks are pooled per loop.
 *
 * The slots are filled here directly, not through aloop_call_soon(): no id
 * lookup, and no context captured (the task carries its own context and
 * swaps it in and out itself).
 *
 * Per-loop state lives in a registry keyed by the loop (the core knows
 * nothing of tasks), found through a per-thread cache; aloop_close() calls
 * aloop__tasks_close() to cancel and reclaim. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "park.h"
#include "task.h"

#ifdef ALOOP__ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef ALOOP__TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define DEFAULT_STACK ((size_t)64 << 10)
#define CLOSE_WAITS 64              /* waits a task may make while its loop closes */
#define TASKS_PER_CHUNK 64

/* what a suspended task waits for */
enum {
    W_RUNNING,      /* not suspended */
    W_SOON,         /* a resume call is queued (start, yield, join done, cancel) */
    W_TIMER,        /* sleep: a timer slot */
    W_FD,           /* a reader and/or writer, maybe a timeout timer */
    W_JOIN,         /* on another task's joiner list */
    W_PARK,         /* a parked reader (park.h) */
    W_DONE,         /* fn returned: switched away for good */
    W_ABANDONED,    /* left suspended by aloop_close() */
};

enum {
    F_STARTED = 1,
    F_DONE = 2,
    F_DETACHED = 4,     /* no handle: reclaim when done */
    F_CANCEL = 8,       /* deliver -ECANCELED at the next wait */
    F_OUTSIDE = 16,     /* joined from outside: stop the loop when done */
    F_CLOSING = 32,     /* its loop is closing: waits answer at once */
};

struct aloop_task {
    struct aloop__fctx self;        /* the task, while suspended */
    struct aloop__fctx *back;       /* whoever resumed it, while it runs */
    struct aloop__stack *stack;
    struct aloop__tasks *ts;
    aloop_t *loop;
    struct aloop__cmap *ctx;        /* its context while suspended */
    aloop_task_fn fn;
    void *arg;
    void *result;
    int wait_rc;                    /* what the current wait returns */
    int8_t prio;
    uint8_t wait;
    uint8_t flags;
    uint8_t close_waits;
    aloop_id_t timer;               /* sleep / timeout slot, or 0 */
    int fd;
    unsigned fd_events;
    struct aloop_task *next, *prev; /* the loop's unfinished tasks; free list */
    struct aloop_task *joiners;     /* tasks joining this one */
    struct aloop_task *zombie;      /* finished, switched here: to reclaim */
    struct aloop_task *jnext, *jprev, *jtarget;
    struct aloop__park *park;       /* W_PARK: the reader waited on */
    struct aloop__call *rslot;      /* its resume: a resident call slot, */
    unsigned rbit;                  /* and the ready ring of its priority */
    struct aloop__ring *ring;
    struct aloop__stack_pool *pool;
#ifdef ALOOP__ASAN
    void *asan_fake;
    const void *back_bottom;
    size_t back_size;
#endif
#ifdef ALOOP__TSAN
    void *tsan_fiber, *tsan_back;
#endif
};

struct task_chunk {
    struct task_chunk *next;
    struct aloop_task t[TASKS_PER_CHUNK];
};

struct pool_node {
    struct pool_node *next;
    struct aloop__stack_pool pool;
};

struct aloop__tasks {
    struct aloop__tasks *next;      /* the registry */
    aloop_t *loop;
    struct pool_node *pools;        /* current size first; older sizes after */
    size_t stack_size;
    struct aloop_task *live;        /* not done */
    struct aloop_task *abandoned;
    struct aloop_task *free;
    struct task_chunk *chunks;
    int closing;
};

/* ---- the registry of per-loop state ---------------------------------------- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct aloop__tasks *reg;
static atomic_ulong reg_gen = 1;    /* bumped when an entry goes */

static __thread struct {
    aloop_t *loop;
    struct aloop__tasks *ts;
    unsigned long gen;
} cache __attribute__((tls_model("initial-exec")));

static struct aloop__tasks *tasks_new(aloop_t *loop)
{
    struct aloop__tasks *ts = calloc(1, sizeof *ts);
    struct pool_node *pn = malloc(sizeof *pn);
    if (!ts || !pn || aloop__stack_pool_init(&pn->pool, DEFAULT_STACK) < 0) {
        free(ts);
        free(pn);
        return NULL;
    }
    pn->next = NULL;
    ts->pools = pn;
    ts->stack_size = DEFAULT_STACK;
    ts->loop = loop;
    return ts;
}

static struct aloop__tasks *tasks_of(aloop_t *loop, int create)
{
    unsigned long g = atomic_load_explicit(&reg_gen, memory_order_acquire);
    if (likely(cache.loop == loop && cache.gen == g))
        return cache.ts;
    pthread_mutex_lock(&reg_lock);
    struct aloop__tasks *ts = reg;
    while (ts && ts->loop != loop)
        ts = ts->next;
    if (!ts && create && (ts = tasks_new(loop)) != NULL) {
        ts->next = reg;
        reg = ts;
    }
    pthread_mutex_unlock(&reg_lock);
    if (ts) {
        cache.loop = loop;
        cache.ts = ts;
        cache.gen = g;
    }
    return ts;
}

static void tasks_unregister(struct aloop__tasks *ts)
{
    pthread_mutex_lock(&reg_lock);
    for (struct aloop__tasks **p = &reg; *p; p = &(*p)->next)
        if (*p == ts) {
            *p = ts->next;
            break;
        }
    atomic_fetch_add_explicit(&reg_gen, 1, memory_order_release);
    pthread_mutex_unlock(&reg_lock);
    if (cache.ts == ts)
        cache.loop = NULL;
}

/* ---- task structs ---------------------------------------------------------- */

static struct aloop_task *task_alloc(struct aloop__tasks *ts)
{
    if (unlikely(!ts->free)) {
        struct task_chunk *c = malloc(sizeof *c);
        if (!c)
            return NULL;
        c->next = ts->chunks;
        ts->chunks = c;
        for (int i = TASKS_PER_CHUNK - 1; i >= 0; i--) {
            c->t[i].rslot = NULL;
            c->t[i].next = ts->free;
            ts->free = &c->t[i];
        }
    }
    struct aloop_task *t = ts->free;
    ts->free = t->next;
    return t;
}

static void task_free(struct aloop_task *t)
{
    struct aloop__tasks *ts = t->ts;
    t->flags = 0;
    t->loop = NULL;
    t->next = ts->free;
    ts->free = t;
}

static void live_unlink(struct aloop_task *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        t->ts->live = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

/* ---- switching --------------------------------------------------------------- */

static void after_exit(struct aloop_task *t);

/* A task that finished by switching straight to another (switch_to()) is
 * left in that one's `zombie`, which reclaims it, off its stack, first
 * thing (landed()). */
static __attribute__((noinline)) void bury(struct aloop_task *t)
{
    struct aloop_task *z = t->zombie;
    t->zombie = NULL;
    after_exit(z);
}

/* First thing wherever task t continues after a switch. */
static inline void landed(struct aloop_task *t)
{
    if (unlikely(t->zombie != NULL))
        bury(t);
}


#ifdef ALOOP__ASAN
/* Set by handoff() for the task it switches to: the stack it comes from is
 * then a task's, not the loop's, and must not become its way back. */
static __thread int asan_direct;

/* In a task, just switched to: finish ASan's switch, and keep the stack
 * that resumed it as its way back only if that is the loop's.  (No
 * addressable locals: their redzones would stay poisoned on the stack of a
 * task that never returns.) */
static inline void asan_resumed(struct aloop_task *t, void *fake)
{
    const void *bottom = t->back_bottom;
    size_t size = t->back_size;
    __sanitizer_finish_switch_fiber(fake, &t->back_bottom, &t->back_size);
    if (asan_direct) {
        t->back_bottom = bottom;
        t->back_size = size;
    }
    asan_direct = 0;
}
#endif

static inline void enter_fiber(struct aloop_task *t)
{
    struct aloop__fctx home;        /* the loop's side, while t runs */
#ifdef ALOOP_TASK_UCONTEXT
    home.uc = aloop__stack_uc(t->stack, 1);
#endif
    t->back = &home;
#ifdef ALOOP__ASAN
    void *fake = NULL;
    asan_direct = 0;
    __sanitizer_start_switch_fiber(&fake, t->stack->lo, (size_t)(t->stack->top - t->stack->lo));
#endif
#ifdef ALOOP__TSAN
    t->tsan_back = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
    aloop__fiber_jump(&home, &t->self);
#ifdef ALOOP__ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

/* In the task: switch back to the loop. */
static inline void leave_fiber(struct aloop_task *t)
{
#ifdef ALOOP__ASAN
    __sanitizer_start_switch_fiber(t->wait == W_DONE ? NULL : &t->asan_fake, t->back_bottom,
                                   t->back_size);
#endif
#ifdef ALOOP__TSAN
    __tsan_switch_to_fiber(t->tsan_back, 0);
#endif
    aloop__fiber_jump(&t->self, t->back);
#ifdef ALOOP__ASAN
    asan_resumed(t, t->asan_fake);
#endif
    landed(t);
}

static inline const void *saved_sp(const struct aloop_task *t)
{
#ifdef ALOOP_TASK_UCONTEXT
    return t->stack->top;       /* the zone check still runs */
#else
    return t->self.sp;
#endif
}

/* On the resumer's side: run t until a task switches back -- t, or another
 * one that t handed over to (handoff()) -- and tidy up after that one. */
static inline __attribute__((always_inline)) void run_task(struct aloop_task *t)
{
    struct aloop__tls *tl = &aloop__tls;
    aloop_task_t *prev_task = tl->task;
    struct aloop__cmap *prev_ctx = tl->ctx;
    tl->task = t;
    tl->ctx = t->ctx;
    t->wait = W_RUNNING;
    enter_fiber(t);
    struct aloop_task *out = tl->task;
    out->ctx = tl->ctx;
    tl->ctx = prev_ctx;
    tl->task = prev_task;
    aloop__stack_check(out->stack, saved_sp(out));
    if (unlikely(out->wait >= W_DONE))
        after_exit(out);
}

/* t waits (t->wait says for what) or has finished (W_DONE), and n is the
 * next task the drain would resume: switch from t to n directly, as the
 * loop would have by way of its own stack.  n returns to the loop where t
 * would have.  Both sides are suspended here (aloop__fiber_handoff). */
static inline __attribute__((always_inline)) void switch_to(struct aloop_task *t, struct aloop_task *n)
{
    struct aloop__tls *tl = &aloop__tls;
    t->ctx = tl->ctx;
    tl->ctx = n->ctx;
    tl->task = n;
    n->wait = W_RUNNING;
    n->back = t->back;
#ifdef ALOOP__ASAN
    n->back_bottom = t->back_bottom;
    n->back_size = t->back_size;
    asan_direct = 1;
    __sanitizer_start_switch_fiber(t->wait == W_DONE ? NULL : &t->asan_fake, n->stack->lo,
                                   (size_t)(n->stack->top - n->stack->lo));
#endif
#ifdef ALOOP__TSAN
    n->tsan_back = t->tsan_back;
    __tsan_switch_to_fiber(n->tsan_fiber, 0);
#endif
    if (t->wait == W_DONE)
        n->zombie = t;
    aloop__fiber_handoff(&t->self, &n->self);
#ifdef ALOOP__ASAN
    asan_resumed(t, t->asan_fake);
#endif
    landed(t);
}

/* The task the drain in progress would resume next, if that is what it
 * would run next (aloop__ready_take), after checking t's stack. */
static inline __attribute__((always_inline)) struct aloop_task *next_task(struct aloop_task *t)
{
#ifdef ALOOP_TASK_UCONTEXT
    (void)t;
    return NULL;    /* the loop's context lives in the entered task's stack */
#else
    aloop__stack_check(t->stack, aloop__sp());
    return aloop__ready_take(t->loop);
#endif
}

/* Wait: what wakes t is registered (its resume queued, a timer, an fd, a
 * joiner entry).  Straight to the next task when the drain has one next,
 * else back to the loop. */
static inline __attribute__((always_inline)) int suspend(struct aloop_task *t, uint8_t wait)
{
    t->wait = wait;
    struct aloop_task *n = next_task(t);
    if (n == t)                 /* its own resume was next (a yield) */
        t->wait = W_RUNNING;
    else if (n)
        switch_to(t, n);
    else
        leave_fiber(t);
    return t->wait_rc;
}

static void resume_cb(aloop_t *loop, void *arg)
{
    (void)loop;
    run_task(arg);
}

/* Queue a resume of t at its priority (the start, a yield, a wake-up): its
 * resident slot, taken at spawn, so a wait allocates nothing. */
static inline __attribute__((always_inline)) int queue_resume(struct aloop_task *t)
{
    aloop_t *loop = t->loop;
    if (unlikely(aloop__enqueue_at(loop, t->ring, t->rbit, t->rslot) < 0))
        return -ENOMEM;
    aloop__notify(loop);
    return 0;
}

/* Give t (a new task) its resume slot at its priority: the slot stays with
 * the task struct through the pool, so a spawn usually finds it.  -ENOMEM. */
static int resume_slot_ready(struct aloop_task *t)
{
    aloop_t *loop = t->loop;
    struct aloop__call *c = t->rslot;
    if (unlikely(!c)) {
        uint32_t idx;
        if (!(c = aloop__slot_take(loop, &idx)))
            return -ENOMEM;
        c->cb = resume_cb;
        c->arg = t;
        aloop__slot_set_kind(c, K_TASK, NULL);
        t->rslot = c;
    }
    c->prio = t->prio;
    t->ring = &loop->ready[t->prio - ALOOP_PRIO_MIN];
    t->rbit = 1u << (t->prio - ALOOP_PRIO_MIN);
    return 0;
}

/* t is done: its resume must not be queued any more. */
static void resume_slot_idle(struct aloop_task *t)
{
    if (t->rslot->state == S_QUEUED)
        aloop__dequeue(t->loop, t->rslot);
}

/* A timer slot at the task's priority calling cb(loop, t) at `when`. */
static aloop_id_t arm_timer(struct aloop_task *t, uint64_t when, aloop_cb cb)
{
    aloop_t *loop = t->loop;
    uint32_t idx = aloop__slot_alloc(loop);
    if (unlikely(idx == UINT32_MAX))
        return -ENOMEM;
    struct aloop__call *c = aloop__slot(loop, idx);
    c->cb = cb;
    c->arg = t;
    aloop__slot_set_kind(c, K_TIMER, NULL);
    c->prio = t->prio;
    if (unlikely(aloop__heap_insert(loop, idx, when) < 0)) {
        aloop__slot_free(loop, idx);
        return -ENOMEM;
    }
    aloop__notify(loop);
    return aloop__slot_id(loop, idx);
}

static uint64_t deadline(uint64_t ns)
{
    uint64_t now = aloop__clock();
    return ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
}

static void fd_unwatch(struct aloop_task *t)
{
    if (t->fd_events & ALOOP_READABLE)
        aloop_remove_reader(t->loop, t->fd);
    if (t->fd_events & ALOOP_WRITABLE)
        aloop_remove_writer(t->loop, t->fd);
    t->fd_events = 0;
}

static void joiner_unlink(struct aloop_task *j)
{
    struct aloop_task *target = j->jtarget;
    if (j->jprev)
        j->jprev->jnext = j->jnext;
    else
        target->joiners = j->jnext;
    if (j->jnext)
        j->jnext->jprev = j->jprev;
    j->jnext = j->jprev = j->jtarget = NULL;
}

/* Take back what a suspended task registered for its wait. */
static void undo_wait(struct aloop_task *t)
{
    if (t->timer) {
        aloop_cancel(t->loop, t->timer);
        t->timer = 0;
    }
    if (t->wait == W_FD)
        fd_unwatch(t);
    else if (t->wait == W_JOIN)
        joiner_unlink(t);
    else if (t->wait == W_PARK)
        t->park->waiter = NULL;     /* the reader stays parked */
}

/* ---- the life of a task ---------------------------------------------------- */

static void wake_joiners(struct aloop_task *t)
{
    struct aloop_task *j;
    while ((j = t->joiners) != NULL) {
        joiner_unlink(j);
        j->wait_rc = 0;
        j->wait = W_SOON;
        if (queue_resume(j) < 0)
            j->flags |= F_CANCEL;   /* out of memory: left waiting, cancelled */
    }
}

static void task_main(void *arg)
{
    struct aloop_task *t = arg;
#ifdef ALOOP__ASAN
    asan_resumed(t, NULL);
#endif
    landed(t);
    t->flags |= F_STARTED;
    t->result = t->fn(t->arg);
    t->flags |= F_DONE;
    wake_joiners(t);
    t->wait = W_DONE;
    struct aloop_task *n = next_task(t);
    if (n && n != t)
        switch_to(t, n);    /* never returns: n reclaims t */
    leave_fiber(t);
    __builtin_trap();   /* never resumed */
}

/* Everything but the handle goes back: stack, context, fiber. */
static void reclaim(struct aloop_task *t)
{
    live_unlink(t);
    resume_slot_idle(t);
    aloop__stack_put(t->pool, t->stack);
    t->stack = NULL;
    struct aloop__cmap *ctx = t->ctx;
    t->ctx = NULL;
#ifdef ALOOP__TSAN
    __tsan_destroy_fiber(t->tsan_fiber);
    t->tsan_fiber = NULL;
#endif
    aloop__cmap_release(ctx);       /* may run free_value: last */
}

static void after_exit(struct aloop_task *t)
{
    if (t->wait == W_ABANDONED) {
        live_unlink(t);
        t->next = t->ts->abandoned;
        t->ts->abandoned = t;
        return;
    }
    if (t->flags & F_OUTSIDE)
        atomic_fetch_or(&t->loop->flags, ALOOP__STOP);    /* the joiner's aloop_run returns */
    int detached = t->flags & F_DETACHED;
    reclaim(t);
    if (detached)
        task_free(t);
}

int aloop_spawn_prio(aloop_t *loop, aloop_task_t **out, int prio, aloop_task_fn fn, void *arg)
{
    if (out)
        *out = NULL;
    if (unlikely(!loop || !fn || !aloop__prio_ok(prio)))
        return -EINVAL;
    struct aloop_task *cur = aloop__tls.task;
    struct aloop__tasks *ts = cur && cur->loop == loop ? cur->ts : tasks_of(loop, 1);
    if (unlikely(!ts))
        return -ENOMEM;
    if (unlikely(ts->closing))
        return -ECANCELED;
    struct aloop_task *t = task_alloc(ts);
    if (unlikely(!t))
        return -ENOMEM;
    struct aloop__stack_pool *pool = &ts->pools->pool;
    struct aloop__stack *s = aloop__stack_get(pool);
    if (unlikely(!s)) {
        t->next = ts->free;
        ts->free = t;
        return -ENOMEM;
    }
    t->stack = s;
    t->pool = pool;
    t->ts = ts;
    t->loop = loop;
    t->fn = fn;
    t->arg = arg;
    t->result = NULL;
    t->wait_rc = 0;
    t->prio = (int8_t)prio;
    t->wait = W_SOON;
    t->flags = out ? 0 : F_DETACHED;
    t->timer = 0;
    t->fd_events = 0;
    t->joiners = t->jnext = t->jprev = t->jtarget = t->zombie = NULL;
#ifdef ALOOP_TASK_UCONTEXT
    aloop__fiber_make(&t->self, s->lo, s->top, aloop__stack_uc(s, 0), task_main, t);
#else
    aloop__fiber_make(&t->self, s->lo, s->top, NULL, task_main, t);
#endif
#ifdef ALOOP__TSAN
    t->tsan_fiber = __tsan_create_fiber(0);
#endif
    if (unlikely(resume_slot_ready(t) < 0 || queue_resume(t) < 0)) {
#ifdef ALOOP__TSAN
        __tsan_destroy_fiber(t->tsan_fiber);
#endif
        aloop__stack_put(pool, s);
        t->next = ts->free;
        ts->free = t;
        return -ENOMEM;
    }
    t->ctx = aloop__cmap_retain(aloop__tls.ctx);
    t->prev = NULL;
    t->next = ts->live;
    if (ts->live)
        ts->live->prev = t;
    ts->live = t;
    if (out)
        *out = t;
    return 0;
}

int aloop_spawn(aloop_t *loop, aloop_task_t **task, aloop_task_fn fn, void *arg)
{
    return aloop_spawn_prio(loop, task, ALOOP_PRIO_DEFAULT, fn, arg);
}

aloop_task_t *aloop_current_task(void)
{
    return aloop__tls.task;
}

aloop_t *aloop_task_loop(const aloop_task_t *t)
{
    return t ? t->loop : NULL;
}

int aloop_task_done(const aloop_task_t *t)
{
    return t && (t->flags & F_DONE) ? 1 : 0;
}

void aloop_task_release(aloop_task_t *t)
{
    if (!t)
        return;
    if (t->flags & F_DONE)
        task_free(t);
    else
        t->flags |= F_DETACHED;
}

int aloop_task_cancel(aloop_task_t *t)
{
    if (!t)
        return -EINVAL;
    if (t->flags & F_DONE)
        return 0;
    switch (t->wait) {
    case W_TIMER:
    case W_FD:
    case W_JOIN:
    case W_PARK:
        if (queue_resume(t) < 0)
            break;              /* out of memory: deliver at the next wait */
        undo_wait(t);
        t->wait = W_SOON;
        t->wait_rc = -ECANCELED;
        return 0;
    case W_SOON:
        if (t->flags & F_STARTED) {
            t->wait_rc = -ECANCELED;    /* the wait it is in */
            return 0;
        }
        break;                  /* not started: its first wait */
    default:
        break;                  /* running: its next wait */
    }
    t->flags |= F_CANCEL;
    return 0;
}

/* ---- waiting --------------------------------------------------------------- */

/* Before a task waits: a pending cancel or a closing loop answer at once.
 * Returns 0 to go on and wait. */
static __attribute__((noinline, cold)) int wait_refused(struct aloop_task *t)
{
    if (t->flags & F_CANCEL) {
        t->flags &= (uint8_t)~F_CANCEL;
        return -ECANCELED;
    }
    if (t->close_waits) {
        t->close_waits--;
        return -ECANCELED;
    }
    t->wait = W_ABANDONED;              /* never comes back */
    leave_fiber(t);
    __builtin_trap();
}

static inline int wait_check(struct aloop_task *t)
{
    if (unlikely(t->flags & (F_CANCEL | F_CLOSING)))
        return wait_refused(t);
    return 0;
}

int aloop_yield(void)
{
    struct aloop_task *t = aloop__tls.task;
    if (unlikely(!t))
        return -EPERM;
    int r = wait_check(t);
    if (unlikely(r))
        return r;
    /* a task runs inside the loop's iteration (aloop_run, or the adopted
     * host's aloop__dispatch): no host to tell (aloop__notify) */
    if (unlikely(aloop__enqueue_at(t->loop, t->ring, t->rbit, t->rslot) < 0))
        return -ENOMEM;
    t->wait_rc = 0;
    return suspend(t, W_SOON);
}

static void timer_cb(aloop_t *loop, void *arg)
{
    (void)loop;
    struct aloop_task *t = arg;
    t->timer = 0;
    if (t->wait == W_FD) {
        fd_unwatch(t);
        t->wait_rc = -ETIMEDOUT;
    }
    run_task(t);
}

int aloop_sleep(uint64_t ns)
{
    struct aloop_task *t = aloop__tls.task;
    if (unlikely(!t))
        return -EPERM;
    if (ns == 0)
        return aloop_yield();
    int r = wait_check(t);
    if (unlikely(r))
        return r;
    aloop_id_t id = arm_timer(t, deadline(ns), timer_cb);
    if (unlikely(id < 0))
        return (int)id;
    t->timer = id;
    t->wait_rc = 0;
    return suspend(t, W_TIMER);
}

static void fd_cb(aloop_t *loop, int fd, unsigned events, void *arg)
{
    (void)fd;
    struct aloop_task *t = arg;
    fd_unwatch(t);
    if (t->timer) {
        aloop_cancel(loop, t->timer);
        t->timer = 0;
    }
    t->wait_rc = (int)events;
    run_task(t);
}

int aloop_wait_fd(int fd, unsigned events, uint64_t timeout_ns)
{
    struct aloop_task *t = aloop__tls.task;
    if (unlikely(!t))
        return -EPERM;
    if (!events || (events & ~(unsigned)(ALOOP_READABLE | ALOOP_WRITABLE)))
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    int r = wait_check(t);
    if (unlikely(r))
        return r;
    aloop_t *loop = t->loop;
    if (fd < loop->nfds_cap && (loop->fds[fd].want & events))
        return -EBUSY;
    t->fd = fd;
    t->fd_events = 0;
    if (events & ALOOP_READABLE) {
        if ((r = aloop_add_reader(loop, fd, fd_cb, t)) < 0)
            return r;
        t->fd_events = ALOOP_READABLE;
    }
    if (events & ALOOP_WRITABLE) {
        if ((r = aloop_add_writer(loop, fd, fd_cb, t)) < 0) {
            fd_unwatch(t);
            return r;
        }
        t->fd_events |= ALOOP_WRITABLE;
    }
    if (loop->fds[fd].prio != t->prio)
        aloop_set_io_priority(loop, fd, t->prio);
    t->timer = 0;
    if (timeout_ns) {
        aloop_id_t id = arm_timer(t, deadline(timeout_ns), timer_cb);
        if (id < 0) {
            fd_unwatch(t);
            return (int)id;
        }
        t->timer = id;
    }
    return suspend(t, W_FD);
}

/* ---- parked readers (park.h) ------------------------------------------------- */

static void park_cb(aloop_t *loop, int fd, unsigned events, void *arg)
{
    struct aloop__park *p = arg;
    struct aloop_task *t = p->waiter;
    if (!t) {                   /* nobody waits: stop the level-triggered echo */
        aloop_remove_reader(loop, fd);
        p->armed = 0;
        return;
    }
    p->waiter = NULL;
    t->wait_rc = (int)events;
    run_task(t);
}

int aloop__park_wait(struct aloop__park *p)
{
    struct aloop_task *t = aloop__tls.task;
    if (unlikely(!t))
        return -EPERM;
    if (p->fd < 0)
        return -EBADF;
    int r = wait_check(t);
    if (unlikely(r))
        return r;
    aloop_t *loop = t->loop;
    if (unlikely(p->waiter))
        return -EBUSY;
    if (!p->armed) {
        if (p->fd < loop->nfds_cap && (loop->fds[p->fd].want & ALOOP_READABLE))
            return -EBUSY;
        if ((r = aloop_add_reader(loop, p->fd, park_cb, p)) < 0)
            return r;
        p->armed = 1;
        p->loop = loop;
    }
    if (loop->fds[p->fd].prio != t->prio)
        aloop_set_io_priority(loop, p->fd, t->prio);
    p->waiter = t;
    t->park = p;
    t->timer = 0;
    t->wait_rc = 0;
    return suspend(t, W_PARK);
}

void aloop__park_drop(struct aloop__park *p)
{
    if (p->armed && p->loop) {
        aloop_remove_reader(p->loop, p->fd);
        p->armed = 0;
    }
}

/* A task waiting on an fd that aloop_fd_close() closes: -EBADF. */
static void wake_closed(struct aloop_task *t)
{
    int queued = queue_resume(t) == 0;
    undo_wait(t);
    t->wait = W_SOON;
    t->wait_rc = -EBADF;
    if (!queued)
        t->flags |= F_CANCEL;   /* out of memory: it cannot be woken */
}

int aloop_fd_close(aloop_t *loop, int fd)
{
    if (!loop)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (fd < loop->nfds_cap) {
        struct aloop__fd *f = &loop->fds[fd];
        struct aloop__call *rc = (f->want & ALOOP_READABLE) ? f->rc : NULL;
        struct aloop__call *wc = (f->want & ALOOP_WRITABLE) ? f->wc : NULL;
        struct aloop_task *rt = rc && rc->iocb == fd_cb ? rc->arg : NULL;
        if (rc && rc->iocb == park_cb) {
            struct aloop__park *p = rc->arg;
            rt = p->waiter;     /* undo_wait() forgets it */
            p->armed = 0;
        }
        struct aloop_task *wt = wc && wc->iocb == fd_cb ? wc->arg : NULL;
        if (rt)
            wake_closed(rt);
        if (wt && wt != rt)
            wake_closed(wt);
        if (loop->fds[fd].want & ALOOP_READABLE)
            aloop_remove_reader(loop, fd);
        if (loop->fds[fd].want & ALOOP_WRITABLE)
            aloop_remove_writer(loop, fd);
    }
    return close(fd) < 0 ? -errno : 0;
}

/* ---- joining ------------------------------------------------------------------ */

static int join_result(const struct aloop_task *t, void **result, int *own)
{
    void *r = t->result;
    if ((uintptr_t)r >= (uintptr_t)-4095) {
        if (result)
            *result = NULL;
        *own = 1;
        return (int)(intptr_t)r;
    }
    if (result)
        *result = r;
    return 0;
}

/* *own: whether an error is the task's own (else the join's). */
static int join(struct aloop_task *t, void **result, int *own)
{
    *own = 0;
    if (!t)
        return -EINVAL;
    struct aloop_task *self = aloop__tls.task;
    if (!(t->flags & F_DONE)) {
        if (self) {
            if (t == self)
                return -EDEADLK;
            if (t->loop != self->loop)
                return -EXDEV;
            int r = wait_check(self);
            if (r)
                return r;
            self->jtarget = t;
            self->jprev = NULL;
            self->jnext = t->joiners;
            if (t->joiners)
                t->joiners->jprev = self;
            t->joiners = self;
            self->wait_rc = 0;
            if ((r = suspend(self, W_JOIN)) < 0)
                return r;
        } else {
            aloop_t *loop = t->loop;
            if (loop->running)
                return -EBUSY;
            t->flags |= F_OUTSIDE;
            int r = aloop_run(loop, ALOOP_RUN_DEFAULT);
            t->flags &= (uint8_t)~F_OUTSIDE;
            if (!(t->flags & F_DONE)) {
                if (r < 0)
                    return r;
                return aloop__alive(loop) ? -EINTR : -EDEADLK;
            }
        }
    }
    return join_result(t, result, own);
}

int aloop_task_join(aloop_task_t *t, void **result)
{
    int own;
    return join(t, result, &own);
}

int aloop_gather(aloop_task_t **tasks, size_t n, void **results)
{
    if (!tasks && n)
        return -EINVAL;
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        int own;
        int e = join(tasks[i], &r, &own);
        if (results)
            results[i] = r;
        if (e < 0 && !first)
            first = e;
        if (e < 0 && !own && tasks[i])
            return e;   /* the join itself failed (cancelled, loop stopped, ...) */
    }
    return first;
}

int aloop_set_task_stack_size(aloop_t *loop, size_t bytes)
{
    if (!loop || bytes < 16384 || bytes > ((size_t)1 << 30))
        return -EINVAL;
    struct aloop__tasks *ts = tasks_of(loop, 1);
    if (!ts)
        return -ENOMEM;
    size_t size = aloop__stack_round(bytes);
    ts->stack_size = size;
    /* stacks in use go back to the pool they came from; a size used
     * before brings its pool to the front */
    for (struct pool_node **p = &ts->pools; *p; p = &(*p)->next)
        if ((*p)->pool.size == size) {
            struct pool_node *pn = *p;
            *p = pn->next;
            pn->next = ts->pools;
            ts->pools = pn;
            return 0;
        }
    struct pool_node *pn = malloc(sizeof *pn);
    if (!pn)
        return -ENOMEM;
    int r = aloop__stack_pool_init(&pn->pool, size);
    if (r < 0) {
        free(pn);
        return r;
    }
    pn->next = ts->pools;
    ts->pools = pn;
    return 0;
}

/* ---- closing ------------------------------------------------------------------ */

/* Drop the contexts the core's pending slots hold: aloop_close() frees the
 * slots without calling them. */
static void release_slot_contexts(aloop_t *loop)
{
    const struct aloop__ctx_ops *ops = atomic_load_explicit(&aloop__ctx, memory_order_relaxed);
    if (!ops)
        return;
    uint32_t n = loop->slab.nchunks << ALOOP__CHUNK_SHIFT;
    for (uint32_t i = 0; i < n; i++) {
        struct aloop__call *c = aloop__slot(loop, i);
        if (c->ctx) {
            void *ctx = c->ctx;
            aloop__slot_set_ctx(c, NULL);
            ops->release(ctx);
        }
    }
}

void aloop__tasks_close(aloop_t *loop)
{
    struct aloop__tasks *ts = tasks_of(loop, 0);
    if (ts) {
        ts->closing = 1;
        struct aloop_task *t;
        while ((t = ts->live) != NULL) {
            if (!(t->flags & F_STARTED)) {
                /* never ran: nothing on its stack */
                t->flags |= F_DONE;
                wake_joiners(t);
                reclaim(t);
                continue;
            }
            if (t->wait == W_RUNNING) {
                /* cannot be (close refuses while the loop runs); keep going */
                live_unlink(t);
                t->next = ts->abandoned;
                ts->abandoned = t;
                continue;
            }
            if (t->wait != W_SOON)
                undo_wait(t);
            t->wait_rc = -ECANCELED;
            t->close_waits = CLOSE_WAITS;
            t->flags |= F_CLOSING;
            run_task(t);    /* it finishes, or is left in ts->abandoned */
        }
        for (t = ts->abandoned; t; t = t->next) {
            struct aloop__cmap *ctx = t->ctx;
            t->ctx = NULL;
#ifdef ALOOP__TSAN
            __tsan_destroy_fiber(t->tsan_fiber);
#endif
            aloop__cmap_release(ctx);
        }
        tasks_unregister(ts);
        while (ts->chunks) {
            struct task_chunk *c = ts->chunks;
            ts->chunks = c->next;
            free(c);
        }
        while (ts->pools) {
            struct pool_node *pn = ts->pools;
            ts->pools = pn->next;
            aloop__stack_pool_fini(&pn->pool);
            free(pn);
        }
        free(ts);
    }
    release_slot_contexts(loop);
}
