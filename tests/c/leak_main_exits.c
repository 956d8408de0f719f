/* The main thread ends with pthread_exit while two threads go on, and the process exits when
 * the last of them returns. main keeps one block in a global and drops another (a leak); the
 * threads allocate and free, then print a line each.
 * usage: leak_main_exits */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *kept;
static pthread_barrier_t started;

static void *worker(void *arg) {
    pthread_barrier_wait(&started);
    usleep(20000); /* main has exited by now */
    for (int r = 0; r < 100; r++) {
        char *v[32];
        for (int i = 0; i < 32; i++) {
            v[i] = malloc(24 + i * 64);
            memset(v[i], i, 24 + i * 64);
        }
        for (int i = 0; i < 32; i++)
            free(v[i]);
    }
    printf("worker %ld done\n", (long)arg);
    return NULL;
}

__attribute__((noinline)) static void drop(void) {
    char *volatile lost = malloc(4242);
    memset(lost, 1, 4242);
    lost = NULL;
}

/* Overwrites the stack below main's frame, where the allocator's frames left copies of the
 * dropped block's address: the scan reads the dead main thread's whole stack. */
__attribute__((noinline)) static void scrub(void) {
    volatile char pad[32768];
    memset((char *)pad, 0, sizeof pad);
}

int main(void) {
    kept = malloc(1000);
    strcpy(kept, "kept");
    drop();
    scrub();
    pthread_t t[2];
    pthread_barrier_init(&started, NULL, 3);
    for (long i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    pthread_barrier_wait(&started);
    pthread_exit(NULL);
}
