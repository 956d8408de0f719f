/* Heavy churn of LARGE blocks (malloc, free and realloc of sizes from 20 KiB to 4 MiB, grown
 * and shrunk in place and moved), then show_alloc_mem_ex() on stdout, then the number of lines
 * of /proc/self/maps read right after, as "maps N" (read with open/read: no allocation between
 * the dump and the count). Prints OK. */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#include "check.h"

#define SLOTS 48

static int maps_lines(void) {
    int fd = open("/proc/self/maps", O_RDONLY);
    CHECK(fd >= 0);
    char buf[4096];
    int lines = 0;
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < r; i++)
            lines += buf[i] == '\n';
    close(fd);
    return lines;
}

int main(void) {
    static char *slot[SLOTS];
    static size_t len[SLOTS];
    uint32_t s = 12345;
    for (int i = 0; i < 20000; i++) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        int k = s % SLOTS;
        size_t n = 20000 + (s >> 8) % (4u << 20);
        switch ((s >> 4) % 3) {
        case 0:
            free(slot[k]);
            slot[k] = malloc(n);
            CHECK(slot[k] != NULL);
            break;
        case 1:
            slot[k] = realloc(slot[k], n);
            CHECK(slot[k] != NULL);
            break;
        default:
            free(slot[k]);
            slot[k] = NULL;
            n = 0;
            break;
        }
        len[k] = n;
        if (n) {
            slot[k][0] = 1;
            slot[k][n - 1] = 2;
        }
    }
    fflush(stdout);
    CHECK(show_alloc_mem_ex != NULL);
    show_alloc_mem_ex();
    int lines = maps_lines();
    printf("maps %d\n", lines);
    for (int k = 0; k < SLOTS; k++)
        free(slot[k]);
    printf("OK\n");
    return 0;
}
