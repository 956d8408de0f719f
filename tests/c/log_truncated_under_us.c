/* Allocates, then truncates the log file (as a user's `> file` would) while the library has
 * it mapped, then allocates on: the library must not die of SIGBUS.
 * usage: log_truncated_under_us LOGPATH */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    for (int i = 0; i < 20000; i++) {
        void *volatile p = malloc(32);
        free(p);
    }
    if (truncate(argv[1], 0) != 0)
        return 3;
    for (int i = 0; i < 20000; i++) {
        void *volatile p = malloc(32);
        free(p);
    }
    printf("OK\n");
    return 0;
}
