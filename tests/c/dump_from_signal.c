/* MALLOC_DEBUG=dump_signal=SIGUSR2: 100 dumps while 3 threads allocate and free, half of them
 * raised on the main thread, half sent to the workers (often stopped inside malloc). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int stop;

static void *churn(void *arg) {
    unsigned s = (unsigned)(size_t)arg;
    void *keep[64] = {0};
    while (!atomic_load(&stop)) {
        s = s * 1103515245u + 12345u;
        int i = (s >> 8) % 64;
        free(keep[i]);
        keep[i] = malloc((s >> 16) % 3000 + 1);
    }
    for (int i = 0; i < 64; i++)
        free(keep[i]);
    return NULL;
}

int main(void) {
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, churn, (void *)(size_t)(i + 1));
    for (int k = 0; k < 100; k++) {
        if (k % 2 == 0)
            raise(SIGUSR2);
        else
            pthread_kill(th[k % 3], SIGUSR2);
        usleep(50000); /* a dump to a pipe on a loaded machine can take tens of ms; signals coalesce */
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    fprintf(stderr, "DONE\n");
    return 0;
}
