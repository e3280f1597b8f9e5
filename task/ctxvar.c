/* ctxvar.c -- context variables: asyncio's contextvars.
 *
 * A context is an immutable map from variable to value, a hash array mapped
 * trie (as in CPython's hamt.c): 32-way nodes indexed by 5 bits of the
 * variable's hash, with a bitmap saying which of the 32 are present.
 * Setting copies the path from the root to the leaf (a few small nodes), so
 * every older map stays valid and shared; copying a context is taking a
 * reference, O(1).  Hashes are a bijection of a 32-bit serial number, so two
 * live variables never collide and no collision nodes are needed.
 *
 * Maps never leave their thread (a context is current on one thread, and
 * tasks and callbacks run on their loop's thread), so reference counts are
 * plain integers.  A variable can be shared by threads: its own count, of
 * the creator and of every leaf that holds it, is atomic.
 *
 * The loop core learns of contexts through struct aloop__ctx_ops (core/
 * loop.h), installed when the first variable is created: a queued callback
 * captures the current map and runs with it current, in a copy (its sets
 * vanish when it returns). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"

enum { NODE, LEAF };

struct aloop_ctxvar {
    atomic_long ref;
    uint32_t hash;
    void (*free_value)(void *);
    char name[];
};

struct leaf {
    struct aloop__cmap_hdr h;
    aloop_ctxvar_t *var;
    void *value;
};

struct node {
    struct aloop__cmap_hdr h;
    uint32_t bitmap;
    struct aloop__cmap_hdr *child[];    /* popcount(bitmap) of them */
};

__thread struct aloop__tls aloop__tls __attribute__((tls_model("initial-exec")));

static atomic_uint serial;

/* ---- maps --------------------------------------------------------------- */

static void var_unref(aloop_ctxvar_t *v)
{
    if (atomic_fetch_sub_explicit(&v->ref, 1, memory_order_acq_rel) == 1)
        free(v);
}

static void hdr_release(struct aloop__cmap_hdr *h);

static void node_free(struct aloop__cmap_hdr *h)
{
    if (h->kind == LEAF) {
        struct leaf *l = (struct leaf *)h;
        if (l->var->free_value)
            l->var->free_value(l->value);
        var_unref(l->var);
    } else {
        struct node *n = (struct node *)h;
        int k = __builtin_popcount(n->bitmap);
        for (int i = 0; i < k; i++)
            hdr_release(n->child[i]);
    }
    free(h);
}

static void hdr_release(struct aloop__cmap_hdr *h)
{
    /* iterative along the common chain of single references would be
     * nicer; depth is at most 7 levels, recursion is fine */
    if (h && --h->ref == 0)
        node_free(h);
}

void aloop__cmap_release(struct aloop__cmap *m)
{
    hdr_release((struct aloop__cmap_hdr *)m);
}

static struct node *node_new(uint32_t bitmap)
{
    int k = __builtin_popcount(bitmap);
    struct node *n = malloc(sizeof *n + (size_t)k * sizeof n->child[0]);
    if (n) {
        n->h.ref = 1;
        n->h.kind = NODE;
        n->bitmap = bitmap;
    }
    return n;
}

static inline uint32_t bit_at(uint32_t hash, unsigned shift)
{
    return 1u << ((hash >> shift) & 31);
}

static inline int slot_of(uint32_t bitmap, uint32_t bit)
{
    return __builtin_popcount(bitmap & (bit - 1));
}

/* A node holding two leaves whose hashes agree below `shift`. */
static struct aloop__cmap_hdr *pair(struct leaf *a, struct leaf *b, unsigned shift)
{
    uint32_t ba = bit_at(a->var->hash, shift), bb = bit_at(b->var->hash, shift);
    struct node *n = node_new(ba | bb);
    if (!n)
        return NULL;
    if (ba == bb) {
        struct aloop__cmap_hdr *sub = pair(a, b, shift + 5);
        if (!sub) {
            free(n);
            return NULL;
        }
        n->child[0] = sub;
    } else {
        n->child[ba < bb ? 0 : 1] = &a->h;
        n->child[ba < bb ? 1 : 0] = &b->h;
    }
    return &n->h;
}

/* A copy of `n` (NULL: empty) with leaf `l` set in it; takes l's reference
 * on success. */
static struct aloop__cmap_hdr *assoc(struct node *n, struct leaf *l, unsigned shift)
{
    uint32_t bit = bit_at(l->var->hash, shift);
    if (!n) {
        struct node *m = node_new(bit);
        if (m)
            m->child[0] = &l->h;
        return m ? &m->h : NULL;
    }
    int k = __builtin_popcount(n->bitmap), i = slot_of(n->bitmap, bit);
    if (!(n->bitmap & bit)) {
        struct node *m = node_new(n->bitmap | bit);
        if (!m)
            return NULL;
        for (int j = 0; j < i; j++)
            (m->child[j] = n->child[j])->ref++;
        m->child[i] = &l->h;
        for (int j = i; j < k; j++)
            (m->child[j + 1] = n->child[j])->ref++;
        return &m->h;
    }
    struct aloop__cmap_hdr *old = n->child[i], *repl;
    if (old->kind == LEAF) {
        struct leaf *ol = (struct leaf *)old;
        if (ol->var == l->var) {
            repl = &l->h;
        } else {
            old->ref++;     /* pair() keeps it */
            repl = pair(ol, l, shift + 5);
            if (!repl) {
                old->ref--;
                return NULL;
            }
        }
    } else {
        repl = assoc((struct node *)old, l, shift + 5);
        if (!repl)
            return NULL;
    }
    struct node *m = node_new(n->bitmap);
    if (!m) {
        if (repl != &l->h) {
            /* undo: the new subtree holds l's only reference and the old
             * children's extra ones; l stays owned by the caller */
            l->h.ref++;
            hdr_release(repl);
        }
        return NULL;
    }
    for (int j = 0; j < k; j++)
        if (j != i)
            (m->child[j] = n->child[j])->ref++;
    m->child[i] = repl;
    return &m->h;
}

static struct leaf *lookup(const struct aloop__cmap *map, const aloop_ctxvar_t *var)
{
    const struct node *n = (const struct node *)map;
    uint32_t h = var->hash;
    for (unsigned shift = 0; n; shift += 5) {
        uint32_t bit = bit_at(h, shift);
        if (!(n->bitmap & bit))
            return NULL;
        const struct aloop__cmap_hdr *c = n->child[slot_of(n->bitmap, bit)];
        if (c->kind == LEAF) {
            const struct leaf *l = (const struct leaf *)c;
            return l->var == var ? (struct leaf *)l : NULL;
        }
        n = (const struct node *)c;
    }
    return NULL;
}

/* ---- the core's hook ------------------------------------------------------
 * The empty map is NULL in a task or a thread's base context; a callback
 * queued while it is current captures EMPTY, so that the core still enters
 * and leaves a copy around it (and its sets do not leak into the base). */
static struct aloop__cmap_hdr empty_hdr = { 1, NODE };
#define EMPTY ((void *)&empty_hdr)

static void *ops_capture(void)
{
    struct aloop__cmap *m = aloop__tls.ctx;
    return m ? aloop__cmap_retain(m) : EMPTY;
}

static void *ops_enter(void *ctx)
{
    struct aloop__cmap *prev = aloop__tls.ctx;
    aloop__tls.ctx = ctx == EMPTY ? NULL : aloop__cmap_retain(ctx);
    return prev;
}

static void ops_leave(void *prev)
{
    aloop__cmap_release(aloop__tls.ctx);
    aloop__tls.ctx = prev;
}

static void ops_retain(void *ctx)
{
    if (ctx != EMPTY)
        aloop__cmap_retain(ctx);
}

static void ops_release(void *ctx)
{
    if (ctx != EMPTY)
        aloop__cmap_release(ctx);
}

static const struct aloop__ctx_ops ops = {
    ops_capture, ops_enter, ops_leave, ops_retain, ops_release,
};

/* A thread's base context is released when the thread exits. */
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *unused)
{
    (void)unused;
    struct aloop__cmap *m = aloop__tls.ctx;
    aloop__tls.ctx = NULL;
    aloop__cmap_release(m);
}

static void key_init(void)
{
    pthread_key_create(&exit_key, thread_exit);
}

/* ---- the API --------------------------------------------------------------- */

aloop_ctxvar_t *aloop_ctxvar_new(const char *name, void (*free_value)(void *))
{
    if (!name)
        name = "";
    size_t len = strlen(name);
    aloop_ctxvar_t *v = malloc(sizeof *v + len + 1);
    if (!v)
        return NULL;
    /* odd multiplier: a bijection on 32 bits that spreads serial numbers
     * over the trie's top levels */
    uint32_t s = atomic_fetch_add(&serial, 1) + 1;
    v->hash = s * 0x9e3779b1u;
    v->free_value = free_value;
    atomic_init(&v->ref, 1);
    memcpy(v->name, name, len + 1);
    pthread_once(&key_once, key_init);
    if (!atomic_load_explicit(&aloop__ctx, memory_order_relaxed))
        atomic_store(&aloop__ctx, &ops);
    return v;
}

void aloop_ctxvar_free(aloop_ctxvar_t *var)
{
    if (var)
        var_unref(var);
}

const char *aloop_ctxvar_name(const aloop_ctxvar_t *var)
{
    return var ? var->name : "";
}

int aloop_ctxvar_set(aloop_ctxvar_t *var, void *value)
{
    if (!var)
        return -EINVAL;
    struct aloop__cmap *cur = aloop__tls.ctx;
    struct leaf *old = lookup(cur, var);
    if (old && old->value == value)
        return 0;
    struct leaf *l = malloc(sizeof *l);
    if (!l)
        return -ENOMEM;
    l->h.ref = 1;
    l->h.kind = LEAF;
    l->var = var;
    l->value = value;
    struct aloop__cmap_hdr *m = assoc((struct node *)cur, l, 0);
    if (!m) {
        free(l);
        return -ENOMEM;
    }
    atomic_fetch_add_explicit(&var->ref, 1, memory_order_relaxed);
    if (!cur && !aloop__tls.task)
        pthread_setspecific(exit_key, (void *)1);   /* a base context appears */
    aloop__tls.ctx = (struct aloop__cmap *)m;
    aloop__cmap_release(cur);
    return 0;
}

void *aloop_ctxvar_get(const aloop_ctxvar_t *var, void *default_value)
{
    if (!var)
        return default_value;
    struct leaf *l = lookup(aloop__tls.ctx, var);
    return l ? l->value : default_value;
}
