/* fuzz_loop.c -- libFuzzer entry of the differential fuzzer (prog.h): every
 * input runs on every backend; a difference between the traces, a failed
 * model check, a crash or a sanitizer report is a finding.  Built by
 * tests/fuzz/build.sh. */
#include <stdio.h>
#include <stdlib.h>

#include "../backends.h"
#include "prog.h"

static const char *backends[8];
static int nbackends;
static char report[8192], listing[65536];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    nbackends = test_backends(backends, 8);
    fprintf(stderr, "fuzz_loop: comparing");
    for (int i = 0; i < nbackends; i++)
        fprintf(stderr, " %s", backends[i]);
    fprintf(stderr, "\n");
    if (nbackends == 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fz_diff(data, size, backends, nbackends, report, sizeof report)) {
        fz_dump(data, size, listing, sizeof listing);
        fprintf(stderr, "== aloop fuzz finding\n%s\n== program\n%s", report, listing);
        abort();
    }
    return 0;
}
