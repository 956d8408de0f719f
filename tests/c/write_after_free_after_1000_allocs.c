/* A byte written into a freed 24-byte block, then 1000 other allocations, each freed:
 *   argv[1] = tiny: 1000 blocks of 24 bytes (the same class; 24 KB stay far below any
 *                   quarantine), none of which may reuse the freed block; the write is found at
 *                   exit ("loop done" is printed first).
 *   argv[1] = mid:  1000 blocks of 512 bytes (512 KB: more than the 256 KiB the default
 *                   quarantine keeps for a program with a small heap, less than a set 64m).
 *   argv[1] = big:  1000 blocks of 8 KiB (8 MiB: the freed block leaves even the 4 MiB
 *                   quarantine during the loop), the write is found then ("loop done" is never
 *                   printed). */
#include <string.h>
#include "check.h"

int main(int argc, char **argv) {
    CHECK(argc == 2);
    size_t n = strcmp(argv[1], "big") == 0 ? 8192 : strcmp(argv[1], "mid") == 0 ? 512 : 24;
    char *volatile p = malloc(24);
    CHECK(p != NULL);
    memset(p, 'a', 24);
    free(p);
    p[16] = 'X';
    for (int i = 0; i < 1000; i++) {
        char *q = malloc(n);
        CHECK(q != NULL);
        CHECK(q != p);
        memset(q, 'b', n);
        free(q);
    }
    printf("loop done\n");
    fflush(stdout);
    return 0;
}
