/* A daemon-like program: closes every descriptor above 2 (a loop of close(), or
 * close_range(3, ~0U, 0)), opens its data file, which gets a low number, writes 20 bytes into
 * it, then goes on allocating (and with "error", frees a block twice: run with
 * on_error=continue), and finally allocates one block of 777777 bytes.
 * usage: close_all_then_write DATA loop|range ALLOCS [error] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4)
        return 2;
    long n = atol(argv[3]);
    void *warm = malloc(100);
    free(warm);
    if (strcmp(argv[2], "range") == 0) {
        if (syscall(SYS_close_range, 3U, ~0U, 0) != 0)
            return 3;
    } else {
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        for (long fd = 3; fd < (long)rl.rlim_cur; fd++)
            close((int)fd);
    }
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 4;
    if (write(fd, "data of the program\n", 20) != 20)
        return 5;
    for (long i = 0; i < n; i++) {
        void *volatile p = malloc((size_t)(i % 100) + 1);
        free(p);
    }
    if (argc > 4) {
        void *volatile p = malloc(24);
        free(p);
        free(p);
    }
    void *volatile big = malloc(777777);
    free(big);
    close(fd);
    printf("fd %d\nOK\n", fd);
    return 0;
}
