/* Churn of LARGE blocks: a 256 KiB block made, every page written, and freed 300 times, then
 * a buffer grown by doubling from 32 KiB to 8 MiB 20 times. With debugging off, or tracing
 * alone, freed pages stay resident in the LARGE cache, so the churn faults the block's pages
 * in about once, and a growing buffer keeps its pages (mremap or headroom): only the half each
 * doubling adds is faulted in, where a growth by copy faults the copy's pages too. Prints the
 * page faults and OK. */
#include <sys/resource.h>
#include "check.h"

static long minor_faults(void) {
    struct rusage u;
    CHECK(getrusage(RUSAGE_SELF, &u) == 0);
    return u.ru_minflt;
}

int main(void) {
    enum { N = 256 << 10, ROUNDS = 300 };
    long before = minor_faults();
    for (int r = 0; r < ROUNDS; r++) {
        unsigned char *p = malloc(N);
        CHECK(p != NULL);
        for (size_t o = 0; o < N; o += 4096)
            p[o] = (unsigned char)(r + o);
        CHECK(p[N - 4096] == (unsigned char)(r + N - 4096));
        free(p);
    }
    long churn = minor_faults() - before;
    before = minor_faults();
    for (int r = 0; r < 20; r++) {
        size_t n = 32 << 10;
        unsigned char *p = malloc(n);
        CHECK(p != NULL);
        memset(p, r, n);
        while (n < (8u << 20)) {
            p = realloc(p, 2 * n);
            CHECK(p != NULL);
            CHECK(p[n - 1] == (unsigned char)r);
            memset(p + n, r, n);
            n *= 2;
        }
        free(p);
    }
    long grow = minor_faults() - before;
    printf("faults: churn %ld, growth %ld\n", churn, grow);
    /* A round faults in 64 pages when its pages were given back. */
    CHECK(churn < ROUNDS * 64 / 4);
    /* The halves added on the way to 8 MiB are 2040 pages a round. */
    CHECK(grow < 20 * 2048 * 9 / 8);
    puts("OK");
    return 0;
}
