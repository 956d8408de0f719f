/* Classic grading test 5: one block of each class and the class boundaries, then
 * show_alloc_mem(). Prints "P <hex address> <size>" per block afterwards. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "check.h"

int main(void) {
    static const size_t sizes[] = {1024, 1024 * 32, 1024 * 1024, 1024 * 1024 * 16,
                                   1024 * 1024 * 128, 1, 512, 513, 16384, 16385, 32768, 32769};
    enum { N = sizeof sizes / sizeof sizes[0] };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(sizes[i]);
        CHECK(p[i] != NULL);
    }
    if (!show_alloc_mem) {
        const char msg[] = "show_alloc_mem not found\n";
        write(2, msg, sizeof msg - 1);
        return 2;
    }
    fflush(stdout);
    show_alloc_mem();
    for (int i = 0; i < N; i++)
        printf("P %lX %zu\n", (unsigned long)(uintptr_t)p[i], sizes[i]);
    printf("OK\n");
    return 0;
}
