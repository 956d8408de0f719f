/* free() twice of a 200000-byte (LARGE) block. */
#include "check.h"

int main(void) {
    char *volatile p = malloc(200000);
    CHECK(p != NULL);
    free(p);
    free(p);
    printf("continued\n");
    return 0;
}
