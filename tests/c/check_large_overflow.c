/* A 1-byte overflow of a 200000-byte (LARGE) block that is never freed. Mode "every": other
 * malloc/free calls follow (with check_every=1 the heap check of the next call finds it, and
 * the "not caught" line is never printed). Mode "cmd": the `check` command of
 * show_alloc_mem_ex_cmd finds it. Prints the block's address on stderr as "ADDR large 0x...". */
#include <string.h>
#include "check.h"

extern void show_alloc_mem_ex_cmd(const char *) __attribute__((weak));

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "every";
    char *volatile p = malloc(200000);
    CHECK(p != NULL);
    memset(p, 'a', 200000);
    p[200000] = 'X';
    fprintf(stderr, "ADDR large %p\n", (void *)p);
    if (!strcmp(mode, "cmd")) {
        CHECK(show_alloc_mem_ex_cmd != NULL);
        show_alloc_mem_ex_cmd("check");
        return 0;
    }
    for (int i = 0; i < 10; i++) {
        char *q = malloc(24);
        CHECK(q != NULL);
        free(q);
    }
    printf("not caught\n");
    return 0;
}
