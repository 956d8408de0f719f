/* A program that uses every SMALL size class under an address-space limit it starts with:
 * the parent sets RLIMIT_AS to its VmSize + 48 MiB (argument "as") or RLIMIT_DATA to its
 * VmData + 48 MiB ("data"), and runs itself again under it. The child keeps 4 blocks of each
 * size from 520 to 16384 bytes (every SMALL class), 4000 TINY blocks and 16 of 100 KiB, checks
 * and frees them, then churns 20000 blocks of 4 KiB. glibc needs a few MiB for this; zones of
 * 1.6 MiB each for 36 classes would not fit. Prints OK. */
#include <stdint.h>
#include <sys/resource.h>
#include <unistd.h>
#include "check.h"

#define MiB ((size_t)1 << 20)

/* The "Vm<name>:" line of /proc/self/status, in bytes. */
static size_t vm(const char *name) {
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    char line[256], fmt[64];
    snprintf(fmt, sizeof fmt, "Vm%s: %%zu kB", name);
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, fmt, &kb) == 1)
            break;
    fclose(f);
    CHECK(kb > 0);
    return kb * 1024;
}

enum { SMALL_N = (16384 - 520) / 128 + 1, PER = 4, TINY_N = 4000, BIG_N = 16 };

int main(int argc, char **argv) {
    CHECK(argc >= 2);
    if (argc < 3) {
        int data = strcmp(argv[1], "data") == 0;
        size_t limit = vm(data ? "Data" : "Size") + 48 * MiB;
        struct rlimit rl = {limit, limit};
        CHECK(setrlimit(data ? RLIMIT_DATA : RLIMIT_AS, &rl) == 0);
        fflush(stdout);
        execl("/proc/self/exe", argv[0], argv[1], "child", (char *)NULL);
        perror("execl");
        return 1;
    }
    static unsigned char *small[SMALL_N * PER], *tiny[TINY_N], *big[BIG_N];
    for (int i = 0; i < SMALL_N * PER; i++) {
        size_t n = 520 + (size_t)(i / PER) * 128;
        small[i] = malloc(n);
        CHECK(small[i] != NULL);
        small[i][0] = small[i][n - 1] = (unsigned char)i;
    }
    for (int i = 0; i < TINY_N; i++) {
        size_t n = 1 + (size_t)i % 512;
        tiny[i] = malloc(n);
        CHECK(tiny[i] != NULL);
        tiny[i][n - 1] = (unsigned char)i;
    }
    for (int i = 0; i < BIG_N; i++) {
        big[i] = malloc(100 << 10);
        CHECK(big[i] != NULL);
        memset(big[i], i, 100 << 10);
    }
    for (int i = 0; i < SMALL_N * PER; i++) {
        size_t n = 520 + (size_t)(i / PER) * 128;
        CHECK(small[i][0] == (unsigned char)i && small[i][n - 1] == (unsigned char)i);
        free(small[i]);
    }
    for (int i = 0; i < TINY_N; i++) {
        CHECK(tiny[i][i % 512] == (unsigned char)i);
        free(tiny[i]);
    }
    for (int i = 0; i < BIG_N; i++) {
        CHECK(big[i][(100 << 10) - 1] == (unsigned char)i);
        free(big[i]);
    }
    for (int i = 0; i < 20000; i++) {
        unsigned char *p = malloc(4096);
        CHECK(p != NULL);
        p[0] = p[4095] = 1;
        free(p);
    }
    /* The limit still holds: a request beyond it fails. */
    CHECK(malloc(64 * MiB) == NULL);
    puts("OK");
    return 0;
}
