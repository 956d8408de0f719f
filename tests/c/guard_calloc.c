/* calloc in guard mode: every byte zero, for many sizes, also for blocks reusing memory that was
 * written and freed before (fill modes write a pattern into fresh blocks: calloc must not); the
 * nmemb * size overflow fails with ENOMEM. Prints OK. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

static void zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) {
            fprintf(stderr, "calloc: byte %zu of %zu is %d\n", i, n, p[i]);
            exit(1);
        }
}

int main(void) {
    static const size_t sizes[] = {1, 7, 8, 13, 16, 24, 100, 1000, 1024, 4095, 4096, 4097, 5000,
                                   16384, 16385, 65536, 200000, 1 << 20};
    for (int round = 0; round < 4; round++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            size_t n = sizes[k];
            unsigned char *m = malloc(n);
            CHECK(m != NULL);
            memset(m, 0xa5, n);
            free(m);
            unsigned char *p = calloc(1, n);
            CHECK(p != NULL);
            zero(p, n);
            memset(p, 0x5a, n);
            free(p);
            unsigned char *q = calloc(n, 3);
            CHECK(q != NULL);
            zero(q, n * 3);
            free(q);
        }
    void *keep[1000];
    for (int i = 0; i < 1000; i++) {
        keep[i] = calloc((size_t)i + 1, 4);
        CHECK(keep[i] != NULL);
        zero(keep[i], ((size_t)i + 1) * 4);
        memset(keep[i], 0xff, ((size_t)i + 1) * 4);
    }
    for (int i = 0; i < 1000; i++)
        free(keep[i]);
    volatile size_t huge = SIZE_MAX / 2; /* volatile: no compile-time overflow warning */
    errno = 0;
    CHECK(calloc(huge, 3) == NULL);
    CHECK(errno == ENOMEM);
    printf("OK\n");
    return 0;
}
