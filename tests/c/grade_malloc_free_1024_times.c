/* Classic grading test 2: 1024 times malloc(1024), written, then freed. */
#include <string.h>
#include "check.h"

int main(void) {
    for (int i = 0; i < 1024; i++) {
        char *addr = malloc(1024);
        CHECK(addr != NULL);
        addr[0] = 42;
        memset(addr, i & 0xff, 1024);
        free(addr);
    }
    printf("OK\n");
    return 0;
}
