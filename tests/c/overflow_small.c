/* One byte written just past a 3000-byte (SMALL) block; found by free(). */
#include <string.h>
#include "check.h"

int main(void) {
    char *volatile p = malloc(3000);
    CHECK(p != NULL);
    memset(p, 'a', 3000);
    p[3000] = 'X';
    free(p);
    printf("continued\n");
    return 0;
}
