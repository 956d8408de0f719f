/* A mass free: 3000 blocks of 32 KiB, every page written, then all freed in a scattered order
 * (6000 LARGE calls, a few milliseconds). The cache keeps their pages resident rather than
 * unmapping them one by one once the peak is forgotten, since a window of the recent peak
 * lasts 100 ms as well as 1024 calls; malloc_trim then gives them back. Prints OK. */
#include "large_cache_rss.h"
#include <malloc.h>

#define N 3000
#define LEN (32 * 1024)

int main(void) {
    static unsigned char *block[N];
    size_t base = status_bytes("VmRSS");
    for (int i = 0; i < N; i++) {
        block[i] = malloc(LEN);
        CHECK(block[i] != NULL);
        for (size_t o = 0; o < LEN; o += 4096)
            block[i][o] = (unsigned char)(i + (o >> 12));
    }
    size_t full = status_bytes("VmRSS");
    CHECK(full > base + 80 * MiB);
    /* 7 and 3000 are coprime: every block once, neighbours far apart. */
    for (int i = 0, k = 0; i < N; i++, k = (k + 7) % N) {
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
    puts("OK");
    return 0;
}
