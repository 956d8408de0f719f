/* The parent logs 11 and 33, the forked child 22 and 44: each in its own file (%p). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    void *a = malloc(11);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        void *b = malloc(22);
        free(b);
        void *c = malloc(44);
        free(c);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    void *d = malloc(33);
    free(d);
    free(a);
    printf("child %d status %d\nOK\n", (int)pid, st);
    return 0;
}
