/* A program under a seccomp filter that kills the process on mincore(2), as systemd's
 * SystemCallFilter=@system-service does (mincore is in none of its groups): it drops one
 * block and exits, so the leak check runs under the filter.
 * usage: leak_under_seccomp */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include "seccomp_deny.h"

__attribute__((noinline)) static void drop(void) {
    char *volatile lost = malloc(3333);
    memset(lost, 1, 3333);
    lost = NULL;
}

int main(void) {
    if (seccomp_deny(SYS_mincore, SECCOMP_RET_KILL_PROCESS))
        return 2;
    drop();
    /* A big block, left untouched, kept in a global: the scan asks which of its pages hold
     * anything. */
    static char *big;
    big = malloc(64 << 20);
    puts("filtered");
    return 0;
}
