/* With fill on (MALLOC_DEBUG=1): every byte of a fresh block from malloc, realloc's grown part,
 * memalign and a block reused after free is 0xCE; calloc still returns zeroes; with canaries
 * malloc_usable_size returns the requested size. The fill of a LARGE block covers its first
 * bytes only (debug::LARGE_FILL_MAX, 64 KiB: filling every page of a huge block on each call
 * would cost more than it finds): bytes past the first 64 KiB of a block, and the grown part of
 * a realloc beyond them, are not checked. */
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

#define FILL_MAX ((size_t)64 << 10)
#define MIN(a, b) ((a) < (b) ? (a) : (b))

static void check_fill(const unsigned char *p, size_t from, size_t to) {
    for (size_t i = from; i < to; i++)
        if (p[i] != 0xCE) {
            fprintf(stderr, "byte %zu of %p is 0x%02x, not 0xCE\n", i, (void *)p, p[i]);
            exit(1);
        }
}

int main(void) {
    static const size_t sizes[] = {1, 13, 24, 100, 512, 513, 3000, 16384, 16385, 200000, 4 << 20};
    size_t n = sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = malloc(sizes[i]);
        CHECK(p != NULL);
        check_fill(p, 0, MIN(sizes[i], FILL_MAX));
        CHECK(malloc_usable_size(p) == sizes[i]);
        memset(p, 0x11, sizes[i]);
        unsigned char *c = calloc(1, sizes[i]);
        CHECK(c != NULL);
        for (size_t j = 0; j < sizes[i]; j++)
            CHECK(c[j] == 0);
        unsigned char *r = realloc(p, sizes[i] * 2);
        CHECK(r != NULL);
        for (size_t j = 0; j < sizes[i]; j++)
            CHECK(r[j] == 0x11);
        check_fill(r, sizes[i], MIN(sizes[i] * 2, FILL_MAX));
        free(r);
        free(c);
    }
    unsigned char *a = memalign(256, 1000);
    CHECK(a != NULL && (uintptr_t)a % 256 == 0);
    check_fill(a, 0, 1000);
    free(a);
    /* 8 MiB of 1000-byte blocks, written and freed, cycle through the 4 MiB quarantine: blocks
     * handed out again are refilled. */
    for (int round = 0; round < 8; round++) {
        unsigned char *blocks[1024];
        for (int i = 0; i < 1024; i++) {
            blocks[i] = malloc(1000);
            CHECK(blocks[i] != NULL);
            check_fill(blocks[i], 0, 1000);
            memset(blocks[i], 0x22, 1000);
        }
        for (int i = 0; i < 1024; i++)
            free(blocks[i]);
    }
    unsigned char *c = calloc(1000, 1);
    CHECK(c != NULL);
    for (int j = 0; j < 1000; j++)
        CHECK(c[j] == 0);
    free(c);
    printf("OK\n");
    return 0;
}
