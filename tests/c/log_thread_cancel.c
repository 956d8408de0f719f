/* Threads cancelled while they allocate: each worker allocates and frees in a loop, with a
 * cancellation point of its own (pthread_testcancel) between bursts, and is cancelled after
 * 10 ms. The allocator's own system calls (the log's writes) must not act on the pending
 * cancellation: a thread unwound from inside the allocator would leave its locks held. Then
 * the main thread makes 20000 blocks of 3000 bytes, which the log must still take, and prints
 * OK. */
#include <pthread.h>
#include <unistd.h>
#include "check.h"

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        for (int i = 0; i < 1000; i++) {
            void *p = malloc(24 + (i & 63));
            CHECK(p != NULL);
            free(p);
        }
        pthread_testcancel();
    }
    return NULL;
}

int main(void) {
    for (int round = 0; round < 10; round++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
        usleep(10000);
        CHECK(pthread_cancel(t) == 0);
        void *r;
        CHECK(pthread_join(t, &r) == 0);
        CHECK(r == PTHREAD_CANCELED);
    }
    for (int i = 0; i < 20000; i++)
        free(malloc(3000));
    puts("OK");
    return 0;
}
