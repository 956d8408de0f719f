/* malloc(0) returns distinct, 16-byte aligned, non-NULL pointers with real space behind them:
 * freeing them must not damage neighbouring blocks. */
#include <stdint.h>
#include <string.h>
#include "check.h"

#define N 2000

static int cmp(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

int main(void) {
    static void *zero[N];
    static unsigned char *other[N];
    for (int i = 0; i < N; i++) {
        zero[i] = malloc(0);
        CHECK(zero[i] != NULL);
        CHECK((uintptr_t)zero[i] % 16 == 0);
        other[i] = malloc(16);
        CHECK(other[i] != NULL);
        memset(other[i], i & 0xff, 16);
    }
    uintptr_t sorted[2 * N];
    for (int i = 0; i < N; i++) {
        sorted[2 * i] = (uintptr_t)zero[i];
        sorted[2 * i + 1] = (uintptr_t)other[i];
    }
    qsort(sorted, 2 * N, sizeof sorted[0], cmp);
    for (int i = 1; i < 2 * N; i++)
        CHECK(sorted[i - 1] != sorted[i]);
    for (int i = 0; i < N; i++)
        free(zero[i]);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 16; j++)
            CHECK(other[i][j] == (i & 0xff));
    for (int i = 0; i < N; i++)
        free(other[i]);
    free(NULL);
    void *again = malloc(0);
    CHECK(again != NULL);
    free(again);
    printf("OK\n");
    return 0;
}
