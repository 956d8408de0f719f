/* C23's free_sized and free_aligned_sized, looked up at run time (the glibc the test is built
 * against may not have them): blocks of malloc, calloc and aligned_alloc, TINY to LARGE, are
 * freed through them, and the freed memory is used again. Prints OK. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include "check.h"

int main(void) {
    void (*fs)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    void (*fas)(void *, size_t, size_t) =
        (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    CHECK(fs != NULL && fas != NULL);
    static const size_t sizes[] = {1, 24, 500, 3000, 20000, 300000};
    for (int round = 0; round < 10; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            size_t n = sizes[i];
            char *p = malloc(n), *q = calloc(1, n), *r = aligned_alloc(64, n);
            CHECK(p != NULL && q != NULL && r != NULL && (uintptr_t)r % 64 == 0);
            memset(p, 1, n);
            CHECK(q[n - 1] == 0);
            memset(r, 2, n);
            fs(p, n);
            fs(q, n);
            fas(r, 64, n);
        }
    }
    fs(NULL, 0);
    fas(NULL, 64, 0);
    puts("OK");
    return 0;
}
