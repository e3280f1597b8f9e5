/* aloop.h -- one small event-loop API (asyncio's AbstractEventLoop, in C)
 * with swappable backends (select, poll, epoll, libev, libevent, libuv).
 *
 * Conventions
 *   - Functions returning int return 0 on success and a negative errno on
 *     failure; aloop_strerror() gives the text.  Nothing here prints or aborts.
 *   - Time is uint64_t nanoseconds on the monotonic clock.
 *   - Deferred calls and timers are named by an aloop_id_t: positive when
 *     valid, -errno on failure.  Ids are never reused within a loop's life, so
 *     cancelling a stale id is safe (-ENOENT).
 *   - A loop belongs to the thread that runs it.  Only
 *     aloop_call_soon_threadsafe() and aloop_stop() may be called from another
 *     thread.
 */
#ifndef ALOOP_H
#define ALOOP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ALOOP_API __attribute__((visibility("default")))
#else
#define ALOOP_API
#endif

#define ALOOP_VERSION_MAJOR 0
#define ALOOP_VERSION_MINOR 1
#define ALOOP_VERSION_PATCH 0
#define ALOOP_VERSION_STRING "0.1.0"

/* ---- Types -------------------------------------------------------------- */

typedef struct aloop aloop_t;                 /* opaque */
typedef int64_t aloop_id_t;
typedef void (*aloop_cb)(aloop_t *loop, void *arg);
typedef void (*aloop_io_cb)(aloop_t *loop, int fd, unsigned events, void *arg);

enum { ALOOP_READABLE = 1, ALOOP_WRITABLE = 2 };          /* events bits */
enum { ALOOP_PRIO_MIN = -2, ALOOP_PRIO_DEFAULT = 0, ALOOP_PRIO_MAX = 2 };
typedef enum {
    ALOOP_RUN_DEFAULT,  /* until aloop_stop() or nothing is left */
    ALOOP_RUN_ONCE,     /* one iteration, blocking for I/O if nothing is ready */
    ALOOP_RUN_NOWAIT,   /* one iteration, never blocking */
    ALOOP_RUN_FOREVER   /* until aloop_stop() only */
} aloop_run_mode;

#define ALOOP_US   UINT64_C(1000)
#define ALOOP_MS   UINT64_C(1000000)
#define ALOOP_SEC  UINT64_C(1000000000)

/* ---- Errors and version ------------------------------------------------- */

/* Text for a negative (or positive) errno value; never NULL, never freed. */
ALOOP_API const char *aloop_strerror(int err);
/* The library's version, "MAJOR.MINOR.PATCH". */
ALOOP_API const char *aloop_version(void);

/* ---- Backends ----------------------------------------------------------- */

/* NULL-terminated names of the backends usable in this build and install,
 * best first.  The array is static; do not free it. */
ALOOP_API const char *const *aloop_backends(void);

/* Every backend name this version knows, usable or not (NULL-terminated). */
ALOOP_API const char *const *aloop_backends_known(void);

/* 0 if the named backend is usable here, else why not: -ENOENT unknown name
 * or module file not found, -ELIBBAD module or its library not loadable,
 * -EPROTO module built for another ABI, -ENOSYS a reserved name ("uring",
 * "kqueue") not implemented in this version, or the backend's own probe
 * error. */
ALOOP_API int aloop_backend_status(const char *name);

/* Create a loop on `backend` ("select", "poll", "epoll", "libev", "libevent",
 * "libuv").  NULL means $ALOOP_BACKEND when set and non-empty (ignored by
 * set-uid programs), else the best backend of this platform.
 * -EINVAL: loop is NULL.  -ENOENT: unknown name ("" too).  -ENOTSUP: a known
 * backend this build or install cannot load (also "uring" and "kqueue",
 * names the contract reserves, which this version does not implement).  -ENOMEM, -EMFILE, ...: resources. */
ALOOP_API int aloop_new(aloop_t **loop, const char *backend);

/* Free the loop.  -EBUSY while it is running (from one of its callbacks).
 * Pending calls, timers, watchers and signal handlers are dropped; none of
 * their callbacks is called.  If the loop is this thread's current loop, the
 * current loop is cleared.  Closing NULL returns -EINVAL.
 * After fork(), the child may only close the loops it inherited (then create
 * its own): that close frees the child's memory and its copies of the fds
 * and changes nothing the parent's loop relies on (on epoll, the instance
 * is shared).  Running or changing an inherited loop in the child is
 * undefined; aloop_get_event_loop() returns it until it is closed. */
ALOOP_API int aloop_close(aloop_t *loop);

/* The backend's name: "epoll", "libuv", ... */
ALOOP_API const char *aloop_backend(const aloop_t *loop);

/* The underlying library loop (uv_loop_t *, struct ev_loop *,
 * struct event_base *), or NULL for the native backends. */
ALOOP_API void *aloop_native(aloop_t *loop);

/* ---- The current loop (asyncio's set_event_loop / get_event_loop) ------- */

/* Set this thread's current loop; NULL clears it.  The loop is not owned. */
ALOOP_API void aloop_set_event_loop(aloop_t *loop);
/* This thread's current loop; created with aloop_new(.., NULL) on first use
 * (the caller closes it).  NULL if creating it failed. */
ALOOP_API aloop_t *aloop_get_event_loop(void);

/* ---- Running ------------------------------------------------------------ */

/* Run the loop in `mode`.  Returns 0 when nothing is left or the loop was
 * stopped, 1 when work remains (ONCE/NOWAIT), -EBUSY if it is already
 * running (no recursion), -EINVAL on a bad argument, another negative errno
 * if the backend failed. */
ALOOP_API int aloop_run(aloop_t *loop, aloop_run_mode mode);

/* Make aloop_run() return after the current iteration.  Thread-safe.  If
 * the loop is not running, the next aloop_run() runs one iteration and
 * returns (asyncio's rule). */
ALOOP_API void aloop_stop(aloop_t *loop);

/* The loop's cached monotonic time: the same for every callback of one
 * iteration, never decreasing. */
ALOOP_API uint64_t aloop_now(const aloop_t *loop);

/* Refresh the cached time from the clock. */
ALOOP_API void aloop_update_time(aloop_t *loop);

/* ---- Deferred calls and timers ------------------------------------------
 * Every one of these returns a positive id, or -EINVAL (NULL loop or cb, bad
 * priority), -ENOMEM.  Callbacks of one iteration run highest priority first,
 * FIFO within a priority; a call queued while callbacks run waits for the
 * next iteration. */

/* Call cb(loop, arg) in the next iteration, at ALOOP_PRIO_DEFAULT. */
ALOOP_API aloop_id_t aloop_call_soon(aloop_t *loop, aloop_cb cb, void *arg);
/* The same at priority `prio` (ALOOP_PRIO_MIN..ALOOP_PRIO_MAX). */
ALOOP_API aloop_id_t aloop_call_soon_prio(aloop_t *loop, int prio, aloop_cb cb, void *arg);
/* From any thread: call cb in the loop's thread, exactly once, waking the
 * loop if it is blocked.  0, or -EINVAL / -ENOMEM.  Not cancellable. */
ALOOP_API int aloop_call_soon_threadsafe(aloop_t *loop, aloop_cb cb, void *arg);
/* Call cb once at aloop_now(loop) + delay_ns (never earlier). */
ALOOP_API aloop_id_t aloop_call_later(aloop_t *loop, uint64_t delay_ns, aloop_cb cb, void *arg);
/* Call cb once at the absolute monotonic time when_ns (see aloop_now()). */
ALOOP_API aloop_id_t aloop_call_at(aloop_t *loop, uint64_t when_ns, aloop_cb cb, void *arg);
/* Call cb every interval_ns (> 0, else -EINVAL), first at now + interval,
 * until the id is cancelled.  A late run does not cause a burst: the next
 * deadline is one interval after the missed one, or after now if that too
 * has passed. */
ALOOP_API aloop_id_t aloop_call_every(aloop_t *loop, uint64_t interval_ns, aloop_cb cb, void *arg);
/* Change the priority of a pending call or timer.  -ENOENT if it already
 * ran or was cancelled, -EINVAL for a bad priority. */
ALOOP_API int aloop_set_priority(aloop_t *loop, aloop_id_t id, int prio);
/* Cancel a pending call or timer: 0, or -ENOENT if it already ran, was
 * cancelled, or never existed.  A cancelled callback is never called, even
 * if it was due in the current iteration. */
ALOOP_API int aloop_cancel(aloop_t *loop, aloop_id_t id);

/* ---- I/O watchers (level-triggered) -------------------------------------
 * cb(loop, fd, ALOOP_READABLE or ALOOP_WRITABLE, arg) runs while the fd is
 * ready.  A reader and a writer on one fd are independent; adding one where
 * one exists replaces its callback.  -EBADF for fd < 0 or a closed fd;
 * another negative errno for an fd the backend cannot watch (fd >= FD_SETSIZE
 * on select: -EINVAL; a regular file on epoll: -EPERM).  Remove a watcher
 * before closing its fd; an fd closed while watched stops firing. */

ALOOP_API int aloop_add_reader(aloop_t *loop, int fd, aloop_io_cb cb, void *arg);
/* -ENOENT if the fd has no reader. */
ALOOP_API int aloop_remove_reader(aloop_t *loop, int fd);
ALOOP_API int aloop_add_writer(aloop_t *loop, int fd, aloop_io_cb cb, void *arg);
/* -ENOENT if the fd has no writer. */
ALOOP_API int aloop_remove_writer(aloop_t *loop, int fd);
/* Priority of the fd's reader and writer callbacks (default
 * ALOOP_PRIO_DEFAULT).  -ENOENT if the fd is not watched. */
ALOOP_API int aloop_set_io_priority(aloop_t *loop, int fd, int prio);

/* ---- Signals -------------------------------------------------------------
 * cb runs in the loop's thread as an ordinary callback at ALOOP_PRIO_DEFAULT,
 * never in signal context.  Signals arriving while the loop is busy are
 * coalesced, never lost entirely.  One handler per signal per loop (adding
 * again replaces it).  -EINVAL for an invalid signal, or SIGKILL/SIGSTOP. */

ALOOP_API int aloop_add_signal_handler(aloop_t *loop, int signum, aloop_cb cb, void *arg);
/* -ENOENT if the loop has no handler for signum.  The signal's previous
 * disposition comes back when no loop handles it any more. */
ALOOP_API int aloop_remove_signal_handler(aloop_t *loop, int signum);

#ifdef __cplusplus
}
#endif
#endif /* ALOOP_H */
