/* aloop-event.h -- run aloop inside a host application's libevent loop.
 *
 * Link with libaloop-event (pkg-config aloop-event).  Only this header
 * includes <event2/event.h>; aloop.h needs none of the third-party headers. */
#ifndef ALOOP_EVENT_H
#define ALOOP_EVENT_H

#include <event2/event.h>
#include <aloop.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Create an aloop loop that lives inside the libevent base `base`: the host
 * keeps calling event_base_dispatch(base) (or event_base_loop) and every
 * aloop callback (deferred calls in priority order, timers, I/O, signals,
 * thread-safe calls) fires inside it.  While aloop has nothing pending it
 * keeps no event of its own pending on `base`, so event_base_dispatch
 * returns when the host's own work is done; while it has, it does not
 * return.  Call it, and everything else on the loop, on the thread that
 * runs `base`.  aloop_native() gives `base` back.
 *
 * aloop_run() on the loop outside the host's run drives `base` itself with
 * event_base_loop (the host's events run too); inside the host's run it
 * returns -EBUSY (from a host callback libevent also logs its "reentrant
 * invocation" warning).  libevent delivers signals to one base per process:
 * aloop signal handlers can be added on one libevent base at a time, others
 * get -EBUSY.  aloop_close() removes every event aloop added to `base` and
 * leaves `base` usable; it never frees `base`, which must outlive the aloop
 * loop.  Returns 0, -EINVAL (loop or base is NULL), or -ENOMEM. */
ALOOP_API int aloop_new_from_event_base(aloop_t **loop, struct event_base *base);

#ifdef __cplusplus
}
#endif

#endif /* ALOOP_EVENT_H */
