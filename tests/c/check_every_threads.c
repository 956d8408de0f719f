/* A correct program: 4 threads allocate, write, resize and free blocks of every zone and
 * LARGE, ITERS times each (default 40000). Run under check_every=N, every Nth call of any
 * thread verifies the whole heap while the others are in the middle of taking, resizing or
 * freeing blocks: it must find nothing. Prints OK. */
#include <pthread.h>
#include <stdint.h>
#include "check.h"

#define KEEP 64

static long iters = 40000;

static unsigned next_rand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static size_t pick_size(unsigned r) {
    switch (r % 16) {
    case 0:
        return 20000 + r % 50000; /* LARGE */
    case 1:
    case 2:
        return 600 + r % 15000; /* SMALL */
    default:
        return 1 + r % 500; /* TINY */
    }
}

static void *worker(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    char *keep[KEEP] = {0};
    size_t len[KEEP] = {0};
    for (long n = 0; n < iters; n++) {
        unsigned r = next_rand(&seed);
        unsigned i = r % KEEP;
        if (keep[i]) {
            for (size_t k = 0; k < len[i]; k += 97)
                CHECK(keep[i][k] == (char)(i + 1));
        }
        switch ((r >> 4) % 4) {
        case 0:
            free(keep[i]);
            keep[i] = NULL;
            len[i] = 0;
            break;
        case 1: {
            size_t sz = pick_size(next_rand(&seed));
            char *p = realloc(keep[i], sz);
            CHECK(p != NULL);
            if (sz > len[i])
                memset(p + len[i], i + 1, sz - len[i]);
            keep[i] = p;
            len[i] = sz;
            break;
        }
        case 2: {
            free(keep[i]);
            size_t sz = pick_size(next_rand(&seed));
            keep[i] = calloc(1, sz);
            CHECK(keep[i] != NULL);
            memset(keep[i], i + 1, sz);
            len[i] = sz;
            break;
        }
        default: {
            free(keep[i]);
            size_t sz = pick_size(next_rand(&seed));
            keep[i] = malloc(sz);
            CHECK(keep[i] != NULL);
            memset(keep[i], i + 1, sz);
            len[i] = sz;
        }
        }
    }
    for (int i = 0; i < KEEP; i++)
        free(keep[i]);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1)
        iters = atol(argv[1]);
    pthread_t th[4];
    for (int t = 0; t < 4; t++)
        CHECK(pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)(t * 7919 + 1)) == 0);
    for (int t = 0; t < 4; t++)
        CHECK(pthread_join(th[t], NULL) == 0);
    printf("OK\n");
    return 0;
}
