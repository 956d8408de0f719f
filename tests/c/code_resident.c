/* How much of the allocator's code a program with debugging off keeps resident: two threads
 * malloc and free small blocks (some freed by the other thread), blocks are resized and a few
 * LARGE ones made; then the present pages of the library's executable mapping are counted
 * (/proc/self/pagemap). The kernel maps a file's code some pages at a time around each page
 * that faults (fault-around), so code run by such a program but scattered over the library
 * makes most of it resident. Prints "resident R of T pages" and OK. */
#include <pthread.h>
#include <stdint.h>
#include <fcntl.h>
#include <unistd.h>
#include "check.h"

enum { N = 4096 };
static void *handed[N];

static void *worker(void *arg) {
    unsigned s = (unsigned)(uintptr_t)arg;
    void *mine[64] = {0};
    for (int i = 0; i < 200000; i++) {
        s = s * 1103515245u + 12345u;
        int k = (int)(s >> 16) % 64;
        free(mine[k]);
        mine[k] = malloc(16 + (s >> 8) % 500);
        CHECK(mine[k] != NULL);
    }
    for (int k = 0; k < 64; k++)
        free(mine[k]);
    return NULL;
}

int main(void) {
    for (int i = 0; i < N; i++) {
        handed[i] = malloc(16 + i % 1000);
        CHECK(handed[i] != NULL);
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    for (int i = 0; i < N; i++) {
        handed[i] = realloc(handed[i], 32 + i % 3000);
        CHECK(handed[i] != NULL);
    }
    for (int i = 0; i < 8; i++) {
        char *big = calloc(1, (size_t)(64 + i) << 10);
        CHECK(big != NULL && big[1000] == 0);
        free(big);
    }
    for (int i = 0; i < N; i++)
        free(handed[i]);

    FILE *maps = fopen("/proc/self/maps", "r");
    int pm = open("/proc/self/pagemap", O_RDONLY);
    CHECK(maps != NULL && pm >= 0);
    char line[512];
    long total = 0, resident = 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        char perms[8];
        if (!strstr(line, "libft_malloc.so") ||
            sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[2] != 'x')
            continue;
        long page = sysconf(_SC_PAGESIZE);
        for (unsigned long a = lo; a < hi; a += (unsigned long)page) {
            uint64_t e;
            off_t at = (off_t)(a / (unsigned long)page * sizeof e);
            CHECK(pread(pm, &e, sizeof e, at) == sizeof e);
            total++;
            resident += (long)(e >> 63);
        }
    }
    CHECK(total > 0);
    printf("resident %ld of %ld pages\n", resident, total);
    puts("OK");
    return 0;
}
