/* Bugs at the edges of guarded blocks and zones, selected by argv[1]; the program prints the
 * block's address ("block ADDR N") then commits the bug:
 *   under N       write N bytes just before a 100-byte block, never free it, exit 0
 *   under_free N  the same, then free the block
 *   under_call N  the same, then call malloc (for check_every=1)
 *   slack         write 4 bytes just past a 100-byte block (in its slack under guard=below),
 *                 never free it, exit 0
 *   strlen N      fill an N-byte block to its end with no NUL, then strlen it
 *   wmemset       wmemset 8 wide characters starting 4096 bytes before a 480-byte block, the
 *                 first block of its zone (so into the guard page before the zone)
 *   wcscpy        the same with wcscpy
 *   misfree       free a 16-byte block at p + 1 (continuing after the report), exit 0
 * A bug that does not fault prints "NOT CAUGHT" and exits 3 (strlen, wmemset, wcscpy). */
#include <stdint.h>
#include <string.h>
#include <wchar.h>
#include "check.h"

static volatile size_t sink;

int main(int argc, char **argv) {
    CHECK(argc >= 2);
    const char *m = argv[1];
    printf("start\n");
    fflush(stdout);
    if (!strcmp(m, "under") || !strcmp(m, "under_free") || !strcmp(m, "under_call")) {
        CHECK(argc == 3);
        size_t n = (size_t)atoi(argv[2]);
        char *p = announced_block(100);
        memset(p - n, 'u', n);
        printf("written\n");
        fflush(stdout);
        if (!strcmp(m, "under_free"))
            free(p);
        else if (!strcmp(m, "under_call"))
            sink = (size_t)malloc(24);
        return 0;
    } else if (!strcmp(m, "slack")) {
        char *p = announced_block(100);
        memset(p + 100, 's', 4);
        printf("written\n");
        fflush(stdout);
        return 0;
    } else if (!strcmp(m, "strlen")) {
        CHECK(argc == 3);
        size_t n = (size_t)atoi(argv[2]);
        char *p = announced_block(n);
        sink = strlen(p);
    } else if (!strcmp(m, "wmemset") || !strcmp(m, "wcscpy")) {
        wchar_t *p = (wchar_t *)announced_block(480);
        wchar_t *far = p - 4096 / sizeof(wchar_t);
        if (!strcmp(m, "wmemset"))
            wmemset(far, L'w', 8);
        else
            wcscpy(far, L"wide string");
        sink = (size_t)far[0];
    } else if (!strcmp(m, "misfree")) {
        char *p = announced_block(16);
        free(p + 1);
        printf("freed\n");
        fflush(stdout);
        return 0;
    } else {
        CHECK(!"unknown mode");
    }
    printf("NOT CAUGHT\n");
    return 3;
}
