/* Redirects its stderr to FILE (dup2), writes a line there, frees a block twice, and prints
 * "done".
 * usage: stderr_redirected FILE */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 2) != 2)
        return 3;
    close(fd);
    write(2, "program line\n", 13);
    char *volatile p = malloc(10);
    free(p);
    free(p);
    printf("done\n");
    return 0;
}
