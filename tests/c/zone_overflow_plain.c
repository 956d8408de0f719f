/* A linear overflow off the end of a zone's data, with MALLOC_DEBUG unset: blocks of SIZE (a
 * class size, so consecutive slots are SIZE apart) fill a first zone, then a second one (placed
 * by the kernel just below the first); the last block of the second zone is overrun by 8 KiB of
 * 0x41, which runs into whatever follows that zone's data. Then the program keeps allocating
 * and freeing, dumps the heap and trims it. Allocator metadata must not be within reach: either
 * the overrun faults in this program's own memset (a guard page: killed by SIGSEGV after
 * "overflowing"), or it only hits user data and every later call works (prints OK).
 * usage: zone_overflow_plain SIZE */
#include <malloc.h>
#include <stdint.h>
#include "check.h"

#define MAXB 200000

static char *blk[MAXB];

int main(int argc, char **argv) {
    CHECK(argc == 2);
    size_t sz = strtoul(argv[1], NULL, 0);
    int n = 0, jumps = 0, last_b = -1;
    blk[n++] = malloc(sz);
    while (jumps < 2) {
        CHECK(n < MAXB);
        blk[n] = malloc(sz);
        CHECK(blk[n] != NULL);
        if ((uintptr_t)blk[n] != (uintptr_t)blk[n - 1] + sz) {
            jumps++;
            if (jumps == 2)
                last_b = n - 1;
        }
        n++;
    }
    printf("overflowing\n");
    fflush(stdout);
    memset(blk[last_b] + sz, 0x41, 8192);
    printf("overflowed\n");
    fflush(stdout);
    for (int i = 0; i < n; i += 2) {
        free(blk[i]);
        blk[i] = NULL;
    }
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < n; i++) {
            if (blk[i] == NULL) {
                blk[i] = malloc(sz);
                CHECK(blk[i] != NULL);
                memset(blk[i], 'r', sz);
            } else {
                free(blk[i]);
                blk[i] = NULL;
            }
        }
    if (show_alloc_mem)
        show_alloc_mem();
    for (int i = 0; i < n; i++)
        free(blk[i]);
    malloc_trim(0);
    printf("OK\n");
    return 0;
}
