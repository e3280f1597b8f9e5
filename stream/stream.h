/* stream.h -- what stream.c and server.c share (internal). */
#ifndef ALOOP_STREAM_INTERNAL_H
#define ALOOP_STREAM_INTERNAL_H

#include <sys/socket.h>

#include "aloop.h"
#include "aloop-stream.h"
#include "buffer.h"
#include "../task/park.h"

struct aloop_stream {
    aloop_t *loop;
    int fd;                 /* -1 once closed */
    int werr;               /* the error that ended sending; sticky */
    unsigned eof : 1;       /* the peer's end of file was read */
    unsigned drained : 1;   /* the last recv was short: the socket is likely
                               empty, so the next read waits first (saves a
                               recv that would fail with EAGAIN) */
    unsigned flushing : 1;  /* the background writer is set */
    unsigned waiting_w : 1; /* a task waits for writability (drain, close) */
    unsigned closed : 1;    /* aloop_stream_close() ran */
    unsigned server : 1;    /* given to an aloop_client_fn: freed when it returns */
    size_t limit, high_water, partial;
    struct aloop__buf rbuf, wbuf;
    struct aloop__park rpark;       /* reads wait on a parked reader */
    aloop_client_fn on_client;      /* server streams: what their task runs */
    void *arg;
};

struct aloop__addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Addresses of host:port without blocking: numeric hosts, "localhost",
 * NULL or "" (every interface) when passive.  The count (> 0), or
 * -ENOTSUP for a name that needs DNS, -EINVAL for a bad port. */
int aloop__stream_resolve(const char *host, const char *port, int passive,
                          struct aloop__addr *out, int max);

/* A stream on a connected non-blocking socket; NULL on ENOMEM. */
aloop_stream_t *aloop__stream_new(aloop_t *loop, int fd);

/* Close the fd (if still open) and free the stream, sending nothing more. */
void aloop__stream_free(aloop_stream_t *s);

#endif
