/* One byte written just before a 24-byte block; found by free(). */
#include "check.h"

int main(void) {
    char *volatile p = malloc(24);
    CHECK(p != NULL);
    p[-1] = 'X';
    free(p);
    printf("continued\n");
    return 0;
}
