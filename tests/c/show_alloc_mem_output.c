/* A known set of live blocks (3 TINY of 42 bytes, 2 SMALL of 3725, 2 LARGE of 48847, plus freed
 * blocks that must not be listed), then show_alloc_mem(). Afterwards the program prints
 * "P <hex address> <size>" for each live block so the test can match them. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "check.h"

int main(void) {
    static const size_t sizes[] = {42, 3725, 48847, 42, 3725, 48847, 42};
    void *p[7];
    void *gone_tiny = malloc(200), *gone_small = malloc(2000), *gone_large = malloc(70000);
    for (int i = 0; i < 7; i++) {
        p[i] = malloc(sizes[i]);
        memset(p[i], 'x', sizes[i]);
    }
    free(gone_tiny);
    free(gone_small);
    free(gone_large);
    if (!show_alloc_mem) {
        const char msg[] = "show_alloc_mem not found\n";
        write(2, msg, sizeof msg - 1);
        return 2;
    }
    fflush(stdout);
    show_alloc_mem();
    for (int i = 0; i < 7; i++)
        printf("P %lX %zu\n", (unsigned long)(uintptr_t)p[i], sizes[i]);
    for (int i = 0; i < 7; i++)
        free(p[i]);
    printf("OK\n");
    return 0;
}
