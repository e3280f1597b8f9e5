/* http-raw.h -- what the raw HTTP hello servers (bench/http-raw-{uv,ev,event}.c)
 * share: the listening socket and the request handling of
 * examples/http-hello.c (keep-alive, pipelining, "Connection: close",
 * HTTP/1.0, Content-Length bodies skipped, a request split across reads),
 * written once so that the servers differ in their event library only. */
#ifndef HTTP_RAW_H
#define HTTP_RAW_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_IN_CAP 8192        /* a request's head must fit */

#define HTTP_OK "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
static const char http_ok[] = HTTP_OK "\r\nHello, World!";
static const char http_ok_close[] = HTTP_OK "Connection: close\r\n\r\nHello, World!";
static const char http_bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char http_405[] = "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
                               "Content-Length: 0\r\n\r\n";

struct http_conn {
    char in[HTTP_IN_CAP];
    size_t inlen;
    long skip;                  /* body bytes still to drop */
    char *out;
    size_t outlen, outoff, outcap;
    int closing;                /* close once out is sent */
};

static void http_out(struct http_conn *c, const char *p, size_t n)
{
    if (c->outlen + n > c->outcap) {
        size_t cap = c->outcap ? c->outcap * 2 : 4096;
        while (cap < c->outlen + n)
            cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o) {
            c->closing = 1;
            return;
        }
        c->out = o;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
}

/* Whether line [l, le) (le at its '\n') is empty: "\n" or "\r\n". */
static int http_blank(const char *l, const char *le)
{
    return l == le || (l + 1 == le && l[0] == '\r');
}

/* A request's head is not complete at c->in + off: wait for more, unless
 * it fills the whole buffer (a head longer than the buffer: 400, close). */
static void http_incomplete(struct http_conn *c, size_t off)
{
    if (off == 0 && c->inlen == HTTP_IN_CAP) {
        http_out(c, http_bad, sizeof http_bad - 1);
        c->closing = 1;
    }
}

/* Handle every complete request in c->in, appending responses to c->out.
 * Line by line with memchr, as http-hello reads them with readline: a line
 * ends at '\n' ("\r\n" or a bare "\n"), blank lines before a request are
 * skipped, the head ends at a blank line.  Nothing is consumed until a
 * request's head is complete. */
static void http_process(struct http_conn *c)
{
    size_t off = 0;
    while (!c->closing) {
        if (c->skip) {
            size_t k = c->inlen - off < (size_t)c->skip ? c->inlen - off : (size_t)c->skip;
            off += k;
            c->skip -= (long)k;
            if (c->skip)
                break;
        }
        char *head = c->in + off, *lim = c->in + c->inlen;
        char *eol = memchr(head, '\n', (size_t)(lim - head));
        if (!eol) {
            http_incomplete(c, off);
            break;
        }
        if (http_blank(head, eol)) {
            off = (size_t)(eol + 1 - c->in);
            continue;
        }
        size_t rlen = (size_t)(eol + 1 - head);
        int get = rlen > 4 && !memcmp(head, "GET ", 4), hd = rlen > 5 && !memcmp(head, "HEAD ", 5);
        int keep = !memmem(head, rlen, "HTTP/1.0", 8);
        long length = 0;
        char *l = eol + 1, *le;
        for (;; l = le + 1) {
            le = memchr(l, '\n', (size_t)(lim - l));
            if (!le || http_blank(l, le))
                break;
            size_t n = (size_t)(le - l);
            if (n >= 11 && !strncasecmp(l, "Connection:", 11)) {
                if (memmem(l, n, "close", 5) || memmem(l, n, "Close", 5))
                    keep = 0;
                else if (memmem(l, n, "eep-alive", 9))
                    keep = 1;
            } else if (n >= 15 && !strncasecmp(l, "Content-Length:", 15)) {
                length = strtol(l + 15, NULL, 10);
            } else if (n >= 18 && !strncasecmp(l, "Transfer-Encoding:", 18)) {
                length = -1;
            }
        }
        if (!le) {          /* the head is not complete yet */
            http_incomplete(c, off);
            break;
        }
        off = (size_t)(le + 1 - c->in);
        if (length < 0) {
            http_out(c, http_bad, sizeof http_bad - 1);
            c->closing = 1;
            break;
        }
        c->skip = length;
        if (get || hd) {
            const char *r = keep ? http_ok : http_ok_close;
            size_t n = keep ? sizeof http_ok - 1 : sizeof http_ok_close - 1;
            http_out(c, r, get ? n : n - 13);
        } else {
            http_out(c, http_405, sizeof http_405 - 1);
        }
        if (!keep)
            c->closing = 1;
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
}

/* A non-blocking listening socket on host:port, or exit. */
static int http_listen(const char *host, const char *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, SOMAXCONN) < 0) {
        perror(host);
        exit(1);
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    return fd;
}

static int http_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    return ntohs(sa.sin_port);
}

static void http_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Receive into c->in and process it: 1 to go on, 0 at EOF or error (close
 * now).  One recv per readiness unless it filled the buffer (libuv's rule:
 * a short read means the socket is drained). */
static int http_on_readable(int fd, struct http_conn *c)
{
    for (;;) {
        size_t room = HTTP_IN_CAP - c->inlen;
        ssize_t n = recv(fd, c->in + c->inlen, room, 0);
        if (n > 0) {
            c->inlen += (size_t)n;
            http_process(c);
            if ((size_t)n < room || c->closing || c->inlen == HTTP_IN_CAP)
                return 1;
            continue;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK;
    }
}

/* Send what is queued: 1 all sent, 0 some left (wait for writability),
 * -1 error. */
static int http_flush(int fd, struct http_conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n > 0) {
            c->outoff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -1;
    }
    c->outoff = c->outlen = 0;
    return 1;
}

#endif
