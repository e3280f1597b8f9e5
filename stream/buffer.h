/* buffer.h -- a byte buffer for streams: bytes live in data[start, end).
 * Space is grown by doubling and kept for reuse, so a stream in its steady
 * state allocates nothing per call. */
#ifndef ALOOP_STREAM_BUFFER_H
#define ALOOP_STREAM_BUFFER_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct aloop__buf {
    char *data;
    size_t start, end, cap;
};

static inline size_t aloop__buf_len(const struct aloop__buf *b)
{
    return b->end - b->start;
}

static inline void aloop__buf_consume(struct aloop__buf *b, size_t n)
{
    b->start += n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

/* Make room for at least `want` bytes after end, growing the capacity up
 * to `max` (moving the bytes down first).  Returns the room there is (0 if
 * the buffer holds max bytes already), or -ENOMEM. */
static inline long aloop__buf_reserve(struct aloop__buf *b, size_t want, size_t max)
{
    if (b->cap - b->end >= want)
        return (long)(b->cap - b->end);
    size_t len = aloop__buf_len(b);
    if (b->start && b->cap - len >= want) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
        return (long)(b->cap - b->end);
    }
    if (b->cap < max) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < len + want && ncap < max)
            ncap *= 2;
        if (ncap > max)
            ncap = max;
        if (ncap < b->cap)
            ncap = b->cap;
        char *d = malloc(ncap);
        if (!d)
            return -ENOMEM;
        if (len)
            memcpy(d, b->data + b->start, len);
        free(b->data);
        b->data = d;
        b->cap = ncap;
        b->start = 0;
        b->end = len;
    } else if (b->start) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
    }
    return (long)(b->cap - b->end);
}

static inline int aloop__buf_append(struct aloop__buf *b, const void *p, size_t n)
{
    long room = aloop__buf_reserve(b, n, (size_t)-1 / 2);
    if (room < 0)
        return (int)room;
    memcpy(b->data + b->end, p, n);
    b->end += n;
    return 0;
}

static inline void aloop__buf_free(struct aloop__buf *b)
{
    free(b->data);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

#endif /* ALOOP_STREAM_BUFFER_H */
