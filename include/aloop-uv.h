/* aloop-uv.h -- run aloop inside an application's libuv loop.
 *
 * Link with libaloop-uv (pkg-config aloop-uv).  The application keeps
 * calling uv_run() on its own loop; every aloop callback of the adopted loop
 * (deferred calls in priority order, timers, I/O watchers, signal handlers,
 * thread-safe calls) runs inside it, with the same order and semantics as on
 * any other backend.
 */
#ifndef ALOOP_UV_H
#define ALOOP_UV_H

#include <uv.h>

#include <aloop.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Create an aloop loop on the libuv backend that lives inside `uv`, which
 * the caller created and keeps owning (aloop never runs uv_loop_close on it).
 * 0 and *loop, or -EINVAL (a NULL argument), -ENOMEM, or libuv's error.
 *
 * - While the loop has nothing pending, none of its handles keeps `uv`
 *   alive: uv_run(uv, UV_RUN_DEFAULT) returns when the application's own
 *   handles are done.  While it has calls, timers, watchers or signal
 *   handlers, uv_run does not return.  A thread-safe call that arrives after
 *   uv_run returned runs when the application runs `uv` again.
 * - aloop_native(loop) returns `uv`.
 * - aloop_run(loop, mode) called outside uv_run drives `uv` itself (uv_run
 *   once per iteration), so the application's handles run too; it returns
 *   as on any backend.  Called from inside uv_run -- a host callback -- it
 *   would nest uv_run, which is not reentrant: -EBUSY where that is detected
 *   (aloop's own callbacks, the host's I/O callbacks); from the host's
 *   other callbacks (timers, idle, ...) it is undefined.  Do not.
 * - aloop_close(loop) (not from inside one of the loop's own callbacks:
 *   -EBUSY) stops every watcher and uv_close()s aloop's handles; `uv` stays
 *   usable.  Their memory is released by their close callbacks, so run `uv`
 *   (uv_run) at least once more before uv_loop_close(uv).
 * - In a child of fork(), call uv_loop_fork(uv) (as libuv requires) before
 *   aloop_close or any other use of the loop there.
 * - An fd that `uv` already watches (a uv_poll_t, uv_tcp_t, ... of the
 *   application) cannot be watched by aloop as well: -EEXIST.
 * - Signal handlers use uv_signal_t, so they coexist with the application's
 *   own uv_signal_t handles for the same signal.
 */
ALOOP_API int aloop_new_from_uv(aloop_t **loop, uv_loop_t *uv);

#ifdef __cplusplus
}
#endif
#endif /* ALOOP_UV_H */
