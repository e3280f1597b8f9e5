/* prog.c -- the differential fuzzer's interpreter; see prog.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aloop.h"
#include "prog.h"

#define NSLOT 5             /* watched fds: one per I/O priority */
#define MAXOPS 256
#define MAXCB 2048
#define MAXIDS 1024
#define BUDGET 1500         /* callbacks that may still run their action */
#define MAXDEPTH 4
#define MAXEXEC 6000        /* operations executed, in all */
#define PEER_CAP 4096       /* bytes echoed to a peer before echo stops */
#define FDSCAN 512

enum {
    OP_SOON, OP_AT, OP_LATER0, OP_FAR, OP_CANCEL, OP_SETPRIO, OP_ADD_R, OP_ADD_W,
    OP_RM_R, OP_RM_W, OP_WRITE, OP_DRAIN_PEER, OP_SWAP, OP_TS, OP_RUN, OP_STOP,
    OP_REOPEN, OP_SIG_ADD, OP_SIG_RM, OP_RAISE, OP_READ, OP_CLOSE_NEW, OP_CANCEL_LAST,
    NOP
};
static const char *const op_names[NOP] = {
    "soon", "at", "later0", "far", "cancel", "setprio", "add_reader", "add_writer",
    "rm_reader", "rm_writer", "write", "drain_peer", "swap_io_prio", "threadsafe", "run",
    "stop", "reopen", "sig_add", "sig_rm", "raise", "read", "close_new", "cancel_last",
};

enum { K_SOON, K_AT, K_LATER0, K_FAR, K_EVERY, K_TS };
enum { T_OP = 1, T_CB, T_IO, T_RC, T_RUN, T_SIG };
static const int sigs[2] = { SIGWINCH, SIGURG };   /* ignored by default; libFuzzer leaves them */

struct op { uint8_t code, a, b, c; };

struct cb {
    int tag;
    uint8_t kind, act, cancelled, ran;
    int8_t prio;
    int during;             /* run serial it was queued in, 0 outside runs */
    int must;               /* run serial in which it must run */
    int moved;              /* run serial of a priority change */
};

struct slot {
    int fd, peer;
    int8_t prio;
    uint8_t rd, wr, rmode, wmode, ract, wact;
    int inbuf, peerbuf;     /* bytes readable on fd / on peer */
    int inbuf0, rd0, wr0;   /* at the start of the current run */
    int wok0;               /* fd writable (poll) at the start of the current run */
    int rfired, wfired, touched;    /* run serials */
};

static struct {
    aloop_t *loop;
    const char *be;
    struct fz_trace *tr;
    struct op ops[MAXOPS];
    int nops;
    struct cb cbs[MAXCB];
    int ncb;
    aloop_id_t ids[MAXIDS];
    int idcb[MAXIDS];
    int nids;
    struct slot sl[NSLOT];
    int sig_on[2], sig_raised[2], sig_fired[2], sig_touched[2];
    uint8_t sig_act[2];
    int budget, depth, nexec;
    int run_serial, in_run, single, in_default, stopped, stop_pending, last_prio;
    int failed;
} S;

/* ---- trace and failures ------------------------------------------------- */

static void trace(int type, uint32_t payload)
{
    struct fz_trace *tr = S.tr;
    if (tr->len < FZ_TRACE_MAX)
        tr->ev[tr->len++] = ((uint32_t)type << 24) | (payload & 0xffffffu);
    else
        tr->truncated = 1;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    if (S.failed)
        return;
    S.failed = 1;
    int n = snprintf(S.tr->err, sizeof S.tr->err, "%s, trace entry %zu: ", S.be, S.tr->len);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(S.tr->err + n, sizeof S.tr->err - (size_t)n, fmt, ap);
    va_end(ap);
}

static void trace_rc(int code, long rc)
{
    trace(T_RC, ((uint32_t)code << 16) | ((uint32_t)rc & 0xffffu));
}

/* ---- the model ---------------------------------------------------------- */

static int new_cb(int kind, int act, int prio)
{
    if (S.ncb >= MAXCB)
        return -1;
    struct cb *c = &S.cbs[S.ncb];
    memset(c, 0, sizeof *c);
    c->tag = S.ncb + 1;
    c->kind = (uint8_t)kind;
    c->act = (uint8_t)act;
    c->prio = (int8_t)prio;
    c->during = S.in_run ? S.run_serial : 0;
    return S.ncb++;
}

static int pending(const struct cb *c)
{
    if (c->kind == K_FAR || c->kind == K_EVERY)
        return !c->cancelled;
    return !c->cancelled && !c->ran;
}

static void add_id(int code, aloop_id_t id, int k)
{
    trace_rc(code, id > 0 ? 1 : id);
    if (id <= 0) {
        fail("%s returned %lld", op_names[code], (long long)id);
        return;
    }
    if (S.nids < MAXIDS) {
        S.ids[S.nids] = id;
        S.idcb[S.nids++] = k;
    }
}

/* Whether the kernel reports fd writable now.  An AF_UNIX stream socket is
 * writable while the memory of its unread sent skbs (the echoes, each one a
 * 1-byte skb of several hundred bytes' truesize) is at most a quarter of its
 * sndbuf: after ~70 undrained echoes it legitimately is not, however few
 * bytes are queued.  So the model asks the kernel instead of counting. */
static int fd_writable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int r;
    while ((r = poll(&p, 1, 0)) < 0 && errno == EINTR)
        ;
    if (r < 0) {
        fail("poll(fd %d): %s", fd, strerror(errno));
        return 0;
    }
    return (p.revents & POLLOUT) != 0;
}

static void touch(struct slot *s)
{
    if (S.in_run)
        s->touched = S.run_serial;
}

static void exec_op(const struct op *o);

static void action(int act)
{
    if (act == 0 || S.budget <= 0 || S.depth >= MAXDEPTH)
        return;
    S.budget--;
    S.depth++;
    exec_op(&S.ops[(act - 1) % S.nops]);
    S.depth--;
}

/* Order within one iteration: non-increasing priority. */
static void check_prio(int prio, const char *what, int moved)
{
    if (!S.single || moved == S.run_serial)
        return;
    if (prio > S.last_prio)
        fail("%s at priority %d ran after one at %d in the same iteration", what, prio, S.last_prio);
    S.last_prio = prio;
}

static void fz_cb(aloop_t *loop, void *arg)
{
    struct cb *c = &S.cbs[(intptr_t)arg];
    (void)loop;
    trace(T_CB, (uint32_t)c->tag);
    if (c->cancelled)
        fail("callback %d ran after it was cancelled (or its loop closed)", c->tag);
    if (c->kind == K_FAR || c->kind == K_EVERY)
        fail("far timer %d ran", c->tag);
    if (c->ran)
        fail("one-shot callback %d ran twice", c->tag);
    c->ran = 1;
    if (S.single && c->during == S.run_serial)
        fail("callback %d queued during the iteration ran in it", c->tag);
    check_prio(c->prio, "a call", c->moved);
    action(c->act);
}

static void fz_io(aloop_t *loop, int fd, unsigned events, void *arg)
{
    int s = (int)((intptr_t)arg >> 1), w = (int)((intptr_t)arg & 1);
    struct slot *sl = &S.sl[s];
    char buf[256];
    trace(T_IO, (uint32_t)(s << 4) | events);
    if (fd != sl->fd)
        fail("slot %d: callback for fd %d, watching %d", s, fd, sl->fd);
    if (events != (w ? ALOOP_WRITABLE : ALOOP_READABLE))
        fail("slot %d: %s callback with events %u", s, w ? "writer" : "reader", events);
    if (!(w ? sl->wr : sl->rd))
        fail("slot %d: removed %s fired", s, w ? "writer" : "reader");
    check_prio(sl->prio, w ? "a writer" : "a reader", sl->touched);
    if (S.single) {
        int *fired = w ? &sl->wfired : &sl->rfired;
        if (*fired == S.run_serial)
            fail("slot %d: %s fired twice in one iteration", s, w ? "writer" : "reader");
        *fired = S.run_serial;
        if (!w && sl->inbuf0 == 0 && sl->touched != S.run_serial)
            fail("slot %d: reader fired with nothing to read", s);
        if (w && !sl->wok0 && sl->touched != S.run_serial)
            fail("slot %d: writer fired, but its fd was not writable when the iteration began", s);
    }
    /* Only this callback sends on fd, so from the poll that reported it
     * until now the fd can only have become more writable. */
    if (w && !fd_writable(fd))
        fail("slot %d: writer fired on an fd that is not writable", s);
    if (!w) {
        switch (sl->rmode % 4) {
        case 1:
            if (sl->inbuf > 0) {
                if (read(fd, buf, 1) != 1)
                    fail("slot %d: read of 1 byte failed", s);
                sl->inbuf--;
            }
            break;
        case 2: {
            ssize_t n, got = 0;
            while ((n = read(fd, buf, sizeof buf)) > 0)
                got += n;
            if (got != sl->inbuf)
                fail("slot %d: drained %zd bytes, expected %d", s, got, sl->inbuf);
            sl->inbuf = 0;
            break;
        }
        case 3: {
            int r = aloop_remove_reader(loop, fd);
            trace_rc(OP_RM_R, r);
            if (r != 0)
                fail("slot %d: reader removing itself: %d", s, r);
            sl->rd = 0;
            touch(sl);
            break;
        }
        }
        action(sl->ract);
    } else {
        unsigned m = sl->wmode % 4;
        if ((m == 1 || m == 3) && sl->peerbuf < PEER_CAP) {
            if (send(fd, "e", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
                fail("slot %d: echo failed", s);
            else
                sl->peerbuf++;
        }
        if (m >= 2) {
            int r = aloop_remove_writer(loop, fd);
            trace_rc(OP_RM_W, r);
            if (r != 0)
                fail("slot %d: writer removing itself: %d", s, r);
            sl->wr = 0;
            touch(sl);
        }
        action(sl->wact);
    }
}

static void fz_sig(aloop_t *loop, void *arg)
{
    int i = (int)(intptr_t)arg;
    (void)loop;
    trace(T_SIG, (uint32_t)i);
    if (!S.sig_on[i])
        fail("signal callback %d ran without a handler", i);
    check_prio(ALOOP_PRIO_DEFAULT, "a signal", 0);
    S.sig_fired[i] = S.run_serial;
    action(S.sig_act[i]);
}

/* ---- operations --------------------------------------------------------- */

static void do_cancel(int code, int i)
{
    struct cb *c = &S.cbs[S.idcb[i]];
    int r = aloop_cancel(S.loop, S.ids[i]);
    trace_rc(code, r);
    int want = pending(c) ? 0 : -ENOENT;
    if (r != want)
        fail("cancel of callback %d: %d, expected %d", c->tag, r, want);
    if (r == 0)
        c->cancelled = 1;
}

static void do_setprio(int i, int prio)
{
    struct cb *c = &S.cbs[S.idcb[i]];
    int r = aloop_set_priority(S.loop, S.ids[i], prio);
    trace_rc(OP_SETPRIO, r);
    int want = pending(c) ? 0 : -ENOENT;
    if (r != want)
        fail("set_priority of callback %d: %d, expected %d", c->tag, r, want);
    if (r == 0 && c->prio != prio) {
        if (S.in_run)
            c->moved = S.run_serial;
        c->prio = (int8_t)prio;
    }
}

static int set_io_prio(struct slot *sl)
{
    int r = aloop_set_io_priority(S.loop, sl->fd, sl->prio);
    trace_rc(OP_SWAP, r);
    int want = (sl->rd || sl->wr) ? 0 : -ENOENT;
    if (r != want)
        fail("set_io_priority(fd %d): %d, expected %d", sl->fd, r, want);
    return r;
}

static void new_pair(struct slot *sl)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        fail("socketpair: %s", strerror(errno));
        sl->fd = sl->peer = -1;
        return;
    }
    sl->fd = sv[0];
    sl->peer = sv[1];
    sl->inbuf = sl->peerbuf = 0;
}

/* A source that would keep RUN_DEFAULT waiting: stop it instead. */
static void default_guard(void)
{
    if (S.in_default) {
        aloop_stop(S.loop);
        S.stopped = 1;
    }
}

static int default_ok(void)
{
    for (int s = 0; s < NSLOT; s++)
        if (S.sl[s].rd || S.sl[s].wr)
            return 0;
    if (S.sig_on[0] || S.sig_on[1])
        return 0;
    for (int k = 0; k < S.ncb; k++)
        if ((S.cbs[k].kind == K_FAR || S.cbs[k].kind == K_EVERY) && !S.cbs[k].cancelled)
            return 0;
    return 1;
}

static void do_run(unsigned m)
{
    aloop_run_mode mode = ALOOP_RUN_NOWAIT;
    if (m == 1) {
        /* ONCE, kept from blocking by a thread-safe call */
        int k = new_cb(K_TS, 0, 0);
        if (k >= 0) {
            int r = aloop_call_soon_threadsafe(S.loop, fz_cb, (void *)(intptr_t)k);
            trace_rc(OP_TS, r);
            if (r != 0)
                fail("call_soon_threadsafe: %d", r);
        }
        mode = ALOOP_RUN_ONCE;
    } else if (m == 2 && default_ok()) {
        mode = ALOOP_RUN_DEFAULT;
    } else if (m == 3) {
        aloop_stop(S.loop);
    }
    S.run_serial++;
    S.single = mode != ALOOP_RUN_DEFAULT;
    S.in_default = !S.single;
    S.stopped = S.stop_pending;     /* a stop before the run: one iteration */
    S.stop_pending = 0;
    S.last_prio = 100;
    if (S.single) {
        for (int k = 0; k < S.ncb; k++) {
            struct cb *c = &S.cbs[k];
            if (c->kind != K_FAR && c->kind != K_EVERY && pending(c))
                c->must = S.run_serial;
        }
        for (int s = 0; s < NSLOT; s++) {
            S.sl[s].inbuf0 = S.sl[s].inbuf;
            S.sl[s].rd0 = S.sl[s].rd;
            S.sl[s].wr0 = S.sl[s].wr;
            /* A one-iteration run polls before it runs any callback, and
             * nothing changes the fd's writability in between: what poll()
             * says now is what the backend sees. */
            S.sl[s].wok0 = S.sl[s].wr && S.sl[s].fd >= 0 && fd_writable(S.sl[s].fd);
        }
    }
    int raised[2] = { S.sig_raised[0] && S.sig_on[0], S.sig_raised[1] && S.sig_on[1] };
    S.sig_raised[0] = S.sig_raised[1] = 0;
    S.in_run = 1;
    int rc = aloop_run(S.loop, mode);
    S.in_run = 0;
    S.in_default = 0;
    trace(T_RUN, ((uint32_t)mode << 8) | ((uint32_t)rc & 0xff));
    if (rc < 0) {
        fail("aloop_run(%d) = %d", mode, rc);
        return;
    }
    if (S.single) {
        for (int k = 0; k < S.ncb; k++) {
            struct cb *c = &S.cbs[k];
            if (c->must == S.run_serial && !c->ran && !c->cancelled && c->moved != S.run_serial)
                fail("callback %d, queued or due before the iteration, did not run in it", c->tag);
        }
        for (int s = 0; s < NSLOT; s++) {
            struct slot *sl = &S.sl[s];
            if (sl->touched == S.run_serial)
                continue;
            if (sl->rd0 && sl->inbuf0 > 0 && sl->rfired != S.run_serial)
                fail("slot %d: reader with %d bytes to read did not fire", s, sl->inbuf0);
            if (sl->wr0 && sl->wok0 && sl->wfired != S.run_serial)
                fail("slot %d: writer on a writable fd did not fire", s);
        }
        for (int i = 0; i < 2; i++)
            if (raised[i] && S.sig_on[i] && S.sig_touched[i] != S.run_serial &&
                S.sig_fired[i] != S.run_serial)
                fail("signal %d raised before the iteration: no callback", sigs[i]);
    } else if (!S.stopped) {
        if (rc != 0)
            fail("RUN_DEFAULT returned %d", rc);
        for (int k = 0; k < S.ncb; k++)
            if (S.cbs[k].kind != K_FAR && S.cbs[k].kind != K_EVERY && pending(&S.cbs[k]))
                fail("RUN_DEFAULT returned with callback %d pending", S.cbs[k].tag);
    }
}

static void close_loop_state(void)
{
    for (int k = 0; k < S.ncb; k++)
        S.cbs[k].cancelled = 1;     /* dropped: must never run */
    S.nids = 0;
    for (int s = 0; s < NSLOT; s++)
        S.sl[s].rd = S.sl[s].wr = 0;
    S.sig_on[0] = S.sig_on[1] = 0;
    S.sig_raised[0] = S.sig_raised[1] = 0;
}

static void exec_op(const struct op *o)
{
    aloop_t *l = S.loop;
    unsigned a = o->a, b = o->b, c = o->c;
    if (!l || S.nexec++ >= MAXEXEC)
        return;
    trace(T_OP, o->code);
    switch (o->code) {
    case OP_SOON: {
        int prio = (int)(a % 5) - 2, k = new_cb(K_SOON, (int)b, prio);
        if (k >= 0)
            add_id(OP_SOON, aloop_call_soon_prio(l, prio, fz_cb, (void *)(intptr_t)k), k);
        break;
    }
    case OP_AT:
    case OP_LATER0: {
        int k = new_cb(o->code == OP_AT ? K_AT : K_LATER0, (int)b, 0);
        if (k < 0)
            break;
        aloop_id_t id = o->code == OP_AT ? aloop_call_at(l, 1 + a % 16, fz_cb, (void *)(intptr_t)k)
                                         : aloop_call_later(l, 0, fz_cb, (void *)(intptr_t)k);
        add_id(o->code, id, k);
        if ((c & 1) && id > 0 && S.nids > 0 && S.ids[S.nids - 1] == id)
            do_setprio(S.nids - 1, (int)((c >> 1) % 5) - 2);
        break;
    }
    case OP_FAR: {
        unsigned m = c % 4;
        int k = new_cb(m & 1 ? K_EVERY : K_FAR, 0, 0);
        if (k < 0)
            break;
        void *arg = (void *)(intptr_t)k;
        aloop_id_t id = m == 0 ? aloop_call_later(l, 3600 * ALOOP_SEC, fz_cb, arg)
                      : m == 1 ? aloop_call_every(l, 3600 * ALOOP_SEC, fz_cb, arg)
                      : m == 2 ? aloop_call_later(l, UINT64_MAX, fz_cb, arg)
                               : aloop_call_every(l, UINT64_MAX / 2, fz_cb, arg);
        add_id(OP_FAR, id, k);
        default_guard();
        break;
    }
    case OP_CANCEL:
        if (S.nids)
            do_cancel(OP_CANCEL, (int)(a % (unsigned)S.nids));
        break;
    case OP_CANCEL_LAST:
        if (S.nids)
            do_cancel(OP_CANCEL_LAST, S.nids - 1);
        break;
    case OP_SETPRIO:
        if (S.nids)
            do_setprio((int)(a % (unsigned)S.nids), (int)(b % 5) - 2);
        break;
    case OP_ADD_R:
    case OP_ADD_W: {
        struct slot *sl = &S.sl[a % NSLOT];
        int w = o->code == OP_ADD_W, s = (int)(a % NSLOT);
        if (sl->fd < 0)
            break;
        if (w) {
            sl->wact = (uint8_t)b;
            sl->wmode = (uint8_t)c;
        } else {
            sl->ract = (uint8_t)b;
            sl->rmode = (uint8_t)c;
        }
        void *arg = (void *)(intptr_t)(s * 2 + w);
        int r = w ? aloop_add_writer(l, sl->fd, fz_io, arg) : aloop_add_reader(l, sl->fd, fz_io, arg);
        trace_rc(o->code, r);
        if (r != 0) {
            fail("add_%s(fd %d) = %d", w ? "writer" : "reader", sl->fd, r);
            break;
        }
        if (!(w ? sl->wr : sl->rd))
            touch(sl);
        if (w)
            sl->wr = 1;
        else
            sl->rd = 1;
        /* a new watcher starts at the default priority: set only others */
        if (sl->prio != ALOOP_PRIO_DEFAULT)
            set_io_prio(sl);
        default_guard();
        break;
    }
    case OP_RM_R:
    case OP_RM_W: {
        struct slot *sl = &S.sl[a % NSLOT];
        int w = o->code == OP_RM_W;
        if (sl->fd < 0)
            break;
        int r = w ? aloop_remove_writer(l, sl->fd) : aloop_remove_reader(l, sl->fd);
        trace_rc(o->code, r);
        int want = (w ? sl->wr : sl->rd) ? 0 : -ENOENT;
        if (r != want)
            fail("remove_%s(fd %d) = %d, expected %d", w ? "writer" : "reader", sl->fd, r, want);
        if (w)
            sl->wr = 0;
        else
            sl->rd = 0;
        touch(sl);
        break;
    }
    case OP_WRITE: {
        struct slot *sl = &S.sl[a % NSLOT];
        int n = (int)(b % 4) + 1;
        if (sl->fd < 0 || sl->inbuf > 60000)
            break;
        ssize_t r = send(sl->peer, "wxyz", (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r == n) {
            sl->inbuf += n;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* the peer's sndbuf is full of unread skbs (~280 small writes,
             * however few bytes): the kernel's answer, the same on every
             * backend; traced, so the traces still have to agree */
            trace_rc(OP_WRITE, -EAGAIN);
        } else {
            fail("write of %d bytes: %zd (%s)", n, r, r < 0 ? strerror(errno) : "short");
        }
        break;
    }
    case OP_READ: {
        struct slot *sl = &S.sl[a % NSLOT];
        char ch;
        if (sl->fd >= 0 && sl->inbuf > 0) {
            if (read(sl->fd, &ch, 1) != 1)
                fail("read of 1 byte failed");
            sl->inbuf--;
        }
        break;
    }
    case OP_DRAIN_PEER: {
        struct slot *sl = &S.sl[a % NSLOT];
        char buf[512];
        ssize_t n, got = 0;
        if (sl->fd < 0)
            break;
        while ((n = read(sl->peer, buf, sizeof buf)) > 0)
            got += n;
        if (got != sl->peerbuf)
            fail("peer of slot %d: %zd bytes, expected %d", (int)(a % NSLOT), got, sl->peerbuf);
        sl->peerbuf = 0;
        break;
    }
    case OP_SWAP: {
        struct slot *s1 = &S.sl[a % NSLOT], *s2 = &S.sl[b % NSLOT];
        if (s1 == s2 || s1->fd < 0 || s2->fd < 0)
            break;
        int8_t t = s1->prio;
        s1->prio = s2->prio;
        s2->prio = t;
        touch(s1);
        touch(s2);
        set_io_prio(s1);
        set_io_prio(s2);
        break;
    }
    case OP_TS: {
        int k = new_cb(K_TS, (int)b, 0);
        if (k >= 0) {
            int r = aloop_call_soon_threadsafe(l, fz_cb, (void *)(intptr_t)k);
            trace_rc(OP_TS, r);
            if (r != 0)
                fail("call_soon_threadsafe: %d", r);
        }
        break;
    }
    case OP_RUN:
        if (S.in_run) {
            int r = aloop_run(l, (aloop_run_mode)(a % 4));
            trace_rc(OP_RUN, r);
            if (r != -EBUSY)
                fail("nested aloop_run = %d", r);
        } else {
            do_run(a % 4);
        }
        break;
    case OP_STOP:
        aloop_stop(l);
        if (S.in_run)
            S.stopped = 1;
        else
            S.stop_pending = 1;
        break;
    case OP_REOPEN: {
        struct slot *sl = &S.sl[a % NSLOT];
        if (sl->fd < 0)
            break;
        /* remove, then close: the rule */
        if (sl->rd) {
            int r = aloop_remove_reader(l, sl->fd);
            trace_rc(OP_RM_R, r);
            if (r != 0)
                fail("remove_reader before close: %d", r);
        }
        if (sl->wr) {
            int r = aloop_remove_writer(l, sl->fd);
            trace_rc(OP_RM_W, r);
            if (r != 0)
                fail("remove_writer before close: %d", r);
        }
        sl->rd = sl->wr = 0;
        close(sl->fd);
        close(sl->peer);
        new_pair(sl);
        touch(sl);
        break;
    }
    case OP_SIG_ADD: {
        int i = (int)(a & 1);
        int r = aloop_add_signal_handler(l, sigs[i], fz_sig, (void *)(intptr_t)i);
        trace_rc(OP_SIG_ADD, r);
        if (r != 0)
            fail("add_signal_handler: %d", r);
        else
            S.sig_on[i] = 1;
        S.sig_act[i] = (uint8_t)b;
        default_guard();
        break;
    }
    case OP_SIG_RM: {
        int i = (int)(a & 1);
        int r = aloop_remove_signal_handler(l, sigs[i]);
        trace_rc(OP_SIG_RM, r);
        int want = S.sig_on[i] ? 0 : -ENOENT;
        if (r != want)
            fail("remove_signal_handler: %d, expected %d", r, want);
        S.sig_on[i] = 0;
        S.sig_raised[i] = 0;
        if (S.in_run)
            S.sig_touched[i] = S.run_serial;
        break;
    }
    case OP_RAISE: {
        int i = (int)(a & 1);
        raise(sigs[i]);
        if (!S.in_run && S.sig_on[i])
            S.sig_raised[i] = 1;
        break;
    }
    case OP_CLOSE_NEW: {
        int r = aloop_close(l);
        trace_rc(OP_CLOSE_NEW, r);
        if (S.in_run) {
            if (r != -EBUSY)
                fail("aloop_close in a callback = %d", r);
            break;
        }
        if (r != 0) {
            fail("aloop_close = %d", r);
            break;
        }
        S.loop = NULL;
        S.stop_pending = 0;
        close_loop_state();
        r = aloop_new(&S.loop, S.be);
        trace_rc(OP_CLOSE_NEW, r);
        if (r != 0) {
            S.loop = NULL;
            fail("aloop_new(%s) again = %d", S.be, r);
        }
        break;
    }
    }
}

/* ---- running a program -------------------------------------------------- */

static void open_fds(unsigned char *map)
{
    for (int fd = 0; fd < FDSCAN; fd++)
        map[fd] = fcntl(fd, F_GETFD) != -1;
}

static int parse(const uint8_t *data, size_t size, struct op *ops)
{
    int n = 0;
    for (size_t i = 0; i + 4 <= size && n < MAXOPS; i += 4, n++) {
        ops[n].code = (uint8_t)(data[i] % NOP);
        ops[n].a = data[i + 1];
        ops[n].b = data[i + 2];
        ops[n].c = data[i + 3];
    }
    return n;
}

const char *volatile fz_current_backend;

int fz_run(const uint8_t *data, size_t size, const char *backend, struct fz_trace *tr)
{
    fz_current_backend = backend;
    unsigned char before[FDSCAN], after[FDSCAN];
    memset(&S, 0, sizeof S);
    tr->len = 0;
    tr->truncated = 0;
    tr->err[0] = 0;
    S.tr = tr;
    S.be = backend;
    S.budget = BUDGET;
    S.nops = parse(data, size, S.ops);
    if (S.nops == 0)
        return 0;
    open_fds(before);
    for (int s = 0; s < NSLOT; s++)
        S.sl[s].fd = S.sl[s].peer = -1;
    int r = aloop_new(&S.loop, backend);
    if (r != 0) {
        fail("aloop_new(%s) = %d", backend, r);
        return -1;
    }
    for (int s = 0; s < NSLOT; s++) {
        new_pair(&S.sl[s]);
        S.sl[s].prio = (int8_t)(s - 2);
    }
    for (int i = 0; i < S.nops && S.loop; i++)
        exec_op(&S.ops[i]);
    if (S.loop) {
        r = aloop_close(S.loop);
        if (r != 0)
            fail("final aloop_close = %d", r);
    }
    for (int s = 0; s < NSLOT; s++)
        if (S.sl[s].fd >= 0) {
            close(S.sl[s].fd);
            close(S.sl[s].peer);
        }
    open_fds(after);
    /* A library may keep a process-wide fd from its first use of a feature
     * on (libuv's signal pipe): new fds are forgiven twice per backend; a
     * real leak shows again in every program. */
    static struct { const char *be; int forgiven; } seen[8];
    int b = 0;
    while (b < 7 && seen[b].be && strcmp(seen[b].be, backend))
        b++;
    seen[b].be = backend;
    int leaked = 0;
    for (int fd = 0; fd < FDSCAN; fd++) {
        if (before[fd] && !after[fd])
            fail("fd %d (not the loop's) closed by the program", fd);
        leaked += !before[fd] && after[fd];
    }
    if (leaked && seen[b].forgiven++ >= 2)
        for (int fd = 0; fd < FDSCAN; fd++)
            if (!before[fd] && after[fd])
                fail("fd %d left open after the program (and %d more)", fd, leaked - 1);
    return S.failed ? -1 : 0;
}

/* ---- differential run and reports --------------------------------------- */

static void decode(uint32_t v, char *out, size_t cap)
{
    uint32_t p = v & 0xffffffu;
    switch (v >> 24) {
    case T_OP:
        snprintf(out, cap, "op %s", p < NOP ? op_names[p] : "?");
        break;
    case T_CB:
        snprintf(out, cap, "callback %u", p);
        break;
    case T_IO:
        snprintf(out, cap, "io slot %u %s", p >> 4, (p & 15) == ALOOP_READABLE ? "R" : (p & 15) == ALOOP_WRITABLE ? "W" : "?");
        break;
    case T_RC:
        snprintf(out, cap, "  rc %s = %d", (p >> 16) < NOP ? op_names[p >> 16] : "?", (int)(int16_t)(p & 0xffff));
        break;
    case T_RUN:
        snprintf(out, cap, "run mode %u = %d", (p >> 8) & 0xff, (int)(int8_t)(p & 0xff));
        break;
    case T_SIG:
        snprintf(out, cap, "signal %u", p);
        break;
    default:
        snprintf(out, cap, "? %08x", v);
    }
}

void fz_dump(const uint8_t *data, size_t size, char *out, size_t cap)
{
    struct op ops[MAXOPS];
    int n = parse(data, size, ops);
    size_t off = 0;
    for (int i = 0; i < n && off < cap; i++)
        off += (size_t)snprintf(out + off, cap - off, "  %3d %-12s %3u %3u %3u\n", i,
                                op_names[ops[i].code], ops[i].a, ops[i].b, ops[i].c);
    if (n == 0 && cap)
        out[0] = 0;
}

#define MAXBE 8
static struct fz_trace traces[MAXBE];

int fz_diff(const uint8_t *data, size_t size, const char *const *backends, int n,
            char *report, size_t cap)
{
    if (n > MAXBE)
        n = MAXBE;
    report[0] = 0;
    for (int i = 0; i < n; i++) {
        if (fz_run(data, size, backends[i], &traces[i]) != 0) {
            snprintf(report, cap, "model check failed on %s", traces[i].err);
            return 1;
        }
    }
    for (int i = 1; i < n; i++) {
        struct fz_trace *x = &traces[0], *y = &traces[i];
        size_t k = 0;
        while (k < x->len && k < y->len && x->ev[k] == y->ev[k])
            k++;
        if (k == x->len && k == y->len)
            continue;
        size_t off = (size_t)snprintf(report, cap, "traces differ at entry %zu (%s: %zu entries, %s: %zu)\n",
                                      k, backends[0], x->len, backends[i], y->len);
        size_t from = k > 8 ? k - 8 : 0;
        for (size_t j = from; j < k + 6 && off < cap; j++) {
            char a[64] = "-", b[64] = "-";
            if (j < x->len)
                decode(x->ev[j], a, sizeof a);
            if (j < y->len)
                decode(y->ev[j], b, sizeof b);
            off += (size_t)snprintf(report + off, cap - off, "%s%5zu  %-28s %s\n",
                                    j == k ? ">" : " ", j, a, b);
        }
        return 1;
    }
    return 0;
}
