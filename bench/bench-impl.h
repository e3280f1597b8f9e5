/* bench-impl.h -- the implementations built into aloop-bench itself. */
#ifndef ALOOP_BENCH_IMPL_H
#define ALOOP_BENCH_IMPL_H

#include "bench.h"

/* aloop on `backend` (the string must outlive the impl) */
void bench_aloop_impl(struct bench_impl *impl, const char *backend);
/* the plain array-of-function-pointers loop: callsoon only */
void bench_plain_impl(struct bench_impl *impl);
/* the hand-written epoll loop (raw-epoll.c) */
void bench_epoll_impl(struct bench_impl *impl);
/* nonzero once bench/bench-task.c (tasks) is linked in */
int bench_switch_available(void);

#endif
