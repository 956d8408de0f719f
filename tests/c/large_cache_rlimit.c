/* Under RLIMIT_AS with the LARGE cache holding resident pages: a request beyond the limit
 * fails with ENOMEM, a request that fits only once the cached ranges are given back
 * succeeds (and holds what is written), and a smaller one after it still succeeds. Prints OK. */
#include <errno.h>
#include <sys/resource.h>
#include "large_cache_rss.h"

int main(void) {
    free(malloc(16)); /* the allocator is initialised before the measure */
    size_t base = status_bytes("VmRSS");
    churn_big_blocks();
    CHECK(status_bytes("VmRSS") > base + 8 * MiB); /* the cache holds resident pages */

    size_t vm = status_bytes("VmSize");
    size_t limit = vm + 16 * MiB;
    struct rlimit rl = {limit, limit};
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0);

    /* Beyond the limit whatever is given back: ENOMEM (and the cache is kept). */
    errno = 0;
    CHECK(malloc(limit + 64 * MiB) == NULL && errno == ENOMEM);
    CHECK(status_bytes("VmRSS") > base + 8 * MiB);
    errno = 0;
    CHECK(calloc(1, 2 * limit) == NULL && errno == ENOMEM);

    /* 40 MiB fit only once the cached ranges are given back. */
    size_t n = 40 * MiB;
    unsigned char *p = malloc(n);
    CHECK(p != NULL);
    for (size_t o = 0; o < n; o += 4096)
        p[o] = (unsigned char)(o >> 12);
    for (size_t o = 0; o < n; o += 4096)
        CHECK(p[o] == (unsigned char)(o >> 12));

    /* A smaller one after it. */
    unsigned char *q = malloc(4 * MiB);
    CHECK(q != NULL);
    memset(q, 7, 4 * MiB);
    free(q);
    free(p);
    q = malloc(2 * MiB);
    CHECK(q != NULL);
    memset(q, 9, 2 * MiB);
    free(q);
    puts("OK");
    return 0;
}
