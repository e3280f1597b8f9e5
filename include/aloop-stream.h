/* aloop-stream.h -- buffered TCP streams on tasks (asyncio's start_server,
 * open_connection, StreamReader and StreamWriter).  Part of libaloop:
 * include <aloop.h>, <aloop-task.h> and this header, link -laloop.
 *
 *     static void echo(aloop_stream_t *c, void *arg)
 *     {
 *         char line[1024];
 *         ssize_t n;
 *         while ((n = aloop_stream_readline(c, line, sizeof line)) > 0)
 *             if (aloop_stream_write(c, line, (size_t)n) < 0 || aloop_stream_drain(c) < 0)
 *                 break;
 *     }                                  (the stream is closed when it returns)
 *
 * Conventions are those of aloop.h: 0 (or a byte count) or a negative
 * errno.  The stream calls that may wait (open_connection, read, readline,
 * readexactly, write, drain, close) must be made inside a task of the
 * stream's loop: outside any task they return -EPERM and do nothing.  The
 * server calls and the stream's setters and getters may be called from
 * anywhere on the loop's thread.  A wait of a cancelled task returns
 * -ECANCELED (asyncio's CancelledError); the stream stays usable.
 *
 * Sockets are non-blocking, close-on-exec, TCP_NODELAY; sends use
 * MSG_NOSIGNAL, so a peer that resets gives -EPIPE or -ECONNRESET, never
 * SIGPIPE.
 *
 * Host names.  Hosts are numeric IPv4 or IPv6 addresses ("127.0.0.1",
 * "::1"), "localhost" (127.0.0.1 then ::1, without asking a resolver), or
 * NULL / "" for every interface (servers only).  Any other name would need
 * DNS, which blocks: it is refused with -ENOTSUP (no lookup is made; resolve
 * it yourself off the loop thread and pass the address).  Ports are decimal
 * numbers ("0" lets a server pick a free one); anything else is -EINVAL.
 *
 * Reading.  A stream reads into a buffer that grows up to its limit
 * (aloop_stream_set_limit, default ALOOP_STREAM_LIMIT: 64 KiB).  Writing.
 * aloop_stream_write() tries a direct send first and buffers what the
 * socket does not take; the loop sends the buffer in the background.
 * aloop_stream_drain() waits while more than the high-water mark
 * (default ALOOP_STREAM_HIGH_WATER: 64 KiB) is buffered: write + drain
 * bound what a slow reader can make the writer hold.  Buffers are kept and
 * reused: no allocation per call in the steady state.
 */
#ifndef ALOOP_STREAM_H
#define ALOOP_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#include "aloop.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ALOOP_STREAM_LIMIT      (64 * 1024)
#define ALOOP_STREAM_HIGH_WATER (64 * 1024)

typedef struct aloop_stream aloop_stream_t;
typedef struct aloop_server aloop_server_t;
/* Runs in a task of its own for each accepted client.  The stream belongs
 * to the server: it is flushed and closed when the function returns (an
 * earlier aloop_stream_close() by the function is fine). */
typedef void (*aloop_client_fn)(aloop_stream_t *client, void *arg);

/* ---- Servers -------------------------------------------------------------- */

/* Listen on host:port (SO_REUSEADDR, one socket per address of the host:
 * NULL or "" listens on 0.0.0.0 and ::, "localhost" on 127.0.0.1 and ::1
 * where available) and accept on the loop, calling on_client(stream, arg)
 * in a new task for each client.  Callable from anywhere on the loop's
 * thread, in a task or not.  *srv receives the server.
 * Accept failures such as EMFILE / ENFILE pause accepting for 100 ms, then
 * accepting resumes: they neither spin nor stop the server.
 * -EINVAL: NULL argument or bad port.  -ENOTSUP: a host that needs DNS.
 * -EADDRINUSE, -EACCES, ...: from socket / bind / listen.  -ENOMEM. */
ALOOP_API int aloop_start_server(aloop_t *loop, aloop_server_t **srv, const char *host,
                                 const char *port, aloop_client_fn on_client, void *arg);

/* The port the server is bound to (the one picked for port "0"), or
 * -EINVAL for NULL. */
ALOOP_API int aloop_server_port(const aloop_server_t *srv);

/* Stop accepting, close the listening sockets and free the server.  Clients
 * already accepted run on.  Close a server before its loop.  0, -EINVAL for
 * NULL. */
ALOOP_API int aloop_server_close(aloop_server_t *srv);

/* ---- Connecting ----------------------------------------------------------- */

/* In a task: connect to host:port (each address of the host in turn until
 * one answers) and store the new stream in *s; close it with
 * aloop_stream_close().  -EPERM outside a task, -EINVAL (NULL, bad port),
 * -ENOTSUP (host needs DNS), -ECONNREFUSED, -ECANCELED, ... */
ALOOP_API int aloop_open_connection(aloop_stream_t **s, const char *host, const char *port);

/* ---- Reading ---------------------------------------------------------------
 * One task reads a stream at a time (-EBUSY from a second one waiting). */

/* Up to cap bytes: what is buffered, else what one receive brings (waiting
 * for it).  0 at end of file (or cap 0), -ECONNRESET, ... */
ALOOP_API ssize_t aloop_stream_read(aloop_stream_t *s, void *buf, size_t cap);

/* One line, up to and including '\n'; at end of file, the last bytes
 * without a '\n' if the stream ends mid-line, then 0.  A line longer than
 * the stream's limit or than cap gives -ENOBUFS and is left in the buffer:
 * aloop_stream_read() still returns it.  The line is not NUL-terminated. */
ALOOP_API ssize_t aloop_stream_readline(aloop_stream_t *s, char *buf, size_t cap);

/* Exactly n bytes, returning n.  At an end of file before n bytes: -ENODATA;
 * the bytes that came are in buf and consumed, and
 * aloop_stream_partial() says how many (asyncio's IncompleteReadError).
 * Cancelled (-ECANCELED) or failed otherwise, it gives what it read back to
 * the stream's buffer: the next read returns it. */
ALOOP_API ssize_t aloop_stream_readexactly(aloop_stream_t *s, void *buf, size_t n);

/* Bytes stored by the last aloop_stream_readexactly() that failed (0 after
 * one that succeeded). */
ALOOP_API size_t aloop_stream_partial(const aloop_stream_t *s);

/* The reader's limit: the most a line may hold, the most the read buffer
 * grows to.  -EINVAL for 0 or less than is buffered now. */
ALOOP_API int aloop_stream_set_limit(aloop_stream_t *s, size_t limit);

/* ---- Writing -------------------------------------------------------------- */

/* Send buf now as far as the socket takes it and buffer the rest (the
 * loop sends it in the background); never waits.  0, -ENOMEM, or the error
 * that ended the connection (-EPIPE, -ECONNRESET, ...), also for every
 * write after it.  -EBADF once closed. */
ALOOP_API int aloop_stream_write(aloop_stream_t *s, const void *buf, size_t len);

/* Wait while more than the high-water mark is buffered.  0, the
 * connection's error, or -ECANCELED. */
ALOOP_API int aloop_stream_drain(aloop_stream_t *s);

/* The high-water mark of aloop_stream_drain() (0: drain waits until all is
 * sent).  0, -EINVAL for NULL. */
ALOOP_API int aloop_stream_set_high_water(aloop_stream_t *s, size_t bytes);

/* Bytes written and not yet sent. */
ALOOP_API size_t aloop_stream_buffered(const aloop_stream_t *s);

/* Send what was written (waiting as needed), close the socket and free the
 * stream; a stream given to an aloop_client_fn is freed when that returns.
 * No other task may be using the stream (waiting in a read or a drain).
 * 0, or the error that lost unsent data (-ECONNRESET, -ECANCELED, ...):
 * the stream is closed and freed all the same.  -EPERM outside a task
 * (then nothing is done). */
ALOOP_API int aloop_stream_close(aloop_stream_t *s);

#ifdef __cplusplus
}
#endif
#endif /* ALOOP_STREAM_H */
