/* Blocks broken and never freed again, found only by the check at exit. argv[1]:
 *   zero        malloc(0) then one byte written into it
 *   past        one byte written just past a 24-byte block
 *   wide        a wide-string copy of 4 KiB into a 16-byte block, running over the blocks
 *               allocated after it (some in use, some freed)
 *   quarantine  a byte written into a freed (quarantined) 24-byte block
 * The broken block is announced on stdout as "block ADDR". */
#include <wchar.h>
#include "check.h"

static void *keep[512];

int main(int argc, char **argv) {
    CHECK(argc == 2);
    const char *m = argv[1];
    char *volatile p;
    if (!strcmp(m, "zero")) {
        p = malloc(0);
        CHECK(p != NULL);
        p[0] = 1;
    } else if (!strcmp(m, "past")) {
        p = malloc(24);
        CHECK(p != NULL);
        memset(p, 'a', 24);
        p[24] = 0;
    } else if (!strcmp(m, "wide")) {
        static wchar_t src[1024];
        for (int i = 0; i < 1023; i++)
            src[i] = L'a' + i % 26;
        p = malloc(16);
        CHECK(p != NULL);
        /* Room after it in its zone: neighbours, every other one freed. */
        for (int i = 0; i < 512; i++) {
            keep[i] = malloc(16);
            CHECK(keep[i] != NULL);
        }
        for (int i = 0; i < 512; i += 2) {
            free(keep[i]);
            keep[i] = NULL;
        }
        wcscpy((wchar_t *)p, src);
    } else if (!strcmp(m, "quarantine")) {
        p = malloc(24);
        CHECK(p != NULL);
        free(p);
        p[16] = 'X';
    } else {
        CHECK(!"unknown mode");
        return 1;
    }
    printf("block %p\n", (void *)p);
    /* The report at exit aborts before stdio is flushed. */
    fflush(stdout);
    return 0;
}
