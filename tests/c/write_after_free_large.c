/* A byte written into a freed 40000-byte (LARGE) block. A quarantined LARGE block of at most
 * 64 KiB is filled and checked like a zone block (not made inaccessible), so the write does not
 * fault: the drain at exit finds it. */
#include <string.h>
#include "check.h"

int main(void) {
    char *volatile p = malloc(40000);
    CHECK(p != NULL);
    memset(p, 'a', 40000);
    free(p);
    p[30000] = 'X';
    printf("end\n");
    fflush(stdout);
    return 0;
}
