/* free() of the address of a local array. */
#include "check.h"

int main(void) {
    char buf[64];
    char *volatile p = buf;
    free(p);
    printf("continued\n");
    return 0;
}
