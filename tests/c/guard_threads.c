/* 8 threads allocating, writing, checking and freeing blocks of mixed sizes, half of the frees
 * done by another thread (through a shared exchange array). Prints OK. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

#define THREADS 8
#define ITERS 20000
#define SLOTS 64

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *xchg[SLOTS];
static size_t xlen[SLOTS];

static void verify(const unsigned char *p, size_t n) {
    unsigned char v = (unsigned char)(n * 13);
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) {
            fprintf(stderr, "block %p of %zu bytes corrupted at %zu\n", (const void *)p, n, i);
            exit(1);
        }
}

static void *worker(void *arg) {
    uint64_t x = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    unsigned char *mine[32] = {0};
    size_t mlen[32] = {0};
    for (int it = 0; it < ITERS; it++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t n = (x >> 20) % 5 == 0 ? 1 + (x >> 24) % 40000 : 1 + (x >> 24) % 300;
        unsigned char *p = malloc(n);
        CHECK(p != NULL);
        memset(p, (int)(unsigned char)(n * 13), n);
        int k = (int)((x >> 40) % 32);
        if (mine[k]) {
            verify(mine[k], mlen[k]);
            free(mine[k]);
        }
        if (it % 2) {
            mine[k] = p;
            mlen[k] = n;
        } else {
            mine[k] = NULL;
            int s = (int)((x >> 48) % SLOTS);
            pthread_mutex_lock(&mu);
            unsigned char *old = xchg[s];
            size_t olen = xlen[s];
            xchg[s] = p;
            xlen[s] = n;
            pthread_mutex_unlock(&mu);
            if (old) {
                verify(old, olen);
                free(old);
            }
        }
    }
    for (int k = 0; k < 32; k++)
        if (mine[k]) {
            verify(mine[k], mlen[k]);
            free(mine[k]);
        }
    return NULL;
}

int main(void) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    for (int s = 0; s < SLOTS; s++)
        if (xchg[s]) {
            verify(xchg[s], xlen[s]);
            free(xchg[s]);
        }
    printf("OK\n");
    return 0;
}
