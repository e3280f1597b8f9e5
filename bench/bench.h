/* bench.h -- what aloop-bench and its workload implementations share.
 *
 * An implementation ("impl") runs every workload on one loop: an aloop
 * backend, a raw library (libev, libevent, libuv: each in a module of its
 * own, see below), the hand-written epoll loop, or the plain array of
 * function pointers.  Each workload function runs ONE sample from a fresh
 * loop and returns 0 with its figures in out[], or a negative errno (the
 * cell is then shown as n/a).  It never prints.  Where a workload's memory
 * would otherwise be touched for the first time inside the timing (timers,
 * fan-out), the sample first does the same work once untimed on the same
 * loop (schedule + cancel, queue + run), so the figure is the steady state
 * and not page faults; pipes do a warm-up round.
 *
 * Raw-library modules: libev.so.4 also exports libevent's function names,
 * so a process that linked both libraries the ordinary way would call the
 * wrong one.  Each raw workload file is therefore built as a module of its
 * own (aloop-bench-ev.so, aloop-bench-event.so, aloop-bench-uv.so) linked
 * against its own library only, and aloop-bench dlopen()s it with
 * RTLD_NOW | RTLD_LOCAL.  A module exports exactly
 *     const struct bench_impl *aloop_bench_module(void);
 */
#ifndef ALOOP_BENCH_H
#define ALOOP_BENCH_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define BENCH_ABI 4u

#if defined(__GNUC__)
#define BENCH_EXPORT __attribute__((visibility("default")))
#define BENCH_NOINLINE __attribute__((noinline))
#else
#define BENCH_EXPORT
#define BENCH_NOINLINE
#endif

/* Sizes and shared inputs of one run; the same for every impl. */
struct bench_cfg {
    /* pipes: libevent's bench.c.  npipes socketpairs; fds[2i] is the read
     * end of pair i, fds[2i+1] its write end (both non-blocking).  A round:
     * one byte is sent into nactive pairs spread evenly; each read callback
     * reads one byte and, while writes remain, sends one byte into the next
     * pair; the round ends when every byte sent was read. */
    int npipes, nactive, nwrites, rounds;
    const int *fds;

    /* timers: ntimers one-shot timers; delay_us[i] is timer i's timeout in
     * microseconds, uniform in [0, span); churn: nchurn starts, each
     * cancelling the timer started churn_window starts earlier (a sliding
     * window of live timers, like idle timeouts being reset), delays taken
     * from delay_us cyclically. */
    uint32_t ntimers;
    const uint32_t *delay_us;
    uint32_t nchurn, churn_window;

    /* callsoon: a chain of nchain callbacks, each queueing the next; a
     * fan-out of nfan callbacks queued at once, then run. */
    uint64_t nchain;
    uint32_t nfan;

    /* wakeup: nwake calls in total, split evenly among the producers. */
    uint32_t nwake;

    /* tasks (bench-task.c; aloop and the bare switch only).  switch:
     * nswitch round trips (A -> B -> A), out[0] per round trip; spawn:
     * nspawn tasks, one at a time and BENCH_SPAWN_BATCH at a time, out[]
     * per task; tasks-rss: ntasks sleeping tasks, out[0] their RSS. */
    uint64_t nswitch;
    uint64_t nspawn;
    uint32_t ntasks;

    /* nonzero: time single-threaded work with the thread's CPU time
     * (bench_clock) instead of the monotonic clock (--clock cpu) */
    int cpu_clock;
};

/* out[] layouts, in seconds */
enum { PIPES_EVENTS, PIPES_SETUP };                 /* per round */
enum { TIMERS_SCHED, TIMERS_FIRE, TIMERS_FIRE_CPU };
enum { SPAWN_ONE, SPAWN_BATCH };                    /* per task */
#define BENCH_SPAWN_BATCH 1000
/* the bare switch times this many times nswitch round trips (it is ~25x
 * faster than a round trip through a loop) */
#define BENCH_BARE_FACTOR 10

typedef int (*bench_fn)(void *ctx, const struct bench_cfg *cfg, double *out);
typedef int (*bench_wake_fn)(void *ctx, const struct bench_cfg *cfg, int producers, double *out);

struct bench_impl {
    unsigned abi;               /* BENCH_ABI */
    const char *name;           /* "raw-libev" */
    const char *version;        /* the library's version, or NULL */
    void *ctx;                  /* passed to every function */
    bench_fn pipes;             /* out[PIPES_EVENTS], out[PIPES_SETUP] */
    bench_fn timers;            /* out[TIMERS_SCHED], out[TIMERS_FIRE], out[TIMERS_FIRE_CPU] */
    bench_fn churn;             /* out[0] */
    bench_fn chain;             /* out[0] */
    bench_fn fanout;            /* out[0] */
    bench_wake_fn wakeup;       /* out[0] */
    bench_fn swtch;             /* out[0]; tasks (and the bare switch) only */
    bench_fn spawn;             /* out[SPAWN_ONE], out[SPAWN_BATCH]; tasks only */
    bench_fn tasks_rss;         /* out[0] in bytes, not seconds; tasks only */
};

/* ---- tasks (bench-task.c, linked into aloop-bench only) --------------------
 * bench_task_impl() adds spawn and tasks_rss to an aloop impl made by
 * bench_aloop_impl() (ctx: the backend's name; switch comes through
 * bench-aloop.c's hook, aloop_bench_task_switch()).  bench_bare_impl()
 * makes the "bare" loop: the tasks' switch routine alone, no loop (the
 * physical limit of switch); its version is "assembly" or "ucontext". */
void bench_task_impl(struct bench_impl *impl);
void bench_bare_impl(struct bench_impl *impl);

/* ---- helpers every impl may use (static: each module has its own copy) -- */

static inline uint64_t bench_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread (user + system). */
static inline uint64_t bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The clock of the timed sections of single-threaded workloads. */
static inline uint64_t bench_clock(const struct bench_cfg *c)
{
    return c->cpu_clock ? bench_cpu_ns() : bench_ns();
}

static inline double bench_sec(uint64_t a, uint64_t b)
{
    return (double)(b - a) * 1e-9;
}

/* Which pair receives the i-th of the nactive first bytes of a round. */
static inline int bench_pipes_first(const struct bench_cfg *c, int i)
{
    return (int)((int64_t)i * c->npipes / c->nactive);
}

/* ---- the pipes driver (bench-common.c, compiled into every module) -------
 * Runs one pipes sample: open the loop, then a warm-up round and cfg->rounds
 * timed rounds, then close.  A round: t0; add a reader on every pair;
 * nowait (one non-blocking iteration: the loop tells the kernel); t1; send
 * the nactive first bytes; t2; run until the round is over; t3; remove every
 * reader and nowait (untimed), so that each round sets its watchers up from
 * scratch.  out[PIPES_EVENTS] = mean of t3 - t2, out[PIPES_SETUP] = mean of
 * (t1 - t0) + (t3 - t2).  The impl's read callback for pair i calls
 * bench_pipes_read(i) and stops its loop when that returns 1. */
struct bench_pipes_ops {
    int  (*open)(void *ctx);
    int  (*add)(void *ctx, int i, int fd);
    int  (*del)(void *ctx, int i, int fd);
    int  (*nowait)(void *ctx);
    int  (*run)(void *ctx);     /* until a callback saw bench_pipes_read() == 1 */
    void (*close)(void *ctx);
};
int bench_pipes_drive(const struct bench_cfg *cfg, const struct bench_pipes_ops *ops,
                      void *ctx, double *out);
/* Read one byte from pair i; while writes remain, send one into pair i+1.
 * 1 when every byte sent this round was read (stop the loop), else 0. */
int bench_pipes_read(int i);

/* ---- wake-up producers (bench-common.c) ------------------------------------
 * Starts `producers` threads that wait for bench_wake_go(); then thread p
 * calls send(ctx, cb, arg) for its share of nwake calls.  A send that fails
 * is retried (the loop side is expected to catch up). */
typedef void (*bench_item_cb)(void *arg);
typedef int (*bench_send_fn)(void *ctx, bench_item_cb cb, void *arg);

struct bench_wake;
int  bench_wake_start(struct bench_wake **w, int producers, uint32_t nwake,
                      bench_send_fn send, void *ctx, bench_item_cb cb, void *arg);
void bench_wake_go(struct bench_wake *w);
void bench_wake_join(struct bench_wake *w);

/* A mutex-protected queue of (cb, arg), the usual companion of a library's
 * coalescing wake-up primitive (ev_async, uv_async, an eventfd): push()
 * returns 1 when the queue was empty, i.e. when the caller must wake the
 * loop; drain() runs everything queued and returns how many it ran. */
struct bench_q;
int      bench_q_new(struct bench_q **q);
void     bench_q_free(struct bench_q *q);
int      bench_q_push(struct bench_q *q, bench_item_cb cb, void *arg);
uint32_t bench_q_drain(struct bench_q *q);

#endif /* ALOOP_BENCH_H */
