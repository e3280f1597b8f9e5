/* fault_setuid.c -- helper of test_fault's set-uid test: prints the backend
 * that aloop_new(NULL) picks, or "error N".  Linked statically with libaloop,
 * since a set-uid program ignores LD_LIBRARY_PATH. */
#include <stdio.h>
#include <unistd.h>

#include "aloop.h"

int main(void)
{
    aloop_t *l = NULL;
    int r = aloop_new(&l, NULL);
    if (r < 0)
        printf("error %d\n", r);
    else
        printf("%s\n", aloop_backend(l));
    if (r == 0)
        aloop_close(l);
    /* _exit: under -fsanitize=address, LeakSanitizer's check at exit cannot
     * run in a set-uid process (it needs ptrace) and would fail it */
    fflush(stdout);
    _exit(0);
}

