/* Under a seccomp filter that refuses process_vm_readv (EPERM, as container profiles and
 * services that filter out @debug may): a double free three calls deep (reported, then the
 * program goes on with on_error=continue), a block kept in a global and one dropped.
 * usage: stacks_no_vm_read */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include "seccomp_deny.h"

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
    if (seccomp_deny(SYS_process_vm_readv, SECCOMP_RET_ERRNO | EPERM))
        return 2;
    kept = malloc(1111);
    memset(kept, 2, 1111);
    drop();
    level1(malloc(40));
    puts("went on");
    return 0;
}
