/* A block whose only reference lies in shared anonymous memory (MAP_SHARED, as a program
 * shares state with the children it forks) is reachable; a block dropped altogether (3131
 * bytes) is the one leak. The shared mapping also has pages never touched, which the check
 * must not read (nor allocate).
 * usage: leak_shared_memory */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

__attribute__((noinline)) static void drop(void) {
    char *volatile lost = malloc(3131);
    memset(lost, 1, 3131);
    lost = NULL;
}

int main(void) {
    size_t len = 64 << 20;
    void **shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        return 2;
    char *kept = malloc(777);
    memset(kept, 7, 777);
    shared[5] = kept;
    kept = NULL;
    drop();
    puts("shared");
    return 0;
}
