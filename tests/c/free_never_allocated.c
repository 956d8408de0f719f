/* free() of a page obtained from mmap: memory that malloc never handed out. */
#include <sys/mman.h>
#include "check.h"

int main(void) {
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    free(p);
    printf("continued\n");
    return 0;
}
