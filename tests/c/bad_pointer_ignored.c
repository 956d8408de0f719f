/* free or realloc of a pointer that is not a live block of ours, selected by argv:
 *   argv[1] = stack | global | interior | interior_aligned | interior_large | misaligned
 *             | double_free_tiny | double_free_small | double_free_large | mmap | wild
 *   argv[2] = free | realloc
 * With MALLOC_DEBUG unset the call is ignored (realloc returns NULL) with one warning line and
 * the program goes on: other blocks stay intact and the allocator keeps working. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include "check.h"

static char global_buf[64];

int main(int argc, char **argv) {
    CHECK(argc == 3);
    const char *kind = argv[1];
    int use_realloc = strcmp(argv[2], "realloc") == 0;
    char stack_buf[64];
    char *live = malloc(100);
    memset(live, 'L', 100);
    char *live_large = malloc(1 << 20);
    memset(live_large, 'G', 1 << 20);
    void *bad = NULL;

    if (!strcmp(kind, "stack")) {
        bad = stack_buf;
    } else if (!strcmp(kind, "global")) {
        bad = global_buf;
    } else if (!strcmp(kind, "interior")) {
        bad = live + 5;
    } else if (!strcmp(kind, "interior_aligned")) {
        bad = live + 32;
    } else if (!strcmp(kind, "interior_large")) {
        bad = live_large + 4096;
    } else if (!strcmp(kind, "misaligned")) {
        bad = live + 1;
    } else if (!strcmp(kind, "double_free_tiny") || !strcmp(kind, "double_free_small") ||
               !strcmp(kind, "double_free_large")) {
        size_t n = kind[12] == 't' ? 48 : kind[12] == 's' ? 3000 : 200000;
        bad = malloc(n);
        CHECK(bad != NULL);
        free(bad);
    } else if (!strcmp(kind, "mmap")) {
        bad = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(bad != MAP_FAILED);
    } else if (!strcmp(kind, "wild")) {
        bad = (void *)(uintptr_t)0x10000;
    } else {
        CHECK(!"unknown kind");
    }

    if (use_realloc)
        CHECK(realloc(bad, 10) == NULL);
    else
        free(bad);

    for (int i = 0; i < 100; i++)
        CHECK(live[i] == 'L');
    for (int i = 0; i < 1 << 20; i++)
        CHECK(live_large[i] == 'G');
    for (int i = 0; i < 100; i++) {
        char *q = malloc(i * 50);
        CHECK(q != NULL);
        memset(q, 1, i * 50);
        free(q);
    }
    live = realloc(live, 5000);
    CHECK(live != NULL && live[99] == 'L');
    free(live);
    free(live_large);
    printf("OK\n");
    return 0;
}
