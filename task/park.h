/* park.h -- a reader kept registered between a task's waits (internal).
 *
 * aloop_wait_fd() removes its watcher when it fires, so a task that reads,
 * answers and waits again pays a removal and a new registration -- two
 * system calls on epoll -- per round.  A parked reader stays registered
 * after it woke its task: the next wait costs nothing.  If it fires while
 * no task waits, it is removed then (level-triggered readiness would
 * otherwise fire every iteration) and registered again by the next wait.
 *
 * The fd must be closed with aloop_fd_close() (which also wakes a waiting
 * task with -EBADF), or aloop__park_drop() first. */
#ifndef ALOOP_TASK_PARK_H
#define ALOOP_TASK_PARK_H

#include "aloop.h"

struct aloop_task;

struct aloop__park {
    aloop_t *loop;
    struct aloop_task *waiter;      /* the task in aloop__park_wait(), or NULL */
    int fd;
    int armed;                      /* the reader is registered */
};

/* In a task: wait until p->fd is readable.  Returns ALOOP_READABLE, or
 * -ECANCELED, -EBADF (closed by aloop_fd_close), -EBUSY (another reader
 * owns the fd), -EPERM outside a task, or an error of aloop_add_reader. */
__attribute__((visibility("hidden"))) int aloop__park_wait(struct aloop__park *p);

/* Remove the parked reader, if registered (no task may wait on it). */
__attribute__((visibility("hidden"))) void aloop__park_drop(struct aloop__park *p);

#endif
