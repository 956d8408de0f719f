/* 1,000,000 live small allocations at once, each written and checked, then all freed; the
 * allocator still works after. With guard markers (MADV_GUARD_INSTALL, Linux 6.13) pool slots
 * split no kernel mapping, so every block is guarded: the program prints "slots: markers" and
 * how many of 1000 sampled live blocks have an unreadable page right after them (read through
 * /proc/self/mem, which can read PROT_NONE pages but not guard markers). Without markers it
 * prints "slots: mprotect" (the mapping budget runs out on the way). Then OK. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"

#define N 1000000

static int kernel_has_markers(void) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    void *m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    int ok = madvise(m, pg, 102 /* MADV_GUARD_INSTALL */) == 0;
    munmap(m, pg);
    return ok;
}

int main(void) {
    int markers = kernel_has_markers();
    printf("slots: %s\n", markers ? "markers" : "mprotect");
    unsigned char **p = malloc(N * sizeof *p);
    CHECK(p != NULL);
    for (size_t i = 0; i < N; i++) {
        size_t n = 1 + i % 64;
        p[i] = malloc(n);
        CHECK(p[i] != NULL);
        CHECK((uintptr_t)p[i] % (n >= 8 ? 8 : 1) == 0);
        memset(p[i], (int)(i & 0xff), n);
    }
    for (size_t i = 0; i < N; i++) {
        size_t n = 1 + i % 64;
        CHECK(p[i][0] == (unsigned char)(i & 0xff) && p[i][n - 1] == (unsigned char)(i & 0xff));
    }
    if (markers) {
        int fd = open("/proc/self/mem", O_RDONLY);
        CHECK(fd >= 0);
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        int guarded = 0;
        for (size_t i = 0; i < N; i += N / 1000) {
            uintptr_t end = (uintptr_t)p[i] + 1 + i % 64;
            char b;
            if (pread(fd, &b, 1, (off_t)((end + pg - 1) & ~(pg - 1))) != 1)
                guarded++;
        }
        close(fd);
        printf("guarded %d of 1000\n", guarded);
    }
    for (size_t i = 0; i < N; i++)
        free(p[i]);
    free(p);
    for (int i = 0; i < 1000; i++) {
        char *q = malloc(100);
        CHECK(q != NULL);
        memset(q, 'q', 100);
        free(q);
    }
    printf("OK\n");
    return 0;
}
