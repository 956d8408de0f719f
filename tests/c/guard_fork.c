/* Guard pages across fork: the child inherits the guarded blocks with their guards (PROT_NONE
 * pages or guard markers). It allocates and frees, checks the inherited blocks, then reads one
 * byte past a 32-byte block (which ends at its guard) and dies of SIGSEGV with our report; the
 * parent goes on allocating. Prints "child killed by signal 11" and OK. */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

int main(void) {
    char *keep[100];
    for (int i = 0; i < 100; i++) {
        keep[i] = malloc(16 + (size_t)i);
        CHECK(keep[i] != NULL);
        memset(keep[i], 'k', 16 + (size_t)i);
    }
    free(keep[5]);
    fflush(stdout);
    pid_t p = fork();
    CHECK(p >= 0);
    if (p == 0) {
        for (int i = 0; i < 1000; i++) {
            char *q = malloc(100);
            if (!q)
                _exit(6);
            memset(q, 'c', 100);
            free(q);
        }
        for (int i = 6; i < 100; i++)
            if (keep[i][0] != 'k' || keep[i][15 + i] != 'k')
                _exit(7);
        volatile char x = keep[16][32];
        (void)x;
        _exit(0);
    }
    int st;
    CHECK(waitpid(p, &st, 0) == p);
    if (WIFSIGNALED(st))
        printf("child killed by signal %d\n", WTERMSIG(st));
    else
        printf("child exited %d\n", WEXITSTATUS(st));
    for (int i = 0; i < 1000; i++) {
        char *q = malloc(100);
        CHECK(q != NULL);
        memset(q, 'p', 100);
        free(q);
    }
    for (int i = 0; i < 100; i++)
        if (i != 5)
            free(keep[i]);
    printf("OK\n");
    return 0;
}
