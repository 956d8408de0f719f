/* N short-lived threads, at most P alive at a time, each making a few allocations.
 * usage: threads_short_lived N P */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *work(void *arg) {
    for (int i = 0; i < 8; i++) {
        void *volatile p = malloc((size_t)(i + 1) * 16);
        free(p);
    }
    return arg;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int par = argc > 2 ? atoi(argv[2]) : 8;
    if (par < 1 || par > 64)
        return 2;
    pthread_t th[64];
    for (int i = 0; i < n; i += par) {
        int k = n - i < par ? n - i : par;
        for (int j = 0; j < k; j++)
            if (pthread_create(&th[j], NULL, work, NULL) != 0)
                return 3;
        for (int j = 0; j < k; j++)
            pthread_join(th[j], NULL);
    }
    printf("OK\n");
    return 0;
}
