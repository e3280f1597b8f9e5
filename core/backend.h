/* backend.h -- what a backend implements, and the core services it may call.
 *
 * A backend is one file in backends/ exporting exactly one
 *     const struct aloop_backend aloop_backend_<name>;
 * and one line in core/registry.c.  The core owns every semantic: ids, the
 * ready queue and its priorities, the timer heap, the clock, the fd table and
 * change coalescing, signal and thread-safe dispatch.  A backend only tells
 * the kernel (or its library) what to watch, waits, and reports which fds are
 * ready.  It never calls user code; the core dispatches, so callback order is
 * the same on every backend.
 *
 * Third-party backends (libev, libevent, libuv) are shared modules that the
 * core dlopen()s; a module exports
 *     const struct aloop_backend *aloop_module_backend(void);
 * and is refused unless ->abi == ALOOP__BACKEND_ABI.
 */
#ifndef ALOOP_CORE_BACKEND_H
#define ALOOP_CORE_BACKEND_H

#include <stdint.h>
#include "aloop.h"

#define ALOOP__BACKEND_ABI 1u

/* Internal symbols that modules need are exported (they match aloop_*);
 * everything else internal is hidden by -fvisibility=hidden. */
#define ALOOP__EXPORT __attribute__((visibility("default")))

/* features: what the backend does natively; the core fills in the rest. */
enum {
    /* ->wakeup is implemented (a library async watcher).  Without it the core
     * watches an eventfd of its own through ->modify. */
    ALOOP_BF_WAKEUP = 1u << 1,
    /* ->signal is implemented (library signal watchers).  Without it the core
     * installs sigaction handlers that use the core's wake-up. */
    ALOOP_BF_SIGNAL = 1u << 2,
    /* ->init accepts a host loop to adopt (aloop_new_from_uv, ...). */
    ALOOP_BF_ADOPT = 1u << 3,
};

struct aloop_backend {
    unsigned abi;           /* ALOOP__BACKEND_ABI */
    const char *name;       /* "epoll", ... (what aloop_backend() returns) */
    unsigned features;      /* ALOOP_BF_* */

    /* Called by the registry before listing the backend: 0 if it can run in
     * this process, else -errno (e.g. -ENOSYS).  May be NULL. */
    int (*probe)(void);

    /* Called once by aloop_new().  Allocate private state and store it with
     * aloop__set_backend_data().  `host` is the library loop to adopt, or
     * NULL to create one.  Return 0 or -errno; on failure nothing is kept. */
    int (*init)(aloop_t *loop, void *host);

    /* Called once by aloop_close() after every watcher was dropped; frees
     * what init allocated.  An adopted host loop is left usable.  In a
     * forked child closing the loop it inherited (aloop__forked() != 0) the
     * core calls neither ->modify nor ->signal first, and ->fini must not
     * change kernel state the parent's loop shares (epoll_ctl on an
     * inherited epoll fd, ...): only free memory and close the child's fds
     * (libuv: uv_loop_fork() first; libevent: event_reinit()). */
    void (*fini)(aloop_t *loop);

    /* Change the interest in fd from `oev` to `nev` (ALOOP_READABLE |
     * ALOOP_WRITABLE masks; either may be 0).  The core coalesces changes and
     * calls this only with oev != nev: eagerly when oev == 0 (so the caller
     * of aloop_add_reader gets the error: -EBADF for a closed fd, -EINVAL or
     * -EPERM for one the backend cannot watch) and when nev == 0 (the fd's
     * last watcher is gone and the caller may close the fd next: let go of
     * the file while the number still names it -- or keep its registration
     * lazily, if events of an old file under the number are told from a new
     * one's, as backends/epoll.c does), and otherwise just before ->wait.
     * Errors for nev == 0 are ignored (the fd may be closed). */
    int (*modify)(aloop_t *loop, int fd, unsigned oev, unsigned nev);

    /* Wait for I/O for at most timeout_ns (0: poll without blocking; -1:
     * until something happens), calling aloop__io_ready() for each ready
     * fd.  The timeout is the core's "wake me at" the earliest timer
     * deadline: a library backend arms its own timer with it.  Returns 0
     * (also on EINTR) or -errno on a fatal backend error.  Called by
     * aloop_run(); a backend whose host loop is adopted may return -EBUSY
     * instead and drive the core with aloop__prepare()/aloop__dispatch(). */
    int (*wait)(aloop_t *loop, int64_t timeout_ns);

    /* ALOOP_BF_WAKEUP: make a concurrent or future ->wait return.  Called
     * from any thread, and from a signal handler unless the backend also has
     * ALOOP_BF_SIGNAL: it must be async-signal-safe and never block. */
    void (*wakeup)(aloop_t *loop);

    /* ALOOP_BF_SIGNAL: start (on != 0) or stop watching signum; on delivery
     * call aloop__signal_ready() in the loop thread. */
    int (*signal)(aloop_t *loop, int signum, int on);

    /* Adopted host loops only (may be NULL otherwise): the core's pending
     * work changed outside an iteration the backend drives (a call or timer
     * was queued or cancelled from host code, before the host runs, ...).
     * The backend re-arms what the host needs to see -- e.g. an idle handle
     * when aloop__prepare() says 0, a timer for its timeout, nothing active
     * when it says -1 -- so the host neither sleeps through aloop's work
     * nor is kept alive by aloop when it has none. */
    void (*update)(aloop_t *loop);

    /* The library loop (uv_loop_t *, ...), or NULL.  May be NULL. */
    void *(*native)(aloop_t *loop);
};

/* ---- Core services for backends ---------------------------------------- */

ALOOP__EXPORT void *aloop__backend_data(const aloop_t *loop);
/* Nonzero in a child of fork() of the process that created the loop. */
ALOOP__EXPORT int aloop__forked(const aloop_t *loop);
ALOOP__EXPORT void aloop__set_backend_data(aloop_t *loop, void *data);

/* Report that fd is ready for `events` (ALOOP_READABLE | ALOOP_WRITABLE; an
 * error or hang-up is reported as both).  Queues the fd's reader, then its
 * writer, for the current iteration; unwatched fds are ignored. */
ALOOP__EXPORT void aloop__io_ready(aloop_t *loop, int fd, unsigned events);

/* A signal a backend watches natively (ALOOP_BF_SIGNAL) was delivered. */
ALOOP__EXPORT void aloop__signal_ready(aloop_t *loop, int signum);

/* For a backend running inside an adopted host loop, which owns the
 * iteration.  Before the host polls: aloop__prepare() pushes pending fd
 * changes to the backend and returns how long the host may block for aloop's
 * sake (0: work is queued; -1: no timer; else ns to the earliest deadline).
 * After the host polled: aloop__dispatch() runs steps 3 and 4 of an
 * iteration (signals, thread-safe calls, expired timers, then the ready
 * queue).  A nested aloop_run() on the loop meanwhile returns -EBUSY. */
ALOOP__EXPORT int64_t aloop__prepare(aloop_t *loop);
/* Nonzero while aloop_run() or aloop__dispatch() runs callbacks of the loop. */
ALOOP__EXPORT int aloop__running(const aloop_t *loop);

/* Set by a backend's ->init when it adopted a host loop: from then on the
 * core calls ->update as described there. */
ALOOP__EXPORT void aloop__set_adopted(aloop_t *loop);
ALOOP__EXPORT void aloop__dispatch(aloop_t *loop);

/* Nonzero if the loop has anything left (calls, timers, watchers, signal
 * handlers) -- what keeps aloop_run(DEFAULT) going. */
ALOOP__EXPORT int aloop__alive(const aloop_t *loop);

/* The clock the core uses (CLOCK_MONOTONIC, ns). */
ALOOP__EXPORT uint64_t aloop__clock(void);

/* Create a loop on an explicit backend (used by the adoption functions). */
ALOOP__EXPORT int aloop__new_with(aloop_t **loop, const struct aloop_backend *be, void *host);

#endif /* ALOOP_CORE_BACKEND_H */
