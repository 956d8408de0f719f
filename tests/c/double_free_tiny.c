/* free() twice of a 24-byte (TINY) block. With MALLOC_DEBUG=1 the second free is an ERROR
 * (abort); with on_error=continue/exit:N or debugging off the program goes on and prints
 * "continued". */
#include "check.h"

int main(void) {
    char *volatile p = malloc(24);
    CHECK(p != NULL);
    free(p);
    free(p);
    printf("continued\n");
    return 0;
}
