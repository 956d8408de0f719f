/* free() of the address of a global array. */
#include "check.h"

static char global_buf[64];

int main(void) {
    char *volatile p = global_buf;
    free(p);
    printf("continued\n");
    return 0;
}
