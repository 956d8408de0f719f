/* A thread's cache of one size outgrows the class's first array (a few entries), both while
 * blocks are freed into it and while it is refilled: for 3, 5, 7 and 40 blocks, each count of
 * a size of its own, the blocks are allocated, written and freed, and the next as many blocks
 * of that size are those (the cache kept every one, newest first), each written whole again,
 * then freed. Prints OK. */
#include "check.h"

static void round_trip(int n, size_t size) {
    char *first[40];
    for (int i = 0; i < n; i++) {
        first[i] = malloc(size);
        CHECK(first[i] != NULL);
        memset(first[i], i, size);
    }
    for (int i = 0; i < n; i++)
        free(first[i]);
    for (int i = 0; i < n; i++) {
        char *p = malloc(size);
        CHECK(p != NULL);
        /* Newest first: the block freed last comes back first. */
        CHECK(p == first[n - 1 - i]);
        memset(p, 0x5a, size);
    }
    for (int i = 0; i < n; i++)
        free(first[i]);
}

int main(void) {
    round_trip(3, 100);
    round_trip(5, 200);
    round_trip(7, 300);
    round_trip(40, 400);
    puts("OK");
    return 0;
}
