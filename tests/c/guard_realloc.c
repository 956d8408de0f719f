/* realloc of guarded blocks keeps the content, growing and shrinking, across sizes (TINY, SMALL,
 * LARGE in the ordinary path). With argv[1] = "overflow", the last realloc'd block (32 bytes) is
 * read one byte past its end: it must be guarded too (SIGSEGV). */
#include <stdint.h>
#include <string.h>
#include "check.h"

static volatile char sink;

static void fill(unsigned char *p, size_t from, size_t to, unsigned seed) {
    for (size_t i = from; i < to; i++)
        p[i] = (unsigned char)(i * 7 + seed);
}

static void check(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 7 + seed)) {
            fprintf(stderr, "byte %zu of %zu lost\n", i, n);
            exit(1);
        }
}

int main(int argc, char **argv) {
    static const size_t sizes[] = {13, 16, 17, 100, 1000, 4096, 5000, 16384, 20000, 100000, 300000,
                                   50000, 4000, 999, 64, 8, 1, 32};
    for (unsigned seed = 0; seed < 3; seed++) {
        unsigned char *p = realloc(NULL, 5);
        CHECK(p != NULL);
        fill(p, 0, 5, seed);
        size_t cur = 5;
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            size_t n = sizes[k];
            unsigned char *q = realloc(p, n);
            CHECK(q != NULL);
            check(q, cur < n ? cur : n, seed);
            fill(q, 0, n, seed);
            p = q;
            cur = n;
        }
        if (seed == 2 && argc > 1 && !strcmp(argv[1], "overflow")) {
            printf("block %p %zu\n", (void *)p, cur);
            fflush(stdout);
            sink = ((volatile unsigned char *)p)[cur];
            printf("NOT CAUGHT\n");
            return 3;
        }
        free(realloc(p, 0)); /* frees p; NULL or a minimal block */
    }
    /* Many blocks growing in turn. */
    enum { M = 200 };
    unsigned char *b[M];
    size_t len[M];
    for (int i = 0; i < M; i++) {
        len[i] = 1 + (size_t)i;
        b[i] = malloc(len[i]);
        CHECK(b[i] != NULL);
        fill(b[i], 0, len[i], (unsigned)i);
    }
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < M; i++) {
            size_t n = len[i] * 2 + 3;
            unsigned char *q = realloc(b[i], n);
            CHECK(q != NULL);
            check(q, len[i], (unsigned)i);
            fill(q, len[i], n, (unsigned)i);
            b[i] = q;
            len[i] = n;
        }
    for (int i = 0; i < M; i++) {
        check(b[i], len[i], (unsigned)i);
        free(b[i]);
    }
    printf("OK\n");
    return 0;
}
