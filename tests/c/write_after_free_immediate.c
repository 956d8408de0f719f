/* A byte written into a 24-byte block right after free(). The block stays in quarantine until
 * exit, where the drain finds the write: the program itself finishes ("end" is printed). */
#include <string.h>
#include "check.h"

int main(void) {
    char *volatile p = malloc(24);
    CHECK(p != NULL);
    memset(p, 'a', 24);
    free(p);
    p[16] = 'X';
    printf("end\n");
    fflush(stdout);
    return 0;
}
