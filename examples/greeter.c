/* greeter -- greet Petrov every 2 s, Ivanov every 3 s and World every 5 s,
 * for a bounded time (default 11 s; first argument in seconds).
 * ALOOP_BACKEND=poll ./examples/greeter switches the backend, no rebuild. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <aloop.h>

struct who {
    const char *name;
    uint64_t every;
    uint64_t start;
};

static void greet(aloop_t *loop, void *arg)
{
    struct who *w = arg;
    double t = (double)(aloop_now(loop) - w->start) / ALOOP_SEC;
    printf("[%5.1fs] Hello, %s!\n", t, w->name);
    fflush(stdout);
}

static void enough(aloop_t *loop, void *arg)
{
    (void)arg;
    aloop_stop(loop);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 11.0;
    aloop_t *loop;
    int r = aloop_new(&loop, NULL);
    if (r < 0) {
        const char *want = getenv("ALOOP_BACKEND");
        fprintf(stderr, "greeter: cannot create a loop on backend '%s': %s\n",
                want && *want ? want : "(default)",
                r == -ENOENT ? "unknown backend" : r == -ENOTSUP ? "not available in this build"
                                                 : aloop_strerror(r));
        fprintf(stderr, "available backends:");
        for (const char *const *n = aloop_backends(); *n; n++)
            fprintf(stderr, " %s", *n);
        fprintf(stderr, "\n");
        return 1;
    }
    printf("greeter on the %s backend, for %g s\n", aloop_backend(loop), secs);
    struct who who[] = {
        { "Petrov", 2 * ALOOP_SEC, 0 },
        { "Ivanov", 3 * ALOOP_SEC, 0 },
        { "World", 5 * ALOOP_SEC, 0 },
    };
    for (size_t i = 0; i < sizeof who / sizeof who[0]; i++) {
        who[i].start = aloop_now(loop);
        if ((r = aloop_call_every(loop, who[i].every, greet, &who[i])) < 0)
            break;
    }
    if (r >= 0)
        r = (int)aloop_call_later(loop, (uint64_t)(secs * ALOOP_SEC), enough, NULL);
    if (r >= 0)
        r = aloop_run(loop, ALOOP_RUN_DEFAULT);
    if (r < 0)
        fprintf(stderr, "greeter: %s\n", aloop_strerror(r));
    aloop_close(loop);
    return r < 0;
}
