/* Buffers grown by doubling realloc, round after round, reuse the pages of the blocks freed
 * before them, also with debugging on (where each block is followed by an inaccessible
 * region, so it cannot simply grow into the cached range behind it): once warm, a round
 * faults in less than half the pages it grows by. Prints the faults per round, then OK. */
#include <sys/resource.h>
#include "large_cache_rss.h"

#define N 8

static long minor_faults(void) {
    struct rusage u;
    CHECK(getrusage(RUSAGE_SELF, &u) == 0);
    return u.ru_minflt;
}

static void one_round(void) {
    unsigned char *d[N] = {0};
    size_t cap = 0;
    for (size_t n = 64 * 1024; n <= 2 * MiB; n *= 2) {
        for (int i = 0; i < N; i++) {
            unsigned char *q = realloc(d[i], n);
            CHECK(q != NULL);
            if (cap) {
                for (size_t o = 0; o < cap; o += 4096)
                    CHECK(q[o] == (unsigned char)(o / 4096 + i));
                CHECK(q[cap - 1] == (unsigned char)(cap + i));
            }
            for (size_t o = cap; o < n; o += 4096)
                q[o] = (unsigned char)(o / 4096 + i);
            q[n - 1] = (unsigned char)(n + i);
            d[i] = q;
        }
        cap = n;
    }
    for (int i = 0; i < N; i++)
        free(d[i]);
}

int main(void) {
    for (int r = 0; r < 5; r++)
        one_round();
    long before = minor_faults();
    for (int r = 0; r < 10; r++)
        one_round();
    long per_round = (minor_faults() - before) / 10;
    long grown = (long)(N * 2 * MiB / 4096);
    printf("faults per round %ld of %ld pages grown\n", per_round, grown);
    CHECK(per_round < grown / 2);
    puts("OK");
    return 0;
}
