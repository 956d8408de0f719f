/* Three double frees at one call site (in a loop), then one at another: with
 * on_error=continue each call site is reported once and the program goes on to print OK. */
#include "check.h"

__attribute__((noinline)) static void double_free(size_t n) {
    char *volatile p = malloc(n);
    CHECK(p != NULL);
    free(p);
    free(p); /* call site A */
}

int main(void) {
    for (int i = 0; i < 3; i++)
        double_free(24);
    char *volatile q = malloc(100);
    CHECK(q != NULL);
    free(q);
    free(q); /* call site B */
    printf("OK\n");
    return 0;
}
