/* aloop-ev.h -- run aloop inside a host application's libev loop.
 *
 * Link with libaloop-ev (pkg-config aloop-ev).  Only this header includes
 * <ev.h>; aloop.h needs none of the third-party headers. */
#ifndef ALOOP_EV_H
#define ALOOP_EV_H

#include <ev.h>
#include <aloop.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Create an aloop loop that lives inside the libev loop `ev`: the host keeps
 * calling ev_run(ev, ...) and every aloop callback (deferred calls in
 * priority order, timers, I/O, signals, thread-safe calls) fires inside it.
 * While aloop has nothing pending it keeps no reference on `ev`, so ev_run
 * returns when the host's own work is done; while it has, ev_run does not
 * return.  Call it, and everything else on the loop, on the thread that
 * runs `ev`.  aloop_native() gives `ev` back.  aloop_run() on the loop
 * outside the host's ev_run drives `ev` itself (the host's watchers run
 * too); inside a callback of the host's ev_run it returns -EBUSY.
 * aloop_close() stops every watcher aloop started on `ev` and leaves `ev`
 * usable; it never destroys `ev`, which must outlive the aloop loop.
 * Returns 0, -EINVAL (loop or ev is NULL), or -ENOMEM. */
ALOOP_API int aloop_new_from_ev(aloop_t **loop, struct ev_loop *ev);

#ifdef __cplusplus
}
#endif

#endif /* ALOOP_EV_H */
