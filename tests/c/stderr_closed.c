/* Started with fd 2 closed: the file it opens gets that number. It writes a line to the file,
 * frees a block twice (a report, or a warning with debugging off), writes a last line, and
 * prints the file's contents on stdout.
 * usage: stderr_closed FILE */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd != 2)
        return 3;
    write(fd, "first\n", 6);
    char *volatile p = malloc(10);
    free(p);
    free(p);
    write(fd, "last\n", 5);
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    if (n > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    return 0;
}
