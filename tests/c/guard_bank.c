/* Big guarded blocks (more than 64 data pages) may be built on the pages of a freed big block
 * ("page recycling"): the freed block's range stays PROT_NONE in the address-space quarantine,
 * the new block gets its pages at a new address. Selected by argv[1]:
 *   reuse   a 1 MiB block freed, then a 1,000,000-byte one: touching the new block costs
 *           fewer than a quarter of its pages in page faults; prints "faults N of P pages",
 *           exits 0 (on a kernel without MREMAP_DONTUNMAP, which cannot recycle, it says so)
 *   over    read 1 byte just past a 1,500,000-byte block built on a freed 1 MiB block (its
 *           first 1 MiB recycled, the rest fresh)
 *   uaf     free a 1 MiB block, allocate a 800,000-byte block on its pages, then read byte 3
 *           of the freed one
 *   calloc  calloc of a big block after a big free reads as zero; exits 0
 *   threads 2 threads allocate, fill, check and free big blocks of varied sizes (recycling
 *           each other's pages); exits 0
 *   maps    3000 blocks of varied big sizes cycle through 8 slots; each live block then spans
 *           at most 4 kernel mappings (recycled pieces do not fragment without bound);
 *           prints the most seen, exits 0
 * If the bug does not fault, the program prints "NOT CAUGHT" and exits 3. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include "check.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

/* Whether the kernel moves pages the way the library recycles them (Linux 5.7 and later). */
static int kernel_moves_pages(void) {
    size_t n = (size_t)sysconf(_SC_PAGESIZE);
    char *a = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *b = mmap(NULL, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED && b != MAP_FAILED);
    a[0] = 1;
    void *r = mremap(a, n, n, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, b);
    munmap(a, n);
    munmap(b, n);
    return r != MAP_FAILED;
}

static volatile char sink;

static long minflt(void) {
    struct rusage u;
    CHECK(getrusage(RUSAGE_SELF, &u) == 0);
    return u.ru_minflt;
}

static void *worker(void *arg) {
    uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;
    char *keep[4] = {0};
    size_t len[4] = {0};
    for (int i = 0; i < 400; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int k = (int)(s % 4);
        if (keep[k]) {
            unsigned char t = (unsigned char)(len[k] * 7 + k);
            for (size_t j = 0; j < len[k]; j += 1000)
                CHECK((unsigned char)keep[k][j] == t);
            CHECK((unsigned char)keep[k][len[k] - 1] == t);
            free(keep[k]);
        }
        len[k] = 300000 + (size_t)(s >> 20) % 3000000;
        keep[k] = malloc(len[k]);
        CHECK(keep[k] != NULL);
        memset(keep[k], (unsigned char)(len[k] * 7 + k), len[k]);
    }
    for (int k = 0; k < 4; k++)
        free(keep[k]);
    return NULL;
}

/* Kernel mappings of /proc/self/maps that overlap [p, p + n). */
static int mappings_over(const char *p, size_t n) {
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    char line[512];
    int c = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo < (uintptr_t)p + n && hi > (uintptr_t)p)
            c++;
    }
    fclose(f);
    return c;
}

int main(int argc, char **argv) {
    CHECK(argc >= 2);
    const char *m = argv[1];
    char *a = announced_block(1 << 20);
    uintptr_t fa = (uintptr_t)a;
    free(a);
    if (!strcmp(m, "reuse")) {
        if (!kernel_moves_pages()) {
            printf("kernel without MREMAP_DONTUNMAP: no recycling to measure\nOK\n");
            return 0;
        }
        size_t n = 1000000;
        char *p = malloc(n);
        CHECK(p != NULL);
        long f0 = minflt();
        memset(p, 'y', n);
        long f = minflt() - f0;
        printf("faults %ld of %zu pages\n", f, n / 4096);
        CHECK(f < (long)(n / 4096 / 4));
        free(p);
        printf("OK\n");
        return 0;
    } else if (!strcmp(m, "over")) {
        char *p = announced_block(1500000);
        sink = ((volatile char *)p)[1500000];
    } else if (!strcmp(m, "uaf")) {
        char *p = malloc(800000);
        CHECK(p != NULL);
        memset(p, 'y', 800000);
        printf("block %p %d\n", (void *)fa, 1 << 20);
        fflush(stdout);
        sink = ((volatile char *)fa)[3];
    } else if (!strcmp(m, "calloc")) {
        unsigned char *z = calloc(1, 1 << 20);
        CHECK(z != NULL);
        for (size_t j = 0; j < (1 << 20); j++)
            CHECK(z[j] == 0);
        free(z);
        printf("OK\n");
        return 0;
    } else if (!strcmp(m, "maps")) {
        char *keep[8] = {0};
        size_t len[8] = {0};
        uint64_t s = 12345;
        for (int i = 0; i < 3000; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            int k = (int)(s % 8);
            free(keep[k]);
            len[k] = 300000 + (size_t)(s >> 20) % 3000000;
            keep[k] = malloc(len[k]);
            CHECK(keep[k] != NULL);
            for (size_t j = 0; j < len[k]; j += 4096)
                keep[k][j] = 'm';
            keep[k][len[k] - 1] = 'm';
        }
        int most = 0;
        for (int k = 0; k < 8; k++) {
            int c = mappings_over(keep[k], len[k]);
            most = c > most ? c : most;
            free(keep[k]);
        }
        printf("most mappings per block %d\n", most);
        CHECK(most <= 4);
        printf("OK\n");
        return 0;
    } else if (!strcmp(m, "threads")) {
        pthread_t t[2];
        for (long i = 0; i < 2; i++)
            CHECK(pthread_create(&t[i], NULL, worker, (void *)(i + 1)) == 0);
        for (int i = 0; i < 2; i++)
            CHECK(pthread_join(t[i], NULL) == 0);
        printf("OK\n");
        return 0;
    }
    printf("NOT CAUGHT\n");
    return 3;
}
