/* loop.c -- the loop object: new/close, run modes, one iteration. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define NOSLOT UINT32_MAX

static __thread aloop_t *current_loop;

uint64_t aloop__clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * ALOOP_SEC + (uint64_t)ts.tv_nsec;
}

void *aloop__backend_data(const aloop_t *loop) { return loop->bdata; }
int aloop__forked(const aloop_t *loop) { return getpid() != loop->pid; }
void aloop__set_backend_data(aloop_t *loop, void *data) { loop->bdata = data; }

static inline int alive(const aloop_t *loop)
{
    return aloop__nready(loop) || loop->timers.len || loop->nwatchers || loop->nsignals ||
           loop->batch_pos < loop->batch_len ||
           atomic_load_explicit(&loop->inbox_nonempty, memory_order_relaxed);
}

int aloop__alive(const aloop_t *loop)
{
    return alive(loop);
}

int aloop__new_with(aloop_t **out, const struct aloop_backend *be, void *host)
{
    if (!out || !be)
        return -EINVAL;
    aloop_t *loop = calloc(1, sizeof *loop);
    if (!loop)
        return -ENOMEM;
    loop->be = be;
    loop->pid = getpid();
    loop->slab.free = NULL;
    loop->wakefd_r = loop->wakefd_w = -1;
    aloop__watched_changed(loop);
    for (int l = 0; l < ALOOP__NPRIO; l++)     /* empty rings: capacity 0 */
        loop->ready[l].mask = loop->moved[l].mask = UINT32_MAX;
    for (int s = 0; s < ALOOP__NSIG; s++)
        loop->sig[s].slot = NOSLOT;
    int r = pthread_mutex_init(&loop->inbox_lock, NULL);
    if (r) {
        free(loop);
        return -r;
    }
    r = be->init(loop, host);
    if (r < 0) {
        pthread_mutex_destroy(&loop->inbox_lock);
        free(loop);
        return r;
    }
    r = aloop__wake_init(loop);
    if (r < 0) {
        be->fini(loop);
        pthread_mutex_destroy(&loop->inbox_lock);
        free(loop);
        return r;
    }
    *out = loop;
    return 0;
}

int aloop_new(aloop_t **out, const char *backend)
{
    if (!out)
        return -EINVAL;
    if (!backend) {         /* "" is a name, and an unknown one */
        backend = secure_getenv("ALOOP_BACKEND");
        if (backend && !*backend)
            backend = NULL;
    }
    const struct aloop_backend *be;
    void *module;
    int r = aloop__registry_find(backend, &be, &module);
    if (r < 0)
        return r;
    r = aloop__new_with(out, be, NULL);
    if (r == 0)
        (*out)->module = module;
    return r;
}

int aloop_close(aloop_t *loop)
{
    if (!loop)
        return -EINVAL;
    if (loop->running)
        return -EBUSY;
    aloop__tasks_close(loop);   /* tasks layer: cancel, reclaim, drop contexts */
    if (current_loop == loop)
        current_loop = NULL;
    /* In a child of fork(), the kernel objects behind the loop (an epoll
     * instance, a library's fds) are shared with the parent's loop: only
     * memory and the child's copies of fds are released. */
    loop->forked = getpid() != loop->pid;
    aloop__signals_fini(loop);
    aloop__io_fini(loop);
    aloop__wake_fini(loop);
    loop->be->fini(loop);
    aloop__heap_fini(&loop->timers);
    aloop__ready_fini(loop);
    aloop__slab_fini(&loop->slab);
    aloop__inbox_fini(loop);
    pthread_mutex_destroy(&loop->inbox_lock);
    /* modules stay loaded: their code may be on other loops' stacks, and
     * dlopen reference counts make a later load free */
    free(loop);
    return 0;
}

const char *aloop_backend(const aloop_t *loop)
{
    return loop ? loop->be->name : NULL;
}

void *aloop_native(aloop_t *loop)
{
    return loop && loop->be->native ? loop->be->native(loop) : NULL;
}

void aloop_set_event_loop(aloop_t *loop)
{
    current_loop = loop;
}

aloop_t *aloop_get_event_loop(void)
{
    if (!current_loop && aloop_new(&current_loop, NULL) < 0)
        current_loop = NULL;
    return current_loop;
}

uint64_t aloop_now(const aloop_t *loop)
{
    /* the cache is logically const: reading it may fill it */
    return loop ? aloop__now((aloop_t *)loop) : 0;
}

void aloop_update_time(aloop_t *loop)
{
    if (!loop)
        return;
    loop->now_valid = 0;
    aloop__now(loop);
}

void aloop_stop(aloop_t *loop)
{
    if (!loop)
        return;
    atomic_fetch_or(&loop->flags, ALOOP__STOP);
    aloop__wake(loop);
}

/* How long step 2 may block: 0 if anything is queued or due. */
static int64_t poll_timeout(aloop_t *loop, aloop_run_mode mode)
{
    if (aloop__nready(loop) || mode == ALOOP_RUN_NOWAIT ||
        aloop__flag(loop, ALOOP__STOP | ALOOP__WAKE))
        return 0;
    if (loop->timers.len) {
        uint64_t now = aloop__now(loop), when = loop->timers.n[0].when;
        if (when <= now)
            return 0;
        return when - now > INT64_MAX ? INT64_MAX : (int64_t)(when - now);
    }
    /* ONCE with nothing that could ever become ready must not hang */
    if (mode == ALOOP_RUN_ONCE && !alive(loop))
        return 0;
    return -1;
}

/* Steps 3 and 4 after the poll: signals and thread-safe calls, expired
 * timers, then everything queued, by priority. */
static void after_poll(aloop_t *loop)
{
    if (aloop__flag(loop, ALOOP__WAKE))
        aloop__wake_collect(loop);
    if (loop->timers.len)
        aloop__timers_expire(loop);
    aloop__ready_run(loop);
}

static int iterate(aloop_t *loop, aloop_run_mode mode)
{
    loop->now_valid = 0;
    int64_t timeout = poll_timeout(loop, mode);
    /* Callbacks are queued: the poll may be skipped to save a system call,
     * but never in a run's first iteration nor 64 times in a row, so ready
     * I/O waits behind at most 64 iterations of queued work.  A poll that
     * must not block is skipped too when neither an fd nor a signal is
     * watched (as libuv's uv__io_poll returns at once when it has no fds):
     * wake-ups are seen through the loop's own flag (after_poll), and there
     * is nothing else it could find -- except on an adopted loop, whose wait
     * runs the host's own watchers.  (A backend's native signal watchers
     * report during its wait.) */
    if (timeout == 0 && ((aloop__nready(loop) && !loop->first && loop->skip_left != 0) ||
                         (!(loop->nwatchers | loop->nsignals) && !loop->adopted))) {
        /* 0 here: nothing is watched, and the count is moot */
        loop->skip_left = loop->skip_left ? loop->skip_left - 1 : loop->skip_max;
    } else {
        loop->skip_left = loop->skip_max;
        if (loop->nchanges)
            aloop__io_flush(loop);
        int r = loop->be->wait(loop, timeout);
        if (r < 0)
            return r;
        if (timeout != 0)
            loop->now_valid = 0;
    }
    loop->first = 0;
    after_poll(loop);
    return 0;
}

int aloop_run(aloop_t *loop, aloop_run_mode mode)
{
    if (!loop || (unsigned)mode > ALOOP_RUN_FOREVER)
        return -EINVAL;
    if (loop->running)
        return -EBUSY;
    loop->running = 1;
    loop->first = 1;
    loop->inplace = (mode == ALOOP_RUN_DEFAULT || mode == ALOOP_RUN_FOREVER) && !loop->adopted;
    int r;
    for (;;) {
        if (mode == ALOOP_RUN_DEFAULT && !alive(loop) && !aloop__flag(loop, ALOOP__STOP)) {
            r = 0;
            break;
        }
        r = iterate(loop, mode);
        if (r < 0)
            break;
        if (aloop__flag(loop, ALOOP__STOP)) {
            r = 0;
            break;
        }
        if (mode == ALOOP_RUN_ONCE || mode == ALOOP_RUN_NOWAIT) {
            r = alive(loop) ? 1 : 0;
            break;
        }
    }
    atomic_fetch_and(&loop->flags, ~ALOOP__STOP);
    loop->running = 0;
    loop->inplace = 0;
    if (loop->adopted)      /* the host drives the loop again: re-arm it */
        loop->be->update(loop);
    return r;
}

int64_t aloop__prepare(aloop_t *loop)
{
    loop->now_valid = 0;
    if (loop->nchanges)
        aloop__io_flush(loop);
    if (!aloop__alive(loop) && !aloop__flag(loop, ALOOP__WAKE))
        return -1;
    return poll_timeout(loop, ALOOP_RUN_DEFAULT);
}

int aloop__running(const aloop_t *loop)
{
    return loop->running;
}

void aloop__dispatch(aloop_t *loop)
{
    if (loop->running)
        return;
    loop->running = 1;
    loop->now_valid = 0;
    after_poll(loop);
    atomic_fetch_and(&loop->flags, ~ALOOP__STOP);
    loop->running = 0;
    if (loop->adopted)
        loop->be->update(loop);
}

void aloop__set_adopted(aloop_t *loop)
{
    loop->adopted = 1;
    for (int l = 0; l < ALOOP__NPRIO; l++)
        loop->ready[l].limit = 0;     /* call_soon's fast path: not here */
}
