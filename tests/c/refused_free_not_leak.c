/* Frees the program tried and the allocator refused (a pointer into a live block, misaligned or
 * not; a double free) are no leaks under on_error=continue: blocks of each size class freed
 * through a wrong pointer, one freed twice, then one real leak of 555 bytes (its only pointer
 * overwritten). The sizes are printed as "SIZES ..." so the test knows which LEAK lines would
 * be false. */
#include "check.h"

void *volatile sink;

__attribute__((noinline)) static void refused(size_t n, size_t off) {
    char *volatile p = malloc(n);
    CHECK(p != NULL);
    free((char *)p + off); /* refused: not the block's start */
    p = NULL;
}

int main(void) {
    refused(40, 16);      /* TINY, interior */
    refused(72, 3);       /* TINY, misaligned */
    refused(3000, 64);    /* SMALL, interior */
    refused(300000, 4096); /* LARGE, interior */
    char *volatile c = malloc(24);
    CHECK(c != NULL);
    free(c);
    free(c); /* double free */
    sink = malloc(555); /* the real leak */
    sink = NULL;
    printf("OK\n");
    return 0;
}
