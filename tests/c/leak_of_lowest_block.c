/* A leak of the live block at the lowest address: 20 blocks of 5000 bytes from one call site,
 * all kept in a global array but the lowest one (argv[1] = lowest) or the highest one
 * (argv[1] = highest), whose only pointer is dropped. With leaks on, one LEAK line for 5000
 * bytes in 1 block either way. (The program prints nothing, so that no stdio buffer becomes a
 * lower block.) */
#include <stdint.h>
#include <string.h>
#include "check.h"

static char *kept[20];

__attribute__((noinline)) static void allocate(int drop_lowest) {
    int low = 0, high = 0;
    for (int i = 0; i < 20; i++) {
        kept[i] = malloc(5000);
        CHECK(kept[i] != NULL);
        memset(kept[i], 'k', 5000);
        if ((uintptr_t)kept[i] < (uintptr_t)kept[low])
            low = i;
        if ((uintptr_t)kept[i] > (uintptr_t)kept[high])
            high = i;
    }
    kept[drop_lowest ? low : high] = NULL;
}

/* Overwrites the dead stack below main's frame, where the dropped pointer may linger. */
__attribute__((noinline)) static void clear_stack(void) {
    volatile char buf[1 << 16];
    memset((char *)buf, 0, sizeof buf);
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    allocate(strcmp(argv[1], "lowest") == 0);
    clear_stack();
    return 0;
}
