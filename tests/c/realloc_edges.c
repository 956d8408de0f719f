/* realloc corner cases: realloc(NULL, n), realloc(p, 0), growing and shrinking across the
 * TINY/SMALL/LARGE classes with the content kept, growing a LARGE block, and a failed realloc
 * leaving the block intact. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 131 + seed);
}

static void check_fill(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        CHECK(p[i] == (unsigned char)(i * 131 + seed));
}

int main(void) {
    /* realloc(NULL, n) behaves as malloc(n). */
    unsigned char *p = realloc(NULL, 100);
    CHECK(p != NULL && (uintptr_t)p % 16 == 0);
    fill(p, 100, 1);
    check_fill(p, 100, 1);

    /* realloc(p, 0) frees and returns NULL. */
    CHECK(realloc(p, 0) == NULL);

    /* Grow step by step through every class, content kept. */
    static const size_t sizes[] = {1, 15, 16, 17, 100, 511, 512, 513, 1000, 4096, 32767, 32768,
                                   32769, 100000, 1 << 20, 5 << 20};
    const size_t ns = sizeof sizes / sizeof sizes[0];
    p = malloc(sizes[0]);
    CHECK(p != NULL);
    fill(p, sizes[0], 7);
    for (size_t i = 1; i < ns; i++) {
        p = realloc(p, sizes[i]);
        CHECK(p != NULL && (uintptr_t)p % 16 == 0);
        check_fill(p, sizes[i - 1], 7);
        fill(p, sizes[i], 7);
    }
    /* Shrink step by step, prefix kept. */
    for (size_t i = ns - 1; i-- > 0;) {
        p = realloc(p, sizes[i]);
        CHECK(p != NULL && (uintptr_t)p % 16 == 0);
        check_fill(p, sizes[i], 7);
    }
    free(p);

    /* Same-size realloc keeps the content. */
    p = malloc(300);
    fill(p, 300, 3);
    p = realloc(p, 300);
    CHECK(p != NULL);
    check_fill(p, 300, 3);
    free(p);

    /* Grow a LARGE block by small steps (in place when the mapping allows), then a lot. */
    size_t n = 40000;
    p = malloc(n);
    CHECK(p != NULL);
    fill(p, n, 9);
    for (int i = 0; i < 50; i++) {
        size_t m = n + 1000;
        p = realloc(p, m);
        CHECK(p != NULL && (uintptr_t)p % 16 == 0);
        check_fill(p, n, 9);
        fill(p, m, 9);
        n = m;
    }
    p = realloc(p, 64 << 20);
    CHECK(p != NULL);
    check_fill(p, n, 9);
    memset(p + n, 0x5a, (64 << 20) - n);
    /* Shrink the LARGE block back to TINY. */
    p = realloc(p, 10);
    CHECK(p != NULL);
    check_fill(p, 10, 9);
    free(p);

    /* A failed realloc returns NULL with ENOMEM and leaves the block untouched. */
    p = malloc(200);
    fill(p, 200, 5);
    errno = 0;
    volatile size_t huge = SIZE_MAX - 64;
    CHECK(realloc(p, huge) == NULL);
    CHECK(errno == ENOMEM);
    check_fill(p, 200, 5);
    unsigned char *big = malloc(100000);
    fill(big, 100000, 6);
    errno = 0;
    CHECK(realloc(big, huge) == NULL && errno == ENOMEM);
    check_fill(big, 100000, 6);
    free(big);
    free(p);

    /* A realloc'ed-away pointer can be reused by later allocations. */
    for (int i = 0; i < 1000; i++) {
        void *a = malloc(i);
        CHECK(a != NULL);
        a = realloc(a, i * 3 + 1);
        CHECK(a != NULL);
        CHECK(realloc(a, 0) == NULL);
    }
    printf("OK\n");
    return 0;
}
