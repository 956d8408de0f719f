/* show_alloc_mem() between allocations of every kind, then a marker allocation of a
 * distinctive size, for the real-library tests (tests/real_library.rs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void show_alloc_mem(void) __attribute__((weak)); /* found at run time through LD_PRELOAD */

#define MARKER_SIZE 77777

int main(void) {
    if (!show_alloc_mem) {
        fprintf(stderr, "show_alloc_mem not found: run with LD_PRELOAD=libft_malloc.so\n");
        return 3;
    }
    static const size_t sizes[] = {1, 8, 13, 24, 100, 128, 500, 1000, 1024, 3000, 4096, 10000, 100000, 1 << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(sizes[i]);
        memset(p[i], 1, sizes[i]);
    }
    for (int i = 0; i < N; i += 3) {
        free(p[i]);
        p[i] = NULL;
    }
    p[1] = realloc(p[1], 200);
    p[4] = realloc(p[4], 5000);
    void *c = calloc(10, 30);
    void *a = aligned_alloc(64, 256);
    void *m = NULL;
    if (posix_memalign(&m, 4096, 100) != 0) return 4;
    printf("show_alloc_mem:\n");
    fflush(stdout);
    show_alloc_mem();
    void *marker = malloc(MARKER_SIZE);
    free(marker);
    for (int i = 0; i < N; i++) free(p[i]);
    free(c);
    free(a);
    free(m);
    return 0;
}
