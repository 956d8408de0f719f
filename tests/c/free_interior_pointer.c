/* free() of a pointer 16 bytes into a live 24-byte (TINY) block (aligned, but not the start). */
#include "check.h"

int main(void) {
    char *volatile p = malloc(24);
    CHECK(p != NULL);
    char *volatile interior = p + 16;
    free(interior);
    printf("continued\n");
    return 0;
}
