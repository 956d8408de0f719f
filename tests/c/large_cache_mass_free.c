/* A mass free: N blocks of LEN KiB (argv[1], argv[2]; 3000 of 32 KiB by default), every page
 * written, then all freed, the odd ones first and then the even ones, each half in a scattered
 * order (N LARGE allocations and N frees within a few milliseconds). The cache keeps their
 * pages resident rather than unmapping them one by one once the peak is forgotten, since a
 * window of the recent peak lasts 100 ms as well as 1024 calls, and the odd blocks, none of
 * them next to another, are as many ranges; malloc_trim then gives them back. Prints OK. */
#include "large_cache_rss.h"
#include <malloc.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3000;
    size_t len = (argc > 2 ? (size_t)atoi(argv[2]) : 32) * 1024;
    CHECK(n > 0 && n % 7 != 0 && len >= 32 * 1024);
    unsigned char **block = calloc((size_t)n, sizeof *block);
    CHECK(block != NULL);
    size_t base = status_bytes("VmRSS");
    for (int i = 0; i < n; i++) {
        block[i] = malloc(len);
        CHECK(block[i] != NULL);
        for (size_t o = 0; o < len; o += 4096)
            block[i][o] = (unsigned char)(i + (o >> 12));
    }
    size_t full = status_bytes("VmRSS");
    CHECK(full > base + (size_t)n * len * 9 / 10);
    /* 7 and n are coprime: every block of each half once, neighbours far apart. */
    for (int half = 1; half >= 0; half--)
        for (int i = 0, k = 0; i < n; i++, k = (k + 7) % n) {
            if (k % 2 != half)
                continue;
            CHECK(block[k][0] == (unsigned char)k);
            free(block[k]);
        }
    size_t freed = status_bytes("VmRSS");
    CHECK(malloc_trim(0) == 1);
    size_t trimmed = status_bytes("VmRSS");
    printf("resident %zu MiB more than before, %zu after the frees, %zu after malloc_trim\n",
           (full - base) / MiB, freed > base ? (freed - base) / MiB : 0,
           trimmed > base ? (trimmed - base) / MiB : 0);
    CHECK(freed > full - 8 * MiB);
    CHECK(trimmed < base + 8 * MiB);
    free(block);
    puts("OK");
    return 0;
}
