/* Churn of small blocks with frees (the pattern of bench/churn.c): 16,384 slots, 1,000,000
 * steps, each freeing the block of a random slot (after checking its content) or allocating
 * 1..96 bytes into it. In guard mode the mapping budget runs out on the way (live guarded blocks
 * and the freed ones held PROT_NONE both use mappings); allocations must go on succeeding.
 * On a failed malloc it prints how many mappings the process has, and exits 1. Prints OK. */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "check.h"

#define NSLOT 16384

static unsigned char *slot[NSLOT];
static unsigned char slen[NSLOT];
static char maps[1 << 24];

static void report_maps(long step, size_t n) {
    int fd = open("/proc/self/maps", O_RDONLY);
    long t = 0, r, lines = 0, none = 0;
    while (fd >= 0 && t < (long)sizeof maps - 1 && (r = read(fd, maps + t, sizeof maps - 1 - (size_t)t)) > 0)
        t += r;
    maps[t] = 0;
    for (char *s = maps; *s; s++)
        if (*s == '\n') {
            lines++;
            if (s[1] && strncmp(strchr(s + 1, ' ') + 1, "---p", 4) == 0)
                none++;
        }
    fprintf(stderr, "malloc(%zu) failed at step %ld: the process has %ld mappings (%ld PROT_NONE)\n", n, step,
            lines, none);
    exit(1);
}

int main(void) {
    uint64_t x = 88172645463325252ull;
    for (long i = 0; i < 1000000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned k = (unsigned)(x % NSLOT);
        if (slot[k]) {
            unsigned n = slen[k];
            unsigned char pat = (unsigned char)(k ^ n);
            for (unsigned j = 0; j < n; j++)
                CHECK(slot[k][j] == pat);
            free(slot[k]);
            slot[k] = NULL;
        } else {
            size_t n = 1 + (size_t)((x >> 40) % 96);
            unsigned char *p = malloc(n);
            if (p == NULL)
                report_maps(i, n);
            memset(p, (unsigned char)(k ^ n), n);
            slot[k] = p;
            slen[k] = (unsigned char)n;
        }
    }
    for (unsigned k = 0; k < NSLOT; k++)
        free(slot[k]);
    printf("OK\n");
    return 0;
}
