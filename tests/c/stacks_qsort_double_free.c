/* The comparator given to qsort frees a block on each call: the second call frees it again.
 * The double free report must show the second free's stack (cmp, under libc's qsort, under
 * sort_them and main) and, in the block's history, the first free's stack. */
#include <stdio.h>
#include <stdlib.h>

static void *victim;

static int cmp(const void *a, const void *b) {
    free(victim);
    return *(const int *)a - *(const int *)b;
}

__attribute__((noinline)) void sort_them(int *v, int n) {
    qsort(v, n, sizeof *v, cmp);
    __asm__ volatile("" ::: "memory");
}

int main(void) {
    int v[4] = {3, 1, 2, 0};
    victim = malloc(24);
    sort_them(v, 4);
    printf("%d\n", v[0]);
    return 0;
}
