/* backends.h -- which backends a test program runs on (the Check suites) or
 * compares (the fuzzer): $ALOOP_TEST_BACKENDS (comma-separated) when set,
 * else every usable one (aloop_backends()). */
#ifndef ALOOP_TEST_BACKENDS_H
#define ALOOP_TEST_BACKENDS_H

#include <stdlib.h>
#include <string.h>

#include "aloop.h"

static inline int test_backends(const char **out, int cap)
{
    int n = 0;
    const char *env = getenv("ALOOP_TEST_BACKENDS");
    if (env && *env) {
        char *copy = strdup(env), *save = NULL;     /* kept: out points into it */
        for (char *t = strtok_r(copy, ", ", &save); t && n < cap; t = strtok_r(NULL, ", ", &save))
            out[n++] = t;
        return n;
    }
    for (const char *const *l = aloop_backends(); l && *l && n < cap; l++)
        out[n++] = *l;
    return n;
}

#endif
