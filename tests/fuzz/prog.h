/* prog.h -- the differential fuzzer's interpreter (tests/fuzz/prog.c).
 *
 * An input is a program of 4-byte operations (opcode, a, b, c) on one loop:
 * deferred calls at a priority, due timers (call_at in the past, call_later
 * 0), far timers, cancel, set_priority, readers and writers on socketpairs
 * with writes and reads, I/O priority swaps, thread-safe calls from the loop
 * thread, signals raised synchronously, runs (NOWAIT, ONCE, DEFAULT), stop,
 * close-and-reopen of fds (remove, then close), close-and-new of the loop.
 * Callbacks run further operations of the same program (their "action"), so
 * programs nest.
 *
 * Everything is made deterministic, so the trace of callbacks and return
 * codes must be identical on every backend:
 *   - timers are either due at once (absolute deadlines 1..16 ns, or delay 0
 *     from the cached clock) or never (an hour and more);
 *   - readiness comes from socketpairs written before the poll (a unix
 *     socket's data is readable as soon as write() returns; level-triggered);
 *   - each of the 5 watched fds has its own I/O priority, so the order of
 *     I/O callbacks never depends on the order the kernel reports fds in
 *     (which API.md leaves open);
 *   - ONCE is preceded by a thread-safe call (it never blocks) and DEFAULT
 *     runs only when nothing could keep it waiting (a source added meanwhile
 *     stops it).
 * Besides the differential check, the interpreter keeps a model and checks
 * what API.md promises on every backend: a cancelled callback never runs; a
 * one-shot runs at most once; cancel and set_priority return 0 exactly for
 * pending ids; in a one-iteration run everything queued or due before it runs
 * (unless cancelled or moved meanwhile), nothing queued during it runs, and
 * callbacks run in non-increasing priority; a watched reader with data, and a
 * watched writer whose fd poll() reports writable as the run begins, fire
 * exactly once per one-iteration run, and neither fires otherwise (a writer
 * only ever on an fd that is writable); no fd leaks.  Writability is asked of
 * the kernel, not modelled: an AF_UNIX stream socket stops being writable
 * after some 70 unread small sends, however few bytes (the skbs' truesize
 * counts against sndbuf), and a write to a peer whose sndbuf is full gets
 * EAGAIN, traced like any other result.
 */
#ifndef ALOOP_FUZZ_PROG_H
#define ALOOP_FUZZ_PROG_H

#include <stddef.h>
#include <stdint.h>

#define FZ_TRACE_MAX 65536

struct fz_trace {
    uint32_t ev[FZ_TRACE_MAX];
    size_t len;
    int truncated;
    char err[1024];         /* first model violation, "" if none */
};

/* Run the program on one backend; 0, or -1 with tr->err set (model
 * violation or setup failure). */
int fz_run(const uint8_t *data, size_t size, const char *backend, struct fz_trace *tr);

/* Run it on every backend in `backends` (n of them) and compare the traces.
 * 0 if all agree and no model check failed; else 1 with a report. */
int fz_diff(const uint8_t *data, size_t size, const char *const *backends, int n,
            char *report, size_t cap);

/* The backend fz_run is running on (for a watchdog's message). */
extern const char *volatile fz_current_backend;

/* Write a readable listing of the program (for a finding's report). */
void fz_dump(const uint8_t *data, size_t size, char *out, size_t cap);

#endif
