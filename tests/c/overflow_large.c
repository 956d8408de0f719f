/* One byte written just past a 200000-byte (LARGE) block; found by free(). */
#include <string.h>
#include "check.h"

int main(void) {
    char *volatile p = malloc(200000);
    CHECK(p != NULL);
    memset(p, 'a', 200000);
    p[200000] = 'X';
    free(p);
    printf("continued\n");
    return 0;
}
