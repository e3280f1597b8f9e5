/* aloop-info -- the version, and each backend: available, or why not. */
#include <stdio.h>
#include <string.h>

#include <aloop.h>

static const char *why(int err)
{
    switch (-err) {
    case 2:  return "module not found (not built, or not installed)";     /* ENOENT */
    case 80: return "module or its library cannot be loaded";             /* ELIBBAD */
    case 71: return "module built for another ABI version";               /* EPROTO */
    case 38: return "not implemented in this version";                    /* ENOSYS */
    default: return aloop_strerror(err);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("aloop %s\n", aloop_version());
    const char *const *usable = aloop_backends();
    printf("default backend: %s\n", usable[0] ? usable[0] : "(none)");
    printf("backends:\n");
    for (const char *const *n = aloop_backends_known(); *n; n++) {
        int st = aloop_backend_status(*n);
        if (st == 0)
            printf("  %-9s available\n", *n);
        else
            printf("  %-9s unavailable: %s\n", *n, why(st));
    }
    return 0;
}
