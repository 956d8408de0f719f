/* MALLOC_DEBUG=sample=N:
 *   argv[1] = "run": 100,000 allocations of mixed sizes (a window of them live), each written and
 *             checked before it is freed; prints OK.
 *   argv[1] = "bug": 2,000 fresh 16-byte blocks, each read one byte past its end (a bug a
 *             guarded one turns into SIGSEGV; the others read the next bytes of the zone, which
 *             is harmless). Prints "try K block P" before each read; "NOT CAUGHT" and exit 3 if
 *             none faulted. */
#include <stdint.h>
#include <string.h>
#include "check.h"

static volatile char sink;

int main(int argc, char **argv) {
    CHECK(argc == 2);
    if (!strcmp(argv[1], "run")) {
        enum { W = 1000 };
        unsigned char *win[W] = {0};
        size_t wlen[W] = {0};
        uint64_t x = 88172645463325252ull;
        for (int i = 0; i < 100000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t n = (x % 100) == 0 ? 1 + (x >> 16) % 100000 : 1 + (x >> 16) % 500;
            int k = (int)((x >> 40) % W);
            if (win[k]) {
                for (size_t j = 0; j < wlen[k]; j++)
                    CHECK(win[k][j] == (unsigned char)(wlen[k] + j));
                free(win[k]);
            }
            win[k] = malloc(n);
            CHECK(win[k] != NULL);
            wlen[k] = n;
            for (size_t j = 0; j < n; j++)
                win[k][j] = (unsigned char)(n + j);
        }
        for (int k = 0; k < W; k++)
            free(win[k]);
        printf("OK\n");
        return 0;
    }
    CHECK(!strcmp(argv[1], "bug"));
    for (int k = 0; k < 2000; k++) {
        volatile char *p = malloc(16);
        CHECK(p != NULL);
        printf("try %d block %p\n", k, (void *)p);
        fflush(stdout);
        sink = p[16];
    }
    printf("NOT CAUGHT\n");
    return 3;
}
