/* Blocks freed go to the thread's cache of free slots when the options leave ordinary blocks
 * alone: 20 blocks of 100 bytes are allocated and freed, one more is kept (after a first
 * block, which a sampling mode may guard), then show_alloc_mem_ex() shows their zone; the
 * test reads how many of its slots sit in thread caches. Prints the dump, then OK. */
#include "check.h"

void show_alloc_mem_ex(void);

int main(void) {
    free(malloc(100));
    void *p[20];
    for (int i = 0; i < 20; i++) {
        p[i] = malloc(100);
        CHECK(p[i] != NULL);
    }
    for (int i = 0; i < 20; i++)
        free(p[i]);
    char *kept = malloc(100);
    CHECK(kept != NULL);
    fflush(stdout);
    show_alloc_mem_ex();
    free(kept);
    puts("OK");
    return 0;
}
