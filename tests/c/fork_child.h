/* Shared by the programs that fork while other threads allocate: one fork whose child
 * allocates a small and a large block, frees them and exits with status 0, reaped by the
 * caller. A child that has not exited 3 s later is reported ("child stuck" on stderr, exit
 * status 3), so a hang in the child is measured instead of waiting for a timeout. */
#ifndef FORK_CHILD_H
#define FORK_CHILD_H
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static inline void fork_allocating_child(void) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        free(malloc(100));
        free(malloc(100000));
        _exit(0);
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) * 1e-9 > 3) {
            if (write(2, "child stuck\n", 12) < 0)
                _exit(4);
            _exit(3);
        }
        usleep(100);
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
#endif
