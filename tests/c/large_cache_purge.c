/* The delayed purge: after a churn of big blocks the LARGE cache keeps freed pages resident,
 * and once the program has gone on with small LARGE blocks long enough for the big ones'
 * peak to be forgotten (two windows of at least 1024 LARGE calls and 100 ms each), the cache
 * gives them back without malloc_trim. Prints OK. */
#include "large_cache_rss.h"
#include <time.h>

int main(void) {
    size_t base = status_bytes("VmRSS");
    churn_big_blocks();
    size_t kept = status_bytes("VmRSS");
    CHECK(kept > base + 16 * MiB);
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 1100; i++) {
            volatile unsigned char *p = malloc(20000);
            CHECK(p != NULL);
            p[0] = 1;
            free((void *)p);
        }
        struct timespec pause = {0, 120 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    size_t later = status_bytes("VmRSS");
    printf("resident %zu MiB more than before, then %zu MiB\n", (kept - base) / MiB,
           later > base ? (later - base) / MiB : 0);
    CHECK(later < base + 8 * MiB);
    puts("OK");
    return 0;
}
