/* replay.c -- runs the differential fuzzer's programs without libFuzzer (in
 * `make check`): every file named, or found in a directory named, on every
 * backend (prog.h).  Prints each finding and a summary; exit status 1 if any. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../backends.h"
#include "prog.h"

#define WATCHDOG 30
static const char *backends[8];
static int nbackends, nprogs, nfailed;
static char report[8192], listing[65536];
static const char *volatile current_file;

/* A program that hangs is a finding too: name it and fail. */
static void on_alarm(int sig)
{
    char msg[1024];
    (void)sig;
    int n = snprintf(msg, sizeof msg, "FAIL %s: no end after %d s on %s (a hang)\n",
                     current_file ? current_file : "?", WATCHDOG, fz_current_backend ? fz_current_backend : "?");
    (void)!write(1, msg, (size_t)n);
    _exit(1);
}

static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        nfailed++;
        return;
    }
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    nprogs++;
    current_file = path;
    alarm(WATCHDOG);
    int found = fz_diff(buf, n, backends, nbackends, report, sizeof report);
    alarm(0);
    if (found) {
        fz_dump(buf, n, listing, sizeof listing);
        printf("FAIL %s\n%s\nprogram:\n%s\n", path, report, listing);
        nfailed++;
    }
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: not found\n", path);
        nfailed++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_file(path);
        return;
    }
    struct dirent **list;
    int n = scandir(path, &list, NULL, by_name);
    for (int i = 0; i < n; i++) {
        if (list[i]->d_name[0] != '.') {
            char *p;
            if (asprintf(&p, "%s/%s", path, list[i]->d_name) >= 0) {
                run_file(p);
                free(p);
            }
        }
        free(list[i]);
    }
    free(list);
}

int main(int argc, char **argv)
{
    nbackends = test_backends(backends, 8);
    if (nbackends == 0 || argc < 2) {
        fprintf(stderr, "usage: ALOOP_TEST_BACKENDS=a,b,c replay FILE|DIR...\n");
        return 2;
    }
    signal(SIGALRM, on_alarm);
    for (int i = 1; i < argc; i++)
        run_path(argv[i]);
    printf("fuzz replay: %d programs on", nprogs);
    for (int i = 0; i < nbackends; i++)
        printf(" %s", backends[i]);
    printf(": %d failed\n", nfailed);
    return nfailed ? 1 : 0;
}
