/* Blocks grown by realloc while the LARGE cache holds resident pages (grown into the cached
 * range behind them, copied to a cached range, or moved by the kernel) keep their content,
 * interleaved with frees and mallocs that reuse the cache. Prints OK. */
#include "large_cache_rss.h"

#define N 8

static void fill(unsigned char *p, size_t from, size_t to, unsigned tag) {
    for (size_t o = from; o < to; o += 512)
        p[o] = (unsigned char)(tag + (o >> 9));
    if (to > from)
        p[to - 1] = (unsigned char)tag;
}

static void check(const unsigned char *p, size_t n, unsigned tag) {
    for (size_t o = 0; o < n - 1; o += 512)
        CHECK(p[o] == (unsigned char)(tag + (o >> 9)));
    CHECK(p[n - 1] == (unsigned char)tag);
}

int main(void) {
    for (int round = 0; round < 6; round++) {
        churn_big_blocks();
        static unsigned char *b[N];
        static size_t len[N];
        uint32_t s = 88172645u + (uint32_t)round;
        for (size_t n = 24 * 1024; n <= 4 * MiB; n = n * 2 + 4096 * (n % 3)) {
            for (int i = 0; i < N; i++) {
                s ^= s << 13, s ^= s >> 17, s ^= s << 5;
                size_t m = n + (s % 8192);
                unsigned tag = (unsigned)(i * 31 + round);
                if (b[i])
                    check(b[i], len[i], tag);
                unsigned char *q = realloc(b[i], m);
                CHECK(q != NULL);
                if (b[i])
                    check(q, len[i], tag); /* the old content moved along */
                fill(q, 0, m, tag);
                b[i] = q;
                len[i] = m;
                if (s % 5 == 0) {
                    /* a neighbour comes and goes, taking cached pages */
                    unsigned char *t = malloc(m / 2 + 1);
                    CHECK(t != NULL);
                    memset(t, 0x5a, m / 2 + 1);
                    free(t);
                }
            }
        }
        for (int i = 0; i < N; i++) {
            check(b[i], len[i], (unsigned)(i * 31 + round));
            /* and shrunk */
            unsigned char *q = realloc(b[i], len[i] / 3);
            CHECK(q != NULL);
            for (size_t o = 0; o < len[i] / 3; o += 512)
                CHECK(q[o] == (unsigned char)(i * 31 + round + (o >> 9)));
            free(q);
            b[i] = NULL;
        }
    }
    puts("OK");
    return 0;
}
