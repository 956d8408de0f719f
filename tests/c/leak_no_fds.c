/* A program that uses up its file descriptors, then exits with one block dropped (a leak of
 * 4444 bytes) and, with "double", after freeing a block twice.
 *   soft  the soft limit is set to 64, below the hard one: every descriptor up to it is used;
 *   hard  both limits are set to 64, and used up.
 * Prints "out of descriptors" once open fails with EMFILE; exits 2 when the limits cannot be
 * set so.
 * usage: leak_no_fds soft|hard [double] */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

__attribute__((noinline)) static void drop(void) {
    char *volatile lost = malloc(4444);
    memset(lost, 1, 4444);
    lost = NULL;
}

int main(int argc, char **argv) {
    int hard = argc > 1 && strcmp(argv[1], "hard") == 0;
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    if (!hard && r.rlim_max != RLIM_INFINITY && r.rlim_max <= 64) {
        printf("hard limit too low\n");
        return 2;
    }
    r.rlim_cur = 64;
    if (hard)
        r.rlim_max = 64;
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
        printf("setrlimit refused\n");
        return 2;
    }
    drop();
    while (open("/dev/null", O_RDONLY) >= 0)
        ;
    if (errno != EMFILE) {
        printf("open failed otherwise\n");
        return 2;
    }
    printf("out of descriptors\n");
    fflush(stdout);
    if (argc > 2 && strcmp(argv[2], "double") == 0) {
        char *volatile p = malloc(24);
        free(p);
        free(p);
    }
    return 0;
}
