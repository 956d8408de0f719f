/* A coroutine on a small stack (the size in bytes is the argument, 4096 by default) allocates,
 * frees, reallocates (into LARGE sizes too), callocs and aligns, frees blocks another thread
 * made, and forks (the child frees and allocates): every call runs within that stack, as
 * glibc's do. Before the coroutine runs,
 * another thread frees 300 blocks of the main thread's, so that the coroutine's first refills
 * find them waiting. Each block's first and last bytes are checked before its free. Prints
 * OK. */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "check.h"

#define KEEP 64
#define THEIRS 256

static ucontext_t main_ctx, co_ctx;
static void *mine[300];
static char *theirs[THEIRS];

static void *free_mine(void *arg) {
    (void)arg;
    for (int i = 0; i < 300; i++)
        free(mine[i]);
    return NULL;
}

static void *make_theirs(void *arg) {
    (void)arg;
    for (int i = 0; i < THEIRS; i++) {
        theirs[i] = malloc(64 + i);
        CHECK(theirs[i] != NULL);
    }
    return NULL;
}

static void body(void) {
    char *keep[KEEP] = {0};
    size_t len[KEEP] = {0};
    for (int i = 0; i < 20000; i++) {
        int k = (i * 7) % KEEP;
        if (keep[k]) {
            CHECK(keep[k][0] == (char)k && keep[k][len[k] - 1] == (char)k);
            free(keep[k]);
        }
        len[k] = 16 + (size_t)(i * 37) % 3000;
        keep[k] = malloc(len[k]);
        CHECK(keep[k] != NULL);
        keep[k][0] = keep[k][len[k] - 1] = (char)k;
        if (i % 1000 == 0) {
            char *r = realloc(keep[k], 20000 + (size_t)i);
            CHECK(r != NULL);
            keep[k] = r;
            len[k] = 20000 + (size_t)i;
            keep[k][len[k] - 1] = (char)k;
        }
        if (i % 79 == 0 && theirs[i % THEIRS]) {
            free(theirs[i % THEIRS]);
            theirs[i % THEIRS] = NULL;
        }
        if (i % 5000 == 0) {
            void *a = NULL;
            CHECK(posix_memalign(&a, 4096, 10000) == 0 && ((uintptr_t)a & 4095) == 0);
            free(a);
            char *z = calloc(100, 10);
            CHECK(z != NULL && z[0] == 0 && z[999] == 0);
            free(z);
        }
    }
    /* fork runs our handlers on this stack; the child allocates and frees. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        free(keep[0]);
        keep[0] = malloc(50);
        _exit(keep[0] != NULL ? 0 : 1);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int k = 0; k < KEEP; k++)
        free(keep[k]);
}

int main(int argc, char **argv) {
    size_t size = argc > 1 ? strtoul(argv[1], NULL, 10) : 4096;
    for (int i = 0; i < 300; i++)
        mine[i] = malloc(16 + i % 200);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_mine, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(pthread_create(&t, NULL, make_theirs, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    /* The stack's lowest byte sits right above an inaccessible page: an overflow faults. */
    long page = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, size + (size_t)page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED && mprotect(m, (size_t)page, PROT_NONE) == 0);
    CHECK(getcontext(&co_ctx) == 0);
    co_ctx.uc_stack.ss_sp = m + page;
    co_ctx.uc_stack.ss_size = size;
    co_ctx.uc_link = &main_ctx;
    makecontext(&co_ctx, body, 0);
    CHECK(swapcontext(&main_ctx, &co_ctx) == 0);
    for (int i = 0; i < THEIRS; i++)
        free(theirs[i]);
    puts("OK");
    return 0;
}
