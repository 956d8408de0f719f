/* Churn of blocks of every alignment from 8 bytes to 1 MiB (posix_memalign, aligned_alloc,
 * memalign, valloc), sizes up to three times the alignment, a seventh of them grown by realloc:
 * each block's alignment, usable size and content are checked. With debugging on, a LARGE
 * block aligned beyond a page has a mapping of its own, and the inaccessible region behind it
 * must be made like every other (guard markers where the kernel has them): the cache that
 * takes the freed range makes that region accessible again for the next blocks carved from
 * it. Prints OK. */
#include <malloc.h>
#include <stdint.h>
#include "check.h"

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20000;
    void *keep[256] = {0};
    unsigned s = 12345;
    for (int i = 0; i < rounds; i++) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        int k = s % 256;
        free(keep[k]);
        size_t a = (size_t)1 << (3 + (s >> 8) % 18);
        size_t n = 1 + (s >> 12) % (a < 65536 ? 3 * a : 70000);
        void *p = NULL;
        switch ((s >> 20) % 4) {
        case 0:
            CHECK(posix_memalign(&p, a, n) == 0);
            break;
        case 1:
            p = aligned_alloc(a, (n + a - 1) / a * a);
            break;
        case 2:
            p = memalign(a, n);
            break;
        default:
            p = valloc(n);
            a = 4096;
        }
        CHECK(p != NULL);
        CHECK((uintptr_t)p % a == 0);
        CHECK(malloc_usable_size(p) >= n);
        memset(p, k, n);
        if (i % 7 == 0) {
            unsigned char *q = realloc(p, n * 2 + 1);
            CHECK(q != NULL);
            CHECK(q[0] == (unsigned char)k && q[n - 1] == (unsigned char)k);
            p = q;
        }
        keep[k] = p;
    }
    for (int k = 0; k < 256; k++)
        free(keep[k]);
    puts("OK");
    return 0;
}
