/* One byte written just past a 13-byte block, into the alignment slack of its slot; found by
 * free(). */
#include "check.h"

int main(void) {
    char *volatile p = malloc(13);
    CHECK(p != NULL);
    for (int i = 0; i < 13; i++)
        p[i] = 'a';
    p[13] = 'X';
    free(p);
    printf("continued\n");
    return 0;
}
