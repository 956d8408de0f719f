/* A program under a seccomp filter that kills the process on mincore(2), as systemd's
 * SystemCallFilter=@system-service does (mincore is in none of its groups): it drops one
 * block and exits, so the leak check runs under the filter.
 * usage: leak_under_seccomp */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

__attribute__((noinline)) static void drop(void) {
    char *volatile lost = malloc(3333);
    memset(lost, 1, 3333);
    lost = NULL;
}

int main(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mincore, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("seccomp");
        return 2;
    }
    drop();
    /* A big block, left untouched, kept in a global: the scan asks which of its pages hold
     * anything. */
    static char *big;
    big = malloc(64 << 20);
    puts("filtered");
    return 0;
}
