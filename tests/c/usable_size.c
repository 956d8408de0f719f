/* malloc_usable_size(p) >= the requested size, and all usable bytes can be written without
 * touching other blocks; malloc_usable_size(NULL) == 0. */
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

#define N 600

int main(void) {
    static unsigned char *p[N];
    static size_t us[N];
    CHECK(malloc_usable_size(NULL) == 0);
    for (int i = 0; i < N; i++) {
        size_t n = i < 520 ? (size_t)i : (size_t)(i - 519) * 997; /* 0..519, then up to ~80 KB */
        p[i] = malloc(n);
        CHECK(p[i] != NULL);
        us[i] = malloc_usable_size(p[i]);
        CHECK(us[i] >= n);
        memset(p[i], i & 0xff, us[i]);
    }
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < us[i]; j++)
            CHECK(p[i][j] == (i & 0xff));
    /* After realloc, the usable size covers the new size. */
    for (int i = 0; i < N; i += 7) {
        size_t n = us[i] * 2 + 3;
        p[i] = realloc(p[i], n);
        CHECK(p[i] != NULL);
        CHECK(malloc_usable_size(p[i]) >= n);
        free(p[i]);
        p[i] = NULL;
    }
    for (int i = 0; i < N; i++)
        free(p[i]);
    void *c = calloc(3, 333);
    CHECK(malloc_usable_size(c) >= 999);
    free(c);
    printf("OK\n");
    return 0;
}
