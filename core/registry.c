/* registry.c -- backend names, selection, and loading of backend modules.
 *
 * Native backends are linked in.  Library backends are shared modules
 * (libaloop-ev.so, ...) opened with RTLD_LOCAL the first time they are
 * named, so libev's libevent-compatible symbols never meet libevent's.
 * Modules are searched in $ALOOP_MODULE_PATH (colon-separated; ignored by
 * set-uid programs), then beside libaloop itself, then in the install's
 * libdir. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

extern const struct aloop_backend aloop_backend_epoll;
extern const struct aloop_backend aloop_backend_poll;
extern const struct aloop_backend aloop_backend_select;

#ifndef ALOOP_MODULE_DIR
#define ALOOP_MODULE_DIR "/usr/local/lib"
#endif

struct entry {
    const char *name;
    const struct aloop_backend *builtin;
    const char *module;         /* file name of the module */
};

/* best first */
static const struct entry registry[] = {
    { "epoll", &aloop_backend_epoll, NULL },
    { "poll", &aloop_backend_poll, NULL },
    { "select", &aloop_backend_select, NULL },
    { "libev", NULL, "libaloop-ev.so" },
    { "libevent", NULL, "libaloop-event.so" },
    { "libuv", NULL, "libaloop-uv.so" },
    /* named by the contract as backends to come: known, not implemented
     * (aloop_new gives -ENOTSUP, as for a module that is not built) */
    { "uring", NULL, NULL },
    { "kqueue", NULL, NULL },
};
#define NREG (sizeof registry / sizeof registry[0])

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int tried, err;
    const struct aloop_backend *be;
    void *handle;
} loaded[NREG];

static int try_open(const char *dir, size_t dirlen, const char *file, void **handle)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%.*s/%s", (int)dirlen, dir, file);
    if (n < 0 || (size_t)n >= sizeof path)
        return -ENAMETOOLONG;
    *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (*handle)
        return 0;
    /* a file that exists but does not load is "library missing" or "not a
     * module"; a file that is not there lets the search go on */
    FILE *f = fopen(path, "r");
    if (!f)
        return -ENOENT;
    fclose(f);
    return -ELIBBAD;
}

/* The directory libaloop itself was loaded from: an uninstalled build keeps
 * its modules beside it (.libs/), an installed one in libdir. */
static void own_dir(char *buf, size_t cap)
{
    Dl_info info;
    buf[0] = 0;
    if (!dladdr((void *)aloop_backends, &info) || !info.dli_fname)
        return;
    const char *slash = strrchr(info.dli_fname, '/');
    size_t len = slash ? (size_t)(slash - info.dli_fname) : 0;
    if (len == 0 || len >= cap || memchr(info.dli_fname, ':', len))
        return;
    memcpy(buf, info.dli_fname, len);
    buf[len] = 0;
}

static int load_module(const char *file, const struct aloop_backend **be, void **handle)
{
    char here[PATH_MAX];
    own_dir(here, sizeof here);
    const char *paths[3] = { secure_getenv("ALOOP_MODULE_PATH"), here, ALOOP_MODULE_DIR };
    int r = -ENOENT;
    *handle = NULL;
    for (int i = 0; i < 3 && !*handle; i++) {
        const char *p = paths[i];
        while (p && *p && !*handle) {
            const char *end = strchr(p, ':');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (len) {
                int e = try_open(p, len, file, handle);
                if (e == -ELIBBAD || r == -ENOENT)
                    r = e;
            }
            p = end ? end + 1 : NULL;
        }
    }
    if (!*handle)
        return r;
    const struct aloop_backend *(*get)(void);
    *(void **)&get = dlsym(*handle, "aloop_module_backend");
    const struct aloop_backend *b = get ? get() : NULL;
    if (!b || b->abi != ALOOP__BACKEND_ABI) {
        dlclose(*handle);
        *handle = NULL;
        return b ? -EPROTO : -ELIBBAD;
    }
    *be = b;
    return 0;
}

/* Resolve registry entry i: 0 and the vtable, or why it is unusable. */
static int resolve(size_t i, const struct aloop_backend **be, void **module)
{
    pthread_mutex_lock(&reg_lock);
    if (!loaded[i].tried) {
        loaded[i].tried = 1;
        const struct aloop_backend *b = registry[i].builtin;
        int r = 0;
        if (!b && !registry[i].module)
            r = -ENOSYS;
        else if (!b)
            r = load_module(registry[i].module, &b, &loaded[i].handle);
        if (r == 0 && b->probe)
            r = b->probe();
        loaded[i].err = r;
        loaded[i].be = r == 0 ? b : NULL;
    }
    int r = loaded[i].err;
    *be = loaded[i].be;
    if (module)
        *module = loaded[i].handle;
    pthread_mutex_unlock(&reg_lock);
    return r;
}

int aloop__registry_find(const char *name, const struct aloop_backend **be, void **module)
{
    if (!name) {
        for (size_t i = 0; i < NREG; i++)
            if (resolve(i, be, module) == 0)
                return 0;
        return -ENOTSUP;
    }
    for (size_t i = 0; i < NREG; i++)
        if (strcmp(registry[i].name, name) == 0)
            return resolve(i, be, module) == 0 ? 0 : -ENOTSUP;
    return -ENOENT;
}

static const char *usable[NREG + 1];
static pthread_once_t usable_once = PTHREAD_ONCE_INIT;

static void list_usable(void)
{
    const struct aloop_backend *be;
    size_t n = 0;
    for (size_t i = 0; i < NREG; i++)
        if (resolve(i, &be, NULL) == 0)
            usable[n++] = registry[i].name;
    usable[n] = NULL;
}

const char *const *aloop_backends(void)
{
    pthread_once(&usable_once, list_usable);
    return usable;
}

/* Why a backend is not usable: 0 if it is, -ENOENT if unknown, else the
 * load or probe error (-ENOENT module missing, -ELIBBAD not loadable,
 * -EPROTO ABI mismatch, ...).  For aloop-info. */
int aloop_backend_status(const char *name)
{
    if (!name)
        return -EINVAL;
    const struct aloop_backend *be;
    for (size_t i = 0; i < NREG; i++)
        if (strcmp(registry[i].name, name) == 0)
            return resolve(i, &be, NULL);
    return -ENOENT;
}

/* Every name the registry knows, usable or not (NULL-terminated). */
const char *const *aloop_backends_known(void)
{
    static const char *names[NREG + 1];
    for (size_t i = 0; i < NREG; i++)
        names[i] = registry[i].name;
    names[NREG] = NULL;
    return names;
}
