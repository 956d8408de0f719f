/* Blocks of the main thread freed by another thread go back to the main thread's allocations
 * (through its arena's inbox when the threads have arenas of their own, through the arena when
 * they share one): the other thread frees 300 of them, then exits. A second free of
 * one of them, waiting to be reused, is refused (debugging off: one WARNING). A fork child
 * allocates 300 blocks of that size, all distinct; so does the parent, which gets back blocks
 * it had before. After malloc_trim, 300 more are distinct too. Prints "reused N" (N > 0) then OK. */
#include <malloc.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

#define N 300
static char *blocks[N];

static void *free_them(void *arg) {
    (void)arg;
    char *mine = malloc(24);
    CHECK(mine != NULL);
    for (int i = 0; i < N; i++) {
        CHECK(blocks[i][0] == (char)i && blocks[i][99] == (char)i);
        free(blocks[i]);
    }
    free(mine);
    return NULL;
}

/* N fresh blocks of 100 bytes, written and then checked: no block is handed out twice.
 * Returns how many of them are in `old`. */
static int fresh_round(char **old) {
    char *got[N];
    int reused = 0;
    for (int i = 0; i < N; i++) {
        got[i] = malloc(100);
        CHECK(got[i] != NULL);
        memset(got[i], i & 0x7f, 100);
        for (int j = 0; old && j < N; j++)
            if (old[j] == got[i])
                reused++;
    }
    for (int i = 0; i < N; i++) {
        CHECK(got[i][0] == (i & 0x7f) && got[i][99] == (i & 0x7f));
        free(got[i]);
    }
    return reused;
}

int main(void) {
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(100);
        CHECK(blocks[i] != NULL);
        memset(blocks[i], i, 100);
    }
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_them, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    free(blocks[7]);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        fresh_round(NULL);
        _exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *old[N];
    memcpy(old, blocks, sizeof old);
    int reused = fresh_round(old);
    printf("reused %d\n", reused > 0 ? 1 : 0);
    malloc_trim(0);
    fresh_round(NULL);
    printf("OK\n");
    return 0;
}
