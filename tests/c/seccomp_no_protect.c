/* A sandboxed program: a seccomp filter makes mprotect and madvise fail with EPERM (as some
 * sandboxes do for calls glibc's malloc can do without), in every thread. Then blocks of every
 * size class, big blocks and blocks from four threads started before (whose first malloc comes
 * after: new arenas, new metadata chunks) are made, written and freed: none may fail. Prints
 * "seccomp unavailable" when the kernel refuses the filter, else OK. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

static pthread_barrier_t filtered;

static void *churn(void *arg) {
    unsigned seed = (unsigned)(size_t)arg;
    static __thread void *keep[4096];
    for (int i = 0; i < 4096; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 8) % 20000;
        keep[i] = malloc(n);
        CHECK(keep[i] != NULL);
        memset(keep[i], 0x5a, n);
    }
    for (int i = 0; i < 4096; i++)
        free(keep[i]);
    return NULL;
}

/* A thread started before the filter, which allocates only after it. */
static void *late(void *arg) {
    pthread_barrier_wait(&filtered);
    return churn(arg);
}

int main(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_madvise, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    /* Threads need mprotect for their stacks: they are started first. */
    pthread_t t[4];
    CHECK(pthread_barrier_init(&filtered, NULL, 5) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, late, (void *)(size_t)(i + 2)) == 0);
    int ok = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
             syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) == 0;
    pthread_barrier_wait(&filtered);
    if (!ok) {
        for (int i = 0; i < 4; i++)
            CHECK(pthread_join(t[i], NULL) == 0);
        puts("seccomp unavailable");
        return 0;
    }
    churn((void *)1);
    for (size_t n = 64 << 10; n <= (8u << 20); n *= 2) {
        char *p = malloc(n);
        CHECK(p != NULL);
        memset(p, 1, n);
        p = realloc(p, n + n / 2);
        CHECK(p != NULL && p[n - 1] == 1);
        free(p);
    }
    for (int i = 0; i < 4; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    puts("OK");
    return 0;
}
