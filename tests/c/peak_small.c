/* A small single-threaded program: 400 blocks of 100 bytes live at once (40,000 bytes, under
 * the 64 KiB a thread's balance reaches the shared count by), all freed before exit. The
 * `stats` line at exit must show that peak. Prints OK. */
#include "check.h"

int main(void) {
    static char *p[400];
    for (int i = 0; i < 400; i++) {
        p[i] = malloc(100);
        CHECK(p[i] != NULL);
        memset(p[i], i, 100);
    }
    for (int i = 0; i < 400; i++)
        free(p[i]);
    printf("OK\n");
    return 0;
}
