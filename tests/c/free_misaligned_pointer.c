/* free() of a pointer 1 byte into a live 24-byte (TINY) block. */
#include "check.h"

int main(void) {
    char *volatile p = malloc(24);
    CHECK(p != NULL);
    char *volatile interior = p + 1;
    free(interior);
    printf("continued\n");
    return 0;
}
