/* A 1-byte overflow of a 13-byte block followed by other malloc/free calls, the block itself
 * freed last. With check_every=1 the heap check of the next call finds the overflow (the
 * "not caught before free" line is never printed); without it, free() of the block does. */
#include <string.h>
#include "check.h"

int main(void) {
    char *volatile p = malloc(13);
    CHECK(p != NULL);
    memset(p, 'a', 13);
    p[13] = 'X';
    for (int i = 0; i < 10; i++) {
        char *q = malloc(24);
        CHECK(q != NULL);
        free(q);
    }
    printf("not caught before free\n");
    fflush(stdout);
    free(p);
    printf("continued\n");
    return 0;
}
