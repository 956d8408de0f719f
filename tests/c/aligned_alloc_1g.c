/* Four aligned_alloc(1 GiB, 100) under an address-space limit of VmSize + 2 GiB: each must
 * succeed, be aligned and usable, and the four together may add only a few MiB to the resident
 * set (the alignment gap must stay untouched address space, and be given back). With
 * "underflow", one byte is then written just before the last block and free() must find it.
 * usage: aligned_alloc_1g [underflow] */
#include <stdint.h>
#include <sys/resource.h>
#include "check.h"

#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

static size_t status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    char line[256];
    size_t kb = 0, n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && sscanf(line + n, " %zu kB", &kb) == 1)
            break;
    fclose(f);
    CHECK(kb > 0);
    return kb;
}

int main(int argc, char **argv) {
    free(malloc(16));
    size_t limit = status_kb("VmSize:") * 1024 + 2 * GiB;
    struct rlimit rl = {limit, limit};
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
    size_t rss0 = status_kb("VmRSS:");
    char *p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = aligned_alloc(GiB, 100);
        CHECK(p[i] != NULL);
        CHECK((uintptr_t)p[i] % GiB == 0);
        memset(p[i], 'a' + i, 100);
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 100; j++)
            CHECK(p[i][j] == 'a' + i);
    size_t grown = status_kb("VmRSS:") - rss0;
    printf("rss grew %zu kB\n", grown);
    CHECK(grown < 16 * 1024);
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "underflow") == 0) {
        p[3][-1] = 'X';
        free(p[3]);
        printf("continued\n");
        return 0;
    }
    for (int i = 0; i < 4; i++)
        free(p[i]);
    printf("OK\n");
    return 0;
}
