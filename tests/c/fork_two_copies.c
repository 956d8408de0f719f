// Linked against the library while another copy of it is preloaded: malloc, show_alloc_mem and
// fork (whose handlers both copies register through __register_atfork) must work.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void show_alloc_mem(void);

int main(void) {
    char *p = malloc(42);
    if (!p)
        return 1;
    show_alloc_mem();
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        char *q = malloc(100);
        free(q);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    printf("child %d\n", WEXITSTATUS(st));
    free(p);
    printf("OK\n");
    return 0;
}
