/* Requests that cannot be satisfied (SIZE_MAX, above PTRDIFF_MAX, far beyond the address space)
 * return NULL with errno ENOMEM from every entry point, print nothing, and leave the allocator
 * working. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

#define EXPECT_ENOMEM(call)                  \
    do {                                     \
        errno = 0;                           \
        CHECK((call) == NULL);               \
        CHECK(errno == ENOMEM);              \
    } while (0)

int main(void) {
    static const size_t huge[] = {SIZE_MAX,
                                  SIZE_MAX - 1,
                                  SIZE_MAX - 15,
                                  SIZE_MAX - 4096,
                                  SIZE_MAX - 65536,
                                  (size_t)PTRDIFF_MAX + 1,
                                  (size_t)PTRDIFF_MAX,
                                  (size_t)1 << 62,
                                  (size_t)1 << 50};
    unsigned char *keep = malloc(64);
    memset(keep, 0x42, 64);
    unsigned char *keep_large = malloc(200000);
    memset(keep_large, 0x43, 200000);
    for (size_t k = 0; k < sizeof huge / sizeof huge[0]; k++) {
        volatile size_t n = huge[k];
        EXPECT_ENOMEM(malloc(n));
        EXPECT_ENOMEM(calloc(1, n));
        EXPECT_ENOMEM(calloc(n, 1));
        EXPECT_ENOMEM(realloc(NULL, n));
        EXPECT_ENOMEM(realloc(keep, n));
        EXPECT_ENOMEM(realloc(keep_large, n));
        EXPECT_ENOMEM(reallocarray(NULL, n, 1));
        EXPECT_ENOMEM(aligned_alloc(64, n));
        EXPECT_ENOMEM(memalign(4096, n));
        EXPECT_ENOMEM(valloc(n));
        EXPECT_ENOMEM(pvalloc(n));
        void *p = (void *)1;
        CHECK(posix_memalign(&p, 64, n) == ENOMEM);
    }
    for (int i = 0; i < 64; i++)
        CHECK(keep[i] == 0x42);
    for (int i = 0; i < 200000; i++)
        CHECK(keep_large[i] == 0x43);
    free(keep);
    free(keep_large);
    for (int i = 0; i < 1000; i++) {
        void *p = malloc(i * 40);
        CHECK(p != NULL);
        free(p);
    }
    printf("OK\n");
    return 0;
}
