/* Changes directory to DIR, then forks: the child frees a block twice (a report) and exits; the
 * parent waits, allocates and prints "done".
 * usage: chdir_fork DIR */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    free(malloc(10));
    if (argc < 2 || chdir(argv[1]) != 0)
        return 2;
    pid_t p = fork();
    if (p == 0) {
        char *volatile q = malloc(20);
        free(q);
        free(q);
        exit(0);
    }
    waitpid(p, NULL, 0);
    free(malloc(30));
    printf("done\n");
    return 0;
}
