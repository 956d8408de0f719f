/* dlopen of a library whose constructor registers fork handlers (argv[1], the path of
 * atfork_allocating_lib.so), a fork that runs them, dlclose (glibc then drops the handlers the
 * library registered, by its handle), and forks again: the handlers must be gone, not called in
 * an unmapped library. Checks that the registration reached glibc with the library's handle. */
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static void fork_and_wait(void) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        free(malloc(100));
        _exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    void (*counts)(int[3]) = (void (*)(int[3]))dlsym(h, "atfork_lib_counts");
    CHECK(counts != NULL);
    fork_and_wait();
    int c[3];
    counts(c);
    CHECK(c[0] == 1 && c[1] == 1);
    CHECK(dlclose(h) == 0);
    for (int i = 0; i < 3; i++)
        fork_and_wait();
    printf("OK\n");
    return 0;
}
