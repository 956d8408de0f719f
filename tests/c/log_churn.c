/* T threads each run N malloc+free pairs. "join": main joins them and returns; "running":
 * main returns while the threads are still allocating (exit() ends them); "limit": first
 * sets RLIMIT_FSIZE to 256 KiB with SIGXFSZ ignored, so the log file cannot grow past it.
 * usage: log_churn N T join|running|limit */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static long n;
static volatile int started;

static void *work(void *arg) {
    (void)arg;
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    for (long i = 0; n < 0 || i < n; i++) {
        void *volatile p = malloc((size_t)(i % 300) + 1);
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    n = argc > 1 ? atol(argv[1]) : 100000;
    int t = argc > 2 ? atoi(argv[2]) : 1;
    const char *mode = argc > 3 ? argv[3] : "join";
    if (t < 0 || t > 64)
        return 2;
    if (strcmp(mode, "limit") == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {256 << 10, 256 << 10};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            return 3;
    }
    int running = strcmp(mode, "running") == 0;
    if (running)
        n = -1;
    pthread_t th[64];
    for (int i = 0; i < t; i++)
        pthread_create(&th[i], NULL, work, NULL);
    if (t == 0) {
        work(NULL);
    } else if (running) {
        while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < t)
            ;
        for (long i = 0; i < 20000; i++) {
            void *volatile p = malloc(64);
            free(p);
        }
    } else {
        for (int i = 0; i < t; i++)
            pthread_join(th[i], NULL);
    }
    printf("OK\n");
    fflush(stdout);
    return 0;
}
