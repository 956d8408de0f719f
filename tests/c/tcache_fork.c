/* fork from a thread whose cache of free slots holds blocks, while 4 other threads churn (their
 * caches change at the fork). The child allocates and frees blocks of every class (the forking
 * thread's cache, then the arenas), checks their contents, starts a thread that does the same,
 * and exits 0; the parent waits for it and goes on. Prints OK. */
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static volatile int stop;

static void churn(int rounds) {
    void *p[128];
    size_t n[128];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 128; i++) {
            n[i] = (size_t)(1 + (i * 131 + r * 17) % 16384);
            p[i] = malloc(n[i]);
            CHECK(p[i] != NULL);
            memset(p[i], i, n[i]);
        }
        for (int i = 0; i < 128; i++) {
            unsigned char *c = p[i];
            CHECK(c[0] == (unsigned char)i && c[n[i] - 1] == (unsigned char)i);
            free(p[i]);
        }
    }
}

static void *busy(void *arg) {
    (void)arg;
    while (!stop)
        churn(1);
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    churn(50);
    return NULL;
}

static void *forker(void *arg) {
    (void)arg;
    for (int k = 0; k < 20; k++) {
        churn(2); /* leaves this thread's cache full of free slots */
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            churn(20);
            pthread_t t;
            if (pthread_create(&t, NULL, child_thread, NULL) != 0)
                _exit(3);
            pthread_join(t, NULL);
            churn(20);
            _exit(0);
        }
        int st;
        CHECK(waitpid(pid, &st, 0) == pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    return NULL;
}

int main(void) {
    pthread_t b[4], f;
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&b[i], NULL, busy, NULL) == 0);
    CHECK(pthread_create(&f, NULL, forker, NULL) == 0);
    CHECK(pthread_join(f, NULL) == 0);
    stop = 1;
    for (int i = 0; i < 4; i++)
        CHECK(pthread_join(b[i], NULL) == 0);
    churn(5);
    printf("OK\n");
    return 0;
}
