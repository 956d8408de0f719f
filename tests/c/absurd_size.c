/* malloc((size_t)-16): a size above PTRDIFF_MAX, certainly a negative value converted. */
#include <stdint.h>
#include "check.h"

int main(void) {
    volatile size_t n = (size_t)-16;
    void *p = malloc(n);
    printf("continued %s\n", p == NULL ? "NULL" : "non-NULL");
    return 0;
}
