/* free() twice of a 1 MiB (LARGE) block, with 16 MiB of other LARGE blocks freed in between:
 * the first free has long left the quarantine when the second comes. With argv[1] = "realloc",
 * the second call is realloc(). */
#include "check.h"

int main(int argc, char **argv) {
    char *volatile p = malloc(1 << 20);
    CHECK(p != NULL);
    printf("block %p\n", (void *)p);
    fflush(stdout);
    free(p);
    for (int i = 0; i < 16; i++) {
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
