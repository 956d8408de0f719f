/* A thread keeps in its cache the blocks it frees, whichever thread allocated them, and its
 * next allocations of their size take them back (debugging off: one arena, whose slots every
 * thread's cache may hold). The main thread allocates and writes 200 blocks of 48 bytes;
 * another thread checks and frees them, then allocates 200 blocks of that size and writes
 * them; the main thread checks those and frees them. Prints "reused N", N the count of the
 * second thread's blocks that were the main thread's, then OK. */
#include <pthread.h>
#include "check.h"

#define N 200
static char *first[N], *second[N];

static void *trade(void *arg) {
    (void)arg;
    for (int i = 0; i < N; i++) {
        CHECK(first[i][0] == (char)i && first[i][47] == (char)i);
        free(first[i]);
    }
    for (int i = 0; i < N; i++) {
        second[i] = malloc(48);
        CHECK(second[i] != NULL);
        memset(second[i], 0x55 ^ i, 48);
    }
    return NULL;
}

int main(void) {
    for (int i = 0; i < N; i++) {
        first[i] = malloc(48);
        CHECK(first[i] != NULL);
        memset(first[i], i, 48);
    }
    pthread_t t;
    CHECK(pthread_create(&t, NULL, trade, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    int reused = 0;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++)
            if (second[i] == first[j])
                reused++;
        for (int j = 0; j < i; j++)
            CHECK(second[i] != second[j]);
        CHECK(second[i][0] == (char)(0x55 ^ i) && second[i][47] == (char)(0x55 ^ i));
    }
    for (int i = 0; i < N; i++)
        free(second[i]);
    printf("reused %d\nOK\n", reused);
    return 0;
}
