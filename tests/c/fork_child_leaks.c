/* Leak reports of a forked child that calls exit() without exec.
 *
 * "workers": three threads each allocate a block and park; the program's own atfork child
 * handler clears their global slots (in the child those threads and what they held are gone).
 * The forking (main) thread's block is dropped by the child, which also leaks one block of its
 * own, then calls exit(). The child must report those two (its own leaks) and nothing of the
 * vanished threads; the parent, which joins its workers and frees everything, reports nothing.
 * Prints "child PID" and "OK".
 *
 * "churn": four threads allocate and free at random while the main thread forks 30 times;
 * each child calls exit() at once. No child holds a leak of its own: no LEAK line at all. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

#define WORKERS 3

static char *worker_block[WORKERS];
static char *main_block;
static atomic_int parked, release_workers, stop;

/* Overwrites dead stack below the caller, where a pointer may linger. */
__attribute__((noinline)) static void clear_stack(void) {
    volatile char buf[1 << 14];
    memset((char *)buf, 0, sizeof buf);
}

__attribute__((noinline)) static void worker_alloc(long i) {
    worker_block[i] = malloc(300 + i);
    CHECK(worker_block[i] != NULL);
    memset(worker_block[i], 'w', 300 + i);
}

static void *worker(void *arg) {
    long i = (long)arg;
    worker_alloc(i);
    clear_stack();
    atomic_fetch_add(&parked, 1);
    while (!atomic_load(&release_workers))
        usleep(1000);
    free(worker_block[i]);
    worker_block[i] = NULL;
    return NULL;
}

static void forget_workers(void) {
    for (int i = 0; i < WORKERS; i++)
        worker_block[i] = NULL;
}

__attribute__((noinline)) static void child_leaks(void) {
    char *volatile mine = malloc(777);
    CHECK(mine != NULL);
    memset(mine, 'c', 777);
    main_block = NULL; /* drops the forking thread's block */
}

static int workers(void) {
    CHECK(pthread_atfork(NULL, NULL, forget_workers) == 0);
    main_block = malloc(555);
    CHECK(main_block != NULL);
    pthread_t t[WORKERS];
    for (long i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
    while (atomic_load(&parked) < WORKERS)
        usleep(1000);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        child_leaks();
        clear_stack();
        exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("child %d\n", (int)pid);
    atomic_store(&release_workers, 1);
    for (int i = 0; i < WORKERS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    free(main_block);
    printf("OK\n");
    return 0;
}

static void *churner(void *arg) {
    uint32_t s = 2654435761u * ((uint32_t)(intptr_t)arg + 1);
    void *slot[64] = {0};
    while (!atomic_load(&stop)) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        int k = s % 64;
        free(slot[k]);
        size_t n = (s >> 8) % 16 == 0 ? 40000 + (s >> 12) % 100000 : (s >> 8) % 3000 + 1;
        slot[k] = malloc(n);
        CHECK(slot[k] != NULL);
        memset(slot[k], k, n < 64 ? n : 64);
    }
    for (int k = 0; k < 64; k++)
        free(slot[k]);
    return NULL;
}

static int churn(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, churner, (void *)i) == 0);
    fflush(stdout);
    for (int i = 0; i < 30; i++) {
        usleep(2000);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            exit(0);
        int st;
        CHECK(waitpid(pid, &st, 0) == pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    printf("OK\n");
    return 0;
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    if (strcmp(argv[1], "workers") == 0)
        return workers();
    if (strcmp(argv[1], "churn") == 0)
        return churn();
    CHECK(!"usage: fork_child_leaks workers|churn");
}
