/* greeter -- three tasks greet Petrov every 2 s, Ivanov every 3 s and World
 * every 5 s.  When the time is up (default 11 s; first argument in seconds,
 * fractions allowed) a timer cancels them: their sleep returns -ECANCELED and
 * they return.  ALOOP_BACKEND=poll ./examples/greeter switches the backend,
 * no rebuild. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <aloop.h>
#include <aloop-task.h>

struct who {
    const char *name;
    uint64_t every;                 /* ns */
};

static uint64_t start;              /* aloop_now() when the greeters were spawned */

static void *greet(void *arg)
{
    struct who *w = arg;
    aloop_t *loop = aloop_task_loop(aloop_current_task());
    for (;;) {
        if (aloop_sleep(w->every) < 0)
            break;                  /* -ECANCELED: time is up */
        printf("[%5.1fs] Hello, %s!\n", (double)(aloop_now(loop) - start) / ALOOP_SEC, w->name);
        fflush(stdout);
    }
    return NULL;
}

static void time_up(aloop_t *loop, void *arg)
{
    aloop_task_t **tasks = arg;
    (void)loop;
    for (int i = 0; i < 3; i++)
        aloop_task_cancel(tasks[i]);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 11.0;
    if (!(secs >= 0 && secs < 1e9)) {
        fprintf(stderr, "usage: greeter [seconds]\n");
        return 2;
    }
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
    fflush(stdout);

    struct who who[3] = {
        { "Petrov", 2 * ALOOP_SEC },
        { "Ivanov", 3 * ALOOP_SEC },
        { "World", 5 * ALOOP_SEC },
    };
    aloop_task_t *tasks[3];
    int n = 0;                      /* tasks spawned */
    start = aloop_now(loop);
    while (n < 3 && (r = aloop_spawn(loop, &tasks[n], greet, &who[n])) == 0)
        n++;
    if (r >= 0) {
        aloop_id_t id = aloop_call_later(loop, (uint64_t)(secs * ALOOP_SEC), time_up, tasks);
        r = id < 0 ? (int)id : 0;
    }
    if (r >= 0)
        r = aloop_gather(tasks, 3, NULL);   /* runs the loop until all three have returned */
    if (r < 0)
        fprintf(stderr, "greeter: %s\n", aloop_strerror(r));
    for (int i = 0; i < n; i++)
        aloop_task_release(tasks[i]);
    aloop_close(loop);
    return r < 0;
}
