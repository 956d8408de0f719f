/* Under guard modes, malloc(2^46) is a request no budget covers: it gets NULL and ENOMEM (or a
 * block, if the system can map it) and no message about guard budgets spent "by live blocks";
 * small blocks keep their guard pages afterwards. Prints OK. */
#include <errno.h>
#include "check.h"

int main(void) {
    errno = 0;
    char *volatile p = malloc((size_t)1 << 46);
    CHECK(p != NULL || errno == ENOMEM);
    free(p);
    for (int i = 0; i < 100; i++) {
        char *volatile q = malloc(100 + i);
        CHECK(q != NULL);
        memset(q, 'q', 100 + i);
        free(q);
    }
    printf("OK\n");
    return 0;
}
