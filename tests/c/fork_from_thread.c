/* fork() from a thread while 4 other threads allocate and free: every child must be able to
 * malloc/free (no lock left held by a thread that does not exist in the child) and exit 0. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define CHURNERS 4
#define FORKS 50
#define CHILD_TIMEOUT_MS 20000

static atomic_int stop;

static void *churn(void *arg) {
    uint32_t s = 2654435761u * ((uint32_t)(intptr_t)arg + 1);
    void *slot[64] = {0};
    while (!atomic_load(&stop)) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        int k = s % 64;
        free(slot[k]);
        size_t n = (s >> 8) % 16 == 0 ? 40000 + (s >> 12) % 100000 : (s >> 8) % 3000;
        slot[k] = malloc(n);
        CHECK(slot[k] != NULL);
        memset(slot[k], k, n);
    }
    for (int k = 0; k < 64; k++)
        free(slot[k]);
    return NULL;
}

static void child(void) {
    void *p[100];
    for (int i = 0; i < 100; i++) {
        size_t n = i % 10 == 0 ? 100000 : (size_t)i * 97;
        p[i] = malloc(n);
        if (!p[i])
            _exit(3);
        memset(p[i], i, n);
    }
    for (int i = 0; i < 100; i++)
        free(p[i]);
    void *q = calloc(10, 10);
    q = realloc(q, 5000);
    if (!q)
        _exit(4);
    free(q);
    _exit(0);
}

/* Waits for pid with a timeout; returns the wait status, or -1 after killing a hung child. */
static int wait_child(pid_t pid) {
    for (int ms = 0; ms < CHILD_TIMEOUT_MS; ms++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        CHECK(r == 0);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void *forker(void *arg) {
    int *bad = (int *)arg;
    for (int i = 0; i < FORKS; i++) {
        void *mine = malloc(1000);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            child();
        free(mine);
        int st = wait_child(pid);
        if (st == -1) {
            fprintf(stderr, "fork %d: child %d hung, killed\n", i, (int)pid);
            (*bad)++;
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "fork %d: child %d ended with %s %d\n", i, (int)pid,
                    WIFEXITED(st) ? "status" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            (*bad)++;
        }
    }
    return NULL;
}

int main(void) {
    pthread_t t[CHURNERS], f;
    int bad = 0;
    for (int i = 0; i < CHURNERS; i++)
        CHECK(pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i) == 0);
    CHECK(pthread_create(&f, NULL, forker, &bad) == 0);
    pthread_join(f, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < CHURNERS; i++)
        pthread_join(t[i], NULL);
    CHECK(bad == 0);
    printf("OK\n");
    return 0;
}
