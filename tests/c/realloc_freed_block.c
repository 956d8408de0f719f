/* realloc() of a 24-byte (TINY) block that was already freed. */
#include "check.h"

int main(void) {
    char *volatile p = malloc(24);
    CHECK(p != NULL);
    free(p);
    char *q = realloc(p, 48);
    printf("continued %s\n", q == NULL ? "NULL" : "non-NULL");
    return 0;
}
