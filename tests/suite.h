/* suite.h -- what the Check suites share: the backends under test (one
 * TCase per backend, the loop index _i names it), small tags for callback
 * arguments, and a monotonic clock for timing assertions. */
#ifndef ALOOP_TEST_SUITE_H
#define ALOOP_TEST_SUITE_H

#include <stdint.h>
#include <time.h>

#include "aloop.h"
#include "backends.h"

#define MAX_BACKENDS 16
static const char *g_backends[MAX_BACKENDS] __attribute__((unused));
static int g_nbackends __attribute__((unused));

static inline void backends_init(void)
{
    g_nbackends = test_backends(g_backends, MAX_BACKENDS);
}

/* Inside a test: the backend this run is for. */
#define BE (g_backends[_i])

#define TAG(n) ((void *)(intptr_t)(n))
#define UNTAG(p) ((int)(intptr_t)(p))

static inline uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * ALOOP_SEC + (uint64_t)ts.tv_nsec;
}

#endif
