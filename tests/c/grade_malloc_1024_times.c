/* Classic grading test 1: 1024 times malloc(1024), written, never freed. */
#include <string.h>
#include "check.h"

int main(void) {
    static char *addr[1024];
    for (int i = 0; i < 1024; i++) {
        addr[i] = malloc(1024);
        CHECK(addr[i] != NULL);
        addr[i][0] = 42;
        memset(addr[i] + 1, i & 0xff, 1023);
    }
    for (int i = 0; i < 1024; i++) {
        CHECK(addr[i][0] == 42);
        for (int j = 1; j < 1024; j++)
            CHECK((unsigned char)addr[i][j] == (i & 0xff));
    }
    printf("OK\n");
    return 0;
}
