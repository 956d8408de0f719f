/* Threads at exit, four ways. A joined thread leaked 16 blocks (100..115 bytes) that only its
 * own frames pointed to: glibc keeps its stack mapped for the next thread, and the stale
 * addresses on it are no references. A thread that returned a block (5151 bytes) and was never
 * joined: its result, kept in its descriptor, is one. A live thread blocked in read(2) keeps a
 * block (6161 bytes) in its frame: a reference too. Before it blocked, it leaked 16 blocks
 * (200..215 bytes) in a deeper call whose dead frame below its stack pointer still holds their
 * addresses: no references.
 * usage: leak_dead_thread */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "stale_frames.h"

static int pipefd[2];

__attribute__((noinline)) static void *leaker(void *arg) {
    void *local[16];
    for (int i = 0; i < 16; i++) {
        local[i] = malloc(100 + i);
        memset(local[i], 1, 100);
    }
    __asm__ volatile("" ::"r"(local) : "memory"); /* the array stays on the stack */
    return arg;
}

static void *returner(void *arg) {
    char *p = malloc(5151);
    memset(p, 5, 5151);
    return p;
}

static volatile pid_t waiter_tid;

static void *waiter(void *arg) {
    char *volatile p = malloc(6161);
    memset(p, 6, 6161);
    leave_in_dead_frame(200);
    waiter_tid = gettid();
    char c;
    if (read(pipefd[0], &c, 1) < 0)
        return NULL;
    return (void *)p;
}

/* Threads of the process now (/proc/self/status). */
static int threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

int main(void) {
    if (pipe(pipefd))
        return 2;
    pthread_t a, b, c;
    /* Each thread on a stack of its own: none reuses the leaker's, which glibc caches when
     * the leaker is joined. */
    pthread_create(&c, NULL, waiter, NULL);
    pthread_create(&b, NULL, returner, NULL);
    pthread_create(&a, NULL, leaker, NULL);
    pthread_join(a, NULL);
    /* b exits unjoined: wait until only main and the waiter are left, the waiter in read(2). */
    for (int i = 0; i < 2000 && threads() != 2; i++)
        usleep(1000);
    for (int i = 0; i < 2000 && !(waiter_tid && sleeping(waiter_tid)); i++)
        usleep(1000);
    printf("threads %d\n", threads());
    return 0;
}
