/* embed-uv -- a host written on plain libuv runs a small library written
 * only on aloop, inside its own uv_run.
 *
 * The library (lib_*) knows nothing of libuv: it takes "the application's
 * loop" from aloop_get_event_loop(), ticks every 150 ms with aloop_call_every
 * (five times, then cancels itself) and reads lines from a pipe with
 * aloop_add_reader until "bye".  The host adopts its uv_loop_t with
 * aloop_new_from_uv, makes it the current aloop loop, feeds the pipe from a
 * uv_timer_t, and calls uv_run(UV_RUN_DEFAULT), which returns when the
 * host's timer and the library are both done (about 1 s). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <aloop-uv.h>

static double elapsed(void)
{
    static struct timespec t0;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (!t0.tv_sec && !t0.tv_nsec)
        t0 = t;
    return (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
}

/* ---- the library: aloop only ---------------------------------------------- */

static struct {
    aloop_id_t ticker;
    int ticks;
    char line[128];
    size_t len;
} lib;

static void lib_tick(aloop_t *loop, void *arg)
{
    (void)arg;
    printf("[%4.2fs] library: tick %d\n", elapsed(), ++lib.ticks);
    if (lib.ticks == 5) {
        aloop_cancel(loop, lib.ticker);
        printf("[%4.2fs] library: ticker done\n", elapsed());
    }
}

static void lib_readable(aloop_t *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    (void)arg;
    char c;
    ssize_t n = 1;
    int done = 0;
    while (!done && (n = read(fd, &c, 1)) == 1) {
        if (c != '\n') {
            if (lib.len < sizeof lib.line - 1)
                lib.line[lib.len++] = c;
            continue;
        }
        lib.line[lib.len] = '\0';
        lib.len = 0;
        printf("[%4.2fs] library: read \"%s\"\n", elapsed(), lib.line);
        done = strcmp(lib.line, "bye") == 0;
    }
    if (done || n == 0 || (n < 0 && errno != EAGAIN)) {
        printf("[%4.2fs] library: reader done\n", elapsed());
        aloop_remove_reader(loop, fd);
        close(fd);
    }
}

/* Start the library on the application's current loop. */
static int lib_start(int fd)
{
    aloop_t *loop = aloop_get_event_loop();
    if (!loop)
        return -ENOMEM;
    lib.ticker = aloop_call_every(loop, 150 * ALOOP_MS, lib_tick, NULL);
    if (lib.ticker < 0)
        return (int)lib.ticker;
    return aloop_add_reader(loop, fd, lib_readable, NULL);
}

/* ---- the host: libuv only (plus adopting) --------------------------------- */

static int feed_fd;
static int host_ticks;

static void host_tick(uv_timer_t *t)
{
    char msg[32];
    ++host_ticks;
    if (host_ticks < 4)
        snprintf(msg, sizeof msg, "message %d\n", host_ticks);
    else
        snprintf(msg, sizeof msg, "bye\n");
    printf("[%4.2fs] host: timer %d, writes %s", elapsed(), host_ticks, msg);
    if (write(feed_fd, msg, strlen(msg)) < 0)
        perror("embed-uv: write");
    if (host_ticks == 4) {
        uv_timer_stop(t);
        close(feed_fd);
        printf("[%4.2fs] host: timer done\n", elapsed());
    }
}

int main(void)
{
    uv_loop_t uv;
    uv_timer_t timer;
    aloop_t *loop;
    int p[2], r;

    elapsed();
    if (uv_loop_init(&uv) < 0 || pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
        fprintf(stderr, "embed-uv: cannot set the host up\n");
        return 1;
    }
    r = aloop_new_from_uv(&loop, &uv);
    if (r < 0) {
        fprintf(stderr, "embed-uv: aloop_new_from_uv: %s\n", aloop_strerror(r));
        return 1;
    }
    aloop_set_event_loop(loop);
    printf("[%4.2fs] host: aloop on the %s backend inside uv loop %p (%s)\n", elapsed(),
           aloop_backend(loop), aloop_native(loop), aloop_native(loop) == &uv ? "ours" : "?");

    r = lib_start(p[0]);
    if (r < 0) {
        fprintf(stderr, "embed-uv: library: %s\n", aloop_strerror(r));
        return 1;
    }
    feed_fd = p[1];
    uv_timer_init(&uv, &timer);
    uv_timer_start(&timer, host_tick, 200, 200);

    printf("[%4.2fs] host: uv_run\n", elapsed());
    uv_run(&uv, UV_RUN_DEFAULT);
    printf("[%4.2fs] host: uv_run returned: library ticks %d, host ticks %d\n", elapsed(),
           lib.ticks, host_ticks);

    aloop_set_event_loop(NULL);
    aloop_close(loop);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&uv, UV_RUN_DEFAULT);        /* let the closed handles go */
    r = uv_loop_close(&uv);
    if (r < 0) {
        fprintf(stderr, "embed-uv: uv_loop_close: %s\n", uv_strerror(r));
        return 1;
    }
    return lib.ticks == 5 && host_ticks == 4 ? 0 : 1;
}
