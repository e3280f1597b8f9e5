/* tasks -- plain functions and coroutines on one loop, waited for together.
 *
 * What asyncio users write as
 *     for f in jobs:
 *         if iscoroutinefunction(f): tasks.append(create_task(f()))
 *         else: loop.call_soon(f)
 *     await gather(*tasks)
 * with priorities deciding which ready task runs next, and a context
 * variable carrying a request id through nested tasks.
 *
 * ALOOP_BACKEND=poll ./examples/tasks switches the backend, no rebuild. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <aloop.h>
#include <aloop-task.h>

/* ---- the runner: a job is a plain function or a coroutine ------------------ */

struct job {
    const char *name;
    int prio;
    aloop_cb plain;             /* either this ... */
    aloop_task_fn coro;         /* ... or this */
    void *arg;
};

static int run_all(aloop_t *loop, const struct job *jobs, size_t n)
{
    aloop_task_t **tasks = calloc(n, sizeof *tasks);
    size_t ntasks = 0;
    int r = 0;
    if (!tasks)
        return -ENOMEM;
    for (size_t i = 0; i < n && r >= 0; i++) {
        if (jobs[i].coro)
            r = aloop_spawn_prio(loop, &tasks[ntasks++], jobs[i].prio, jobs[i].coro, jobs[i].arg);
        else
            r = (int)aloop_call_soon_prio(loop, jobs[i].prio, jobs[i].plain, jobs[i].arg);
    }
    if (r >= 0)
        r = aloop_gather(tasks, ntasks, NULL);     /* runs the loop until all are done */
    if (r >= 0)
        r = aloop_run(loop, ALOOP_RUN_DEFAULT);    /* and whatever plain work is left */
    for (size_t i = 0; i < ntasks; i++)
        aloop_task_release(tasks[i]);
    free(tasks);
    return r < 0 ? r : 0;
}

/* ---- a context variable: the request id ------------------------------------ */

static aloop_ctxvar_t *request_id;

static const char *rid(void)
{
    return aloop_ctxvar_get(request_id, "-");
}

static void *query(void *arg)
{
    const char *what = arg;
    aloop_sleep(10 * ALOOP_MS);
    printf("  [%s] %s done\n", rid(), what);       /* inherited from the handler */
    return NULL;
}

static void *handle_request(void *arg)
{
    char *id = malloc(16);
    if (!id)
        return aloop_task_error(-ENOMEM);
    snprintf(id, 16, "req-%d", (int)(intptr_t)arg);
    aloop_ctxvar_set(request_id, id);               /* freed when no context holds it */
    printf("  [%s] handling\n", rid());
    aloop_t *loop = aloop_task_loop(aloop_current_task());
    aloop_task_t *sub[2];
    aloop_spawn(loop, &sub[0], query, "database");
    aloop_spawn(loop, &sub[1], query, "template");
    int r = aloop_gather(sub, 2, NULL);
    aloop_task_release(sub[0]);
    aloop_task_release(sub[1]);
    printf("  [%s] answered\n", rid());
    return r < 0 ? aloop_task_error(r) : NULL;
}

/* ---- priorities ------------------------------------------------------------- */

static void *stepper(void *arg)
{
    const char *name = arg;
    for (int step = 1; step <= 3; step++) {
        printf("  %s step %d\n", name, step);
        aloop_yield();      /* every ready task runs once per iteration, by priority */
    }
    return NULL;
}

static void plain_hello(aloop_t *loop, void *arg)
{
    (void)loop;
    printf("  plain function: %s (request id here: %s)\n", (const char *)arg, rid());
}

int main(void)
{
    aloop_t *loop;
    int r = aloop_new(&loop, NULL);
    if (r < 0) {
        fprintf(stderr, "tasks: cannot create a loop: %s\n", aloop_strerror(r));
        return 1;
    }
    request_id = aloop_ctxvar_new("request_id", free);
    printf("tasks on the %s backend\n\n", aloop_backend(loop));

    printf("priorities (MAX runs first in every iteration, then DEFAULT, then MIN):\n");
    const struct job prio_jobs[] = {
        { "low", ALOOP_PRIO_MIN, NULL, stepper, "low " },
        { "normal", ALOOP_PRIO_DEFAULT, NULL, stepper, "normal" },
        { "hello", ALOOP_PRIO_DEFAULT, plain_hello, NULL, "queued with the tasks" },
        { "high", ALOOP_PRIO_MAX, NULL, stepper, "HIGH" },
    };
    if ((r = run_all(loop, prio_jobs, sizeof prio_jobs / sizeof prio_jobs[0])) < 0)
        goto out;

    printf("\nrequests (a context variable follows each into its nested tasks):\n");
    const struct job req_jobs[] = {
        { "r1", ALOOP_PRIO_DEFAULT, NULL, handle_request, (void *)1 },
        { "r2", ALOOP_PRIO_DEFAULT, NULL, handle_request, (void *)2 },
        { "hi", ALOOP_PRIO_DEFAULT, plain_hello, NULL, "between the requests" },
    };
    r = run_all(loop, req_jobs, sizeof req_jobs / sizeof req_jobs[0]);
    printf("\nafter all: request id in the base context: %s\n", rid());
out:
    if (r < 0)
        fprintf(stderr, "tasks: %s\n", aloop_strerror(r));
    aloop_close(loop);
    aloop_ctxvar_free(request_id);
    return r < 0;
}
