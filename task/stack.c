/* stack.c -- task stacks: carved from large mmap'd chunks, pooled per loop,
 * guarded while the process's mapping budget allows.
 *
 * A slot is [pad page][zone | usable stack ... | struct aloop__stack].  The
 * pad page is made PROT_NONE (a guard) while the budget allows: a guarded
 * stack splits its chunk's mapping in two, and Linux caps a process's
 * mappings at vm.max_map_count (65530 by default), so about 28,000 stacks
 * can have one.  The rest keep the pad as plain memory that is never
 * touched.  Every stack's low 256 bytes (the zone) must stay untouched:
 * untouched anonymous memory reads as zeros from the kernel's shared zero
 * page, so checking it costs neither memory nor (the zero page being one
 * physical page) cache misses.  task.c checks, at every switch out of a
 * task, that the saved stack pointer is above the zone and, for unguarded
 * stacks, that the zone still reads zero.
 *
 * Memory is committed page by page as a task touches it (MAP_NORESERVE,
 * MADV_NOHUGEPAGE: a huge page would make each stack cost 2 MiB).
 *
 * The top of each stack (its descriptor and the first frames, what every
 * spawn and switch touches) is shifted down by a colour of 0..15 cache lines
 * (slot_colour): slots are a page-multiple apart, so without it every
 * stack's top would fall in the same few cache sets, and a thousand tasks
 * run in a row would miss the L2 cache on each (spawn + join: 138 -> 109 ns
 * here).  At most 960 bytes, so the first frames stay in the top page. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "task.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ALOOP__VALGRIND 1
#endif
#endif

#ifdef ALOOP__ASAN
#include <sanitizer/asan_interface.h>
#endif

#define DESC_SIZE ALOOP__DESC_SIZE
#define COLOURS 16
#define MAP_RESERVE 8192L           /* mappings left to the application */
#define CHUNK_BYTES ((size_t)64 << 20)

static size_t page;
static atomic_long guards_left;     /* process-wide: the limit is */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static long read_long_file(const char *path, long dflt)
{
    char buf[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dflt;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return dflt;
    buf[n] = 0;
    char *end;
    long v = strtol(buf, &end, 10);
    return end == buf ? dflt : v;
}

/* How many mappings the process has now (lines of /proc/self/maps). */
static long count_maps(void)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1024;
    char buf[4096];
    long lines = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    close(fd);
    return lines;
}

static void init_once(void)
{
    long p = sysconf(_SC_PAGESIZE);
    page = p > 0 ? (size_t)p : 4096;
    const char *env = secure_getenv("ALOOP_TASK_GUARDS");
    long n;
    if (env && *env) {
        n = strtol(env, NULL, 10);
    } else {
        long max = read_long_file("/proc/sys/vm/max_map_count", 65530);
        n = (max - count_maps() - MAP_RESERVE) / 2;
    }
    atomic_store(&guards_left, n > 0 ? n : 0);
}

size_t aloop__stack_round(size_t size)
{
    pthread_once(&once, init_once);
    return (size + page - 1) & ~(page - 1);
}

int aloop__stack_pool_init(struct aloop__stack_pool *p, size_t size)
{
    if (size < 16384 || size > ((size_t)1 << 30))
        return -EINVAL;
    size = aloop__stack_round(size);
    memset(p, 0, sizeof *p);
    p->size = size;
    p->slot = size + page;
    return 0;
}

static int pool_grow(struct aloop__stack_pool *p)
{
    /* small chunks while stacks get guards (each splits the mapping
     * anyway), large ones after, so that 1,000,000 stacks take ~1,000
     * mappings */
    size_t nslots = atomic_load_explicit(&guards_left, memory_order_relaxed) > 0 ? 64 : 1024;
    while (nslots > 1 && nslots * p->slot > CHUNK_BYTES)
        nslots /= 2;
    struct aloop__stack_chunk *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    size_t len = nslots * p->slot;
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) {
        int e = errno;
        free(c);
        return e == EAGAIN ? -ENOMEM : -e;
    }
#ifdef MADV_NOHUGEPAGE
    madvise(base, len, MADV_NOHUGEPAGE);
#endif
    c->base = base;
    c->len = len;
    c->nguards = 0;
    c->next = p->chunks;
    p->chunks = c;
    p->carve = (char *)base + len;
    p->carve_end = base;
    return 0;
}

/* The descriptor of the slot whose high end is hi. */
static inline struct aloop__stack *slot_desc(const struct aloop__stack_pool *p, char *hi)
{
    size_t colour = ((uintptr_t)hi / p->slot) % COLOURS * 64;
    return (struct aloop__stack *)(void *)(hi - DESC_SIZE - colour);
}

static int take_guard(void)
{
    long n = atomic_load_explicit(&guards_left, memory_order_relaxed);
    while (n > 0)
        if (atomic_compare_exchange_weak(&guards_left, &n, n - 1))
            return 1;
    return 0;
}

struct aloop__stack *aloop__stack_get(struct aloop__stack_pool *p)
{
    struct aloop__stack *s = p->free;
    if (likely(s != NULL)) {
        p->free = s->next;
        p->nfree--;
#ifdef ALOOP__ASAN
        /* frames of the last task may have left poisoned redzones */
        __asan_unpoison_memory_region(s->lo, (size_t)(s->top - s->lo));
#endif
        return s;
    }
    if (p->carve == p->carve_end && pool_grow(p) < 0)
        return NULL;
    char *hi = p->carve, *lo = hi - p->slot;
    p->carve = lo;
    s = slot_desc(p, hi);
    s->next = NULL;
    s->lo = lo + page;
    s->top = (char *)s;
    s->guarded = 0;
    s->vg_id = 0;
    if (take_guard()) {
        if (mprotect(lo, page, PROT_NONE) == 0) {
            s->guarded = 1;
            p->chunks->nguards++;
        } else {
            /* the kernel's limit came first: no more guards */
            atomic_store(&guards_left, 0);
        }
    }
#ifdef ALOOP__VALGRIND
    s->vg_id = VALGRIND_STACK_REGISTER(s->lo, hi);
#endif
    p->ntotal++;
    return s;
}

void aloop__stack_put(struct aloop__stack_pool *p, struct aloop__stack *s)
{
    s->next = p->free;
    p->free = s;
    p->nfree++;
}

void aloop__stack_pool_fini(struct aloop__stack_pool *p)
{
    struct aloop__stack_chunk *c = p->chunks;
    int newest = 1;
    while (c) {
        struct aloop__stack_chunk *next = c->next;
#ifdef ALOOP__VALGRIND
        /* deregister every carved slot (the newest chunk: down to carve) */
        char *end = newest ? p->carve : c->base;
        for (char *hi = c->base + c->len; hi > end; hi -= p->slot) {
            struct aloop__stack *s = slot_desc(p, hi);
            VALGRIND_STACK_DEREGISTER(s->vg_id);
        }
#endif
        newest = 0;
        atomic_fetch_add(&guards_left, (long)c->nguards);
#ifdef ALOOP__ASAN
        /* frames of tasks left suspended keep poisoned redzones: a later
         * mapping at this address must not inherit them */
        __asan_unpoison_memory_region(c->base, c->len);
#endif
        munmap(c->base, c->len);
        free(c);
        c = next;
    }
    memset(p, 0, sizeof *p);
}

#ifndef ALOOP_TASK_UCONTEXT
#if defined(__x86_64__)
extern void aloop__fiber_entry(void) ALOOP__HIDDEN;

/* A new side for aloop__fiber_jump: it continues at aloop__fiber_entry,
 * which jumps to entry(arg) (the words above the stack pointer) as if
 * called from address 0; the last 16 bytes of the stack are zero (an
 * unwinder's end). */
void aloop__fiber_make(struct aloop__fctx *f, void *lo, void *top, void *uc,
                       void (*entry)(void *), void *arg)
{
    (void)lo;
    (void)uc;
    uintptr_t *end = (uintptr_t *)((uintptr_t)top & ~(uintptr_t)15) - 2;
    end[0] = end[1] = 0;
    uintptr_t *sp = end - 3;        /* 8 mod 16, as at a function's entry */
    sp[0] = 0;                      /* its return address: none */
    sp[1] = (uintptr_t)entry;
    sp[2] = (uintptr_t)arg;
    f->sp = sp;
    f->pc = (void *)aloop__fiber_entry;
    f->bp = NULL;
}
#else
extern void aloop__fiber_start(void) ALOOP__HIDDEN;

/* Lay out a frame of aloop__fiber_switch that "returns" into
 * aloop__fiber_start with the entry and its argument in callee-saved
 * registers; the last 16 bytes of the stack are zero (an unwinder's end). */
void aloop__fiber_make(struct aloop__fctx *f, void *lo, void *top, void *uc,
                       void (*entry)(void *), void *arg)
{
    (void)lo;
    (void)uc;
    uintptr_t *end = (uintptr_t *)((uintptr_t)top & ~(uintptr_t)15) - 2;
    end[0] = end[1] = 0;
    /* aarch64: x19..x30, d8..d15 */
    uintptr_t *sp = end - 20;
    memset(sp, 0, 20 * sizeof *sp);
    sp[0] = (uintptr_t)entry;
    sp[1] = (uintptr_t)arg;
    sp[11] = (uintptr_t)aloop__fiber_start;
    f->sp = sp;
}
#endif
#endif

void aloop__stack_overflow(const struct aloop__stack *s, const void *sp)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg,
                     "aloop: task stack overflow (stack %p..%p, %s, stack pointer %p): "
                     "aborting; give the loop bigger stacks (aloop_set_task_stack_size)\n",
                     (const void *)s->lo, (const void *)s->top,
                     s->guarded ? "guarded" : "canary-checked", sp);
    if (n > 0) {
        ssize_t w = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        (void)w;
    }
    abort();
}
