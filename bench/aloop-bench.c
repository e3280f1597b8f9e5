/* aloop-bench -- every aloop backend and the raw libraries under them, side by
 * side in one process run, so that the ratios are measured under the same
 * conditions.  See BENCHMARKS.md and `aloop-bench --help`.
 *
 * Loops: aloop-<backend> for every backend aloop knows (skipped with a note
 * when unavailable); raw-libev, raw-libevent, raw-libuv (modules, see
 * bench.h); raw-epoll (hand-written, built in); plain (an array of function
 * pointers: the physical limit of callsoon); bare (the tasks' switch routine
 * with no loop: the physical limit of switch).  The tasks workloads (switch,
 * spawn, tasks-rss: bench-task.c) run on aloop only, the raw libraries have
 * no tasks; switch's ratio is to bare.
 *
 * Method: for each workload, for each repetition (--runs), every loop runs
 * one sample, from a fresh loop, one after the other; the order rotates
 * from one repetition to the next and each aloop backend runs right next to
 * the raw library under it, so slow drift of the machine hits both alike.
 * A figure is the median of the samples, with min and max; a ratio is the
 * median of the per-repetition ratios (aloop time / raw time).  Each sample
 * runs in a child process (fork), so a loop that hangs or crashes costs its
 * cell only (--timeout), and every sample starts from the same state. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <aloop.h>

#include "bench.h"
#include "bench-impl.h"

#ifndef ALOOP_BENCH_DIR
#define ALOOP_BENCH_DIR "/usr/local/lib/aloop"
#endif

#define MAXIMPL 16
#define MAXJOB 32
#define MAXMETRIC 64
#define MAXSIZES 8

/* ---- loops ---------------------------------------------------------------- */

struct impl {
    char name[24];              /* aloop-epoll, raw-libev, plain */
    char lib[16];               /* what pairs it: epoll, libev, ..., poll, plain */
    int aloop, raw;
    struct bench_impl b;
    int avail;
    char why[256];
    int selected;
};

static struct impl impls[MAXIMPL];
static int nimpl;

/* ---- workloads ------------------------------------------------------------ */

enum kind { J_PIPES, J_TIMERS, J_CHURN, J_CHAIN, J_FANOUT, J_WAKE, J_SWITCH, J_SPAWN, J_RSS };

struct job {
    enum kind kind;
    int npipes, producers;
    uint32_t ntasks;            /* J_RSS */
    int runs;                   /* samples per loop: opt.runs, or fewer */
    char name[32];
    int metric0, nmetric;
    int failed[MAXIMPL];        /* error of the first failed sample, or 0 */
    char skipped[160];          /* why the whole job was not run, or "" */
};

struct metric {
    char id[32];                /* pipes-events */
    char label[40];             /* pipes events (N=1000) */
    int job, outidx;
    double ops;                 /* operations per measured unit */
    const char *opname;         /* "events" */
    int bytes;                  /* the samples are bytes (tasks-rss), not seconds */
    double *s;                  /* [impl * runs + rep] seconds, NAN if none */
};

static struct job jobs[MAXJOB];
static int njob;
static struct metric metrics[MAXMETRIC];
static int nmetric;

/* ---- options -------------------------------------------------------------- */

static struct {
    int runs;
    int quick;
    const char *csv, *json, *plot;
    const char *workloads, *backends;
    int npipes[MAXSIZES], nsizes;
    int active, writes, rounds;
    uint32_t timers, span_ms, churn, window, fanout, wake;
    uint64_t chain, nswitch, nspawn;
    uint32_t ntasks[MAXSIZES];
    int ntasksizes;
    int list;
    int cpu_clock;
    int timeout;                /* seconds per sample */
} opt;

static char cmdline[1024];
static char load_start[64], load_end[64];

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "aloop-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: aloop-bench [options]\n"
"Runs each workload on every available aloop backend and on the same workload\n"
"written directly against libev, libevent, libuv and a hand-written epoll loop.\n"
"\n"
"  --runs N          repetitions; each figure is the median of N (default 5)\n"
"  --quick           smaller sizes and 3 runs: under 30 s\n"
"  --workload LIST   comma-separated: pipes, timers (schedule, fire, churn),\n"
"                    churn, callsoon (chain, fanout), chain, fanout,\n"
"                    wakeup (1 and 2 producers), wakeup1, wakeup2,\n"
"                    tasks (switch, spawn, tasks-rss), switch, spawn,\n"
"                    tasks-rss; all\n"
"  --backends LIST   comma-separated loops: aloop-NAME, raw-NAME, plain, bare,\n"
"                    or NAME for both aloop-NAME and raw-NAME (epoll, libev,\n"
"                    libevent, libuv, poll, select); aloop, raw: every one\n"
"                    (bare, switch's reference, always runs with switch)\n"
"  --size SPEC       KEY=VALUE,...  pipes=N[:N...] (socketpairs; several give\n"
"                    several rows), active=A, writes=W, rounds=R, timers=N,\n"
"                    span=MS, churn=N, window=N, chain=N, fanout=N, wakeup=N,\n"
"                    switch=N (round trips), spawn=N, tasks=N[:N...]\n"
"                    (tasks-rss; default 100k:1M, --quick 100k); a bare\n"
"                    number is pipes=N\n"
"  --csv FILE        write every figure (and every sample) as CSV\n"
"  --json FILE       the same as JSON\n"
"  --plot FILE.png   grouped bar charts with gnuplot (script kept as FILE.gp)\n"
"  --clock wall|cpu  time single-threaded work by the monotonic clock (default)\n"
"                    or by the thread's CPU time, which a busy machine's\n"
"                    preemption does not inflate (timers fire and wakeup\n"
"                    stay wall-clock)\n"
"  --timeout S       a sample (it runs in a child process) that takes longer\n"
"                    is killed and shown as n/a (default 120)\n"
"  --list            list the loops (available or why not) and exit\n"
"  --help\n"
"\n"
"Environment: ALOOP_MODULE_PATH (aloop's backend modules) and ALOOP_BENCH_PATH\n"
"(aloop-bench-ev.so, -event.so, -uv.so); both default to the build tree when\n"
"run from it, else to the install.\n");
}

static uint64_t parse_num(const char *s, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        die("bad number for %s: %s", what, s);
    if (*end == 'k' || *end == 'K')
        v *= 1e3, end++;
    else if (*end == 'M' || *end == 'm')
        v *= 1e6, end++;
    if (*end)
        die("bad number for %s: %s", what, s);
    return (uint64_t)v;
}

static void parse_pipes(const char *v)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    opt.nsizes = 0;
    for (char *save, *t = strtok_r(buf, ":/", &save); t; t = strtok_r(NULL, ":/", &save)) {
        if (opt.nsizes == MAXSIZES)
            die("at most %d pipe sizes", MAXSIZES);
        uint64_t n = parse_num(t, "pipes");
        if (n < 1 || n > 1000000)
            die("pipes must be in 1..1000000");
        opt.npipes[opt.nsizes++] = (int)n;
    }
}

static void parse_tasks(const char *v)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    opt.ntasksizes = 0;
    for (char *save, *t = strtok_r(buf, ":/", &save); t; t = strtok_r(NULL, ":/", &save)) {
        if (opt.ntasksizes == MAXSIZES)
            die("at most %d task counts", MAXSIZES);
        uint64_t n = parse_num(t, "tasks");
        if (n < 1 || n > 100000000)
            die("tasks must be in 1..100M");
        opt.ntasks[opt.ntasksizes++] = (uint32_t)n;
    }
}

static void parse_size(const char *spec)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (!eq) {
            parse_pipes(t);
            continue;
        }
        *eq = 0;
        const char *k = t, *v = eq + 1;
        if (!strcmp(k, "pipes"))
            parse_pipes(v);
        else if (!strcmp(k, "active"))
            opt.active = (int)parse_num(v, k);
        else if (!strcmp(k, "writes"))
            opt.writes = (int)parse_num(v, k);
        else if (!strcmp(k, "rounds"))
            opt.rounds = (int)parse_num(v, k);
        else if (!strcmp(k, "timers"))
            opt.timers = (uint32_t)parse_num(v, k);
        else if (!strcmp(k, "span"))
            opt.span_ms = (uint32_t)parse_num(v, k);
        else if (!strcmp(k, "churn"))
            opt.churn = (uint32_t)parse_num(v, k);
        else if (!strcmp(k, "window"))
            opt.window = (uint32_t)parse_num(v, k);
        else if (!strcmp(k, "chain"))
            opt.chain = parse_num(v, k);
        else if (!strcmp(k, "fanout"))
            opt.fanout = (uint32_t)parse_num(v, k);
        else if (!strcmp(k, "wakeup"))
            opt.wake = (uint32_t)parse_num(v, k);
        else if (!strcmp(k, "switch"))
            opt.nswitch = parse_num(v, k);
        else if (!strcmp(k, "spawn"))
            opt.nspawn = parse_num(v, k);
        else if (!strcmp(k, "tasks"))
            parse_tasks(v);
        else
            die("unknown size key '%s' (see --help)", k);
    }
}

static void parse_args(int argc, char **argv)
{
    size_t n = 0;
    for (int i = 0; i < argc && n < sizeof cmdline - 1; i++)
        n += (size_t)snprintf(cmdline + n, sizeof cmdline - n, "%s%s", i ? " " : "",
                              i ? argv[i] : "aloop-bench");
    const char *size = NULL;
    int runs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char key[32];
        if (!strncmp(a, "--", 2) && strchr(a, '=')) {
            snprintf(key, sizeof key, "%.*s", (int)(strchr(a, '=') - a), a);
            val = strchr(a, '=') + 1;
            a = key;
        }
#define NEXT() (val ? val : (i + 1 < argc ? argv[++i] : (die("%s needs a value", a), "")))
        if (!strcmp(a, "--runs"))
            runs = (int)parse_num(NEXT(), "--runs");
        else if (!strcmp(a, "--quick"))
            opt.quick = 1;
        else if (!strcmp(a, "--csv"))
            opt.csv = NEXT();
        else if (!strcmp(a, "--json"))
            opt.json = NEXT();
        else if (!strcmp(a, "--plot"))
            opt.plot = NEXT();
        else if (!strcmp(a, "--workload") || !strcmp(a, "--workloads"))
            opt.workloads = NEXT();
        else if (!strcmp(a, "--backends") || !strcmp(a, "--backend"))
            opt.backends = NEXT();
        else if (!strcmp(a, "--size"))
            size = NEXT();
        else if (!strcmp(a, "--list"))
            opt.list = 1;
        else if (!strcmp(a, "--timeout"))
            opt.timeout = (int)parse_num(NEXT(), "--timeout");
        else if (!strcmp(a, "--clock")) {
            const char *v = NEXT();
            if (!strcmp(v, "cpu"))
                opt.cpu_clock = 1;
            else if (strcmp(v, "wall"))
                die("--clock takes wall or cpu");
        }
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else {
            usage(stderr);
            die("unknown option %s", argv[i]);
        }
#undef NEXT
    }
    /* defaults: the sizes; --quick scales them down */
    opt.runs = opt.quick ? 3 : 5;
    opt.npipes[0] = 1000;
    opt.nsizes = 1;
    opt.active = 100;
    opt.writes = 1000;
    opt.rounds = opt.quick ? 5 : 20;
    opt.timers = opt.quick ? 100000 : 1000000;
    opt.span_ms = opt.quick ? 100 : 1000;
    opt.churn = opt.quick ? 100000 : 1000000;
    opt.window = 1000;
    opt.chain = opt.quick ? 1000000 : 10000000;
    opt.fanout = opt.quick ? 100000 : 1000000;
    opt.wake = opt.quick ? 100000 : 1000000;
    opt.nswitch = opt.quick ? 200000 : 2000000;
    opt.nspawn = opt.quick ? 200000 : 2000000;
    opt.ntasks[0] = 100000;
    opt.ntasks[1] = 1000000;
    opt.ntasksizes = opt.quick ? 1 : 2;
    if (runs)
        opt.runs = runs;
    if (!opt.timeout)
        opt.timeout = 120;
    if (size)
        parse_size(size);
    if (opt.runs < 1 || opt.runs > 1000)
        die("--runs must be in 1..1000");
    if (opt.active < 1 || opt.writes < 0 || opt.rounds < 1 || opt.timers < 1 || opt.span_ms < 1 ||
        opt.chain < 1 || opt.fanout < 1 || opt.wake < 2 || opt.nswitch < 1 || opt.nspawn < 1)
        die("a size is out of range");
    for (int i = 0; i < opt.nsizes; i++)
        if (opt.active > opt.npipes[i])
            die("active (%d) must not exceed pipes (%d)", opt.active, opt.npipes[i]);
}

/* ---- finding the modules --------------------------------------------------- */

static char exe_dir[PATH_MAX];

static int is_file(const char *dir, const char *file)
{
    char p[PATH_MAX + 64];
    struct stat st;
    if (snprintf(p, sizeof p, "%s/%s", dir, file) >= (int)sizeof p)
        return 0;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Run from the build tree (bench/.libs/aloop-bench behind libtool's wrapper
 * bench/aloop-bench): aloop's backend modules are in <builddir>/.libs. */
static void default_module_path(void)
{
    ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof exe_dir - 1);
    if (n <= 0) {
        exe_dir[0] = 0;
        return;
    }
    exe_dir[n] = 0;
    char *slash = strrchr(exe_dir, '/');
    if (slash)
        *slash = 0;
    const char *cur = getenv("ALOOP_MODULE_PATH");
    if (cur && *cur)
        return;
    const char *up[] = { "/../.libs", "/../../.libs" };
    for (int i = 0; i < 2; i++) {
        char cand[PATH_MAX + 16], real[PATH_MAX];
        snprintf(cand, sizeof cand, "%s%s", exe_dir, up[i]);
        if (is_file(cand, "libaloop.so") && realpath(cand, real)) {
            setenv("ALOOP_MODULE_PATH", real, 1);
            return;
        }
    }
}

static void load_raw(const char *lib, const char *file)
{
    struct impl *im = &impls[nimpl++];
    snprintf(im->name, sizeof im->name, "raw-%s", lib);
    snprintf(im->lib, sizeof im->lib, "%s", lib);
    im->raw = 1;
    char dirs[5][PATH_MAX + 16];
    int nd = 0;
    const char *env = getenv("ALOOP_BENCH_PATH");
    char envbuf[PATH_MAX * 2];
    char where[512] = "";
    size_t wl = 0;
    if (env && *env) {
        snprintf(envbuf, sizeof envbuf, "%s", env);
        for (char *save, *t = strtok_r(envbuf, ":", &save); t && nd < 2; t = strtok_r(NULL, ":", &save))
            snprintf(dirs[nd++], sizeof dirs[0], "%s", t);
    }
    if (exe_dir[0]) {           /* the build tree; a relocated install */
        snprintf(dirs[nd++], sizeof dirs[0], "%s", exe_dir);
        snprintf(dirs[nd++], sizeof dirs[0], "%s/.libs", exe_dir);
        snprintf(dirs[nd++], sizeof dirs[0], "%s/../lib/aloop", exe_dir);
    }
    snprintf(dirs[nd++], sizeof dirs[0], "%s", ALOOP_BENCH_DIR);
    for (int d = 0; d < nd; d++) {
        wl += (size_t)snprintf(where + wl, wl < sizeof where ? sizeof where - wl : 0, "%s%s",
                               d ? ", " : "", dirs[d]);
        if (wl >= sizeof where)
            wl = sizeof where - 1;
        if (!is_file(dirs[d], file))
            continue;
        char path[PATH_MAX * 2];
        if (snprintf(path, sizeof path, "%s/%s", dirs[d], file) >= (int)sizeof path)
            continue;
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(im->why, sizeof im->why, "%s", dlerror());
            return;
        }
        const struct bench_impl *(*get)(void);
        *(void **)&get = dlsym(h, "aloop_bench_module");
        const struct bench_impl *b = get ? get() : NULL;
        if (!b || b->abi != BENCH_ABI) {
            if (snprintf(im->why, sizeof im->why, "%s: not a module of this aloop-bench", path) < 0)
                im->why[0] = 0;
            dlclose(h);
            return;
        }
        im->b = *b;
        im->avail = 1;
        return;
    }
    snprintf(im->why, sizeof im->why, "%s not found (searched %s; set ALOOP_BENCH_PATH)", file, where);
}

static const char *status_text(int err)
{
    switch (-err) {
    case ENOENT:  return "module not found (not built, or not installed)";
    case ELIBBAD: return "module or its library cannot be loaded";
    case EPROTO:  return "module built for another ABI version";
    default:      return aloop_strerror(err);
    }
}

static void add_aloop(const char *backend)
{
    struct impl *im = &impls[nimpl++];
    snprintf(im->name, sizeof im->name, "aloop-%s", backend);
    snprintf(im->lib, sizeof im->lib, "%s", backend);
    im->aloop = 1;
    int st = aloop_backend_status(backend);
    if (st == 0) {
        bench_aloop_impl(&im->b, backend);
        bench_task_impl(&im->b);
        im->avail = 1;
    } else {
        snprintf(im->why, sizeof im->why, "%s", status_text(st));
    }
}

static void discover(void)
{
    /* pairs first, in the order of the table */
    static const char *const libs[] = { "epoll", "libev", "libevent", "libuv" };
    static const char *const files[] = { NULL, "aloop-bench-ev.so", "aloop-bench-event.so", "aloop-bench-uv.so" };
    int known[8] = { 0 };
    const char *const *all = aloop_backends_known();
    for (int l = 0; l < 4; l++) {
        for (int k = 0; all[k]; k++)
            if (!strcmp(all[k], libs[l])) {
                add_aloop(libs[l]);
                known[k < 8 ? k : 7] = 1;
            }
        if (l == 0) {
            struct impl *im = &impls[nimpl++];
            snprintf(im->name, sizeof im->name, "raw-epoll");
            snprintf(im->lib, sizeof im->lib, "epoll");
            im->raw = 1;
            bench_epoll_impl(&im->b);
            im->avail = 1;
        } else {
            load_raw(libs[l], files[l]);
        }
    }
    for (int k = 0; all[k] && nimpl < MAXIMPL - 1; k++)
        if (k >= 8 || !known[k])
            add_aloop(all[k]);
    struct impl *im = &impls[nimpl++];
    snprintf(im->name, sizeof im->name, "plain");
    snprintf(im->lib, sizeof im->lib, "plain");
    bench_plain_impl(&im->b);
    im->avail = 1;
    im = &impls[nimpl++];
    snprintf(im->name, sizeof im->name, "bare");
    snprintf(im->lib, sizeof im->lib, "bare");
    bench_bare_impl(&im->b);
    im->avail = 1;
}

static int find_impl(const char *name)
{
    for (int i = 0; i < nimpl; i++)
        if (!strcmp(impls[i].name, name))
            return i;
    return -1;
}

static void select_impls(void)
{
    if (!opt.backends || !*opt.backends || !strcmp(opt.backends, "all")) {
        for (int i = 0; i < nimpl; i++)
            impls[i].selected = 1;
        return;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%s", opt.backends);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int hit = 0;
        for (int i = 0; i < nimpl; i++) {
            struct impl *im = &impls[i];
            if (!strcmp(t, im->name) || !strcmp(t, im->lib) ||
                (!strcmp(t, "aloop") && im->aloop) || (!strcmp(t, "raw") && im->raw)) {
                im->selected = 1;
                hit = 1;
            }
        }
        if (!hit)
            die("unknown loop '%s' (try --list)", t);
    }
}

/* ---- jobs and metrics ------------------------------------------------------ */

static int want(const char *list, const char *const *names)
{
    if (!list || !*list || !strcmp(list, "all"))
        return 1;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        for (int i = 0; names[i]; i++)
            if (!strcmp(t, names[i]))
                return 1;
    return 0;
}

static void check_workloads(void)
{
    static const char *const ok[] = { "all", "pipes", "timers", "churn", "callsoon", "chain", "fanout",
                                      "wakeup", "wakeup1", "wakeup2", "tasks", "switch", "spawn",
                                      "tasks-rss", NULL };
    if (!opt.workloads)
        return;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", opt.workloads);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int hit = 0;
        for (int i = 0; ok[i]; i++)
            hit |= !strcmp(t, ok[i]);
        if (!hit)
            die("unknown workload '%s' (see --help)", t);
    }
}

static void add_metric(int job, int outidx, const char *id, const char *label, double ops, const char *opname)
{
    struct metric *m = &metrics[nmetric++];
    snprintf(m->id, sizeof m->id, "%s", id);
    snprintf(m->label, sizeof m->label, "%s", label);
    m->job = job;
    m->outidx = outidx;
    m->ops = ops;
    m->opname = opname;
    m->s = malloc(sizeof(double) * (size_t)MAXIMPL * (size_t)opt.runs);
    if (!m->s)
        die("out of memory");
    for (int i = 0; i < MAXIMPL * opt.runs; i++)
        m->s[i] = NAN;
}

static struct job *add_job(enum kind k, const char *name)
{
    if (njob == MAXJOB)
        die("too many workloads");
    struct job *j = &jobs[njob];
    memset(j, 0, sizeof *j);
    j->kind = k;
    j->runs = opt.runs;
    snprintf(j->name, sizeof j->name, "%s", name);
    j->metric0 = nmetric;
    njob++;
    return j;
}

static void build_jobs(void)
{
    const char *w = opt.workloads;
    if (want(w, (const char *const[]){ "pipes", NULL })) {
        for (int s = 0; s < opt.nsizes; s++) {
            char name[32], label[40];
            snprintf(name, sizeof name, "pipes N=%d", opt.npipes[s]);
            struct job *j = add_job(J_PIPES, name);
            j->npipes = opt.npipes[s];
            double ops = opt.active + opt.writes;
            snprintf(label, sizeof label, "pipes events N=%d", opt.npipes[s]);
            add_metric(njob - 1, PIPES_EVENTS, "pipes-events", label, ops, "events");
            snprintf(label, sizeof label, "pipes +setup N=%d", opt.npipes[s]);
            add_metric(njob - 1, PIPES_SETUP, "pipes-setup", label, ops, "events");
            j->nmetric = 2;
        }
    }
    if (want(w, (const char *const[]){ "timers", NULL })) {
        struct job *j = add_job(J_TIMERS, "timers");
        add_metric(njob - 1, TIMERS_SCHED, "timers-schedule", "timers schedule", opt.timers, "timers");
        add_metric(njob - 1, TIMERS_FIRE, "timers-fire", "timers fire (wall)", opt.timers, "timers");
        add_metric(njob - 1, TIMERS_FIRE_CPU, "timers-fire-cpu", "timers fire (cpu)", opt.timers, "timers");
        j->nmetric = 3;
    }
    if (want(w, (const char *const[]){ "timers", "churn", NULL })) {
        struct job *j = add_job(J_CHURN, "timers churn");
        add_metric(njob - 1, 0, "timers-churn", "timers churn", opt.churn, "start+cancel");
        j->nmetric = 1;
    }
    if (want(w, (const char *const[]){ "callsoon", "chain", NULL })) {
        struct job *j = add_job(J_CHAIN, "callsoon chain");
        add_metric(njob - 1, 0, "callsoon-chain", "callsoon chain", (double)opt.chain, "calls");
        j->nmetric = 1;
    }
    if (want(w, (const char *const[]){ "callsoon", "fanout", NULL })) {
        struct job *j = add_job(J_FANOUT, "callsoon fanout");
        add_metric(njob - 1, 0, "callsoon-fanout", "callsoon fanout", opt.fanout, "calls");
        j->nmetric = 1;
    }
    for (int p = 1; p <= 2; p++) {
        char one[16];
        snprintf(one, sizeof one, "wakeup%d", p);
        if (want(w, (const char *const[]){ "wakeup", one, NULL })) {
            char name[32], label[40];
            snprintf(name, sizeof name, "wakeup %d producer%s", p, p > 1 ? "s" : "");
            struct job *j = add_job(J_WAKE, name);
            j->producers = p;
            snprintf(label, sizeof label, "wakeup %d producer%s", p, p > 1 ? "s" : "");
            char id[32];
            snprintf(id, sizeof id, "wakeup-%d", p);
            add_metric(njob - 1, 0, id, label, opt.wake, "calls");
            j->nmetric = 1;
        }
    }
    if (want(w, (const char *const[]){ "tasks", "switch", NULL })) {
        struct job *j = add_job(J_SWITCH, "switch");
        add_metric(njob - 1, 0, "switch", "switch round trip", 1, "round trips");
        j->nmetric = 1;
        int b = find_impl("bare");      /* the reference: always beside it */
        if (b >= 0)
            impls[b].selected = 1;
    }
    if (want(w, (const char *const[]){ "tasks", "spawn", NULL })) {
        struct job *j = add_job(J_SPAWN, "spawn");
        add_metric(njob - 1, SPAWN_ONE, "spawn", "spawn+join, one by one", 1, "tasks");
        add_metric(njob - 1, SPAWN_BATCH, "spawn-batch", "spawn+join, 1000 at once", 1, "tasks");
        j->nmetric = 2;
    }
    if (want(w, (const char *const[]){ "tasks", "tasks-rss", NULL })) {
        for (int s = 0; s < opt.ntasksizes; s++) {
            char name[32], label[40];
            snprintf(name, sizeof name, "tasks-rss N=%u", opt.ntasks[s]);
            struct job *j = add_job(J_RSS, name);
            j->ntasks = opt.ntasks[s];
            j->runs = 1;                /* RSS does not vary from run to run */
            snprintf(label, sizeof label, "tasks-rss N=%u", opt.ntasks[s]);
            add_metric(njob - 1, 0, "tasks-rss", label, opt.ntasks[s], "tasks");
            metrics[nmetric - 1].bytes = 1;
            j->nmetric = 1;
        }
    }
    if (!njob)
        die("no workload selected");
}

static int supports(const struct impl *im, const struct job *j)
{
    switch (j->kind) {
    case J_PIPES:  return im->b.pipes != NULL;
    case J_TIMERS: return im->b.timers != NULL;
    case J_CHURN:  return im->b.churn != NULL;
    case J_CHAIN:  return im->b.chain != NULL;
    case J_FANOUT: return im->b.fanout != NULL;
    case J_WAKE:   return im->b.wakeup != NULL;
    case J_SWITCH: return im->b.swtch != NULL;
    case J_SPAWN:  return im->b.spawn != NULL;
    case J_RSS:    return im->b.tasks_rss != NULL;
    }
    return 0;
}

/* ---- inputs: socketpairs, random delays ------------------------------------ */

static int *fds;
static int nfds_pairs;
static uint32_t *delays;

static int raise_nofile(int want_fds)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    rlim_t need = (rlim_t)want_fds;
    if (rl.rlim_cur >= need)
        return (int)(rl.rlim_cur > INT_MAX ? INT_MAX : rl.rlim_cur);
    struct rlimit nl = { need, rl.rlim_max > need ? rl.rlim_max : need };
    if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
        return want_fds;
    nl.rlim_cur = rl.rlim_max;
    nl.rlim_max = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
        return (int)(rl.rlim_max > INT_MAX ? INT_MAX : rl.rlim_max);
    return (int)rl.rlim_cur;
}

static void make_pipes(void)
{
    int maxn = 0;
    for (int j = 0; j < njob; j++)
        if (jobs[j].kind == J_PIPES && jobs[j].npipes > maxn)
            maxn = jobs[j].npipes;
    if (!maxn)
        return;
    /* pairs that would not all fit below FD_SETSIZE are moved above it, so
     * that the loops' own descriptors (epoll, eventfd) stay low enough for
     * select: select then runs every workload but pipes */
    int high = 2 * maxn + 64 >= FD_SETSIZE;
    int reserve = 512 + (high ? FD_SETSIZE : 0);
    int limit = raise_nofile(2 * maxn + reserve);
    int room = (limit - reserve) / 2;
    if (room < maxn) {
        fprintf(stderr, "aloop-bench: RLIMIT_NOFILE is %d: pipes limited to %d socketpairs\n", limit, room);
        for (int j = 0; j < njob; j++)
            if (jobs[j].kind == J_PIPES && jobs[j].npipes > room)
                jobs[j].npipes = room;
        maxn = room;
        if (maxn < opt.active)
            die("too few file descriptors for pipes");
    }
    fds = malloc(sizeof(int) * 2 * (size_t)maxn);
    if (!fds)
        die("out of memory");
    for (int i = 0; i < maxn; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
            die("socketpair %d: %s", i, strerror(errno));
        for (int k = 0; k < 2 && high; k++) {
            int hi = fcntl(sv[k], F_DUPFD_CLOEXEC, FD_SETSIZE);
            if (hi < 0)
                die("moving socketpair %d above %d: %s", i, FD_SETSIZE, strerror(errno));
            close(sv[k]);
            sv[k] = hi;
        }
        fds[2 * i] = sv[0];
        fds[2 * i + 1] = sv[1];
    }
    nfds_pairs = maxn;
}

/* after a failed pipes sample: empty every pair for the next loop */
static void drain_pipes(void)
{
    char buf[256];
    for (int i = 0; i < nfds_pairs; i++)
        while (recv(fds[2 * i], buf, sizeof buf, 0) > 0)
            ;
}

static void make_delays(void)
{
    delays = malloc(sizeof(uint32_t) * opt.timers);
    if (!delays)
        die("out of memory");
    uint64_t x = 0x9e3779b97f4a7c15u;       /* fixed seed: every loop gets the same delays */
    uint64_t span = (uint64_t)opt.span_ms * 1000u;
    for (uint32_t i = 0; i < opt.timers; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        delays[i] = (uint32_t)(((x * 0x2545f4914f6cdd1du) >> 32) % span);
    }
}

/* ---- running ----------------------------------------------------------------- */

static int run_sample(struct impl *im, struct job *j, double *out)
{
    struct bench_cfg c = {
        .npipes = j->npipes, .nactive = opt.active, .nwrites = opt.writes, .rounds = opt.rounds,
        .fds = fds,
        .ntimers = opt.timers, .delay_us = delays, .nchurn = opt.churn, .churn_window = opt.window,
        .nchain = opt.chain, .nfan = opt.fanout, .nwake = opt.wake, .nswitch = opt.nswitch,
        .nspawn = opt.nspawn, .ntasks = j->ntasks,
        .cpu_clock = opt.cpu_clock,
    };
    if (c.nactive > c.npipes)
        c.nactive = c.npipes;
    void *ctx = im->b.ctx;
    switch (j->kind) {
    case J_PIPES:  return im->b.pipes(ctx, &c, out);
    case J_TIMERS: return im->b.timers(ctx, &c, out);
    case J_CHURN:  return im->b.churn(ctx, &c, out);
    case J_CHAIN:  return im->b.chain(ctx, &c, out);
    case J_FANOUT: return im->b.fanout(ctx, &c, out);
    case J_WAKE:   return im->b.wakeup(ctx, &c, j->producers, out);
    case J_SWITCH: return im->b.swtch(ctx, &c, out);
    case J_SPAWN:  return im->b.spawn(ctx, &c, out);
    case J_RSS:    return im->b.tasks_rss(ctx, &c, out);
    }
    return -ENOSYS;
}

/* Each sample runs in a child process: a loop that hangs or crashes costs
 * that cell (n/a: timed out / killed by a signal), not the whole run, and
 * every sample starts from the same clean process image.  The child sends
 * its result through a pipe. */
#define E_HUNG  (-100000)
#define E_CRASH (-200000)       /* - signal number */

struct sample_msg { int r; double out[4]; };

static int run_isolated(struct impl *im, struct job *j, double *out)
{
    int p[2];
    if (pipe(p) < 0)
        return run_sample(im, j, out);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return run_sample(im, j, out);
    }
    if (pid == 0) {
        close(p[0]);
        struct sample_msg m = { 0, { NAN, NAN, NAN, NAN } };
        m.r = run_sample(im, j, m.out);
        ssize_t w = write(p[1], &m, sizeof m);
        _exit(w == (ssize_t)sizeof m ? 0 : 1);
    }
    close(p[1]);
    struct sample_msg m = { E_HUNG, { NAN, NAN, NAN, NAN } };
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    int pr;
    do
        pr = poll(&pf, 1, opt.timeout * 1000);
    while (pr < 0 && errno == EINTR);
    int st = 0;
    if (pr == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        m.r = E_HUNG;
    } else {
        ssize_t n = read(p[0], &m, sizeof m);
        waitpid(pid, &st, 0);
        if (n != (ssize_t)sizeof m)
            m.r = WIFSIGNALED(st) ? E_CRASH - WTERMSIG(st) : -EPIPE;
    }
    close(p[0]);
    memcpy(out, m.out, sizeof m.out);
    return m.r;
}

static const char *err_text(int e)
{
    static char buf[64];
    if (e == E_HUNG) {
        snprintf(buf, sizeof buf, "did not finish in %d s (killed; --timeout)", opt.timeout);
        return buf;
    }
    if (e <= E_CRASH) {
        snprintf(buf, sizeof buf, "crashed: %s", strsignal(E_CRASH - e));
        return buf;
    }
    return aloop_strerror(e);
}

/* The order of one repetition: groups of (aloop-X, raw-X) rotated by rep,
 * each group's members swapped on odd reps. */
static int order_of(int rep, int *order)
{
    int groups[MAXIMPL][2], ng = 0, n = 0;
    int done[MAXIMPL] = { 0 };
    for (int i = 0; i < nimpl; i++) {
        if (done[i])
            continue;
        groups[ng][0] = i;
        groups[ng][1] = -1;
        done[i] = 1;
        for (int k = i + 1; k < nimpl; k++)
            if (!done[k] && !strcmp(impls[k].lib, impls[i].lib)) {
                groups[ng][1] = k;
                done[k] = 1;
                break;
            }
        ng++;
    }
    for (int g = 0; g < ng; g++) {
        int *gr = groups[(g + rep) % ng];
        int a = gr[0], b = gr[1];
        if (rep & 1) {
            int t = a;
            a = b >= 0 ? b : a;
            b = b >= 0 ? t : -1;
        }
        order[n++] = a;
        if (b >= 0)
            order[n++] = b;
    }
    return n;
}

static int tty;

static void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (tty)
        fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    if (!tty)
        fputc('\n', stderr);
    fflush(stderr);
    va_end(ap);
}

/* Memory a sample may still take, in bytes: MemAvailable, capped by the
 * room left under this cgroup's limit (cgroup v2); -1 if unknown. */
static double mem_available(void)
{
    double avail = -1;
    char line[512];
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                avail = (double)kb * 1024;
                break;
            }
        fclose(f);
    }
    char cg[256] = "";
    if ((f = fopen("/proc/self/cgroup", "r"))) {
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "0::", 3)) {
                line[strcspn(line, "\n")] = 0;
                snprintf(cg, sizeof cg, "%.200s", line + 3);     /* longer: not found */
            }
        fclose(f);
    }
    const char *dirs[] = { cg, "" };
    for (int d = 0; d < 2; d++) {
        char p1[384], p2[384];
        unsigned long long max, cur;
        snprintf(p1, sizeof p1, "/sys/fs/cgroup%s/memory.max", dirs[d]);
        snprintf(p2, sizeof p2, "/sys/fs/cgroup%s/memory.current", dirs[d]);
        FILE *a = fopen(p1, "r"), *b = fopen(p2, "r");
        int ok = a && b && fscanf(a, "%llu", &max) == 1 && fscanf(b, "%llu", &cur) == 1;
        if (a)
            fclose(a);
        if (b)
            fclose(b);
        if (ok) {               /* "max" (no limit) does not scan */
            double room = max > cur ? (double)(max - cur) : 0;
            if (avail < 0 || room < avail)
                avail = room;
            break;
        }
    }
    return avail;
}

/* Before a tasks-rss job: skip it, saying why, when its sample would not fit
 * in memory (1,000,000 tasks take about 4 GiB).  The estimate is the largest
 * RSS per task measured so far in this run, else 5 KiB, plus a margin. */
static int rss_skip(struct job *j)
{
    double per = 5 * 1024;
    for (int mi = 0; mi < nmetric; mi++) {
        const struct metric *m = &metrics[mi];
        if (!m->bytes)
            continue;
        for (int k = 0; k < MAXIMPL * opt.runs; k++)
            if (!isnan(m->s[k]) && m->s[k] / m->ops > per)
                per = m->s[k] / m->ops;
    }
    double need = per * j->ntasks * 1.1 + 64.0 * 1048576, avail = mem_available();
    if (avail < 0 || need <= avail)
        return 0;
    snprintf(j->skipped, sizeof j->skipped, "skipped: needs about %.1f GiB of memory, %.1f GiB available",
             need / 1073741824.0, avail / 1073741824.0);
    return 1;
}

static void run_all(void)
{
    int total = 0;
    for (int j = 0; j < njob; j++)
        for (int i = 0; i < nimpl; i++)
            if (impls[i].selected && impls[i].avail && supports(&impls[i], &jobs[j]))
                total += jobs[j].runs;
    int done = 0;
    uint64_t start = bench_ns();
    for (int jn = 0; jn < njob; jn++) {
        struct job *j = &jobs[jn];
        uint64_t jstart = bench_ns();
        int loops = 0;
        for (int i = 0; i < nimpl; i++)
            if (impls[i].selected && impls[i].avail && supports(&impls[i], j))
                loops++;
        if (j->kind == J_RSS && loops && rss_skip(j)) {
            done += loops * j->runs;
            fprintf(stderr, "%saloop-bench: %s: %s\n", tty ? "\r\033[K" : "", j->name, j->skipped);
            continue;
        }
        for (int rep = 0; rep < j->runs; rep++) {
            int order[MAXIMPL];
            int n = order_of(rep, order);
            for (int k = 0; k < n; k++) {
                struct impl *im = &impls[order[k]];
                if (!im->selected || !im->avail || !supports(im, j))
                    continue;
                done++;
                if (j->failed[order[k]])
                    continue;
                if (tty || rep == 0 || k == 0)
                    progress("[%3d%%] %s: run %d/%d %s", done * 100 / (total ? total : 1), j->name,
                             rep + 1, j->runs, im->name);
                double out[4] = { NAN, NAN, NAN, NAN };
                int r = run_isolated(im, j, out);
                if (r < 0) {
                    fprintf(stderr, "%saloop-bench: %s on %s: %s\n", tty ? "\n" : "", j->name, im->name,
                            err_text(r));
                    j->failed[order[k]] = r;
                    if (j->kind == J_PIPES)
                        drain_pipes();
                    continue;
                }
                for (int m = 0; m < j->nmetric; m++) {
                    struct metric *mt = &metrics[j->metric0 + m];
                    mt->s[order[k] * opt.runs + rep] = out[mt->outidx];
                }
            }
        }
        progress("%s: done in %.1f s (%.0f s so far)", j->name, bench_sec(jstart, bench_ns()),
                 bench_sec(start, bench_ns()));
        if (tty)
            fputc('\n', stderr);
    }
}

/* ---- statistics ---------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(double *v, int n)
{
    if (n == 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n & 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct stat3 { double med, min, max; int n; };

static struct stat3 stats(const struct metric *m, int i)
{
    double v[1024];
    int n = 0;
    for (int r = 0; r < opt.runs && n < 1024; r++) {
        double x = m->s[i * opt.runs + r];
        if (!isnan(x))
            v[n++] = x;
    }
    struct stat3 s = { NAN, NAN, NAN, n };
    if (n) {
        s.med = median_of(v, n);
        s.min = v[0];
        s.max = v[n - 1];
    }
    return s;
}

/* median over repetitions of time(a) / time(b) */
static double ratio(const struct metric *m, int a, int b)
{
    if (a < 0 || b < 0)
        return NAN;
    double v[1024];
    int n = 0;
    for (int r = 0; r < opt.runs && n < 1024; r++) {
        double x = m->s[a * opt.runs + r], y = m->s[b * opt.runs + r];
        if (!isnan(x) && !isnan(y) && y > 0)
            v[n++] = x / y;
    }
    return median_of(v, n);
}

/* the raw library under an aloop backend */
static int own_raw(int i)
{
    if (!impls[i].aloop)
        return -1;
    char name[32];
    snprintf(name, sizeof name, "raw-%s", impls[i].lib);
    int k = find_impl(name);
    return k >= 0 && impls[k].selected && impls[k].avail ? k : -1;
}

static int is_tasks(const struct job *j)
{
    return j->kind == J_SWITCH || j->kind == J_SPAWN || j->kind == J_RSS;
}

/* What row i of metric m is compared with in the "vs raw" column: the raw
 * library under an aloop backend; for switch, the bare switch of the same
 * repetitions (the physical limit); for spawn and tasks-rss nothing (the
 * raw libraries have no tasks). */
static int ref_of(const struct metric *m, int i)
{
    const struct job *j = &jobs[m->job];
    if (j->kind == J_SWITCH) {
        int k = find_impl("bare");
        return impls[i].aloop && k >= 0 && impls[k].selected && impls[k].avail ? k : -1;
    }
    if (is_tasks(j))
        return -1;
    return own_raw(i);
}

static int raw_libev(void)
{
    int k = find_impl("raw-libev");
    return k >= 0 && impls[k].selected && impls[k].avail ? k : -1;
}

/* the row is shown: the loop ran, or tried to, this metric's job */
static int shown(const struct metric *m, int i)
{
    const struct impl *im = &impls[i];
    return im->selected && im->avail && supports(im, &jobs[m->job]) && !jobs[m->job].skipped[0];
}

/* ---- output: the table ---------------------------------------------------------- */

static const char *fmt_time(char *buf, size_t n, double s)
{
    if (isnan(s))
        snprintf(buf, n, "-");
    else if (s < 1e-6)
        snprintf(buf, n, "%.1f ns", s * 1e9);
    else if (s < 1e-3)
        snprintf(buf, n, "%.2f us", s * 1e6);
    else if (s < 1)
        snprintf(buf, n, "%.2f ms", s * 1e3);
    else
        snprintf(buf, n, "%.3f s", s);
    return buf;
}

static const char *fmt_rate(char *buf, size_t n, double r)
{
    if (isnan(r) || isinf(r))
        snprintf(buf, n, "-");
    else if (r >= 1e9)
        snprintf(buf, n, "%.2fG/s", r / 1e9);
    else if (r >= 1e6)
        snprintf(buf, n, "%.2fM/s", r / 1e6);
    else if (r >= 1e3)
        snprintf(buf, n, "%.1fk/s", r / 1e3);
    else
        snprintf(buf, n, "%.0f/s", r);
    return buf;
}

static const char *fmt_bytes(char *buf, size_t n, double b)
{
    if (isnan(b))
        snprintf(buf, n, "-");
    else if (b >= 1048576 * 10.0)
        snprintf(buf, n, "%.0f MiB", b / 1048576);
    else if (b >= 1048576)
        snprintf(buf, n, "%.1f MiB", b / 1048576);
    else
        snprintf(buf, n, "%.1f KiB", b / 1024);
    return buf;
}

/* no ratio: blank for a reference row, "-" where no reference exists */
static const char *fmt_ratio(char *buf, size_t n, double r, int dash)
{
    if (isnan(r))
        snprintf(buf, n, "%s", dash ? "-" : "");
    else
        snprintf(buf, n, "%.2f", r);
    return buf;
}

static void read_load(char *buf, size_t n)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a = 0, b = 0, c = 0;
    if (f && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(buf, n, "%.2f %.2f %.2f", a, b, c);
    else
        snprintf(buf, n, "?");
    if (f)
        fclose(f);
}

static void cpu_model(char *buf, size_t n)
{
    snprintf(buf, n, "?");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c += 2;
                c[strcspn(c, "\n")] = 0;
                snprintf(buf, n, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static void print_header(FILE *f)
{
    char cpu[128];
    struct utsname u;
    cpu_model(cpu, sizeof cpu);
    uname(&u);
    fprintf(f, "aloop-bench: aloop %s; %ld CPUs (%s); %s %s; load %s at start, %s at end\n",
            aloop_version(), sysconf(_SC_NPROCESSORS_ONLN), cpu, u.sysname, u.release, load_start, load_end);
    fprintf(f, "command: %s\n", cmdline);
    fprintf(f, "figures: median of %d runs (min, max), %s; ratio = median of the per-run ratios of times "
               "(< 1: aloop faster)\n", opt.runs,
            opt.cpu_clock ? "thread CPU time (--clock cpu; wakeup and timers fire (wall): wall clock)"
                          : "wall clock");
    for (int j = 0; j < njob; j++) {
        const struct job *jb = &jobs[j];
        switch (jb->kind) {
        case J_PIPES:
            fprintf(f, "  pipes N=%d: %d socketpairs, %d active, %d writes per round; time per round, "
                       "mean of %d rounds after a warm-up\n", jb->npipes, jb->npipes, opt.active,
                    opt.writes, opt.rounds);
            break;
        case J_TIMERS:
            fprintf(f, "  timers: %u one-shot timers, random timeouts in [0, %u) ms\n", opt.timers, opt.span_ms);
            break;
        case J_CHURN:
            fprintf(f, "  churn: %u starts, each cancelling the timer started %u before\n", opt.churn, opt.window);
            break;
        case J_CHAIN:
            fprintf(f, "  chain: %llu callbacks, each queueing the next\n", (unsigned long long)opt.chain);
            break;
        case J_FANOUT:
            fprintf(f, "  fanout: %u callbacks queued at once, then run\n", opt.fanout);
            break;
        case J_WAKE:
            if (jb->producers == 1)
                fprintf(f, "  wakeup: %u call_soon_threadsafe calls in total\n", opt.wake);
            break;
        case J_SWITCH: {
            int b = find_impl("bare");
            fprintf(f, "  switch: time per round trip of two tasks yielding to each other through the "
                       "loop (A yields, B runs and yields, A runs), over %llu; bare: the same switch "
                       "routine (%s) with no loop, the physical limit, over %llu; vs raw = aloop / bare\n",
                    (unsigned long long)opt.nswitch, b >= 0 && impls[b].b.version ? impls[b].b.version : "?",
                    (unsigned long long)opt.nswitch * BENCH_BARE_FACTOR);
            break;
        }
        case J_SPAWN:
            fprintf(f, "  spawn: time per task to spawn, run, join and release a trivial task from a "
                       "driver task, one at a time, then %d at a time (aloop_gather), over %llu; "
                       "pooled stacks\n", BENCH_SPAWN_BATCH, (unsigned long long)opt.nspawn);
            break;
        case J_RSS:
            if (jb == &jobs[0] || jb[-1].kind != J_RSS)
                fprintf(f, "  tasks-rss: RSS growth while N tasks sleep, each having touched 1.5 KiB of "
                           "its stack; one sample per loop (it does not vary); ops/s column: KiB per task\n");
            break;
        }
    }
    fprintf(f, "loops:");
    for (int i = 0; i < nimpl; i++)
        if (impls[i].selected && impls[i].avail)
            fprintf(f, " %s%s%s%s", impls[i].name, impls[i].b.version && impls[i].raw ? " (" : "",
                    impls[i].b.version && impls[i].raw ? impls[i].b.version : "",
                    impls[i].b.version && impls[i].raw ? ")" : "");
    fprintf(f, "\n");
    for (int i = 0; i < nimpl; i++)
        if (impls[i].selected && !impls[i].avail)
            fprintf(f, "skipped: %s: %s\n", impls[i].name, impls[i].why);
}

static const char *failure_text(const struct impl *im, const struct job *j)
{
    static char buf[160];
    int e = j->failed[im - impls];
    snprintf(buf, sizeof buf, "%s%s", err_text(e),
             !strcmp(im->name, "aloop-select") && j->kind == J_PIPES && e == -EINVAL
                 ? " (select watches fds below FD_SETSIZE only)" : "");
    return buf;
}

static void print_table(FILE *f)
{
    char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
    fprintf(f, "\n%-24s %-14s %10s %10s %10s %10s %7s %8s\n", "workload", "loop", "median", "min", "max",
            "ops/s", "vs raw", "vs libev");
    int lev = raw_libev();
    for (int mi = 0; mi < nmetric; mi++) {
        const struct metric *m = &metrics[mi];
        const struct job *j = &jobs[m->job];
        int any = 0;
        for (int i = 0; i < nimpl; i++) {
            if (!shown(m, i))
                continue;
            any = 1;
            if (j->failed[i]) {
                fprintf(f, "%-24s %-14s n/a: %s\n", m->label, impls[i].name, failure_text(&impls[i], j));
                continue;
            }
            struct stat3 s = stats(m, i);
            double rr = ratio(m, i, ref_of(m, i));
            double rl = impls[i].aloop || (impls[i].raw && i != lev) ? ratio(m, i, lev) : NAN;
            int dash = is_tasks(j) && impls[i].aloop;
            if (m->bytes) {
                fmt_bytes(b1, sizeof b1, s.med);
                fmt_bytes(b2, sizeof b2, s.min);
                fmt_bytes(b3, sizeof b3, s.max);
                snprintf(b4, sizeof b4, "%.2fK/task", s.med / m->ops / 1024);
            } else {
                fmt_time(b1, sizeof b1, s.med);
                fmt_time(b2, sizeof b2, s.min);
                fmt_time(b3, sizeof b3, s.max);
                fmt_rate(b4, sizeof b4, m->ops / s.med);
            }
            fprintf(f, "%-24s %-14s %10s %10s %10s %10s %7s %8s\n", m->label, impls[i].name, b1, b2, b3,
                    b4, fmt_ratio(b5, sizeof b5, rr, dash), fmt_ratio(b6, sizeof b6, rl, dash));
        }
        if (j->skipped[0]) {
            fprintf(f, "%-24s %-14s %s\n", m->label, "(every loop)", j->skipped);
            any = 1;
        }
        if (any && mi + 1 < nmetric)
            fputc('\n', f);
    }
}

static const struct metric *metric_by_id(const char *id)
{
    for (int i = 0; i < nmetric; i++)
        if (!strcmp(metrics[i].id, id))
            return &metrics[i];
    return NULL;
}

/* a block's title, printed before its first line only */
static const char *target_title;

static void target_head(FILE *f)
{
    if (target_title)
        fprintf(f, "\n%s\n", target_title);
    target_title = NULL;
}

static void target_line(FILE *f, const struct metric *m, int a, int b, double limit, const char *hint)
{
    if (!m || a < 0 || b < 0 || !impls[a].selected || !impls[a].avail)
        return;
    double r = ratio(m, a, b);
    if (isnan(r))
        return;
    target_head(f);
    char what[64];
    snprintf(what, sizeof what, "%s / %s", impls[a].name, impls[b].name);
    fprintf(f, "  %-24s %-30s %5.2f  (<= %.2f) %s%s\n", m->label, what, r, limit, r <= limit ? "holds" : "MISSED",
            r <= limit || !hint ? "" : hint);
}

static void print_targets(FILE *f)
{
    target_title = "targets (issue 4):";
    static const char *const ids[] = { "pipes-events", "pipes-setup", "timers-schedule", "timers-fire",
                                       "timers-fire-cpu", "timers-churn", NULL };
    static const char *const third[] = { "libev", "libevent", "libuv", NULL };
    for (int t = 0; third[t]; t++) {
        char an[32], rn[32];
        snprintf(an, sizeof an, "aloop-%s", third[t]);
        snprintf(rn, sizeof rn, "raw-%s", third[t]);
        int a = find_impl(an), b = find_impl(rn);
        if (b >= 0 && (!impls[b].selected || !impls[b].avail))
            b = -1;
        for (int k = 0; ids[k]; k++)
            for (int mi = 0; mi < nmetric; mi++)
                if (!strcmp(metrics[mi].id, ids[k]))
                    target_line(f, &metrics[mi], a, b, 1.05, NULL);
    }
    int ep = find_impl("aloop-epoll"), lev = raw_libev();
    for (int mi = 0; mi < nmetric; mi++)
        if (!strcmp(metrics[mi].id, "pipes-events"))
            target_line(f, &metrics[mi], ep, lev, 1.00,
                        " (the same system calls; user space by instructions: bench/pipes-instructions.sh)");
    const struct metric *ch = metric_by_id("callsoon-chain");
    int pl = find_impl("plain");
    if (ch) {
        struct stat3 ls = lev >= 0 ? stats(ch, lev) : (struct stat3){ NAN, NAN, NAN, 0 };
        struct stat3 ps = pl >= 0 && impls[pl].selected ? stats(ch, pl) : (struct stat3){ NAN, NAN, NAN, 0 };
        static const char *const native[] = { "aloop-epoll", "aloop-poll", "aloop-select", NULL };
        for (int k = 0; native[k]; k++) {
            int a = find_impl(native[k]);
            if (a < 0 || !impls[a].selected || !impls[a].avail)
                continue;
            struct stat3 s = stats(ch, a);
            if (isnan(s.med))
                continue;
            double per = s.med / ch->ops * 1e9;
            if (!isnan(ls.med)) {
                target_head(f);
                double lper = ls.med / ch->ops * 1e9;
                fprintf(f, "  %-24s %-30s %5.1f ns vs %.1f ns per callback (%s) %s\n",
                        ch->label, native[k], per, lper, opt.cpu_clock ? "cpu time" : "wall clock",
                        per < lper ? "holds" : "MISSED (the target counts instructions: bench/chain-instructions.sh)");
            }
            if (!isnan(ps.med)) {
                target_head(f);
                double frac = ps.med / s.med;
                fprintf(f, "  %-24s %-30s %5.0f%% of plain's rate (>= 50%%) %s\n", ch->label, native[k],
                        frac * 100, frac >= 0.5 ? "holds" : "MISSED");
            }
        }
    }
    /* tasks: a yield round trip through the loop within 8x the bare switch
     * of the same repetitions */
    target_title = "targets (issue 7, tasks):";
    const struct metric *sw = metric_by_id("switch");
    int bare = find_impl("bare");
    if (sw && bare >= 0 && impls[bare].selected && impls[bare].avail)
        for (int a = 0; a < nimpl; a++) {
            if (!impls[a].aloop || !impls[a].selected || !impls[a].avail)
                continue;
            double r = ratio(sw, a, bare);
            if (isnan(r))
                continue;
            target_head(f);
            char what[64];
            snprintf(what, sizeof what, "%.24s / bare", impls[a].name);
            fprintf(f, "  %-24s %-30s %5.2f  (<= 8.00) %s: %.1f ns vs %.1f ns per round trip\n", sw->label,
                    what, r, r <= 8.0 ? "holds" : "MISSED", stats(sw, a).med * 1e9, stats(sw, bare).med * 1e9);
        }
    /* spawn + run + join of a trivial task under 100 ns; 100,000 sleeping
     * tasks under 512 MiB of RSS; 1,000,000 sleeping tasks run at all */
    for (int mi = 0; mi < nmetric; mi++) {
        const struct metric *m = &metrics[mi];
        int spawn = !strcmp(m->id, "spawn") || !strcmp(m->id, "spawn-batch");
        if (!spawn && strcmp(m->id, "tasks-rss"))
            continue;
        for (int a = 0; a < nimpl; a++) {
            if (!impls[a].aloop || !shown(m, a))
                continue;
            struct stat3 s = stats(m, a);
            target_head(f);
            if (isnan(s.med)) {
                fprintf(f, "  %-24s %-30s did not run: MISSED\n", m->label, impls[a].name);
            } else if (spawn) {
                double ns = s.med / m->ops * 1e9;
                fprintf(f, "  %-24s %-30s %5.1f ns per task (< 100 ns) %s\n", m->label, impls[a].name, ns,
                        ns < 100 ? "holds" : "MISSED");
            } else if (m->ops <= 100000) {
                double mib = s.med / (1024.0 * 1024.0);
                fprintf(f, "  %-24s %-30s %5.0f MiB (< 512 MiB) %s\n", m->label, impls[a].name, mib,
                        mib < 512 ? "holds" : "MISSED");
            } else {
                fprintf(f, "  %-24s %-30s ran, %.0f MiB (runs at all) holds\n", m->label, impls[a].name,
                        s.med / (1024.0 * 1024.0));
            }
        }
    }
    target_title = NULL;
}

/* ---- output: CSV and JSON ------------------------------------------------------------ */

static void write_csv(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("%s: %s", path, strerror(errno));
    /* unit: what median_s, min_s, max_s and the runs hold, "s" (seconds)
     * or "bytes" (tasks-rss: ops_per_s and ns_per_op are then empty) */
    fprintf(f, "workload,label,loop,version,runs,median_s,min_s,max_s,ops,ops_per_s,ns_per_op,raw,vs_raw,vs_libev,error,unit");
    for (int r = 0; r < opt.runs; r++)
        fprintf(f, ",run%d_s", r + 1);
    fprintf(f, "\n");
    int lev = raw_libev();
    for (int mi = 0; mi < nmetric; mi++) {
        const struct metric *m = &metrics[mi];
        for (int i = 0; i < nimpl; i++) {
            if (!shown(m, i))
                continue;
            struct stat3 s = stats(m, i);
            int raw = ref_of(m, i);
            double rr = ratio(m, i, raw);
            double rl = i != lev ? ratio(m, i, lev) : NAN;
            int err = jobs[m->job].failed[i];
            fprintf(f, "%s,\"%s\",%s,\"%s\",%d,%.9g,%.9g,%.9g,%.0f,", m->id, m->label, impls[i].name,
                    impls[i].b.version ? impls[i].b.version : "", s.n, s.med, s.min, s.max, m->ops);
            if (!m->bytes)
                fprintf(f, "%.6g,%.6g", m->ops / s.med, s.med / m->ops * 1e9);
            else
                fputc(',', f);
            fprintf(f, ",%s,", raw >= 0 ? impls[raw].name : "");
            if (!isnan(rr))
                fprintf(f, "%.4f", rr);
            fputc(',', f);
            if (!isnan(rl))
                fprintf(f, "%.4f", rl);
            fprintf(f, ",\"%s\",%s", err ? failure_text(&impls[i], &jobs[m->job]) : "", m->bytes ? "bytes" : "s");
            for (int r = 0; r < opt.runs; r++) {
                double x = m->s[i * opt.runs + r];
                if (isnan(x))
                    fprintf(f, ",");
                else
                    fprintf(f, ",%.9g", x);
            }
            fprintf(f, "\n");
        }
        if (jobs[m->job].skipped[0]) {      /* one row, no loop */
            fprintf(f, "%s,\"%s\",,,0,,,,%.0f,,,,,,\"%s\",%s", m->id, m->label, m->ops, jobs[m->job].skipped,
                    m->bytes ? "bytes" : "s");
            for (int r = 0; r < opt.runs; r++)
                fputc(',', f);
            fprintf(f, "\n");
        }
    }
    fclose(f);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double x)
{
    if (isnan(x) || isinf(x))
        fprintf(f, "null");
    else
        fprintf(f, "%.9g", x);
}

static void write_json(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("%s: %s", path, strerror(errno));
    char cpu[128];
    struct utsname u;
    cpu_model(cpu, sizeof cpu);
    uname(&u);
    fprintf(f, "{\n  \"aloop\": ");
    json_str(f, aloop_version());
    fprintf(f, ",\n  \"command\": ");
    json_str(f, cmdline);
    fprintf(f, ",\n  \"machine\": {\"cpus\": %ld, \"cpu\": ", sysconf(_SC_NPROCESSORS_ONLN));
    json_str(f, cpu);
    fprintf(f, ", \"kernel\": ");
    json_str(f, u.release);
    fprintf(f, ", \"load_start\": ");
    json_str(f, load_start);
    fprintf(f, ", \"load_end\": ");
    json_str(f, load_end);
    fprintf(f, "},\n  \"runs\": %d,\n  \"clock\": \"%s\",\n", opt.runs, opt.cpu_clock ? "cpu" : "wall");
    fprintf(f, "  \"sizes\": {\"pipes\": [");
    for (int s = 0; s < opt.nsizes; s++)
        fprintf(f, "%s%d", s ? ", " : "", opt.npipes[s]);
    fprintf(f, "], \"active\": %d, \"writes\": %d, \"rounds\": %d, \"timers\": %u, \"span_ms\": %u, "
               "\"churn\": %u, \"window\": %u, \"chain\": %llu, \"fanout\": %u, \"wakeup\": %u, "
               "\"switch\": %llu, \"spawn\": %llu, \"tasks\": [",
            opt.active, opt.writes, opt.rounds, opt.timers, opt.span_ms, opt.churn, opt.window,
            (unsigned long long)opt.chain, opt.fanout, opt.wake, (unsigned long long)opt.nswitch,
            (unsigned long long)opt.nspawn);
    for (int s = 0; s < opt.ntasksizes; s++)
        fprintf(f, "%s%u", s ? ", " : "", opt.ntasks[s]);
    fprintf(f, "]},\n");
    fprintf(f, "  \"loops\": [");
    int first = 1;
    for (int i = 0; i < nimpl; i++) {
        if (!impls[i].selected)
            continue;
        fprintf(f, "%s\n    {\"name\": ", first ? "" : ",");
        first = 0;
        json_str(f, impls[i].name);
        fprintf(f, ", \"available\": %s, \"version\": ", impls[i].avail ? "true" : "false");
        if (impls[i].b.version)
            json_str(f, impls[i].b.version);
        else
            fprintf(f, "null");
        fprintf(f, ", \"note\": ");
        json_str(f, impls[i].why);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ],\n  \"results\": [");
    first = 1;
    int lev = raw_libev();
    for (int mi = 0; mi < nmetric; mi++) {
        const struct metric *m = &metrics[mi];
        for (int i = 0; i < nimpl; i++) {
            if (!shown(m, i))
                continue;
            struct stat3 s = stats(m, i);
            int raw = ref_of(m, i);
            int err = jobs[m->job].failed[i];
            fprintf(f, "%s\n    {\"workload\": ", first ? "" : ",");
            first = 0;
            json_str(f, m->id);
            fprintf(f, ", \"label\": ");
            json_str(f, m->label);
            fprintf(f, ", \"loop\": ");
            json_str(f, impls[i].name);
            fprintf(f, ", \"ops\": %.0f, \"unit\": ", m->ops);
            json_str(f, m->opname);
            /* tasks-rss: bytes, not seconds */
            const char *unit = m->bytes ? "bytes" : "s";
            fprintf(f, ", \"median_%s\": ", unit);
            json_num(f, s.med);
            fprintf(f, ", \"min_%s\": ", unit);
            json_num(f, s.min);
            fprintf(f, ", \"max_%s\": ", unit);
            json_num(f, s.max);
            if (m->bytes) {
                fprintf(f, ", \"bytes_per_op\": ");
                json_num(f, s.med / m->ops);
            } else {
                fprintf(f, ", \"ops_per_s\": ");
                json_num(f, m->ops / s.med);
                fprintf(f, ", \"ns_per_op\": ");
                json_num(f, s.med / m->ops * 1e9);
            }
            fprintf(f, ", \"raw\": ");
            if (raw >= 0)
                json_str(f, impls[raw].name);
            else
                fprintf(f, "null");
            fprintf(f, ", \"vs_raw\": ");
            json_num(f, ratio(m, i, raw));
            fprintf(f, ", \"vs_libev\": ");
            json_num(f, i != lev ? ratio(m, i, lev) : NAN);
            fprintf(f, ", \"error\": ");
            if (err)
                json_str(f, failure_text(&impls[i], &jobs[m->job]));
            else
                fprintf(f, "null");
            fprintf(f, ", \"samples_%s\": [", unit);
            for (int r = 0; r < opt.runs; r++) {
                fprintf(f, "%s", r ? ", " : "");
                json_num(f, m->s[i * opt.runs + r]);
            }
            fprintf(f, "]}");
        }
    }
    fprintf(f, "\n  ],\n  \"skipped\": [");
    first = 1;
    for (int mi = 0; mi < nmetric; mi++) {
        const struct metric *m = &metrics[mi];
        if (!jobs[m->job].skipped[0])
            continue;
        fprintf(f, "%s\n    {\"workload\": ", first ? "" : ",");
        first = 0;
        json_str(f, m->id);
        fprintf(f, ", \"label\": ");
        json_str(f, m->label);
        fprintf(f, ", \"reason\": ");
        json_str(f, jobs[m->job].skipped);
        fprintf(f, "}");
    }
    fprintf(f, "%s]\n}\n", first ? "" : "\n  ");
    fclose(f);
}

/* ---- output: the plot (gnuplot) --------------------------------------------------------
 * One panel per row of the table: a bar per loop, ns per operation (median;
 * the whisker spans min..max; tasks-rss: RSS bytes per task), aloop in blue
 * beside the raw library under it in orange, plain and bare in grey; each
 * aloop bar is labelled with its ratio to that raw library (switch: to
 * bare).  A panel whose bars are 20x apart or more gets a log scale. */

static const char *bar_color(const struct impl *im)
{
    if (im->aloop)
        return "0x2b6cb0";
    if (im->raw)
        return "0xdd8452";
    return "0x8c8c8c";
}

static void write_plot(const char *png)
{
    char gp[PATH_MAX];
    size_t l = strlen(png);
    if (l > 4 && !strcmp(png + l - 4, ".png"))
        snprintf(gp, sizeof gp, "%.*s.gp", (int)(l - 4), png);
    else
        snprintf(gp, sizeof gp, "%s.gp", png);
    FILE *f = fopen(gp, "w");
    if (!f)
        die("%s: %s", gp, strerror(errno));
    int panels = 0;
    for (int mi = 0; mi < nmetric; mi++)
        for (int i = 0; i < nimpl; i++)
            if (shown(&metrics[mi], i) && !isnan(stats(&metrics[mi], i).med)) {
                panels++;
                break;
            }
    if (!panels) {
        fclose(f);
        fprintf(stderr, "aloop-bench: nothing to plot\n");
        return;
    }
    int cols = panels < 3 ? panels : 3, rows = (panels + cols - 1) / cols;
    char cpu[128];
    cpu_model(cpu, sizeof cpu);
    fprintf(f, "# generated by aloop-bench; run: gnuplot %s\n", gp);
    fprintf(f, "set terminal pngcairo size %d,%d font 'Sans,10' noenhanced\n", 560 * cols, 400 * rows + 80);
    fprintf(f, "set output '%s'\n", png);
    fprintf(f, "set style fill solid 0.9 border rgb 'black'\n");
    fprintf(f, "set boxwidth 0.8\nunset key\nset grid ytics lc rgb '#dddddd'\n");
    fprintf(f, "set xtics rotate by -40 scale 0 font ',9'\n");
    fprintf(f, "set yrange [0:*]\nset offsets 0, 0, graph 0.12, 0\n");
    fprintf(f, "set multiplot layout %d,%d title \"aloop-bench: ns per operation (%s), median of %d runs (whiskers: min..max). "
               "blue = aloop on the backend, orange = the raw library, grey = plain loop, bare switch; "
               "label = aloop time / raw time (switch: / bare)\\n%s, %ld CPUs, load %s; %s\" font ',11'\n",
            rows, cols, opt.cpu_clock ? "thread CPU time" : "wall clock", opt.runs, cpu, sysconf(_SC_NPROCESSORS_ONLN), load_start, cmdline);
    for (int mi = 0; mi < nmetric; mi++) {
        const struct metric *m = &metrics[mi];
        int x = 0, any = 0;
        char block[64];
        snprintf(block, sizeof block, "$d%d", mi);
        for (int i = 0; i < nimpl; i++)
            if (shown(m, i) && !isnan(stats(m, i).med))
                any = 1;
        if (!any)
            continue;
        fprintf(f, "%s << EOD\n", block);
        const char *prev = NULL;
        for (int i = 0; i < nimpl; i++) {
            if (!shown(m, i))
                continue;
            struct stat3 s = stats(m, i);
            if (isnan(s.med))
                continue;
            /* a gap between pairs */
            if (prev && strcmp(prev, impls[i].lib))
                x++;
            prev = impls[i].lib;
            double r = ratio(m, i, ref_of(m, i));
            char lab[32] = "";
            if (!isnan(r))
                snprintf(lab, sizeof lab, "x%.2f", r);
            double k = m->bytes ? 1 : 1e9;         /* bytes or ns per op */
            fprintf(f, "%d %s %.6g %.6g %.6g %s \"%s\"\n", x, impls[i].name, s.med / m->ops * k,
                    s.min / m->ops * k, s.max / m->ops * k, bar_color(&impls[i]), lab);
            x++;
        }
        fprintf(f, "EOD\n");
        /* bars 20x apart or more (raw libuv's chain runs a timer per call):
         * a log scale, or the small ones vanish into the axis */
        double lo = INFINITY, hi = 0;
        for (int i = 0; i < nimpl; i++) {
            struct stat3 s = shown(m, i) ? stats(m, i) : (struct stat3){ .med = NAN };
            if (!isnan(s.med) && s.med > 0) {
                lo = s.med < lo ? s.med : lo;
                hi = s.med > hi ? s.med : hi;
            }
        }
        int logy = hi > 20 * lo;
        if (logy) {
            double k = m->bytes ? 1 : 1e9, v = lo / m->ops * k / 2, b = 1;
            while (b > v)                       /* the power of ten below half the least */
                b /= 10;
            while (b * 10 <= v)
                b *= 10;
            fprintf(f, "set logscale y\nset yrange [%.6g:*]\n", b);
        }
        fprintf(f, "set title \"%s%s\"\nset ylabel '%s per %s'\nset xrange [-0.7:%d.7]\n", m->label,
                logy ? " (log scale)" : "",
                m->bytes ? "RSS bytes" : "ns",
                !strcmp(m->opname, "events") ? "event" : !strcmp(m->opname, "timers") ? "timer" :
                !strcmp(m->opname, "start+cancel") ? "start+cancel" :
                !strcmp(m->opname, "round trips") ? "round trip" : !strcmp(m->opname, "tasks") ? "task" :
                "call", x - 1);
        fprintf(f, "plot %s using 1:3:(0.8):6:xtic(2) with boxes lc rgb variable, \\\n"
                   "     %s using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0 lw 1, \\\n"
                   "     %s using 1:5:7 with labels offset 0,0.8 font ',9'\n", block, block, block);
        if (logy)
            fprintf(f, "unset logscale y\nset yrange [0:*]\n");
    }
    fprintf(f, "unset multiplot\n");
    fclose(f);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "gnuplot '%s'", gp);
    int st = system(cmd);
    if (st != 0)
        fprintf(stderr, "aloop-bench: gnuplot failed (%d); is gnuplot installed? the script is %s\n",
                WIFEXITED(st) ? WEXITSTATUS(st) : st, gp);
    else
        fprintf(stderr, "aloop-bench: wrote %s (script %s)\n", png, gp);
}

/* ---- main ---------------------------------------------------------------------------- */

static void list_loops(void)
{
    for (int i = 0; i < nimpl; i++) {
        const struct impl *im = &impls[i];
        if (im->avail)
            printf("  %-14s available%s%s\n", im->name, im->b.version && im->raw ? ": " : "",
                   im->b.version && im->raw ? im->b.version : "");
        else
            printf("  %-14s unavailable: %s\n", im->name, im->why);
    }
    printf("workloads: pipes timers churn callsoon chain fanout wakeup wakeup1 wakeup2 tasks switch spawn "
           "tasks-rss\n");
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    check_workloads();
    default_module_path();
    discover();
    if (opt.list) {
        list_loops();
        return 0;
    }
    select_impls();
    build_jobs();
    tty = isatty(2);
    int any = 0;
    for (int i = 0; i < nimpl; i++)
        if (impls[i].selected && impls[i].avail)
            any = 1;
    if (!any)
        die("no loop available among those selected (try --list)");
    for (int i = 0; i < nimpl; i++)
        if (impls[i].selected && !impls[i].avail)
            fprintf(stderr, "aloop-bench: skipping %s: %s\n", impls[i].name, impls[i].why);
    make_pipes();
    make_delays();
    read_load(load_start, sizeof load_start);
    run_all();
    read_load(load_end, sizeof load_end);

    print_header(stdout);
    print_table(stdout);
    print_targets(stdout);
    fflush(stdout);
    if (opt.csv)
        write_csv(opt.csv);
    if (opt.json)
        write_json(opt.json);
    if (opt.plot)
        write_plot(opt.plot);
    return 0;
}
