/* Reports from a parent and an exec'd child (on_error=continue): the parent double-frees a
 * 24-byte block, runs itself again as a child (fork + exec) that double-frees a 40-byte block,
 * then double-frees a 56-byte block. Each process's reports must stay whole in its file. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* A macro: each use is its own call site (on_error=continue reports a site once). */
#define DOUBLE_FREE(n)                                                                             \
    do {                                                                                           \
        void *volatile p = malloc(n);                                                              \
        free(p);                                                                                   \
        free(p);                                                                                   \
    } while (0)

int main(int argc, char **argv) {
    if (argc > 1) {
        DOUBLE_FREE(40);
        return 0;
    }
    DOUBLE_FREE(24);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], "child", (char *)0);
        _exit(3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    DOUBLE_FREE(56);
    printf("child %d status %d\nOK\n", (int)pid, st);
    return 0;
}
