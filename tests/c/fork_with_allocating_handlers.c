/* fork() from a thread while 4 threads allocate, in a program linked with a library whose
 * constructor registered fork handlers that malloc and free (atfork_allocating_lib.c). The
 * allocator's own prepare handler must run after that library's and its parent/child handlers
 * before it, or the library's prepare handler finds every arena locked and the fork hangs.
 * Every child mallocs, frees and exits 0. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define CHURNERS 4
#define FORKS 30

void atfork_lib_counts(int out[3]);

static atomic_int stop;

static void *churn(void *arg) {
    uint32_t s = 2654435761u * ((uint32_t)(intptr_t)arg + 1);
    void *slot[32] = {0};
    while (!atomic_load(&stop)) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        int k = s % 32;
        free(slot[k]);
        size_t n = (s >> 8) % 16 == 0 ? 40000 + (s >> 12) % 100000 : (s >> 8) % 3000;
        slot[k] = malloc(n);
        CHECK(slot[k] != NULL);
        memset(slot[k], k, n);
    }
    for (int k = 0; k < 32; k++)
        free(slot[k]);
    return NULL;
}

static void *forker(void *arg) {
    (void)arg;
    for (int i = 0; i < FORKS; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            int c[3];
            atfork_lib_counts(c);
            char *p = malloc(5000);
            if (!p || c[2] != 1)
                _exit(3);
            memset(p, 1, 5000);
            free(p);
            _exit(0);
        }
        int st;
        CHECK(waitpid(pid, &st, 0) == pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "fork %d: child ended with %s %d\n", i,
                    WIFEXITED(st) ? "status" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            exit(1);
        }
    }
    return NULL;
}

int main(void) {
    pthread_t t[CHURNERS], f;
    for (int i = 0; i < CHURNERS; i++)
        CHECK(pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i) == 0);
    CHECK(pthread_create(&f, NULL, forker, NULL) == 0);
    pthread_join(f, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < CHURNERS; i++)
        pthread_join(t[i], NULL);
    int c[3];
    atfork_lib_counts(c);
    CHECK(c[0] == FORKS && c[1] == FORKS && c[2] == 0);
    printf("OK\n");
    return 0;
}
