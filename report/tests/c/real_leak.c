/* Planted leaks at known lines, for the real-library tests (tests/real_library.rs).
 * Prints nothing: a stdio buffer would be one more block never freed. */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static char *leak_small(int i) {
    char *s = malloc(24); /* LEAK-SMALL */
    memset(s, 'a' + i, 24);
    return s;
}

__attribute__((noinline)) static void *leak_big(void) {
    return calloc(10, 100); /* LEAK-BIG */
}

__attribute__((noinline)) static void churn(void) {
    for (int i = 0; i < 50; i++) {
        void *t = malloc(100 + i); /* FREED */
        free(t);
    }
}

int main(void) {
    for (int i = 0; i < 3; i++) leak_small(i);
    churn();
    leak_big();
    return 0;
}
