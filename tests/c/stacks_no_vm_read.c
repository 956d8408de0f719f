/* Under a seccomp filter that refuses process_vm_readv (EPERM, as container profiles and
 * services that filter out @debug may): a double free three calls deep (reported, then the
 * program goes on with on_error=continue), a block kept in a global and one dropped.
 * usage: stacks_no_vm_read */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static char *kept;

__attribute__((noinline)) void level3(char *p) {
    free(p);
    free(p);
}
__attribute__((noinline)) void level2(char *p) { level3(p); }
__attribute__((noinline)) void level1(char *p) { level2(p); }

__attribute__((noinline)) static void drop(void) {
    char *volatile lost = malloc(2222);
    memset(lost, 1, 2222);
    lost = NULL;
}

int main(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("seccomp");
        return 2;
    }
    kept = malloc(1111);
    memset(kept, 2, 1111);
    drop();
    level1(malloc(40));
    puts("went on");
    return 0;
}
