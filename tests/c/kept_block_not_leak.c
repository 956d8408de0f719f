/* With on_error=continue, a block whose canaries were overwritten (one byte after a TINY
 * block, one byte before another, one byte after a LARGE block) is reported when freed and
 * then kept by the allocator (never reused). Such a block was freed by the program: it is not
 * a leak, and the exit report must not list it. Prints OK. */
#include "check.h"

int main(void) {
    char *volatile a = malloc(20);
    char *volatile b = malloc(20);
    char *volatile c = malloc(40001);
    CHECK(a != NULL && b != NULL && c != NULL);
    memset(a, 'a', 20);
    memset(b, 'b', 20);
    memset(c, 'c', 40001);
    a[20] = 'X';
    b[-1] = 'X';
    c[40001] = 'X';
    free(a);
    free(b);
    free(c);
    a = b = c = NULL;
    printf("OK\n");
    return 0;
}
