/* malloc_usable_size() of a 24-byte (TINY) block that was already freed. */
#include <malloc.h>
#include "check.h"

int main(void) {
    char *volatile p = malloc(24);
    CHECK(p != NULL);
    free(p);
    size_t n = malloc_usable_size(p);
    printf("continued %zu\n", n);
    return 0;
}
