/* The glibc statistics and tuning entry points (mallinfo, mallinfo2, malloc_trim, mallopt,
 * malloc_stats, malloc_info) can be called with live blocks and do not crash; the allocator
 * keeps working afterwards. */
#include <malloc.h>
#include <string.h>
#include "check.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

int main(void) {
    void *p[300];
    for (int i = 0; i < 300; i++) {
        p[i] = malloc(i * 200);
        CHECK(p[i] != NULL);
    }
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo m1 = mallinfo();
    printf("mallinfo2 arena=%zu uordblks=%zu hblkhd=%zu\n", m2.arena, m2.uordblks, m2.hblkhd);
    printf("mallinfo arena=%d uordblks=%d\n", m1.arena, m1.uordblks);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    mallopt(M_ARENA_MAX, 2);
    for (int i = 0; i < 300; i += 2)
        free(p[i]);
    printf("malloc_trim=%d\n", malloc_trim(0));
    fflush(stdout);
    malloc_stats();
    FILE *f = tmpfile();
    CHECK(f != NULL);
    malloc_info(0, f);
    fclose(f);
    for (int i = 1; i < 300; i += 2)
        free(p[i]);
    malloc_trim(0);
    void *q = malloc(1000);
    CHECK(q != NULL);
    memset(q, 0, 1000);
    free(q);
    printf("OK\n");
    return 0;
}
