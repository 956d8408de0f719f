/* Guarded blocks of up to 64 data pages live in slots of per-size pools that are reused once
 * a freed block has left the address-space quarantine (32768 blocks). This program first
 * churns 50,000 blocks of each size in argv[2] (default 16) through allocation, a write of
 * every byte and free, so that the blocks below come from recycled slots, then, selected by
 * argv[1]:
 *   zero   calloc and malloc of recycled slots read as zero / keep their contents; exits 0
 *   over   read 1 byte just past a recycled 16-byte block
 *   under  write 1 byte just before a recycled 16-byte block (for guard=below)
 *   uaf    free a recycled 16-byte block, then read its byte 3
 *   big    read 1 byte just past a recycled 100000-byte block (churn with size 100000)
 * If the bug does not fault, the program prints "NOT CAUGHT" and exits 3. */
#include <stdint.h>
#include <string.h>
#include "check.h"

static volatile char sink;

static void churn(size_t n) {
    static char *keep[64];
    for (int i = 0; i < 50000; i++) {
        char *q = malloc(n);
        CHECK(q != NULL);
        memset(q, 'c', n);
        int k = i % 64;
        free(keep[k]);
        keep[k] = q;
    }
    printf("churn %zu done\n", n);
    fflush(stdout);
}

int main(int argc, char **argv) {
    CHECK(argc >= 2);
    const char *m = argv[1];
    churn(argc > 2 ? (size_t)atol(argv[2]) : 16);
    if (!strcmp(m, "zero")) {
        for (int i = 0; i < 2000; i++) {
            size_t n = 1 + (size_t)(i * 37) % 9000;
            unsigned char *z = calloc(1, n);
            CHECK(z != NULL);
            for (size_t j = 0; j < n; j++)
                CHECK(z[j] == 0);
            memset(z, 'z', n);
            unsigned char *q = realloc(z, n + 100);
            CHECK(q != NULL);
            for (size_t j = 0; j < n; j++)
                CHECK(q[j] == 'z');
            free(q);
        }
        printf("OK\n");
        return 0;
    } else if (!strcmp(m, "over")) {
        char *p = announced_block(16);
        sink = ((volatile char *)p)[16];
    } else if (!strcmp(m, "under")) {
        char *p = announced_block(16);
        ((volatile char *)p)[-1] = 'u';
    } else if (!strcmp(m, "uaf")) {
        char *p = announced_block(16);
        uintptr_t a = (uintptr_t)p;
        free(p);
        sink = ((volatile char *)a)[3];
    } else if (!strcmp(m, "big")) {
        char *p = announced_block(100000);
        sink = ((volatile char *)p)[100000];
    }
    printf("NOT CAUGHT\n");
    return 3;
}
