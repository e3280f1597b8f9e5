/* bench-task.c -- the tasks layer's workloads.
 *
 *   switch     two tasks yielding to each other through the loop (every loop
 *              rule kept): ns per round trip, beside a bare switch of the
 *              same routine with no loop (the physical limit), measured in
 *              the same run;
 *   spawn      spawn + finish + join (+ release) of a trivial task, pooled
 *              stacks: one at a time from a driver task, and in batches;
 *   tasks-rss  RSS of 100,000 and of 1,000,000 sleeping tasks that each
 *              touched 1.5 KiB of stack.
 *
 * Built two ways.  Into aloop-bench (the default): it provides the switch
 * workload on every aloop backend (aloop_bench_task_switch(), which
 * bench-aloop.c calls through a weak reference), spawn and tasks-rss
 * (bench_task_impl()), and the "bare" loop, the switch routine alone
 * (bench_bare_impl()).  As bench/bench-task (BENCH_TASK_MAIN): a program
 * that prints the same figures as a short list, and whose `--bare N`,
 * `--yield N` and `--spawn N` run only that loop N times, with callgrind
 * instrumentation on around it only, for
 *     valgrind --tool=callgrind --instr-atstart=no ./bench/bench-task --bare 1000000
 * (instructions per round trip = Ir / N).
 *
 * The bare switch calls aloop__fiber_switch, which libaloop keeps hidden:
 * both programs compile task/switch_<arch>.S in themselves. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aloop.h"
#include "aloop-task.h"

/* aloop-bench --clock cpu: the thread's CPU time (tasks run on the thread
 * that runs the loop, so that is all of their work) */
static int cpu_clock;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- switch through the loop ------------------------------------------------ */

static void *yielder(void *arg)
{
    uint64_t n = *(const uint64_t *)arg;
    for (uint64_t i = 0; i < n; i++)
        if (aloop_yield() < 0)
            return aloop_task_error(-EIO);
    return NULL;
}

/* Two tasks, `rounds` yields each: one round trip is A yields, B runs and
 * yields, A runs.  Returns 0 and the seconds in *sec, or a negative errno. */
static int yield_run(const char *backend, uint64_t rounds, double *sec)
{
    aloop_t *loop;
    int r = aloop_new(&loop, backend);
    if (r < 0)
        return r;
    aloop_task_t *t[2];
    if ((r = aloop_spawn(loop, &t[0], yielder, &rounds)) < 0 ||
        (r = aloop_spawn(loop, &t[1], yielder, &rounds)) < 0) {
        aloop_close(loop);
        return r;
    }
    aloop_run(loop, ALOOP_RUN_NOWAIT);      /* both started, stacks warm */
    uint64_t t0 = now_ns();
    r = aloop_gather(t, 2, NULL);
    uint64_t t1 = now_ns();
    aloop_task_release(t[0]);
    aloop_task_release(t[1]);
    aloop_close(loop);
    *sec = (double)(t1 - t0) * 1e-9;
    return r;
}

/* ---- the bare switch: the same routine, no loop --------------------------- */

#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(ALOOP_TASK_UCONTEXT)
#define BARE_SWITCH "assembly"
void aloop__fiber_switch(void **save, void *to);
void aloop__fiber_start(void);

static void *main_sp, *peer_sp;

static void peer(void *arg)
{
    (void)arg;
    for (;;)
        aloop__fiber_switch(&peer_sp, main_sp);
}

/* The frame task/stack.c lays out for a new task: a switch's own frame
 * whose return address is aloop__fiber_start. */
static void peer_make(void *stack, size_t size)
{
    uintptr_t *end = (uintptr_t *)(((uintptr_t)stack + size) & ~(uintptr_t)15) - 2;
    end[0] = end[1] = 0;
#if defined(__x86_64__)
    uintptr_t *sp = end - 7;
    memset(sp, 0, 7 * sizeof *sp);
    sp[3] = (uintptr_t)peer;                    /* r12: entry */
    sp[6] = (uintptr_t)aloop__fiber_start;
#else
    uintptr_t *sp = end - 20;
    memset(sp, 0, 20 * sizeof *sp);
    sp[0] = (uintptr_t)peer;                    /* x19: entry */
    sp[11] = (uintptr_t)aloop__fiber_start;     /* x30 */
#endif
    peer_sp = sp;
}

static __attribute__((noinline)) void bare_loop(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        aloop__fiber_switch(&main_sp, peer_sp);
}
#else
#define BARE_SWITCH "ucontext"
#include <ucontext.h>
static ucontext_t main_uc, peer_uc;

static void peer_uc_fn(void)
{
    for (;;)
        swapcontext(&peer_uc, &main_uc);
}

static void peer_make(void *stack, size_t size)
{
    getcontext(&peer_uc);
    peer_uc.uc_stack.ss_sp = stack;
    peer_uc.uc_stack.ss_size = size;
    makecontext(&peer_uc, peer_uc_fn, 0);
}

static __attribute__((noinline)) void bare_loop(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        swapcontext(&main_uc, &peer_uc);
}
#endif

static char peer_stack[64 << 10] __attribute__((aligned(16)));
static int peer_ready;

static void bare_prepare(void)
{
    if (!peer_ready) {
        peer_make(peer_stack, sizeof peer_stack);
        peer_ready = 1;
    }
}

/* ns per bare round trip (main -> peer -> main), n of them after a warm-up */
static double bare_ns(uint64_t n)
{
    bare_prepare();
    bare_loop(1000);
    uint64_t t0 = now_ns();
    bare_loop(n);
    return (double)(now_ns() - t0) / (double)n;
}

/* ---- spawn -------------------------------------------------------------------- */

static void *trivial(void *arg)
{
    return arg;
}

struct spawn_job { aloop_t *loop; uint64_t n; unsigned batch; int rc; };

static void *spawner(void *arg)
{
    struct spawn_job *j = arg;
    aloop_task_t *t[1024];
    for (uint64_t i = 0; i < j->n; i += j->batch) {
        for (unsigned k = 0; k < j->batch; k++)
            if ((j->rc = aloop_spawn(j->loop, &t[k], trivial, NULL)) < 0)
                return NULL;
        if ((j->rc = aloop_gather(t, j->batch, NULL)) < 0)
            return NULL;
        for (unsigned k = 0; k < j->batch; k++)
            aloop_task_release(t[k]);
    }
    return NULL;
}

/* n (a multiple of batch, 1..1024) spawn + finish + join + release from a
 * driver task, after a warm-up that fills the loop's pools.  0 and the
 * seconds in *sec, or a negative errno. */
static int spawn_run(const char *backend, uint64_t n, unsigned batch, double *sec)
{
    aloop_t *loop;
    int r = aloop_new(&loop, backend);
    if (r < 0)
        return r;
    struct spawn_job warm = { loop, batch * 4, batch, 0 }, j = { loop, n, batch, 0 };
    aloop_task_t *d;
    if ((r = aloop_spawn(loop, &d, spawner, &warm)) < 0)
        goto out;
    r = aloop_task_join(d, NULL);
    aloop_task_release(d);
    if (r < 0 || (r = warm.rc) < 0 || (r = aloop_spawn(loop, &d, spawner, &j)) < 0)
        goto out;
    aloop_run(loop, ALOOP_RUN_NOWAIT);          /* the driver is running */
    uint64_t t0 = now_ns();
    r = aloop_task_join(d, NULL);
    uint64_t t1 = now_ns();
    aloop_task_release(d);
    if (r == 0)
        r = j.rc;
    *sec = (double)(t1 - t0) * 1e-9;
out:
    aloop_close(loop);
    return r;
}

/* ---- tasks-rss ---------------------------------------------------------------- */

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * sysconf(_SC_PAGESIZE);
}

static void *sleeper(void *arg)
{
    (void)arg;
    char buf[1536];                 /* 1.5 KiB of stack touched */
    memset(buf, 1, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
    aloop_sleep(3600 * ALOOP_SEC);
    return NULL;
}

struct rss { double bytes, spawn_s, close_s; int rc; };

/* n detached tasks that each touch their stack and sleep; the growth of
 * the process's RSS once every one is asleep.  Run it in a fresh process
 * (a child), so that each count starts from the same heap. */
static struct rss rss_measure(const char *backend, long n)
{
    struct rss r = { 0, 0, 0, 0 };
    aloop_t *loop;
    if ((r.rc = aloop_new(&loop, backend)) < 0)
        return r;
    long before = rss_bytes();
    uint64_t t0 = now_ns();
    for (long i = 0; i < n && r.rc == 0; i++)
        r.rc = aloop_spawn(loop, NULL, sleeper, NULL);
    if (r.rc == 0 && (r.rc = aloop_run(loop, ALOOP_RUN_NOWAIT)) > 0)
        r.rc = 0;                               /* every task ran and sleeps */
    uint64_t t1 = now_ns();
    long after = rss_bytes();
    r.bytes = (double)(after - before);
    r.spawn_s = (double)(t1 - t0) * 1e-9;
    aloop_close(loop);                          /* cancels and reclaims them */
    r.close_s = (double)(now_ns() - t1) * 1e-9;
    return r;
}

#ifndef BENCH_TASK_MAIN
/* ---- aloop-bench's workloads -------------------------------------------------- */
#include "bench.h"

/* switch: out[0] = seconds per round trip, over cfg->nswitch of them (two
 * tasks, each yielding nswitch times).  Called by bench-aloop.c's a_switch. */
BENCH_EXPORT int aloop_bench_task_switch(const char *backend, const struct bench_cfg *c, double *out);

int aloop_bench_task_switch(const char *backend, const struct bench_cfg *c, double *out)
{
    cpu_clock = c->cpu_clock;
    uint64_t n = c->nswitch ? c->nswitch : 1;
    double sec = 0;
    int r = yield_run(backend, n, &sec);
    out[0] = sec / (double)n;
    return r;
}

/* spawn: out[SPAWN_ONE], out[SPAWN_BATCH] = seconds per task, over
 * cfg->nspawn tasks (rounded down to a multiple of BENCH_SPAWN_BATCH) */
static int t_spawn(void *ctx, const struct bench_cfg *c, double *out)
{
    cpu_clock = c->cpu_clock;
    uint64_t n = c->nspawn / BENCH_SPAWN_BATCH * BENCH_SPAWN_BATCH;
    if (n == 0)
        n = BENCH_SPAWN_BATCH;
    double s1 = 0, s2 = 0;
    int r = spawn_run(ctx, n, 1, &s1);
    if (r == 0)
        r = spawn_run(ctx, n, BENCH_SPAWN_BATCH, &s2);
    if (r < 0)
        return r;
    out[SPAWN_ONE] = s1 / (double)n;
    out[SPAWN_BATCH] = s2 / (double)n;
    return 0;
}

/* tasks-rss: out[0] = RSS growth in bytes for cfg->ntasks sleeping tasks
 * (the sample already runs in a child process of its own) */
static int t_rss(void *ctx, const struct bench_cfg *c, double *out)
{
    struct rss r = rss_measure(ctx, (long)c->ntasks);
    if (r.rc < 0)
        return r.rc;
    out[0] = r.bytes;
    return 0;
}

void bench_task_impl(struct bench_impl *impl)
{
    impl->spawn = t_spawn;
    impl->tasks_rss = t_rss;
}

/* the bare loop: out[0] = seconds per bare round trip, over
 * BENCH_BARE_FACTOR * cfg->nswitch of them (a sample about as long as
 * the loops' samples) */
static int bare_switch(void *ctx, const struct bench_cfg *c, double *out)
{
    (void)ctx;
    cpu_clock = c->cpu_clock;
    uint64_t n = c->nswitch ? c->nswitch : 1;
    out[0] = bare_ns(n * BENCH_BARE_FACTOR) * 1e-9;
    return 0;
}

void bench_bare_impl(struct bench_impl *impl)
{
    memset(impl, 0, sizeof *impl);
    impl->abi = BENCH_ABI;
    impl->name = "bare";
    impl->version = BARE_SWITCH;
    impl->swtch = bare_switch;
}

#else /* BENCH_TASK_MAIN: the stand-alone program */

#include <sys/wait.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

/* rss_measure() in a child process, so that each count starts from a fresh heap */
static struct rss rss_run(const char *backend, long n)
{
    struct rss out = { 0, 0, 0, -1 };
    int p[2];
    if (pipe(p) < 0)
        return out;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        struct rss r = rss_measure(backend, n);
        ssize_t w = write(p[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(p[1]);
    if (pid > 0) {
        if (read(p[0], &out, sizeof out) != (ssize_t)sizeof out)
            out.rc = -EIO;
        waitpid(pid, NULL, 0);
    }
    close(p[0]);
    return out;
}

static double spawn_ns(const char *backend, uint64_t n, unsigned batch)
{
    double sec;
    return spawn_run(backend, n, batch, &sec) < 0 ? -1 : sec * 1e9 / (double)n;
}

/* ---- main ------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define RUNS 5

int main(int argc, char **argv)
{
    const char *backends[16];
    int nb = 0, quick = 0;
    uint64_t bare_only = 0, yield_only = 0, spawn_only = 0;
    unsigned batch = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc) {
            char *list = strdup(argv[++i]), *save = NULL;
            for (char *tok = strtok_r(list, ",", &save); tok && nb < 16; tok = strtok_r(NULL, ",", &save))
                backends[nb++] = tok;
        } else if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--bare") && i + 1 < argc) {
            bare_only = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--yield") && i + 1 < argc) {
            yield_only = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--spawn") && i + 1 < argc) {
            spawn_only = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            batch = (unsigned)atoi(argv[++i]);
            if (batch < 1 || batch > 1024)
                batch = 1;
        } else {
            fprintf(stderr,
                    "usage: bench-task [-b backend[,backend...]] [--quick]\n"
                    "       bench-task --bare N | --yield N | --spawn N [--batch B] [-b backend]\n"
                    "         (one loop, for callgrind)\n"
                    "aloop-bench --workload switch,spawn,tasks-rss measures the same, every backend\n");
            return 2;
        }
    }
    if (nb == 0)
        for (const char *const *b = aloop_backends(); *b && nb < 16; b++)
            backends[nb++] = *b;

    bare_prepare();
    if (bare_only) {
        bare_loop(1000);
        CALLGRIND_START_INSTRUMENTATION;
        bare_loop(bare_only);
        CALLGRIND_STOP_INSTRUMENTATION;
        printf("bare switch: %llu round trips\n", (unsigned long long)bare_only);
        return 0;
    }
    if (spawn_only) {
        aloop_t *loop;
        if (aloop_new(&loop, backends[0]) < 0)
            return 1;
        spawn_only = (spawn_only + batch - 1) / batch * batch;
        struct spawn_job warm = { loop, 4 * batch, batch, 0 }, j = { loop, spawn_only, batch, 0 };
        aloop_task_t *d;
        aloop_spawn(loop, &d, spawner, &warm);
        aloop_task_join(d, NULL);
        aloop_task_release(d);
        aloop_spawn(loop, &d, spawner, &j);
        aloop_run(loop, ALOOP_RUN_NOWAIT);
        CALLGRIND_START_INSTRUMENTATION;
        aloop_task_join(d, NULL);
        CALLGRIND_STOP_INSTRUMENTATION;
        aloop_task_release(d);
        aloop_close(loop);
        printf("spawn+finish+join+release (%s): %llu\n", backends[0], (unsigned long long)spawn_only);
        return 0;
    }
    if (yield_only) {
        aloop_t *loop;
        if (aloop_new(&loop, backends[0]) < 0)
            return 1;
        aloop_task_t *t[2];
        uint64_t warm = 1000;
        aloop_spawn(loop, &t[0], yielder, &warm);
        aloop_spawn(loop, &t[1], yielder, &warm);
        aloop_gather(t, 2, NULL);
        aloop_task_release(t[0]);
        aloop_task_release(t[1]);
        aloop_spawn(loop, &t[0], yielder, &yield_only);
        aloop_spawn(loop, &t[1], yielder, &yield_only);
        aloop_run(loop, ALOOP_RUN_NOWAIT);
        CALLGRIND_START_INSTRUMENTATION;
        aloop_gather(t, 2, NULL);
        CALLGRIND_STOP_INSTRUMENTATION;
        aloop_close(loop);
        printf("yield (%s): %llu round trips\n", backends[0], (unsigned long long)yield_only);
        return 0;
    }

    printf("aloop tasks bench: %s switch, medians of %d runs\n\n", BARE_SWITCH, RUNS);
    uint64_t nbare = quick ? 2000000 : 20000000, nyield = quick ? 200000 : 2000000;
    double bare[RUNS];
    for (int k = 0; k < RUNS; k++)
        bare[k] = bare_ns(nbare);
    qsort(bare, RUNS, sizeof bare[0], cmp_double);
    double b = bare[RUNS / 2];
    printf("%-44s %8.1f ns\n", "switch: bare round trip (A->B->A, no loop)", b);
    for (int i = 0; i < nb; i++) {
        double y[RUNS];
        int ok = 1;
        for (int k = 0; k < RUNS && ok; k++) {
            double sec = 0;
            ok = yield_run(backends[i], nyield, &sec) == 0;
            y[k] = sec * 1e9 / (double)nyield;
            bare[k] = bare_ns(nbare / 4);       /* the bare switch, interleaved */
        }
        if (!ok) {
            printf("switch: yield round trip, %-18s      n/a\n", backends[i]);
            continue;
        }
        qsort(y, RUNS, sizeof y[0], cmp_double);
        qsort(bare, RUNS, sizeof bare[0], cmp_double);
        char label[64];
        snprintf(label, sizeof label, "switch: yield round trip, %s", backends[i]);
        printf("%-44s %8.1f ns  = %.1fx bare (%.1f ns in the same runs)\n", label, y[RUNS / 2],
               y[RUNS / 2] / bare[RUNS / 2], bare[RUNS / 2]);
    }
    uint64_t nspawn = quick ? 200000 : 2000000;
    double s1[RUNS], s2[RUNS];
    for (int k = 0; k < RUNS; k++) {
        s1[k] = spawn_ns(backends[0], nspawn, 1);
        s2[k] = spawn_ns(backends[0], nspawn, 1000);
    }
    qsort(s1, RUNS, sizeof s1[0], cmp_double);
    qsort(s2, RUNS, sizeof s2[0], cmp_double);
    printf("%-44s %8.1f ns  (%s)\n", "spawn: spawn+finish+join+release, one by one", s1[RUNS / 2],
           backends[0]);
    printf("%-44s %8.1f ns  (%s)\n", "spawn: the same, 1000 at a time (gather)", s2[RUNS / 2],
           backends[0]);
    long counts[2] = { 100000, 1000000 };
    for (int k = 0; k < (quick ? 1 : 2); k++) {
        struct rss r = rss_run(backends[0], counts[k]);
        char label[64];
        snprintf(label, sizeof label, "tasks-rss: %ld sleeping tasks", counts[k]);
        if (r.rc < 0)
            printf("%-44s      n/a (%s)\n", label, aloop_strerror(r.rc));
        else
            printf("%-44s %8.1f MiB = %.2f KiB/task (spawn+start %.2f s, close %.2f s)\n", label,
                   r.bytes / 1048576.0, r.bytes / (double)counts[k] / 1024.0, r.spawn_s, r.close_s);
    }
    return 0;
}
#endif
