/* guard_budget: with MALLOC_DEBUG=guard,guard_budget=1m (256 pages of 4 KiB), 1000 live
 * 16-byte blocks pass the budget: the library says so once and the later blocks are not
 * guarded; once they are freed, new blocks are guarded again. Where the kernel has guard
 * markers (Linux 6.13), whether the page after a block is unreadable is checked through
 * /proc/self/mem (which reads PROT_NONE pages but not markers), and the program prints
 * "first guarded 1, last guarded 0, again guarded 1"; elsewhere it prints "no markers".
 * Then OK. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"

#define N 1000

static int guarded(int fd, const char *p, size_t n) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    char b;
    uintptr_t end = ((uintptr_t)p + n + pg - 1) & ~(uintptr_t)(pg - 1);
    return pread(fd, &b, 1, (off_t)end) != 1;
}

int main(void) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    void *m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    int markers = madvise(m, pg, 102 /* MADV_GUARD_INSTALL */) == 0;
    munmap(m, pg);
    static char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(16);
        CHECK(p[i] != NULL);
        memset(p[i], 'b', 16);
    }
    int fd = open("/proc/self/mem", O_RDONLY);
    CHECK(fd >= 0);
    int first = guarded(fd, p[0], 16), last = guarded(fd, p[N - 1], 16);
    for (int i = 0; i < N; i++)
        free(p[i]);
    char *q = malloc(16);
    CHECK(q != NULL);
    memset(q, 'q', 16);
    int again = guarded(fd, q, 16);
    free(q);
    close(fd);
    if (markers)
        printf("first guarded %d, last guarded %d, again guarded %d\n", first, last, again);
    else
        printf("no markers\n");
    printf("OK\n");
    return 0;
}
