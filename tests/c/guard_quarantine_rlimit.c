/* Under an address-space limit of VmSize + 384 MiB, 64 rounds of malloc(16 MiB) + free: freed
 * guarded blocks stay mapped (inaccessible) in the address-space quarantine, which may hold
 * more than the limit allows; when a mapping fails, the allocator must give that space back
 * and retry. Every round and a final malloc(128 MiB) must succeed. Prints OK. */
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
    free(malloc(16));
    size_t limit = vm_size() + 384 * MiB;
    struct rlimit rl = {limit, limit};
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
    for (int i = 0; i < 64; i++) {
        size_t n = 16 * MiB + (size_t)i * 4096;
        char *p = malloc(n);
        if (p == NULL) {
            printf("round %d failed\n", i);
            return 1;
        }
        p[0] = 1;
        p[n - 1] = 2;
        free(p);
    }
    char *q = malloc(128 * MiB);
    CHECK(q != NULL);
    memset(q, 7, 4096);
    q[128 * MiB - 1] = 7;
    free(q);
    printf("OK\n");
    return 0;
}
