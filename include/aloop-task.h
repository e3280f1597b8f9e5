/* aloop-task.h -- tasks (stackful coroutines on a loop) and context
 * variables (asyncio's contextvars).  Part of libaloop: include <aloop.h>
 * and this header, link -laloop.
 *
 * A task runs fn(arg) on its own stack, on its loop's thread, interleaved
 * with the loop's callbacks.  When it waits (sleep, yield, an fd, a join)
 * the loop runs; when the wait is over, the task is resumed by a callback
 * of the task's priority in the loop's ready queue, so a task is ordered
 * against other ready work exactly as a callback of that priority.
 *
 * Conventions are those of aloop.h: 0 or a negative errno.  A task handle
 * belongs to the loop's thread; every function here must be called on it.
 *
 * Stacks
 *   Each task has a stack of aloop_set_task_stack_size() bytes (default
 *   64 KiB), from mmap, committed page by page as it is touched, without
 *   transparent huge pages, and pooled per loop (a finished task's stack
 *   goes to the next spawn; the pool is unmapped by aloop_close()).
 *   Overflow is detected, never silent:
 *     - while the process's mapping budget allows (vm.max_map_count; a
 *       guarded stack costs two mappings: about 28,000 stacks with the
 *       default 65530, minus what the process already maps, keeping 8192
 *       mappings for the application), a stack has a PROT_NONE guard page
 *       below it: an overflow faults there (SIGSEGV, as a thread's would);
 *     - beyond that, stacks have no guard page but a 4 KiB unused pad below
 *       them, and every stack has a 256-byte canary zone at its low end.
 *       At every switch out of a task, the canary and the saved stack
 *       pointer are checked; an overflow found there prints
 *       "aloop: task stack overflow ..." to stderr and aborts the process
 *       (the memory below the stack may already be corrupt: this is the
 *       one place where aloop aborts).  A single frame larger than pad +
 *       zone that writes nothing in them can escape this check: give
 *       deep or large-frame code a bigger stack.
 *   ALOOP_TASK_GUARDS=N in the environment caps the guarded stacks at N
 *   (0: none); it is read once per process.
 *
 * aloop_close() and tasks
 *   aloop_close() cancels every unfinished task of the loop and resumes it
 *   once more, right there: the wait it is in returns -ECANCELED, and so
 *   does at once every wait it makes while the loop closes (at most 64 of
 *   them).  A task that returns then is reclaimed whole.  A task that never
 *   started is reclaimed without running.  A task still not done after that
 *   is abandoned: its stack is unmapped without unwinding it, so what only
 *   its frames referenced is lost.  Every task handle of the loop is
 *   invalid after aloop_close() (as if released).
 */
#ifndef ALOOP_TASK_H
#define ALOOP_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "aloop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Tasks ---------------------------------------------------------------- */

typedef struct aloop_task aloop_task_t;
typedef void *(*aloop_task_fn)(void *arg);

/* Spawn fn(arg) as a task of `loop` at ALOOP_PRIO_DEFAULT.  It starts in a
 * later callback of the loop (never inside this call), in a copy of the
 * current context.  *task receives the handle (release it with
 * aloop_task_release()); task NULL spawns it detached.  May be called from
 * anywhere on the loop's thread: plain callbacks, tasks, or outside the loop.
 * -EINVAL: NULL loop or fn, bad priority.  -ENOMEM.  -ECANCELED: the loop
 * is closing. */
ALOOP_API int aloop_spawn(aloop_t *loop, aloop_task_t **task, aloop_task_fn fn, void *arg);
/* The same at priority `prio` (ALOOP_PRIO_MIN..ALOOP_PRIO_MAX): the task
 * starts and is resumed by callbacks of that priority. */
ALOOP_API int aloop_spawn_prio(aloop_t *loop, aloop_task_t **task, int prio,
                               aloop_task_fn fn, void *arg);

/* Wait until the task is done and store its return value in *result
 * (result may be NULL).  In a task: suspends the caller.  Outside any task:
 * runs the loop (ALOOP_RUN_DEFAULT) until the task is done -- asyncio's
 * run_until_complete.  A done task answers at once, however often.
 * Returns 0; the task's error if it returned aloop_task_error(err) (then
 * *result is NULL); -EINVAL for NULL; -EDEADLK joining itself, or from
 * outside when the loop ran out of work before the task finished;
 * -ECANCELED if the joining task was cancelled while waiting; -EXDEV
 * joining from a task of another loop; -EBUSY from a plain callback of the
 * task's (running) loop, or an adopted loop whose host runs the iteration;
 * -EINTR if aloop_stop() ended the run first. */
ALOOP_API int aloop_task_join(aloop_task_t *task, void **result);

/* Cancel: the task's current wait (or, if it is not waiting, its next one)
 * returns -ECANCELED; the task decides what to do.  One cancel is delivered
 * once; later waits work again.  Cancelling a finished task is harmless.
 * 0, or -EINVAL for NULL. */
ALOOP_API int aloop_task_cancel(aloop_task_t *task);

/* 1 once the task's function has returned, else 0 (0 for NULL). */
ALOOP_API int aloop_task_done(const aloop_task_t *task);

/* Drop the handle, joined or not: an unfinished task runs on, detached, and
 * is reclaimed when done.  The handle must not be used afterwards.
 * Releasing NULL does nothing. */
ALOOP_API void aloop_task_release(aloop_task_t *task);

/* The running task, or NULL outside any task. */
ALOOP_API aloop_task_t *aloop_current_task(void);

/* The task's loop (NULL for NULL). */
ALOOP_API aloop_t *aloop_task_loop(const aloop_task_t *task);

/* Join every task of tasks[0..n), in order, storing results[i] (results may
 * be NULL).  Returns 0, or the first error in index order (a task's own
 * error, or one of aloop_task_join's).  It waits for all of them, except
 * that a joining task cancelled meanwhile returns -ECANCELED at once. */
ALOOP_API int aloop_gather(aloop_task_t **tasks, size_t n, void **results);

/* What a task returns to fail with `err` (a negative errno, -4095..-1):
 * aloop_task_join() then returns err.  Any return value that is, as an
 * intptr_t, in -4095..-1 is taken as such an error (as Linux's ERR_PTR):
 * return real pointers or small non-negative integers. */
static inline void *aloop_task_error(int err)
{
    return (void *)(intptr_t)err;
}

/* ---- Waiting (only inside a task) -------------------------------------------
 * Each returns 0 (or the ready events), -ECANCELED if the task was cancelled,
 * -ETIMEDOUT on timeout, -EPERM outside a task, -ENOMEM. */

/* Sleep at least ns nanoseconds (measured on the live monotonic clock from
 * this call, so never early).  aloop_sleep(0) is aloop_yield(). */
ALOOP_API int aloop_sleep(uint64_t ns);

/* asyncio.sleep(0): let every callback that is ready run first (the loop
 * finishes its current iteration), then resume in the next iteration. */
ALOOP_API int aloop_yield(void);

/* Wait until fd is ready for `events` (ALOOP_READABLE | ALOOP_WRITABLE) and
 * return the ready event (level-triggered: one of the bits asked for), or
 * -ETIMEDOUT after timeout_ns (0: no timeout).  The wait uses the loop's
 * reader / writer of fd: -EBUSY if one is already set (by another waiting
 * task or the application); it sets the fd's I/O priority
 * (aloop_set_io_priority) to the task's, so the task resumes at its own
 * priority.  -EINVAL for no events, -EBADF as for aloop_add_reader();
 * -EBADF also when aloop_fd_close() closed the fd meanwhile. */
ALOOP_API int aloop_wait_fd(int fd, unsigned events, uint64_t timeout_ns);

/* Close an fd that tasks may be waiting on: their aloop_wait_fd() returns
 * -EBADF (they are resumed at their priority), the fd's reader and writer
 * are removed, then the fd is closed.  Closing it with close() instead
 * leaves a waiter asleep until its timeout (or for ever).  Any thread that
 * owns `loop`; returns close()'s result (0 or -errno), -EINVAL for NULL. */
ALOOP_API int aloop_fd_close(aloop_t *loop, int fd);

/* Stack size of the tasks spawned on `loop` from now on: rounded up to the
 * page size; 16 KiB .. 1 GiB, else -EINVAL.  Default 64 KiB. */
ALOOP_API int aloop_set_task_stack_size(aloop_t *loop, size_t bytes);

/* ---- Context variables (asyncio's contextvars) ------------------------------
 * A context maps variables to values.  There is one base context per thread;
 * a task starts with a copy of its spawner's context (O(1): contexts are
 * immutable maps shared by reference), so its sets are seen by itself and by
 * what it spawns afterwards, never by its parent or siblings.  A callback
 * queued with aloop_call_soon*, aloop_call_later/at/every runs in a copy of
 * the context current when it was queued.  I/O and signal callbacks run in
 * the base context. */

typedef struct aloop_ctxvar aloop_ctxvar_t;

/* A new variable (the name is copied, for debugging; may be NULL).
 * free_value (may be NULL) is called on each value set, once that value is
 * reachable from no context any more.  NULL on ENOMEM. */
ALOOP_API aloop_ctxvar_t *aloop_ctxvar_new(const char *name, void (*free_value)(void *));

/* Drop the variable.  Values of it still held by contexts stay until those
 * contexts go (then free_value runs); the variable must not be used again. */
ALOOP_API void aloop_ctxvar_free(aloop_ctxvar_t *var);

/* Set the variable in the current context.  Each value set is owned by the
 * contexts from then on (free_value runs once for it); setting the value
 * the variable already has does nothing.  0, -EINVAL (NULL var), -ENOMEM. */
ALOOP_API int aloop_ctxvar_set(aloop_ctxvar_t *var, void *value);

/* The variable's value in the current context, or default_value if it has
 * none there. */
ALOOP_API void *aloop_ctxvar_get(const aloop_ctxvar_t *var, void *default_value);

/* The variable's name (never NULL). */
ALOOP_API const char *aloop_ctxvar_name(const aloop_ctxvar_t *var);

#ifdef __cplusplus
}
#endif
#endif /* ALOOP_TASK_H */
