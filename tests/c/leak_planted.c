/* A planted leak: 100 blocks of 13 bytes allocated at one call site, the only pointer to each
 * overwritten; other blocks stay reachable or are freed. With leaks on, one LEAK line for the
 * 1300 bytes in 100 blocks, naming malloc() and the call site in this program. */
#include <string.h>
#include "check.h"

static char *kept;

__attribute__((noinline)) static void leak(void) {
    for (int i = 0; i < 100; i++) {
        char *volatile p = malloc(13);
        CHECK(p != NULL);
        memset(p, 'x', 13);
    }
}

/* Overwrites the dead stack below main's frame, where the last leaked pointer may linger. */
__attribute__((noinline)) static void clear_stack(void) {
    volatile char buf[1 << 16];
    memset((char *)buf, 0, sizeof buf);
}

int main(void) {
    kept = malloc(500);
    CHECK(kept != NULL);
    leak();
    clear_stack();
    char *freed = malloc(40);
    free(freed);
    printf("OK\n");
    return 0;
}
