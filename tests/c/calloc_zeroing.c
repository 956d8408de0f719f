/* calloc returns zeroed memory, also when it reuses freed dirty blocks; calloc and
 * reallocarray detect n*size overflow (NULL, ENOMEM). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

#define ROUNDS 64

static void check_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        CHECK(p[i] == 0);
}

int main(void) {
    static const size_t sizes[] = {1, 8, 16, 24, 100, 500, 512, 513, 1024, 4000, 32768, 32769,
                                   100000, 2 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        int rounds = n > 100000 ? 4 : ROUNDS;
        void *blocks[ROUNDS];
        /* Dirty a set of blocks, free them, calloc the same size: the reused memory is zero. */
        for (int r = 0; r < rounds; r++) {
            blocks[r] = malloc(n);
            CHECK(blocks[r] != NULL);
            memset(blocks[r], 0xAB, n);
        }
        for (int r = 0; r < rounds; r++)
            free(blocks[r]);
        for (int r = 0; r < rounds; r++) {
            blocks[r] = r % 2 ? calloc(1, n) : calloc(n, 1);
            CHECK(blocks[r] != NULL && (uintptr_t)blocks[r] % 16 == 0);
            check_zero(blocks[r], n);
            memset(blocks[r], 0xCD, n);
        }
        for (int r = 0; r < rounds; r++)
            free(blocks[r]);
        /* The simplest reuse: malloc, dirty, free, calloc the same size. */
        unsigned char *p = malloc(n);
        memset(p, 0xAB, n);
        free(p);
        p = calloc(1, n);
        CHECK(p != NULL);
        check_zero(p, n);
        free(p);
    }

    /* n > 1 elements. */
    int *v = calloc(1000, sizeof(int));
    CHECK(v != NULL);
    check_zero((unsigned char *)v, 1000 * sizeof(int));
    free(v);

    /* Zero-sized calloc gives a freeable pointer. */
    void *z = calloc(0, 10);
    CHECK(z != NULL);
    free(z);
    z = calloc(10, 0);
    CHECK(z != NULL);
    free(z);

    /* Overflow of n * size. */
    volatile size_t big = (size_t)1 << 33, half = SIZE_MAX / 2 + 1, max = SIZE_MAX;
    errno = 0;
    CHECK(calloc(big, big) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(half, 2) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(max, max) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(3, max / 2) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(reallocarray(NULL, big, big) == NULL && errno == ENOMEM);
    unsigned char *r = reallocarray(NULL, 10, 10);
    CHECK(r != NULL);
    memset(r, 0x11, 100);
    errno = 0;
    CHECK(reallocarray(r, half, 2) == NULL && errno == ENOMEM);
    for (int i = 0; i < 100; i++)
        CHECK(r[i] == 0x11);
    r = reallocarray(r, 100, 10);
    CHECK(r != NULL);
    for (int i = 0; i < 100; i++)
        CHECK(r[i] == 0x11);
    free(r);

    /* Still works after the failures. */
    void *after = calloc(10, 10);
    CHECK(after != NULL);
    check_zero(after, 100);
    free(after);
    printf("OK\n");
    return 0;
}
