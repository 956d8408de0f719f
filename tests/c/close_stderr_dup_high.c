/* Closes stderr and every descriptor above it, opens its data file and moves it to every
 * number from 100 to 1023 (as programs that move their descriptors high do; stderr stays
 * closed), then frees a block twice (run with on_error=continue). The report has nowhere to
 * go: it must not land in the data file, which must still hold exactly its 20 bytes.
 * usage: close_stderr_dup_high DATA */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    void *warm = malloc(100);
    free(warm);
    close(2);
    if (syscall(SYS_close_range, 3U, ~0U, 0) != 0)
        return 3;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 4;
    if (write(fd, "data of the program\n", 20) != 20)
        return 5;
    for (int n = 100; n < 1024; n++)
        if (n != fd)
            dup2(fd, n);
    close(fd);
    void *volatile p = malloc(24);
    free(p);
    free(p);
    printf("OK\n");
    return 0;
}
