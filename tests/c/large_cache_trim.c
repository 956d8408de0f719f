/* A single huge block, once freed, does not stay resident. After a churn of big blocks the
 * LARGE cache keeps freed pages resident (the resident size stays up after everything is
 * freed), malloc_trim gives them back (it drops by most of what was freed), and a calloc'ed
 * block made on cached pages reads as zeros. Prints OK. */
#include <malloc.h>
#include "large_cache_rss.h"

int main(void) {
    size_t base = status_bytes("VmRSS");
    volatile unsigned char *huge = malloc(200 * MiB);
    CHECK(huge != NULL);
    for (size_t o = 0; o < 200 * MiB; o += 4096)
        huge[o] = 3;
    CHECK(status_bytes("VmRSS") > base + 190 * MiB);
    free((void *)huge);
    CHECK(status_bytes("VmRSS") < base + 8 * MiB);
    size_t freed = churn_big_blocks();
    size_t kept = status_bytes("VmRSS");
    printf("freed %zu MiB, resident %zu MiB more than before\n", freed / MiB,
           (kept - base) / MiB);
    CHECK(kept > base + 8 * MiB);

    /* Cached pages hold old content: a calloc'ed block on them is zeroed. */
    unsigned char *z = calloc(1, 6 * MiB);
    CHECK(z != NULL);
    for (size_t i = 0; i < 6 * MiB; i++)
        CHECK(z[i] == 0);
    free(z);

    malloc_trim(0);
    size_t trimmed = status_bytes("VmRSS");
    printf("after malloc_trim: %zu MiB more than before\n",
           trimmed > base ? (trimmed - base) / MiB : 0);
    CHECK(trimmed + 8 * MiB < kept);
    CHECK(trimmed < base + 4 * MiB);

    /* Still usable. */
    void *p = malloc(3 * MiB);
    CHECK(p != NULL);
    memset(p, 1, 3 * MiB);
    free(p);
    puts("OK");
    return 0;
}
