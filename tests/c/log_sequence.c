/* A known sequence of calls of the malloc family; the log must list it event for event.
 * The pointers are printed at the end (after the sequence, so stdio's own buffer comes later). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    void *p[16];
    int rc;
    p[0] = malloc(24);
    p[1] = calloc(3, 10);
    p[2] = realloc(p[0], 100);
    free(p[1]);
    rc = posix_memalign(&p[3], 64, 200);
    p[4] = aligned_alloc(32, 64);
    p[5] = memalign(128, 50);
    p[6] = valloc(10);
    p[7] = realloc(NULL, 40);
    p[8] = realloc(p[7], 0);
    p[9] = malloc((size_t)1 << 60); /* fails: NULL, ENOMEM */
    free(NULL);                     /* not logged */
    free(p[2]);
    free(p[3]);
    free(p[4]);
    free(p[5]);
    free(p[6]);
    printf("rc %d\n", rc);
    for (int i = 0; i < 10; i++)
        printf("P%d %p\n", i, p[i]);
    printf("OK\n");
    return 0;
}
