/* free() twice of a 3000-byte (SMALL) block. */
#include "check.h"

int main(void) {
    char *volatile p = malloc(3000);
    CHECK(p != NULL);
    free(p);
    free(p);
    printf("continued\n");
    return 0;
}
