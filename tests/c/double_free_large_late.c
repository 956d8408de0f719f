/* free() twice of a 1 MiB (LARGE) block, with other LARGE blocks (1 MiB and a few pages each)
 * freed in between: argv[2] of them (default 16, 16 MiB: more than the 4 MiB quarantine). The
 * first free has left the quarantine when the second comes. argv[1] = "realloc": the second
 * call is realloc(). */
#include "check.h"

int main(int argc, char **argv) {
    int others = argc > 2 ? atoi(argv[2]) : 16;
    char *volatile p = malloc(1 << 20);
    CHECK(p != NULL);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    free(p);
    for (int i = 0; i < others; i++) {
        /* Not the same size, so no other block lands where p was. */
        char *q = malloc((1 << 20) + 4096 * (i + 1));
        CHECK(q != NULL);
        free(q);
    }
    if (argc > 1 && !strcmp(argv[1], "realloc"))
        CHECK(realloc(p, 10) == NULL);
    else
        free(p);
    printf("continued\n");
    return 0;
}
