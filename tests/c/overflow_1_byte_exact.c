/* One byte written just past a 24-byte block (a size with no alignment slack); found by free(). */
#include "check.h"

int main(void) {
    char *volatile p = malloc(24);
    CHECK(p != NULL);
    for (int i = 0; i < 24; i++)
        p[i] = 'a';
    p[24] = 'X';
    free(p);
    printf("continued\n");
    return 0;
}
