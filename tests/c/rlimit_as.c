/* Under setrlimit(RLIMIT_AS) = current VmSize + 256 MiB, oversized malloc, calloc and realloc
 * return NULL with ENOMEM (the realloc'ed block stays intact), filling the address space ends
 * with NULL/ENOMEM rather than a crash, and small allocations keep working. */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include "check.h"

#define MiB ((size_t)1 << 20)

static size_t vm_size(void) {
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
            break;
    fclose(f);
    CHECK(kb > 0);
    return kb * 1024;
}

int main(void) {
    free(malloc(16)); /* the allocator is initialised before the measure */
    size_t limit = vm_size() + 256 * MiB;
    struct rlimit rl = {limit, limit};
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0);

    errno = 0;
    CHECK(malloc(512 * MiB) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc(1024 * MiB) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(1, 512 * MiB) == NULL && errno == ENOMEM);

    unsigned char *p = malloc(MiB);
    CHECK(p != NULL);
    memset(p, 0x3c, MiB);
    errno = 0;
    CHECK(realloc(p, 512 * MiB) == NULL && errno == ENOMEM);
    for (size_t i = 0; i < MiB; i++)
        CHECK(p[i] == 0x3c);
    unsigned char *t = malloc(100);
    memset(t, 0x3d, 100);
    errno = 0;
    CHECK(realloc(t, 512 * MiB) == NULL && errno == ENOMEM);
    for (size_t i = 0; i < 100; i++)
        CHECK(t[i] == 0x3d);
    free(t);

    /* Small allocations keep working. */
    static void *small[20000];
    for (int i = 0; i < 20000; i++) {
        small[i] = malloc(i % 700);
        CHECK(small[i] != NULL);
    }
    for (int i = 0; i < 20000; i++)
        free(small[i]);

    /* Fill the address space with 1 MiB blocks until a NULL, then with small ones. */
    static void *big[1024];
    int nbig = 0;
    for (;;) {
        CHECK(nbig < 1024);
        errno = 0;
        void *b = malloc(MiB);
        if (!b) {
            CHECK(errno == ENOMEM);
            break;
        }
        memset(b, 1, 4096);
        big[nbig++] = b;
    }
    CHECK(nbig > 100);
    static void *tiny[200000];
    int ntiny = 0;
    for (; ntiny < 200000; ntiny++) {
        errno = 0;
        tiny[ntiny] = malloc(64);
        if (!tiny[ntiny]) {
            CHECK(errno == ENOMEM);
            break;
        }
    }
    for (int i = 0; i < ntiny; i++)
        free(tiny[i]);
    for (int i = 0; i < nbig; i++)
        free(big[i]);

    /* Everything freed: allocations of all classes succeed again. */
    for (int i = 0; i < 50; i++) {
        void *a = malloc(100), *b = malloc(10000), *c = malloc(4 * MiB);
        CHECK(a && b && c);
        memset(c, 2, 4 * MiB);
        free(a);
        free(b);
        free(c);
    }
    free(p);
    printf("OK\n");
    return 0;
}
