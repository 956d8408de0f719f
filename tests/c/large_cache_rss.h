/* Shared by the LARGE cache tests: the process's resident and virtual size from
 * /proc/self/status, and a churn of big blocks that leaves the cache holding resident pages. */
#ifndef LARGE_CACHE_RSS_H
#define LARGE_CACHE_RSS_H
#include <stdint.h>
#include "check.h"

#define MiB ((size_t)1 << 20)

/* The value of the "Name:" line of /proc/self/status, in bytes (given in kB there). */
static inline size_t status_bytes(const char *name) {
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    char line[256];
    size_t kb = 0, len = strlen(name);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, name, len) == 0 && line[len] == ':') {
            kb = strtoull(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    CHECK(kb > 0);
    return kb * 1024;
}

/* Eight blocks of 1 to 8 MiB, every page written, freed and made again 200 times, their
 * content checked at each free; then all freed. Returns the bytes of the last eight. */
static inline size_t churn_big_blocks(void) {
    static unsigned char *slot[8];
    static size_t len[8];
    uint32_t s = 2463534242u;
    for (int i = 0; i < 200 + 8; i++) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        int k = i < 8 ? i : (int)(s % 8);
        if (slot[k]) {
            for (size_t o = 0; o < len[k]; o += 4096)
                CHECK(slot[k][o] == (unsigned char)(k + (o >> 12)));
            free(slot[k]);
        }
        len[k] = MiB + (s >> 4) % (7 * MiB);
        slot[k] = malloc(len[k]);
        CHECK(slot[k] != NULL);
        for (size_t o = 0; o < len[k]; o += 4096)
            slot[k][o] = (unsigned char)(k + (o >> 12));
    }
    size_t total = 0;
    for (int k = 0; k < 8; k++) {
        total += len[k];
        free(slot[k]);
        slot[k] = NULL;
    }
    return total;
}
#endif
