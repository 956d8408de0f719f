/* N allocations (split over T threads), then SIGKILL: every event must be in the log file. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long per_thread;

static void *work(void *arg) {
    (void)arg;
    for (long i = 0; i < per_thread; i++) {
        void *p = malloc((size_t)(i % 200) + 1);
        __asm__ volatile("" : : "r"(p) : "memory"); /* kept: the blocks leak on purpose */
    }
    return NULL;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int t = argc > 2 ? atoi(argv[2]) : 1;
    pthread_t th[16];
    if (t < 1 || t > 16)
        return 2;
    per_thread = n / t;
    for (int i = 0; i < t; i++)
        pthread_create(&th[i], NULL, work, NULL);
    for (int i = 0; i < t; i++)
        pthread_join(th[i], NULL);
    kill(getpid(), SIGKILL);
    return 1;
}
