/* 1,000,000 live small allocations at once (guard mode: the mapping budget runs out on the way),
 * each written and checked, then all freed; the allocator still works after. Prints OK. */
#include <stdint.h>
#include <string.h>
#include "check.h"

#define N 1000000

int main(void) {
    unsigned char **p = malloc(N * sizeof *p);
    CHECK(p != NULL);
    for (size_t i = 0; i < N; i++) {
        size_t n = 1 + i % 64;
        p[i] = malloc(n);
        CHECK(p[i] != NULL);
        CHECK((uintptr_t)p[i] % (n >= 8 ? 8 : 1) == 0);
        memset(p[i], (int)(i & 0xff), n);
    }
    for (size_t i = 0; i < N; i++) {
        size_t n = 1 + i % 64;
        CHECK(p[i][0] == (unsigned char)(i & 0xff) && p[i][n - 1] == (unsigned char)(i & 0xff));
    }
    for (size_t i = 0; i < N; i++)
        free(p[i]);
    free(p);
    for (int i = 0; i < 1000; i++) {
        char *q = malloc(100);
        CHECK(q != NULL);
        memset(q, 'q', 100);
        free(q);
    }
    printf("OK\n");
    return 0;
}
