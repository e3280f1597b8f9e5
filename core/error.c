/* error.c -- error text and version. */
#include <string.h>

#include "loop.h"

const char *aloop_strerror(int err)
{
    if (err < 0)
        err = -err;
    if (err == 0)
        return "Success";
    /* strerror_r (GNU) returns a static or the buffer; keep ours static */
    static __thread char buf[128];
    return strerror_r(err, buf, sizeof buf);
}

const char *aloop_version(void)
{
    return ALOOP_VERSION_STRING;
}
