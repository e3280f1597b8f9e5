#!/usr/bin/env python3
"""seeds.py -- writes the differential fuzzer's seed corpus (corpus/) and
regression reproducers (regress/).  Each program is a list of 4-byte
operations (opcode, a, b, c); prog.c says what each does.  Re-run after
changing the operation set:  python3 tests/fuzz/seeds.py"""
import os

OPS = ["soon", "at", "later0", "far", "cancel", "setprio", "add_reader", "add_writer",
       "rm_reader", "rm_writer", "write", "drain_peer", "swap_io_prio", "threadsafe", "run",
       "stop", "reopen", "sig_add", "sig_rm", "raise", "read", "close_new", "cancel_last"]
NOWAIT, ONCE, DEFAULT, STOPNOWAIT = 0, 1, 2, 3
# reader modes: 0 nothing, 1 read a byte, 2 drain, 3 remove itself
# writer modes: 0 nothing, 1 echo a byte, 2 remove itself, 3 echo and remove


def prog(*ops):
    out = bytearray()
    for op in ops:
        name, a, b, c = (list(op) + [0, 0, 0])[:4]
        out += bytes([OPS.index(name), a & 255, b & 255, c & 255])
    return bytes(out)


def P(prio):          # priority -2..2 as the "a" byte of soon
    return prio + 2


SEEDS = {
    "calls-priorities": prog(*[("soon", P(p), 0) for p in (0, 2, -2, 1, 0, -1, 2)],
                             ("run", NOWAIT), ("run", NOWAIT)),
    "timers-due": prog(("at", 5), ("at", 1), ("later0",), ("at", 5, 0, 1 | (4 << 1)),
                       ("soon", P(-2)), ("run", NOWAIT), ("run", DEFAULT)),
    "cancel-and-move": prog(("soon", P(0)), ("soon", P(1)), ("at", 3), ("far",),
                            ("far", 0, 0, 1), ("cancel", 1), ("setprio", 0, 4),
                            ("setprio", 2, 0), ("cancel_last",), ("run", NOWAIT),
                            ("cancel", 0), ("cancel", 3), ("run", NOWAIT)),
    # callbacks whose action is another operation of the program (b = index + 1)
    "nested-actions": prog(("soon", P(0), 3), ("run", NOWAIT), ("soon", P(2), 4),
                           ("cancel", 0), ("threadsafe", 0, 2), ("run", ONCE), ("run", ONCE),
                           ("run", DEFAULT)),
    "chain-default": prog(("soon", P(1), 2), ("soon", P(-1), 1), ("run", DEFAULT)),
    "io-readers": prog(("add_reader", 0, 0, 2), ("add_reader", 3, 0, 1), ("write", 0, 2),
                       ("write", 3, 3), ("run", NOWAIT), ("run", NOWAIT), ("read", 3),
                       ("run", ONCE), ("rm_reader", 0), ("rm_reader", 3), ("run", NOWAIT)),
    "io-writers-echo": prog(("add_writer", 1, 0, 1), ("add_writer", 4, 0, 3),
                            ("add_reader", 1, 0, 0), ("write", 1, 0), ("run", NOWAIT),
                            ("run", NOWAIT), ("drain_peer", 1), ("drain_peer", 4),
                            ("rm_writer", 1), ("rm_reader", 1), ("run", NOWAIT)),
    "io-priority-swap": prog(("add_reader", 0, 0, 2), ("add_reader", 4, 0, 2),
                             ("soon", P(1)), ("write", 0, 1), ("write", 4, 1),
                             ("swap_io_prio", 0, 4), ("run", NOWAIT), ("swap_io_prio", 4, 2),
                             ("write", 4, 0), ("run", NOWAIT), ("rm_reader", 0),
                             ("rm_reader", 4), ("run", NOWAIT)),
    "reopen": prog(("add_reader", 2, 0, 2), ("add_writer", 2, 0, 0), ("write", 2, 1),
                   ("run", NOWAIT), ("reopen", 2), ("add_reader", 2, 0, 2), ("write", 2, 0),
                   ("run", NOWAIT), ("reopen", 2), ("run", NOWAIT)),
    "signals": prog(("sig_add", 0), ("sig_add", 1, 1), ("raise", 0), ("raise", 1),
                    ("raise", 0), ("soon", P(0)), ("run", NOWAIT), ("run", NOWAIT),
                    ("sig_rm", 1), ("raise", 1), ("run", NOWAIT), ("sig_rm", 0),
                    ("sig_rm", 0), ("run", NOWAIT)),
    "threadsafe": prog(("threadsafe",), ("soon", P(-1)), ("threadsafe",), ("at", 2),
                       ("run", ONCE), ("threadsafe",), ("run", STOPNOWAIT)),
    "stop-and-runs": prog(("soon", P(0), 2), ("stop",), ("run", DEFAULT), ("run", NOWAIT),
                          ("far",), ("run", DEFAULT), ("run", STOPNOWAIT), ("run", ONCE)),
    "close-new": prog(("soon", P(0)), ("add_reader", 1, 0, 0), ("write", 1, 1),
                      ("sig_add", 0), ("far",), ("close_new",), ("raise", 0),
                      ("soon", P(2)), ("cancel", 0), ("run", NOWAIT), ("run", DEFAULT)),
    # a callback that runs "close_new" and "run" gets -EBUSY
    "busy-in-callback": prog(("soon", P(0), 2), ("soon", P(0), 3), ("run", NOWAIT),
                             ("close_new",), ("run", NOWAIT)),
    "everything": prog(("add_reader", 0, 5, 1), ("add_writer", 3, 9, 1), ("sig_add", 0, 7),
                       ("soon", P(2), 11), ("at", 4, 12), ("later0", 0, 13),
                       ("write", 0, 3), ("raise", 0), ("threadsafe", 0, 6), ("run", NOWAIT),
                       ("swap_io_prio", 0, 3), ("write", 0, 0), ("run", ONCE),
                       ("reopen", 3), ("cancel", 1), ("setprio", 2, 0), ("run", NOWAIT),
                       ("rm_reader", 0), ("sig_rm", 0), ("drain_peer", 3), ("run", DEFAULT)),
}

# One reproducer per bug the fuzzer or the fault tests found (see README's
# security notes and tests/test_fault.c).
REGRESS = {
    # remove a reader, close the fd, let a new socket take its number, add a
    # reader: before the fix, epoll never reported the new socket.
    "fd-reuse-pending-removal": prog(("add_reader", 0, 0, 2), ("run", NOWAIT),
                                     ("rm_reader", 0), ("reopen", 0), ("add_reader", 0, 0, 2),
                                     ("write", 0, 1), ("run", NOWAIT), ("run", NOWAIT)),
    # the same inside one iteration, from callbacks, as a server does on EOF
    # and accept: slot 1's reader (priority -1) reopens slot 1 (action ->
    # op 7), then slot 0's reader (priority -2) adds a reader to the new
    # socket (action -> op 8); the next run must see its data.
    "fd-reuse-in-callback": prog(("add_reader", 1, 8, 2), ("add_reader", 0, 9, 2),
                                 ("write", 1, 0), ("write", 0, 0), ("run", NOWAIT),
                                 ("write", 1, 0), ("run", NOWAIT),
                                 ("reopen", 1), ("add_reader", 1, 0, 2)),
    # a watcher removed at priority 2 left its fd at priority 2: the next
    # watcher of the number did not start at the default priority.
    "stale-io-priority": prog(("add_reader", 2, 0, 2), ("swap_io_prio", 2, 4),
                              ("rm_reader", 2), ("swap_io_prio", 2, 4), ("write", 2, 1),
                              ("add_reader", 2, 0, 2), ("soon", P(1)), ("run", NOWAIT)),
    # found by the fuzzer on the libuv backend: a signal raised before its
    # handler was removed ran the handler added again afterwards (the other
    # backends drop it with the removal).
    "signal-before-readd": prog(("sig_add", 0), ("raise", 0), ("sig_rm", 0), ("sig_add", 0),
                                ("run", NOWAIT), ("sig_rm", 0)),
    # model false positives (the kernel's answer, not the backends', was
    # wrong in the model).  An AF_UNIX stream socket is writable only while
    # its unread sent skbs take at most a quarter of sndbuf: slot 2's echoing
    # writer (mode 1) fires in ~70 runs, then its fd is not writable, however
    # few bytes are queued; the model said "writer did not fire" on every
    # backend.  Now the writer must stay silent, fire again once the peer is
    # drained, and an ONCE run with it not writable must not block.
    "writer-not-writable": prog(("add_writer", 2, 0, 1), *[("run", NOWAIT)] * 80,
                                ("run", ONCE), ("drain_peer", 2), ("run", NOWAIT),
                                ("run", NOWAIT), ("rm_writer", 2), ("run", NOWAIT)),
    # the same for "write": ~280 small unread writes fill the peer's sndbuf
    # and send() says EAGAIN.  Ten watchers whose action (-> op 0) writes a
    # byte to slot 1 fire in each of 35 runs; slot 1's reader then drains
    # exactly what was written.
    "write-peer-full": prog(("write", 1, 0), *[("add_reader", k, 1, 0) for k in range(5)],
                            *[("add_writer", k, 1, 0) for k in range(5)],
                            *[("write", k, 0) for k in range(5)], *[("run", NOWAIT)] * 35,
                            ("add_reader", 1, 0, 2), ("run", NOWAIT), ("run", NOWAIT)),
}

here = os.path.dirname(os.path.abspath(__file__))
for sub, progs in (("corpus", SEEDS), ("regress", REGRESS)):
    os.makedirs(os.path.join(here, sub), exist_ok=True)
    for name, data in progs.items():
        with open(os.path.join(here, sub, name), "wb") as f:
            f.write(data)
print("wrote %d seeds, %d reproducers" % (len(SEEDS), len(REGRESS)))
